"""Start-up time of the quick commands, beside `python -c pass` in the same run (median of N).

    .venv/bin/python bench/startup_bench.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TAOMI = str(Path(sys.executable).parent / "taomi")
COMMANDS = {"python -c pass": [sys.executable, "-c", "pass"], "taomi --help": [TAOMI, "--help"],
            "taomi laws": [TAOMI, "laws"], "taomi gpus": [TAOMI, "gpus"],
            "taomi plan --flops 1e23 --law chinchilla-2022": [TAOMI, "plan", "--flops", "1e23", "--law",
                                                              "chinchilla-2022"]}


def median_wall(cmd: list[str], repeats: int) -> float:
    """Median wall-clock seconds of a fresh process running `cmd` (plan_bench.py shares it)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    base = None
    for name, cmd in COMMANDS.items():
        med = median_wall(cmd, args.repeats)
        base = base or med
        print(f"{name:48s} median {med * 1000:7.1f} ms  ({med / base:.1f}x python -c pass)")


if __name__ == "__main__":
    main()

"""Plan latency (issue 26: a plain plan under 0.5 s, one with CIs under 2 s), end to end as a
user runs it (a fresh `taomi plan` process), beside `python -c pass` in the same run, and the
answer alone in-process. Median of N.

    .venv/bin/python bench/plan_bench.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from startup_bench import median_wall  # bench/ is on sys.path when a bench script runs

TAOMI = str(Path(sys.executable).parent / "taomi")
PLAIN = ["plan", "--flops", "1e23", "--law", "chinchilla-2022"]
CASES = {
    "python -c pass": ([sys.executable, "-c", "pass"], None),
    "plain (chinchilla-2022, no CIs)": ([TAOMI, *PLAIN], 0.5),
    "with CIs (epoch-2024, 1,000 bootstrap laws)": ([TAOMI, "plan", "--flops", "1e23"], 2.0),
    "GPU budget, HFU, goodput, fp8": ([TAOMI, "plan", "--gpus", "1024", "--gpu", "h100-sxm", "--days", "30",
                                       "--hfu", "0.45", "--recompute", "full", "--goodput", "0.9", "--precision",
                                       "fp8"], 2.0),
    "allocation law in its own accounting (deepseek-2024)": ([TAOMI, "plan", "--flops", "1e24", "--law",
                                                              "deepseek-2024"], 0.5),
    "Kaplan, converted accounting": ([TAOMI, "plan", "--flops", "1e24", "--law", "kaplan-2020"], 0.5),
    "data-limited with CIs (100 bootstrap searches)": ([TAOMI, "plan", "--flops", "1e23", "--unique-tokens",
                                                         "1e11"], 2.0),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    base = None
    print(f"{'case':56s} {'median':>9s} {'target':>7s}  vs python -c pass")
    for name, (cmd, target) in CASES.items():
        med = median_wall(cmd, args.repeats)
        base = base or med
        ok = "" if target is None else ("ok" if med <= target else "MISSED")
        print(f"{name:56s} {med:8.3f}s {'' if target is None else f'{target:.1f}s':>7s}  {med / base:5.1f}x  {ok}")
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from flows.plan_task import answer
    from scaling.planning import PlanRequest

    for label, req in (("answer() plain", PlanRequest(flops=1e23, law="chinchilla-2022")),
                       ("answer() with CIs", PlanRequest(flops=1e23)),
                       ("answer() data-limited with CIs", PlanRequest(flops=1e23, unique_tokens=1e11))):
        answer(req)
        t = time.perf_counter()
        for _ in range(args.repeats):
            answer(req)
        print(f"{label:56s} {(time.perf_counter() - t) / args.repeats * 1000:8.2f} ms in-process")


if __name__ == "__main__":
    main()

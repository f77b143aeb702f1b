"""The fuzz and fault suite with its figures: inputs tried, kills survived, 5xx count, rows lost.

    .venv/bin/python bench/fault_suite.py [--kills-per-stage 3]

Runs the property-based reader and HTTP tests and the SIGKILL tests (tests/warehouse/
test_ingest_fuzz.py, tests/taomi/test_service_fuzz.py, tests/flows/test_kill_rerun.py) with
TAOMI_FAULT_REPORT set, then adds up what each suite recorded. The same tests run in `make test`
(3 kills per stage there); this script only collects their numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/warehouse/test_ingest_fuzz.py", "tests/taomi/test_service_fuzz.py", "tests/flows/test_kill_rerun.py",
         "tests/warehouse/test_ingest_no_loss.py", "tests/warehouse/test_outputs.py", "tests/evalsets/test_report_xss.py"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills-per-stage", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.jsonl"
        env = {**os.environ, "TAOMI_FAULT_REPORT": str(report), "TAOMI_KILLS_PER_STAGE": str(args.kills_per_stage)}
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT, env=env,
                           check=False, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in report.read_text().splitlines()] if report.exists() else []
    print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:])
    readers = [x for x in rows if x["suite"] == "readers"]
    http = [x for x in rows if x["suite"] == "http"]
    kills = [x for x in rows if x["suite"] == "sigkill"]
    print(f"readers: {sum(x['files'] for x in readers)} generated files, {sum(x['rows'] for x in readers)} rows, "
          f"rows lost {sum(x['lost'] for x in readers)}")
    print(f"http: {sum(x['requests'] for x in http)} fuzzed requests, 5xx {sum(x['5xx'] for x in http)}")
    for x in kills:
        print(f"sigkill {x['stage']}: {x['kills']} kills ({x['mid_stage']} mid-stage), re-run equal to a clean run, "
              f"rows lost {x['rows_lost']}")
    print(f"kills survived: {sum(x['kills'] for x in kills)}; suite wall time {wall:.0f} s")
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()

"""The fuzz and fault suite with its figures: inputs tried, kills survived, 5xx count, rows lost.

    .venv/bin/python bench/fault_suite.py [--kills-per-stage 3]

Runs the property-based reader and HTTP tests, the SIGKILL tests and the trust-boundary tests
(hostile export ledgers, terminal payloads, foreign DuckDB files, a full disk, the eval lock,
bounded work per HTTP request) with TAOMI_FAULT_REPORT set, then adds up what each suite
recorded. The same tests run in `make test` (3 kills per stage there); this script only collects
their numbers.
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
         "tests/warehouse/test_ingest_no_loss.py", "tests/warehouse/test_outputs.py", "tests/evalsets/test_report_xss.py",
         "tests/warehouse/test_hostile_ledgers.py", "tests/taomi/test_terminal_payloads.py",
         "tests/warehouse/test_foreign_db.py", "tests/taomi/test_one_line.py", "tests/flows/test_short_locks.py",
         "tests/taomi/test_service_bounds.py"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills-per-stage", type=int, default=3)
    ap.add_argument("--ledger-examples", type=int, default=40, help="generated hostile ledgers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.jsonl"
        env = {**os.environ, "TAOMI_FAULT_REPORT": str(report), "TAOMI_KILLS_PER_STAGE": str(args.kills_per_stage),
               "TAOMI_LEDGER_EXAMPLES": str(args.ledger_examples)}
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
    print(f"kills survived: {sum(x['kills'] for x in kills)}")
    of = lambda suite: [x for x in rows if x["suite"] == suite]
    print(f"hostile export ledgers: {sum(x['cases'] for x in of('ledgers'))} (generated and the issue's), "
          f"files outside OUTDIR changed {sum(x['outside_changed'] for x in of('ledgers'))}")
    print(f"terminal payloads: {sum(x['commands'] for x in of('terminal'))} commands, interpreted payloads "
          f"{sum(x['interpreted'] for x in of('terminal'))}, tracebacks {sum(x['tracebacks'] for x in of('terminal'))}")
    print(f"foreign DuckDB files: {len(of('foreign_db'))} kinds x {max([x['commands'] for x in of('foreign_db')] or [0])} "
          f"commands, bytes changed {sum(x['bytes_changed'] for x in of('foreign_db'))}")
    print(f"full disk (tmpfs): {sum(x['cases'] for x in of('full_disk'))} cases, tracebacks "
          f"{sum(x['tracebacks'] for x in of('full_disk'))}")
    print(f"eval --train-corpus lock: {len(of('eval_lock'))} long scans, another process blocked "
          f"{sum(x['blocked'] for x in of('eval_lock'))} times")
    for x in of("http_bounds"):
        print(f"data-limited /plan flood: {x['requests']} requests, {x['served']} expensive plans served, "
              f"{x['retry_after']} answered 503 + Retry-After, slowest {x['max_latency_s']} s (before: timeouts at 30 s)")
    print(f"suite wall time {wall:.0f} s")
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()

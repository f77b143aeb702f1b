"""A fast start (issue 16, item 5): `taomi --help` and the quick commands import none of the heavy
libraries they do not need (timings are bench/startup_bench.py's job, not a test's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["pandas", "duckdb", "prefect", "torch", "matplotlib", "pyarrow", "fastapi", "datasketch", "numba", "sklearn"]
PROBE = f"""
import json, sys
sys.argv = ["taomi"] + json.loads(sys.argv[1])
from taomi.cli import run
try:
    run()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["laws"], ["gpus"],
                                  ["estimate", "time", "--params", "7e9", "--tokens", "2e12", "--gpus", "64",
                                   "--gpu", "h100-sxm", "--mfu", "0.4"],
                                  ["plan", "--flops", "1e23", "--law", "chinchilla-2022"]])
def test_quick_commands_import_no_heavy_library(args):
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, check=False,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert json.loads(r.stderr.strip().splitlines()[-1]) == [], r.stderr[-2000:]


@pytest.mark.parametrize("args", [["--help"], ["laws"], ["gpus"]])
def test_listing_commands_do_not_even_load_numpy(args):
    probe = PROBE.replace(repr(HEAVY), repr(["numpy", "scipy"]))
    r = subprocess.run([sys.executable, "-c", probe, json.dumps(args)], capture_output=True, text=True, check=False,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert json.loads(r.stderr.strip().splitlines()[-1]) == [], r.stderr[-2000:]


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_dedup_imports_only_what_it_uses(tmp_path, kernel):
    """`taomi dedup` end to end (read texts, sign, band, verify, store) loads no pandas, Prefect,
    matplotlib, scikit-learn or torch: pyarrow's `pa.array` and `to_numpy` import pandas on first
    use (0.2 s per run), so the warehouse converts through `warehouse.sql.arrow` / `numpy`."""
    from taomi.demo_data import DemoConfig, generate

    summary = generate(tmp_path, DemoConfig(docs=300, seed=5, words_mean=60))
    db = str(tmp_path / "d.duckdb")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TAOMI_KERNEL": kernel}
    subprocess.run([sys.executable, "-m", "taomi", "--db", db, "ingest", summary["corpus"], "--corpus", "c", "--json"],
                   check=True, capture_output=True, cwd=ROOT, env=env, timeout=300)
    probe = PROBE.replace(repr(HEAVY), repr(["pandas", "prefect", "matplotlib", "sklearn", "torch"]))
    r = subprocess.run([sys.executable, "-c", probe, json.dumps(["--db", db, "dedup", "c", "--json"])],
                       capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=300)
    assert '"near_dropped"' in r.stdout, r.stderr[-2000:]
    assert json.loads(r.stderr.strip().splitlines()[-1]) == [], r.stderr[-2000:]


def test_ingest_imports_no_pandas(tmp_path):
    """`taomi ingest --tokenizer none` of clean JSON lines (with and without ids, several files in
    one unit) and of a Parquet folder loads no pandas: Arrow's scalar, `pa.array` and `to_numpy`
    conversions import it (0.18 s of each ingest), so the hot path stays on Arrow arrays."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    jl = tmp_path / "jl"
    jl.mkdir()
    (jl / "a.jsonl").write_text("".join(json.dumps({"id": f"a{i}", "text": f"text {i}", "src": "x"}) + "\n"
                                        for i in range(50)))
    (jl / "b.jsonl").write_text("".join(json.dumps({"text": f"other {i}", "metadata": {"url": "u"}}) + "\n"
                                        for i in range(50)))
    pqd = tmp_path / "pq"
    pqd.mkdir()
    for k in range(2):
        pq.write_table(pa.table({"text": [f"row {k} {i}" for i in range(40)], "source": ["s"] * 40}),
                       pqd / f"train-{k:05d}-of-00002.parquet")
    probe = PROBE.replace(repr(HEAVY), repr(["pandas", "prefect", "matplotlib", "sklearn", "torch"]))
    for name, folder in (("jl", jl), ("pq", pqd)):
        args = ["--db", str(tmp_path / f"{name}.duckdb"), "ingest", "-c", "c", str(folder), "--tokenizer", "none",
                "--json"]
        r = subprocess.run([sys.executable, "-c", probe, json.dumps(args)], capture_output=True, text=True, check=False,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        assert '"rows_new": ' in r.stdout and '"rows_quarantined": 0' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        assert json.loads(r.stderr.strip().splitlines()[-1]) == [], r.stderr[-2000:]

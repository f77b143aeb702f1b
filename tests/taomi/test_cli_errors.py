"""The real `taomi` entry point: errors a user can act on are one line and an exit code, never a
traceback (issue 12, items 6, 8 and 9, and their siblings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def taomi(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taomi", *args], check=False, capture_output=True, text=True,
                          timeout=120,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def one_line_error(r: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and text in r.stderr, r.stderr
    assert r.stderr.strip().startswith("error:")


@pytest.mark.parametrize("kind", ["folder", "text file", "/dev/null"])
def test_unusable_db_paths_are_one_line_errors(tmp_path, kind):
    target = {"folder": tmp_path, "text file": tmp_path / "notes.txt", "/dev/null": Path("/dev/null")}[kind]
    if kind == "text file":
        target.write_text("my notes, not a database\n")
    expect = {"folder": "is a folder", "text file": "not a DuckDB database", "/dev/null": "not a regular file"}[kind]
    for args in (["runs"], ["ingest", "--corpus", "c", str(ROOT / "pyproject.toml")]):
        one_line_error(taomi("--db", str(target), *args), 2, expect)
    if kind == "text file":
        assert target.read_text() == "my notes, not a database\n"


def test_a_busy_database_names_its_holder_and_exits_75(tmp_path):
    db = tmp_path / "busy.duckdb"
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        for args in (["runs"], ["corpora"], ["ingest", "--corpus", "c", str(tmp_path / "x.jsonl")]):
            if args[0] == "ingest":
                (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
            r = taomi("--db", str(db), *args, env={"TAOMI_LOCK_WAIT_S": "1"})
            one_line_error(r, 75, f"busy, held by PID {holder.pid}")
        assert time.monotonic() - t0 < 60  # bounded wait, not a hang
    finally:
        holder.kill()
        holder.wait()
    r = taomi("--db", str(db), "runs", "--json")  # free again: read-only command works
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_ingest_with_one_bad_file_writes_nothing_and_exits_2(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": 1, "text": "kept?"}\n')
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,body\n1,x\n")
    db = str(tmp_path / "t.duckdb")
    one_line_error(taomi("--db", db, "ingest", "-c", "c", str(good), str(nocol)), 2, "nocol.csv: line 1: no column 'text'")
    r = taomi("--db", db, "corpora", "--json")
    assert r.returncode in (0, 2) and "kept?" not in r.stdout
    if r.returncode == 0:
        assert json.loads(r.stdout) == []


def test_outputs_never_overwrite_a_users_file_without_force(tmp_path, sample):
    data = tmp_path / "data"
    data.mkdir()
    (data / "corpus.jsonl").write_text("my corpus\n")
    one_line_error(taomi("demo-data", str(data), "--docs", "50"), 2, "corpus.jsonl: exists and was not written by Taomi")
    assert (data / "corpus.jsonl").read_text() == "my corpus\n"
    assert taomi("demo-data", str(data), "--docs", "50", "--force").returncode == 0
    assert taomi("demo-data", str(data), "--docs", "60").returncode == 0  # now Taomi's own files: replaced
    db = str(tmp_path / "t.duckdb")
    assert taomi("--db", db, "ingest", "-c", "c", sample["corpus"]).returncode == 0
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("mine\n")
    one_line_error(taomi("--db", db, "dedup", "c", "--pairs-out", str(pairs)), 2, "pairs.csv: exists and was not")
    assert pairs.read_text() == "mine\n"
    report_file = tmp_path / "report-here"
    report_file.write_text("a file\n")
    one_line_error(taomi("--db", db, "eval", sample["eval_set"], sample["predictions_current"], "--out",
                         str(report_file)), 2, "exists and is not a folder")


def test_prefect_start_timeout_is_raised_for_loaded_machines():
    from taomi.common import quiet_prefect

    os.environ.pop("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", None)
    quiet_prefect()
    assert int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]) >= 120

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
    good = tmp_path / "good.jsonl" if kind != "folder" else tmp_path.parent / f"{tmp_path.name}-good.jsonl"
    good.write_text('{"text": "a good row"}\n')  # the input is fine: the database path is what is wrong
    for args in (["runs"], ["ingest", "--corpus", "c", str(good)]):
        one_line_error(taomi("--db", str(target), *args), 2, expect)
    if kind == "text file":
        assert target.read_text() == "my notes, not a database\n"


def test_a_busy_database_names_its_holder_and_exits_75(tmp_path):
    from warehouse.db import connect

    db = tmp_path / "busy.duckdb"
    connect(db).close()  # a Taomi warehouse, then held by another process
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


def _bounded_options() -> list[tuple[list[str], str, str]]:
    """(command path, option, an out-of-range value) for every option with a min or max bound."""
    import typer.main

    from taomi.cli import app

    out = []

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])
        for p in getattr(cmd, "params", []):
            lo, hi = getattr(p, "min", None), getattr(p, "max", None)
            if p.opts and p.opts[0].startswith("--") and (lo is not None or hi is not None):
                bad = str(int(lo) - 1) if lo is not None else str(int(hi) + 1)
                out.append((path, p.opts[0], bad))

    walk(typer.main.get_command(app), [])
    return out


def test_every_bounded_option_out_of_range_is_exit_2_without_traceback():
    """The class of `taomi dedup c --workers -1` (a traceback: typer checks bounds with its own copy
    of click, whose error went past the entry point's handler): every bounded option, one run each."""
    cases = _bounded_options()
    assert len(cases) >= 10 and any(opt == "--workers" for _, opt, _ in cases)
    code = ("import sys, json; from taomi.cli import run\n"
            "for path, opt, bad in json.loads(sys.argv[1]):\n"
            "    sys.argv = ['taomi', *path, *(['x'] if path[-1:] in (['dedup'], ['dedup-query'], ['quarantine']) else []),"
            " opt, bad]\n"
            "    try:\n        run()\n    except SystemExit as e:\n        print(json.dumps([opt, e.code]))\n")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], check=False, capture_output=True, text=True,
                       timeout=300,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TAOMI_DB": "/nonexistent/x.duckdb"})
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    codes = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(codes) == len(cases) and all(c == 2 for _, c in codes), codes

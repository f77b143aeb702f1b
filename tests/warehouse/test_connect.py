"""DuckDB's thread count follows the cores this process may use (taskset, container cpusets)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or shutil.which("taskset") is None, reason="needs 2+ cores and taskset")
def test_duckdb_threads_match_the_pinned_cores(tmp_path):
    code = ("import sys; from warehouse.db import connect; con = connect(sys.argv[1]);"
            "print(con.execute(\"SELECT current_setting('threads')\").fetchall()[0][0])")
    db = str(tmp_path / "t.duckdb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pinned = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code, db], capture_output=True, text=True,
                            check=True, cwd=ROOT, env=env)
    free = subprocess.run([sys.executable, "-c", code, db], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert int(pinned.stdout.strip()) == 1
    assert int(free.stdout.strip()) == min(len(os.sched_getaffinity(0)), os.cpu_count())


def test_threads_opening_a_file_not_yet_known_wait_for_each_others_look(tmp_path, monkeypatch):
    """Past the known-files cache, every read-write open looks read-only first; a thread's look
    must not make another thread's read-write open fail ("different configuration": seen in the
    threads task runner once a test session had opened more than 64 databases)."""
    import threading

    import warehouse.db as wdb

    db = str(tmp_path / "t.duckdb")
    with wdb.session(db):
        pass
    monkeypatch.setattr(wdb, "_KNOWN", {})
    monkeypatch.setattr(wdb, "_KNOWN_MAX", 0)  # nothing is remembered: every open looks first
    errors = []

    def work():
        for _ in range(15):
            try:
                with wdb.session(db) as con:
                    con.execute("SELECT count(*) FROM documents").fetchall()
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("known", ["known", "past the known files"])
def test_a_second_connection_in_a_process_keeps_its_lock_on_the_file(tmp_path, another_process_opens, known,
                                                                     monkeypatch):
    """Checking the header of the file closed a descriptor of it, which drops every POSIX lock of
    the process on the file, DuckDB's included: while one thread's session was open, a second
    `connect` let another process open the database read-write beside it. Also once the process
    has connected to more files than it keeps descriptors for (the whole test suite does)."""
    import warehouse.db as wdb
    from warehouse.db import connect

    if known != "known":
        monkeypatch.setattr(wdb, "_KNOWN", {})
        monkeypatch.setattr(wdb, "_KNOWN_MAX", 0)
    db = tmp_path / "t.duckdb"
    first = connect(db)
    try:
        other = connect(db)
        assert not another_process_opens(db)
        other.close()
        assert not another_process_opens(db)
    finally:
        first.close()
    assert another_process_opens(db)

"""Only Taomi's own databases (issue 29, item 3): a DuckDB file Taomi did not create is refused by
every command with one line and left byte-for-byte unchanged (the file and its WAL); read-only
commands never create or migrate anything; a file of an older Taomi is upgraded only by a
writing command (or `taomi migrate`), one of a newer Taomi is refused for writing with one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]


def state(folder: Path) -> dict[str, str]:
    """sha256 of every file in the folder (the database, its WAL, anything created beside it)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def foreign(folder: Path, kind: str) -> Path:
    db = folder / "sales.duckdb"
    if kind == "empty file":
        db.write_bytes(b"")
    elif kind == "empty duckdb":
        duckdb.connect(str(db)).close()
    elif kind == "pending wal":  # a foreign program killed before its checkpoint: file + WAL
        code = ("import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); c.execute('SET checkpoint_threshold=\"1GB\"');"
                "c.execute('CREATE TABLE sales (region VARCHAR, amount DOUBLE)');"
                "c.execute(\"INSERT INTO sales VALUES ('north', 10.5), ('south', 3.25)\"); os._exit(0)")
        subprocess.run([sys.executable, "-c", code, str(db)], check=True)
        assert Path(str(db) + ".wal").exists()
    else:  # a user's own database, with a table that looks like one of Taomi's
        con = duckdb.connect(str(db))
        con.execute("CREATE TABLE documents (id INTEGER, body VARCHAR)")
        con.execute("INSERT INTO documents VALUES (1, 'my data')")
        con.close()
    return db


def commands(tmp: Path) -> list[list[str]]:
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "in" / "x.jsonl").write_text('{"id": 1, "text": "hello world of data"}\n')
    (tmp / "in" / "obs.csv").write_text("N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n4e8,8e9,2.7\n8e8,1.6e10,2.6\n"
                                        "1.6e9,3.2e10,2.5\n3.2e9,6.4e10,2.4\n")
    (tmp / "in" / "set.jsonl").write_text('{"id": "a", "input": "q", "target": "t"}\n')
    (tmp / "in" / "pred.jsonl").write_text('{"id": "a", "prediction": "t"}\n')
    i = tmp / "in"
    return [["corpora"], ["stats", "c"], ["quarantine", "c"], ["runs"], ["fits"], ["plan", "--fit", "x", "--flops", "1e21"],
            ["ingest", "-c", "c", str(i / "x.jsonl")], ["dedup", "c"], ["dedup-query", "c", "--text", "hello"],
            ["labels", "c"], ["curriculum", "c"], ["export", "c", str(tmp / "out")], ["fit", str(i / "obs.csv")],
            ["eval", str(i / "set.jsonl"), str(i / "pred.jsonl"), "--out", str(tmp / "rep")], ["migrate"],
            ["hardset", "build", "h", "--out", str(tmp / "h.jsonl")]]


@pytest.mark.parametrize("kind", ["user table", "pending wal", "empty duckdb", "empty file"])
def test_a_foreign_duckdb_file_is_refused_by_every_command_and_left_unchanged(tmp_path, taomi_cli, kind,
                                                                            record_fault):
    folder = tmp_path / "db"
    folder.mkdir()
    db = foreign(folder, kind)
    before = state(folder)
    cmds = commands(tmp_path)
    for args in cmds:
        r = taomi_cli("--db", str(db), *args)
        assert r.code == 2, (args, r.code, r.output)
        assert "Traceback" not in r.output and len(r.err.strip().splitlines()) == 1, (args, r.err)
        assert ("did not create" in r.err or "empty file" in r.err), (args, r.err)
        assert state(folder) == before, f"{args} changed the foreign database"
    record_fault("foreign_db", commands=len(cmds), bytes_changed=0)


def _old_taomi_db(path: Path, upto: int) -> None:
    """A warehouse as a Taomi of schema `upto` left it (before the format marker)."""
    from warehouse import schema

    con = duckdb.connect(str(path))
    saved = schema.MIGRATIONS
    try:
        schema.MIGRATIONS = [m for m in saved if m[0] <= upto]
        schema.migrate(con)
        con.execute("INSERT INTO runs (run_id, stage, inputs_hash, started_at, status) "
                    "VALUES ('r1', 'ingest', 'h', now(), 'ok')")
    finally:
        schema.MIGRATIONS = saved
        con.close()


def test_an_older_taomi_file_is_migrated_by_writers_only(tmp_path, taomi_cli):
    from warehouse.schema import SCHEMA_VERSION

    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "old.duckdb"
    _old_taomi_db(db, 12)
    before = state(folder)
    for args in (["runs"], ["corpora"], ["fits"]):
        r = taomi_cli("--db", str(db), *args)
        assert r.code == 2 and "taomi migrate" in r.err and len(r.err.strip().splitlines()) == 1, r.output
        assert state(folder) == before  # read-only commands migrate nothing
    r = taomi_cli("--db", str(db), "migrate", "--json")
    assert r.code == 0, r.output
    assert json.loads(r.out) == {"database": str(db), "schema_before": 12, "schema_now": SCHEMA_VERSION,
                                 "changed": True}
    r = taomi_cli("--db", str(db), "runs", "--json")
    assert r.code == 0 and [x["run_id"] for x in json.loads(r.out)] == ["r1"]  # its data kept


def test_a_newer_taomis_file_is_read_but_not_written(tmp_path, taomi_cli, sample):
    from warehouse.db import connect

    db = tmp_path / "new.duckdb"
    con = connect(db)
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    con.close()
    before = state(tmp_path)
    for args in (["ingest", "-c", "c", sample["corpus"]], ["dedup", "c"], ["migrate"]):
        r = taomi_cli("--db", str(db), *args)
        assert r.code == 2 and "newer Taomi" in r.err and "Traceback" not in r.output, r.output
        assert len(r.err.strip().splitlines()) == 1
    assert state(tmp_path) == before
    assert taomi_cli("--db", str(db), "runs").code == 0


def test_read_only_commands_create_nothing(tmp_path, taomi_cli):
    db = tmp_path / "none" / "absent.duckdb"
    for args in (["corpora"], ["runs"], ["fits"], ["stats", "c"], ["migrate"]):
        r = taomi_cli("--db", str(db), *args)
        assert r.code == 2 and "no Taomi database" in r.err, r.output
    assert not db.parent.exists()


def test_a_new_warehouse_appears_whole(tmp_path):
    """Created under a temporary name and linked into place: never a half-made file at the path,
    and a temporary file a killed creation left is removed by the next one."""
    from warehouse.db import connect
    from warehouse.schema import warehouse_kind

    stale = tmp_path / ".w.duckdb.taomi-new-999999999-abcd1234"
    stale.write_bytes(b"half made")
    con = connect(tmp_path / "w.duckdb")
    assert warehouse_kind(con) == "taomi"
    con.close()
    assert sorted(os.listdir(tmp_path)) == ["w.duckdb"]


def test_the_service_on_a_foreign_file_answers_503_and_leaves_it_unchanged(tmp_path):
    from fastapi.testclient import TestClient

    from taomi.service import create_app

    db = foreign(tmp_path, "user table")
    before = state(tmp_path)
    client = TestClient(create_app(str(db)))
    r = client.get("/fits")
    assert r.status_code == 503 and "did not create" in r.json()["detail"]
    r = client.post("/plan", json={"fit": "x", "flops": 1e21})
    assert r.status_code == 503
    assert client.post("/plan", json={"flops": 1e21}).status_code == 200  # needs no database
    assert state(tmp_path) == before

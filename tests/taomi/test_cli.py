"""The command line: exit codes, one-line errors, --json output."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from taomi.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_ingest_stats_corpora_json(db, sample):
    r = invoke("--db", db, "ingest", sample["corpus"], sample["labels"], "--corpus", "demo", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["rows_new"] == sample["docs"]
    assert out["rows_quarantined"] == sample["broken_lines"]
    s = json.loads(invoke("--db", db, "stats", "demo", "--json").stdout)
    assert s["documents"] == sample["docs"]
    truth = sample["truth_data"]
    assert s["exact_duplicate_docs"] == sum(len(g) - 1 for g in truth["exact_groups"])  # byte-identical only
    assert s["annotations"]["rows"] == sample["annotation_rows"]
    c = json.loads(invoke("--db", db, "corpora", "--json").stdout)
    assert [row["corpus"] for row in c] == ["demo"]
    q = json.loads(invoke("--db", db, "quarantine", "demo", "--json").stdout)
    assert sorted(row["line"] for row in q) == truth["broken_lines"]
    runs = json.loads(invoke("--db", db, "runs", "--json").stdout)
    assert [(x["stage"], x["status"]) for x in runs[:2]] == [("tokens", "ok"), ("ingest", "ok")]  # counted after


def test_missing_file_exit_2_one_line(db, sample, tmp_path):
    r = invoke("--db", db, "ingest", sample["corpus"], str(tmp_path / "gone.jsonl"), "--corpus", "x")
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "gone.jsonl: no such file" in lines[0]
    assert not Path(db).exists()  # every input is checked before the database is created


def test_nothing_readable_exits_nonzero(db, tmp_path):
    f = tmp_path / "all_bad.jsonl"
    f.write_text("not json\n{\"text\": 1}\n")
    r = invoke("--db", db, "ingest", str(f), "--corpus", "x")
    assert r.exit_code == 1
    assert "nothing could be read" in r.stderr


def test_unknown_corpus_is_an_error(db):
    r = invoke("--db", db, "stats", "nope")
    assert r.exit_code == 2 and "no Taomi database here yet" in r.stderr
    from warehouse.db import connect

    connect(db).close()
    r = invoke("--db", db, "stats", "nope")
    assert r.exit_code == 2 and "no corpus named 'nope'" in r.stderr


def test_env_var_selects_database(tmp_path, sample, monkeypatch):
    target = tmp_path / "from_env.duckdb"
    monkeypatch.setenv("TAOMI_DB", str(target))
    assert invoke("ingest", sample["labels"], "--corpus", "l", "--json").exit_code == 0
    assert target.exists()

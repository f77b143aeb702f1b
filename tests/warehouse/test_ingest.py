"""Ingest: bad rows quarantined with file/line/field/reason, good rows kept, idempotent, atomic."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from warehouse.db import one
from warehouse.ingest import IngestConfig, InputError, ingest_file, ingest_paths

ROOT = Path(__file__).resolve().parents[2]


def count(con, table: str, corpus: str = "c") -> int:
    return one(con, f"SELECT count(*) FROM {table} WHERE corpus = ?", [corpus])[0]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_bad_rows_are_quarantined_and_good_rows_kept(con, tmp_path):
    f = write_lines(tmp_path / "mixed.jsonl", [
        b'{"id": "a", "text": "first good row"}',
        b'{"id": "b", "text": "unterminated}',
        b'{"id": "c", "body": "no text"}',
        b'{"id": "d", "text": 42}',
        b'{"id": "e", "text": "  "}',
        b'{"id": "f", "text": "bad \xff byte"}',
        b'[1, 2]',
        b'',
        b'{"id": "g", "text": "caf\xc3\xa9 \xe6\x95\xb0\xe6\x8d\xae \xf0\x9f\x9a\x80"}',
        b'{"id": "h", "text": null}',
    ])
    r = ingest_file(con, f, IngestConfig("c"))
    assert r.rows_new == 2
    assert r.rows_quarantined == 7
    rows = con.execute("SELECT line, field, reason FROM quarantine WHERE corpus = 'c' ORDER BY line").fetchall()
    assert rows == [
        (2, "(line)", "malformed JSON"),
        (3, "text", "missing text field"),
        (4, "text", "text is a number, expected a string"),
        (5, "text", "empty text"),
        (6, "(byte 25)", "invalid UTF-8"),
        (7, "(line)", "not a JSON object (ARRAY)"),
        (10, "text", "text is null, expected a string"),
    ]
    paths = {p for (p,) in con.execute("SELECT DISTINCT path FROM quarantine").fetchall()}
    assert paths == {str(f)}
    texts = dict(con.execute("SELECT ext_id, text FROM documents").fetchall())
    assert texts == {"a": "first good row", "g": "café 数据 🚀"}  # stored as given


def test_gzip_jsonl_and_custom_field_names(con, tmp_path):
    f = tmp_path / "x.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        for i in range(5):
            fh.write(json.dumps({"key": f"k{i}", "content": f"doc number {i}", "y": "pos"}) + "\n")
    r = ingest_file(con, f, IngestConfig("c", text_field="content", id_field="key", label_field="y"))
    assert (r.rows_new, r.rows_quarantined, r.annotations_new) == (5, 0, 5)
    assert con.execute("SELECT ext_id FROM documents ORDER BY doc_id").fetchall()[0] == ("k0",)


def test_parquet_null_and_non_string_text(con, tmp_path):
    f = tmp_path / "p.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["hello world", None, ""]}).to_parquet(f)
    r = ingest_file(con, f, IngestConfig("c"))
    assert r.rows_new == 1
    assert con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall() == [
        (2, "text is null, expected a string"), (3, "empty text")]
    g = tmp_path / "n.parquet"
    pd.DataFrame({"id": ["x"], "text": [3.5]}).to_parquet(g)
    r = ingest_file(con, g, IngestConfig("c"))
    assert r.rows_new == 0 and r.reasons == {"text is a number, expected a string": 1}


def test_csv_bad_rows(con, tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes(b'id,text,label\n'
                  b'1,"a good, quoted row",x\n'
                  b'2,too,many,columns\n'
                  b'3,"",x\n'
                  b'4,"bad \xff utf8",y\n'
                  b'5,"multi\nline text",y\n'
                  b'6,last row,z\n')
    r = ingest_file(con, f, IngestConfig("c"))
    assert r.rows_new == 3
    q = con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    assert q == [(3, "expected 3 columns, got 4"), (4, "empty text"), (5, "invalid UTF-8")]
    assert one(con, "SELECT source_line FROM documents WHERE ext_id = '6'") == (8,)


def test_missing_text_column_in_csv_is_a_clear_error(con, tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("id,body\n1,x\n")
    with pytest.raises(InputError, match=r"d.csv: line 1: no column 'text'"):
        ingest_file(con, f, IngestConfig("c"))


def test_missing_file_or_unknown_format_writes_nothing(con, tmp_path, sample):
    good = sample["corpus"]
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        ingest_paths(con, [good, tmp_path / "nope.jsonl"], IngestConfig("c"))
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(InputError, match=r"notes.txt: unknown format"):
        ingest_paths(con, [good, bad], IngestConfig("c"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="unreadable Parquet"):
        ingest_paths(con, [good, broken], IngestConfig("c"))
    assert count(con, "documents") == 0 and count(con, "sources") == 0


def test_reingest_is_noop_and_new_version_adds_only_new_rows(con, tmp_path, sample):
    cfg = IngestConfig("c")
    first = ingest_paths(con, [sample["corpus"], sample["labels"]], cfg)
    n_docs, n_ann, n_q = count(con, "documents"), count(con, "annotations"), count(con, "quarantine")
    assert first[0].rows_new == sample["docs"] and first[0].rows_quarantined == sample["broken_lines"]
    assert first[1].annotations_new == sample["annotation_rows"]
    again = ingest_paths(con, [sample["corpus"], sample["labels"]], cfg)
    assert [r.status for r in again] == ["unchanged", "unchanged"]
    assert (count(con, "documents"), count(con, "annotations"), count(con, "quarantine")) == (n_docs, n_ann, n_q)
    # A copy of the same bytes under another name is recognised by content hash too.
    copy = tmp_path / "copy.jsonl"
    shutil.copy(sample["corpus"], copy)
    assert ingest_file(con, copy, cfg).status == "unchanged"
    # A new version with two more rows adds exactly those two.
    v2 = tmp_path / "corpus.jsonl"
    v2.write_bytes(Path(sample["corpus"]).read_bytes()
                   + b'{"id": "new-1", "text": "a new row"}\n{"id": "new-2", "text": "another"}\n')
    r = ingest_file(con, v2, cfg)
    assert (r.status, r.rows_new, r.rows_existing) == ("ingested", 2, sample["docs"])
    assert count(con, "documents") == n_docs + 2
    assert count(con, "quarantine") == n_q + sample["broken_lines"]  # same lines, new path
    ids = one(con, "SELECT count(*), count(DISTINCT doc_id), count(DISTINCT ext_id) FROM documents")
    assert ids[0] == ids[1] == ids[2]


def test_repeated_id_with_different_text_is_quarantined(con, tmp_path):
    f = write_lines(tmp_path / "r.jsonl", [
        b'{"id": "a", "text": "one", "annotator": "x", "label": "p"}',
        b'{"id": "a", "text": "one", "annotator": "y", "label": "q"}',
        b'{"id": "a", "text": "two", "annotator": "z", "label": "q"}',
    ])
    r = ingest_file(con, f, IngestConfig("c"))
    assert (r.rows_new, r.annotations_new, r.rows_quarantined) == (1, 2, 1)
    assert one(con, "SELECT field, reason FROM quarantine") == (
        "id", "id repeats line 1 with a different text")


def test_rows_without_id_get_file_line_ids(con, tmp_path):
    f = write_lines(tmp_path / "noid.jsonl", [b'{"text": "x y"}', b'{"text": "x y"}'])
    ingest_file(con, f, IngestConfig("c"))
    assert [r[0] for r in con.execute("SELECT ext_id FROM documents ORDER BY doc_id").fetchall()] == [
        "noid.jsonl:1", "noid.jsonl:2"]


def test_config_validation():
    with pytest.raises(ValueError, match="corpus name"):
        IngestConfig(" ")
    with pytest.raises(ValueError, match="must differ"):
        IngestConfig("c", text_field="x", id_field="x")


def test_run_log_records_ingest(con, sample):
    ingest_paths(con, [sample["corpus"]], IngestConfig("c"))
    stage, status, cin, cout = one(con, 
        "SELECT stage, status, counts_in, counts_out FROM runs")
    assert (stage, status, cout) == ("ingest", "ok", sample["docs"])
    assert cin == sample["docs"] + sample["broken_lines"]


KILL_SCRIPT = """
import sys, time
from contextlib import contextmanager
from pathlib import Path
import warehouse.ingest as ing
from warehouse.db import connect

orig = ing.transaction

@contextmanager
def stall_before_commit(con):
    with orig(con) as c:
        yield c
        # every INSERT of the file has run inside the transaction; COMMIT has not
        Path(sys.argv[3]).write_text("inside")
        time.sleep(120)

ing.transaction = stall_before_commit
con = connect(sys.argv[1])
ing.ingest_paths(con, [sys.argv[2]], ing.IngestConfig("c"))
"""


def test_sigkill_mid_ingest_leaves_database_as_before(db, tmp_path, sample):
    from warehouse.db import connect

    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, db, sample["corpus"], str(marker)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 60
    while not marker.exists():
        assert proc.poll() is None, "ingest subprocess died before the commit point"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = connect(db)
    assert one(con, "SELECT count(*) FROM documents")[0] == 0
    assert one(con, "SELECT count(*) FROM sources")[0] == 0
    assert one(con, "SELECT count(*) FROM quarantine")[0] == 0
    # The re-run finishes the job, exactly once.
    r = ingest_paths(con, [sample["corpus"]], IngestConfig("c"))[0]
    assert r.rows_new == sample["docs"]
    assert one(con, "SELECT count(*) FROM documents")[0] == sample["docs"]
    con.close()


def test_missing_read_only_database_is_clear(tmp_path):
    from warehouse.db import connect

    with pytest.raises(FileNotFoundError, match="no Taomi database"):
        connect(tmp_path / "absent.duckdb", read_only=True)


@pytest.mark.parametrize("flush_bytes", [1 << 16, None])
def test_texts_staged_in_committed_batches_publish_all_or_nothing(con, tmp_path, monkeypatch, flush_bytes):
    """Issue 16: past FLUSH_BYTES the texts of a file are staged in a (temp) table that commits
    batch by batch (an open transaction kept every append in memory: 4.3 GB at 1M documents);
    under it they are written once from memory (issue 23: the stage's second write of every text
    cost ~1.5 s of 6.6 s). Either way a file appears whole or not at all, and a staging table an
    older version left in the database when it was killed is dropped by the next ingest."""
    import warehouse.ingest as ing

    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i} " * 20}) + "\n"
                            for i in range(3000)))
    staged = {}

    def dies_while_publishing(c, cfg, base):
        staged["rows"] = one(c, f"""SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables()
                                    WHERE starts_with(table_name, '{ing.STAGE_PREFIX}')""")[0]
        staged["published"] = one(c, "SELECT count(*) FROM documents")[0]
        raise KeyboardInterrupt("killed during the final transaction")

    if flush_bytes:
        monkeypatch.setattr(ing, "FLUSH_BYTES", flush_bytes)
    monkeypatch.setattr(ing, "_resolve_ids", dies_while_publishing)
    with pytest.raises(KeyboardInterrupt):
        ing.ingest_file(con, path, IngestConfig("c"))
    monkeypatch.undo()
    # staged (committed) before the final transaction, or written in it only
    assert staged["rows"] == (3000 if flush_bytes else 0) and staged["published"] == 3000
    assert one(con, "SELECT count(*) FROM documents")[0] == 0  # ... which rolled back: nothing published
    # a stage table in the database file (before it became a temp table, a SIGKILL left it there)
    con.execute(f'CREATE TABLE "{ing.STAGE_PREFIX}deadbeef" (line_no BIGINT, eid VARCHAR, text VARCHAR, chash VARCHAR)')
    res = ingest_paths(con, [path], IngestConfig("c"))
    assert res[0].rows_new == 3000 and one(con, "SELECT count(DISTINCT ext_id) FROM documents")[0] == 3000
    assert one(con, "SELECT count(*) FROM duckdb_tables() WHERE starts_with(table_name, ?)",
               [ing.STAGE_PREFIX])[0] == 0

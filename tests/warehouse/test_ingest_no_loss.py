"""Ingest never loses a row silently: every reproduction of issue 12 (items 3, 4, 6, 7) and
the siblings of each (same id across files, field mappings, all-or-nothing checks, CSV quoting,
byte-order marks, line ends, truncated gzip for both line formats)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from warehouse.db import one
from warehouse.ingest import IngestConfig, InputError, ingest_file, ingest_paths


def count(con, table: str, corpus: str = "c") -> int:
    return one(con, f"SELECT count(*) FROM {table} WHERE corpus = ?", [corpus])[0]


def jsonl(path: Path, rows: list[dict], sep: bytes = b"\n") -> Path:
    path.write_bytes(sep.join(json.dumps(r).encode() for r in rows) + sep)
    return path


def accounted(con) -> int:
    """Rows that ended up somewhere a user can see: stored documents plus quarantined rows."""
    return count(con, "documents") + count(con, "quarantine")


def test_same_id_with_other_text_in_another_file_is_quarantined_naming_both(con, tmp_path):
    a = jsonl(tmp_path / "shardA.jsonl", [{"id": i, "text": f"alpha text {i}"} for i in range(1000)])
    b = jsonl(tmp_path / "shardB.jsonl", [{"id": i, "text": f"beta text {i}"} for i in range(1000)])
    ra, rb = ingest_paths(con, [a, b], IngestConfig("c"))
    assert (ra.rows_new, rb.rows_new, rb.rows_existing, rb.rows_quarantined) == (1000, 0, 0, 1000)
    _line, field, reason, raw = one(con, "SELECT line, field, reason, raw FROM quarantine WHERE line = 8")
    assert field == "id" and reason == f"id already stored from {a} line 8 with a different text"
    assert raw == "beta text 7"  # the quarantined row keeps its own text
    assert accounted(con) == 2000


def test_same_id_same_text_in_another_file_is_the_same_document(con, tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "Same  text", "annotator": "x", "label": "p"}])
    b = jsonl(tmp_path / "b.jsonl", [{"id": 1, "text": "same text", "annotator": "y", "label": "q"}])
    ingest_paths(con, [a, b], IngestConfig("c"))
    assert (count(con, "documents"), count(con, "annotations"), count(con, "quarantine")) == (1, 2, 0)


def test_same_id_with_the_text_recased_or_respaced_in_a_later_call_is_the_same_document(con, tmp_path):
    """The stored key is md5 of the bytes; whether a row with a stored id is that document still
    folds case, whitespace and NFC, so a second annotator's export is not a conflict."""
    a = jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "Same  text, café", "annotator": "x", "label": "p"},
                                     {"id": 2, "text": "other", "annotator": "x", "label": "p"}])
    ingest_paths(con, [a], IngestConfig("c"))
    b = jsonl(tmp_path / "b.jsonl", [{"id": 1, "text": "same text,\ncafe\u0301 ", "annotator": "y", "label": "q"},
                                     {"id": 2, "text": "another", "annotator": "y", "label": "q"}])
    r = ingest_paths(con, [b], IngestConfig("c"))[0]
    assert (r.rows_new, r.rows_existing, r.rows_quarantined, r.annotations_new) == (0, 1, 1, 1)
    assert one(con, "SELECT text FROM documents WHERE ext_id = '1'")[0] == "Same  text, café"  # the first kept
    assert one(con, "SELECT reason FROM quarantine")[0] == f"id already stored from {a} line 2 with a different text"
    # the id twice more in one file, each re-spaced or re-cased: both are annotations of the stored one
    c = jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "SAME TEXT, CAFÉ", "annotator": "z", "label": "p"},
                                     {"id": 1, "text": "same\ttext, café", "annotator": "w", "label": "p"}])
    r = ingest_paths(con, [c], IngestConfig("c"))[0]
    assert (r.rows_new, r.rows_existing, r.rows_quarantined, r.annotations_new) == (0, 1, 0, 2)


def test_wrong_text_field_is_refused_before_writing_and_the_retry_works(con, tmp_path):
    f = jsonl(tmp_path / "d.jsonl", [{"id": i, "body": f"text {i}"} for i in range(5)])
    with pytest.raises(InputError, match=r"d.jsonl: no field 'text' in the first 5 JSON objects "
                                          r"\(fields there: id, body\)"):
        ingest_paths(con, [f], IngestConfig("c"))
    assert count(con, "sources") == count(con, "quarantine") == 0
    r = ingest_paths(con, [f], IngestConfig("c", text_field="body"))[0]
    assert (r.status, r.rows_new) == ("ingested", 5)


def test_sources_are_keyed_on_file_and_field_mapping(con, tmp_path):
    f = jsonl(tmp_path / "d.jsonl", [{"id": i, "text": f"t {i}", "tag": "x"} for i in range(3)])
    first = ingest_file(con, f, IngestConfig("c", label_field=None))
    assert first.annotations_new == 0
    again = ingest_file(con, f, IngestConfig("c", label_field=None))
    assert again.status == "unchanged"
    relabel = ingest_file(con, f, IngestConfig("c", label_field="tag"))
    assert (relabel.status, relabel.rows_new, relabel.rows_existing, relabel.annotations_new) == ("ingested", 0, 3, 3)
    assert count(con, "documents") == 3


@pytest.mark.parametrize("bad", ["nocol.csv", "nocol.parquet", "missing.jsonl", "nofield.jsonl"])
def test_any_bad_file_writes_nothing_at_all(con, tmp_path, bad):
    import pandas as pd

    good = jsonl(tmp_path / "good.jsonl", [{"id": i, "text": f"t {i}"} for i in range(4)])
    path = tmp_path / bad
    if bad.endswith(".csv"):
        path.write_text("id,body\n1,x\n")
    elif bad.endswith(".parquet"):
        pd.DataFrame({"id": [1], "body": ["x"]}).to_parquet(path)
    elif bad == "nofield.jsonl":
        jsonl(path, [{"id": 1, "body": "x"}])
    with pytest.raises(InputError, match=bad.replace(".", r"\.")):
        ingest_paths(con, [good, path], IngestConfig("c"))
    assert count(con, "documents") == count(con, "sources") == count(con, "quarantine") == 0


def test_csv_unclosed_quote_keeps_the_rows_after_it(con, tmp_path):
    f = tmp_path / "q.csv"
    f.write_text('id,text\n1,first\n2,"never closed\n3,third\n4,fourth\n5,"fifth",ok\n6,sixth\n')
    r = ingest_file(con, f, IngestConfig("c"))
    assert sorted(x[0] for x in con.execute("SELECT ext_id FROM documents").fetchall()) == ["1", "3", "4", "6"]
    q = con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    assert q[0][0] == 3 and q[0][1].startswith("unclosed quote")
    assert q[1] == (6, "expected 2 columns, got 3")
    assert r.rows_quarantined == 2 and accounted(con) == 6


def test_csv_unclosed_quote_at_the_end_of_the_file(con, tmp_path):
    f = tmp_path / "q.csv"
    f.write_text('id,text\n1,first\n2,"open to the end\n3,third\n')
    ingest_file(con, f, IngestConfig("c"))
    assert sorted(x[0] for x in con.execute("SELECT ext_id FROM documents").fetchall()) == ["1", "3"]
    assert one(con, "SELECT line FROM quarantine WHERE reason LIKE 'unclosed quote%'") == (3,)


def test_csv_quoted_newlines_are_still_one_record(con, tmp_path):
    f = tmp_path / "m.csv"
    f.write_text('id,text\n1,"a\nb\r\nc"\n2,x\n')
    ingest_file(con, f, IngestConfig("c"))
    assert con.execute("SELECT ext_id, text, source_line FROM documents ORDER BY doc_id").fetchall() == [
        ("1", "a\nb\r\nc", 2), ("2", "x", 5)]


def test_csv_long_field_bom_and_bare_cr(con, tmp_path):
    long_text = "word " * 60_000  # 300,000 characters: over csv's default 131,072 limit
    f = tmp_path / "long.csv"
    f.write_bytes(b"\xef\xbb\xbfid,text\r" + f'x1,"{long_text}"\r'.encode() + b"x2,short\r")
    r = ingest_file(con, f, IngestConfig("c"))
    assert (r.rows_new, r.rows_quarantined) == (2, 0)
    assert one(con, "SELECT ext_id, length(text) FROM documents ORDER BY doc_id") == ("x1", len(long_text))


def test_jsonl_bare_cr_crlf_and_bom(con, tmp_path):
    rows = [{"id": i, "text": f"row {i}"} for i in range(3)]
    for name, sep in (("cr.jsonl", b"\r"), ("crlf.jsonl", b"\r\n")):
        jsonl(tmp_path / name, rows, sep)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b"\n".join(json.dumps({"id": f"b{i}", "text": "t"}).encode() for i in range(2)))
    for name in ("cr.jsonl", "crlf.jsonl", "bom.jsonl"):
        r = ingest_file(con, tmp_path / name, IngestConfig(name))
        assert (r.rows_read, r.rows_quarantined) == ((2, 0) if name == "bom.jsonl" else (3, 0)), name
    assert one(con, "SELECT ext_id, source_line FROM documents WHERE corpus = 'cr.jsonl' ORDER BY doc_id DESC") == ("2", 3)
    assert one(con, "SELECT min(ext_id) FROM documents WHERE corpus = 'bom.jsonl'") == ("b0",)


def _truncated_gz(path: Path, payload: bytes, keep: float) -> Path:
    data = gzip.compress(payload, mtime=0)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_truncated_gzip_keeps_the_good_prefix_and_quarantines_the_tail(con, tmp_path, fmt):
    import random

    rnd = random.Random(0)  # incompressible-ish text, so a cut at 60% lands mid-stream
    texts = [" ".join(f"{rnd.getrandbits(40):x}" for _ in range(30)) for _ in range(3000)]
    if fmt == "jsonl":
        payload = b"".join(json.dumps({"id": i, "text": t}).encode() + b"\n" for i, t in enumerate(texts))
    else:
        payload = ("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts))).encode()
    f = _truncated_gz(tmp_path / f"cut.{fmt}.gz", payload, 0.6)
    r = ingest_file(con, f, IngestConfig("c"))
    stored = con.execute("SELECT ext_id, text FROM documents ORDER BY doc_id").fetchall()
    assert 1000 < len(stored) < 3000
    assert all(text == texts[int(i)] for i, text in stored)  # nothing cut short slipped in
    assert [int(i) for i, _ in stored] == list(range(len(stored)))  # a prefix, no gaps
    (line, field, reason), = con.execute("SELECT line, field, reason FROM quarantine").fetchall()
    assert field == "(file)" and reason.startswith("truncated gzip")
    assert line == len(stored) + 1 + (fmt == "csv")
    assert r.rows_quarantined == 1


def test_multi_member_gzip_reads_every_member(con, tmp_path):
    f = tmp_path / "m.jsonl.gz"
    f.write_bytes(gzip.compress(b'{"id": 1, "text": "one"}\n') + gzip.compress(b'{"id": 2, "text": "two"}\n'))
    r = ingest_file(con, f, IngestConfig("c"))
    assert (r.rows_new, r.rows_quarantined) == (2, 0)

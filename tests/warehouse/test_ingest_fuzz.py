"""Property-based inputs for the readers (issue 12): whatever mix of good rows, broken lines,
line endings, byte-order marks and compression a file has, every row ends up either stored
(with its exact text) or quarantined with a reason. Rows lost: none."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.db import connect, one
from warehouse.ingest import IngestConfig, InputError, ingest_file

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)
GOOD_TEXT = TEXT.filter(lambda t: t.strip() != "")
BAD_LINE = st.sampled_from([b"{not json", b"[1, 2]", b'"a string"', b"42", b'{"id": "x", "text": 5}',
                            b'{"id": "y", "text": ""}', b'{"id": "z"}', b'{"text": null}', b"\xff\xfe bad utf8",
                            b'{"text": "a" "b"}', b"}{"])
# issue 28: JSON nested past the depth limit (whole line, text, metadata, id), lines over the
# line limit (LINE_LIMIT below; a good row's JSON is shorter), and numbers beyond 64 bits.
DEEP = st.integers(101, 20_000).flatmap(lambda n: st.sampled_from([
    b"[" * n + b"]" * n, b'{"text": ' + b"[" * n + b"]" * n + b"}",
    b'{"id": "q", "text": "deep meta", "m": ' + b'{"a":' * n + b"1" + b"}" * n + b"}",
    b'{"id": ' + b"[" * n + b"]" * n + b', "text": "deep id"}']))
LINE_LIMIT = 400
LONG = st.integers(LINE_LIMIT, 5000).map(lambda n: b'{"id": "long", "text": "' + b"L" * n + b'"}')
HUGE_NUMBER = st.sampled_from(["1e999999", "-1e999999", "123456789012345678901234567890", "18446744073709551615",
                               "-9223372036854775809", "1e-999999", "0.1e400"])
ROW = st.one_of(st.tuples(st.just("good"), GOOD_TEXT), st.tuples(st.just("bad"), BAD_LINE),
                st.tuples(st.just("blank"), st.sampled_from([b"", b"   ", b"\t"])),
                st.tuples(st.just("bad"), DEEP), st.tuples(st.just("long"), LONG),
                st.tuples(st.just("number"), st.tuples(GOOD_TEXT, HUGE_NUMBER)))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STATS = {"files": 0, "rows": 0, "lost": 0}


def _record() -> None:
    path = os.environ.get("TAOMI_FAULT_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"suite": "readers", **STATS}) + "\n")


def _ingest(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    db = tmp_path / f"{name}.duckdb"
    db.unlink(missing_ok=True)
    con = connect(db)
    try:
        try:
            r = ingest_file(con, p, IngestConfig("c", label_field=None, annotator_field=None,
                                                 max_line_bytes=LINE_LIMIT))
        except InputError:
            assert one(con, "SELECT count(*) FROM documents")[0] == one(con, "SELECT count(*) FROM quarantine")[0] == 0
            raise
        docs = dict(con.execute("SELECT ext_id, text FROM documents").fetchall())
        quarantined = one(con, "SELECT count(*) FROM quarantine")[0]
    finally:
        con.close()
    return r, docs, quarantined


@SETTINGS
@given(rows=st.lists(ROW, max_size=25), eol=st.sampled_from([b"\n", b"\r\n", b"\r"]), bom=st.booleans(),
       gz=st.booleans(), final_eol=st.booleans())
def _jsonl(tmp_path, rows, eol, bom, gz, final_eol):
    lines, good = [], {}
    for i, (kind, value) in enumerate(rows):
        if kind == "good":
            lines.append(json.dumps({"id": f"r{i}", "text": value}).encode())
            good[f"r{i}"] = value
        elif kind == "number":  # a good row whose other field is a number no 64-bit type holds
            lines.append(f'{{"id": "r{i}", "text": {json.dumps(value[0])}, "n": {value[1]}}}'.encode())
            good[f"r{i}"] = value[0]
        else:  # a bad line, or one over the line limit (quarantined unread)
            lines.append(value)
    data = (b"\xef\xbb\xbf" if bom else b"") + eol.join(lines) + (eol if final_eol and lines else b"")
    name = "f.jsonl.gz" if gz else "f.jsonl"
    n_bad = sum(kind in ("bad", "long") for kind, _ in rows)
    try:
        r, docs, quarantined = _ingest(tmp_path, name, gzip.compress(data) if gz else data)
    except InputError as exc:
        # Refused up front (a wrong --text-field): only when no object carries the field, and
        # then nothing at all is written.
        assert "no field 'text'" in str(exc) and not good
        STATS["files"] += 1
        return
    assert docs == good  # every good row stored, with its exact text
    assert quarantined == n_bad == r.rows_quarantined  # every bad row quarantined, each once
    STATS["files"] += 1
    STATS["rows"] += len(good) + n_bad
    STATS["lost"] += len(good) + n_bad - len(docs) - quarantined


def test_jsonl_rows_are_stored_or_quarantined_never_lost(tmp_path):
    _jsonl(tmp_path)
    _record()


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


@SETTINGS
@given(rows=st.lists(st.tuples(GOOD_TEXT, CELL), min_size=1, max_size=20), bom=st.booleans(),
       eol=st.sampled_from(["\n", "\r\n"]), gz=st.booleans())
def _csv_round_trip(tmp_path, rows, bom, eol, gz):
    """Valid CSV (any quoting, commas, quotes, newlines inside fields) round-trips exactly."""
    buf = io.StringIO()
    # csv.writer leaves a bare CR unquoted when the line end is LF: that is not valid CSV (RFC 4180
    # quotes CR), so such rows are written with every field quoted.
    bare_cr = any("\r" in c for r in rows for c in r)
    w = csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_ALL if bare_cr else csv.QUOTE_MINIMAL)
    w.writerow(["id", "text", "note"])
    good = {}
    for i, (text, note) in enumerate(rows):
        w.writerow([f"r{i}", text, note])
        good[f"r{i}"] = text
    data = (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode()
    _r, docs, quarantined = _ingest(tmp_path, "f.csv.gz" if gz else "f.csv", gzip.compress(data) if gz else data)
    assert docs == good and quarantined == 0
    STATS["files"] += 1
    STATS["rows"] += len(good)


def test_valid_csv_round_trips_exactly(tmp_path):
    _csv_round_trip(tmp_path)
    _record()


SAFE_CELL = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters=" .-"), min_size=1,
                    max_size=20).filter(lambda t: t.strip() != "")


@SETTINGS
@given(rows=st.lists(st.tuples(SAFE_CELL, st.sampled_from(["ok", "unclosed", "stray", "columns"])),
                     min_size=1, max_size=25))
def _csv_broken_lines(tmp_path, rows):
    """One record per line; some lines broken (an unclosed quote, text after a closing quote, a
    wrong column count): each broken line is quarantined, every other line is stored exactly."""
    lines, good, n_bad = ["id,text"], {}, 0
    for i, (text, kind) in enumerate(rows):
        if kind == "ok":
            lines.append(f'r{i},"{text}"')
            good[f"r{i}"] = text
        else:
            n_bad += 1
            lines.append({"unclosed": f'r{i},"{text}', "stray": f'r{i},"{text}"x',
                          "columns": f"r{i},{text},extra"}[kind])
    _r, docs, quarantined = _ingest(tmp_path, "b.csv", ("\n".join(lines) + "\n").encode())
    assert docs == good and quarantined == n_bad
    STATS["files"] += 1
    STATS["rows"] += len(rows)
    STATS["lost"] += len(rows) - len(docs) - quarantined


def test_broken_csv_lines_never_take_good_lines_along(tmp_path):
    _csv_broken_lines(tmp_path)
    _record()

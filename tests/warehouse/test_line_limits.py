"""No good row lost to a bad one (issue 28, item 3): a line over the line limit is quarantined
with its length and never parsed (nor held: it is read past), a row DuckDB cannot hold is
quarantined rather than failing the file, JSON nested too deeply for later readers is
quarantined with its depth, and numbers beyond 64 bits survive to the export as their own text."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from warehouse.db import connect
from warehouse.ingest import IngestConfig, ingest_file, ingest_paths
from warehouse.readers import json_depth

ROOT = Path(__file__).resolve().parents[2]


def quarantined(con) -> list[tuple]:
    return con.execute("SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()


def ids(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT ext_id FROM documents ORDER BY source_line").fetchall()]


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])  # the long line inside one block, or across many
@pytest.mark.parametrize("gz", [False, True])
def test_lines_over_the_limit_are_quarantined_with_their_length(con, tmp_path, chunk, gz):
    long_text = "y" * 5000
    lines = [json.dumps({"id": "a", "text": "first"}),
             json.dumps({"id": "long1", "text": long_text}),
             json.dumps({"id": "b", "text": "x" * 900}),  # under the limit: kept
             json.dumps({"id": "long2", "text": long_text + "z"}),
             json.dumps({"id": "c", "text": "last"}),
             json.dumps({"id": "long3", "text": long_text})]  # the file ends inside a long line
    data = ("\n".join(lines)).encode()
    path = tmp_path / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    r = ingest_file(con, path, IngestConfig("c", max_line_bytes=1000), chunk_bytes=chunk)
    assert ids(con) == ["a", "b", "c"] and (r.rows_read, r.rows_new, r.rows_quarantined) == (6, 3, 3)
    sizes = [len(line.encode()) for line in lines]
    assert quarantined(con) == [
        (n, "(line)", (f"line of {sizes[n - 1]:,} bytes is over the 1,000-byte line limit (not parsed; raise "
                      "--max-line-bytes to read it)")) for n in (2, 4, 6)]
    raw = con.execute("SELECT raw FROM quarantine WHERE line = 2").fetchall()[0][0]
    assert raw.startswith('{"id": "long1", "text": "yyy') and len(raw) == 300


def test_a_csv_record_over_the_limit_is_quarantined_too(con, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f'id,text\na,short\nb,"{"w " * 1000}"\nc,also short\n')
    r = ingest_file(con, path, IngestConfig("c", max_line_bytes=500))
    assert ids(con) == ["a", "c"] and r.rows_quarantined == 1
    assert quarantined(con)[0][:2] == (3, "(line)") and "2,001 bytes is over the 500-byte" in quarantined(con)[0][2]


def test_a_raised_limit_reads_the_file_again_and_adds_the_long_rows(con, tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "short"}) + "\n" + json.dumps({"id": "b", "text": "w" * 3000}) + "\n")
    assert ingest_paths(con, [path], IngestConfig("c", max_line_bytes=1000))[0].rows_new == 1
    assert ingest_paths(con, [path], IngestConfig("c", max_line_bytes=1000))[0].status == "unchanged"
    again = ingest_paths(con, [path], IngestConfig("c", max_line_bytes=10_000))[0]
    assert (again.status, again.rows_new, again.rows_existing) == ("ingested", 1, 1)
    assert sorted(ids(con)) == ["a", "b"]


def test_the_default_limit_follows_the_memory_limit_and_no_line_is_held_past_it(tmp_path):
    """A 200 MB line under the default 1 GB budget (DuckDB 512 MB: a 128 MB line limit) is
    quarantined without being held; the rows around it go in; the process stays small."""
    src = tmp_path / "huge.jsonl"
    with open(src, "w") as fh:
        fh.write(json.dumps({"id": "a", "text": "before"}) + "\n")
        fh.write('{"id": "big", "text": "')
        fh.writelines("x" * (1 << 20) for _ in range(200))
        fh.write('"}\n' + json.dumps({"id": "b", "text": "after"}) + "\n")
    db = tmp_path / "w.duckdb"
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]);"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "taomi", "--db", str(db), "ingest", "-c",
                          "c", str(src), "--tokenizer", "none", "--memory-limit", "1GB"], capture_output=True,
                         text=True, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, rss_kb = map(int, out.stdout.split()[-2:])
    assert code == 0, out.stdout + out.stderr
    con = connect(db, read_only=True)
    try:
        assert sorted(ids(con)) == ["a", "b"]
        assert "over the 134,217,728-byte line limit" in quarantined(con)[0][2]
    finally:
        con.close()
    assert rss_kb < 700 * 1024, rss_kb  # the 200 MB line was never held whole


def test_a_row_duckdb_cannot_hold_is_quarantined_and_the_file_goes_on(con, tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "short"}) + "\n" + json.dumps({"id": "b", "text": "w " * 3_000_000})
                    + "\n" + json.dumps({"id": "c", "text": "short too"}) + "\n")
    con.execute("SET memory_limit = '8MB'")
    r = ingest_file(con, path, IngestConfig("c"))
    assert ids(con) == ["a", "c"] and r.rows_quarantined == 1
    line, field, reason = quarantined(con)[0]
    assert (line, field) == (2, "(line)") and "needs more memory than DuckDB may use" in reason
    assert "raise --memory-limit" in reason


def deep(n: int, kind: str = "[") -> str:
    return "[" * n + "]" * n if kind == "[" else '{"a":' * n + "1" + "}" * n


def test_json_depth_skips_strings():
    assert json_depth('{"a": "[[[[{{{{", "b": [1, [2, {"c": []}]]}') == 5
    assert json_depth("3") == 0 and json_depth(deep(500)) == 500 and json_depth(deep(7, "{")) == 7
    assert json_depth('["\\"[[[", [[]]]') == 3


def test_deep_nesting_anywhere_is_quarantined_with_its_depth_and_the_export_works(con, tmp_path, taomi_cli):
    lines = [json.dumps({"id": "g1", "text": "good one", "ok": {"a": [1, 2]}}),
             '{"id": "m1", "text": "deep metadata", "x": ' + deep(10_000) + '}',
             '{"id": "m2", "text": "deep object", "m": ' + deep(150, "{") + '}',
             '{"id": "m3", "text": "just under", "m": ' + deep(100) + '}',
             '{"id": ' + deep(300) + ', "text": "deep id"}',
             '{"id": "l1", "text": "deep label", "label": ' + deep(200) + '}',
             '{"id": "t1", "text": ' + deep(10_000) + '}',
             deep(10_000),
             json.dumps({"id": "g2", "text": "good two"})]
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", path, "--tokenizer", "none").code == 0
    c = connect(db, read_only=True)
    try:
        assert sorted(ids(c)) == ["g1", "g2", "m3"]
        got = {line: (field, reason) for line, field, reason in quarantined(c)}
    finally:
        c.close()
    assert got[2] == ("(metadata)", "JSON nested 10,000 levels deep (the limit is 100)")
    assert got[3] == ("(metadata)", "JSON nested 150 levels deep (the limit is 100)")
    assert got[5] == ("id", "JSON nested 300 levels deep (the limit is 100)")
    assert got[6] == ("label", "JSON nested 200 levels deep (the limit is 100)")
    assert got[7][1] == "text is an array, expected a string" and got[8][1] == "not a JSON object (ARRAY)"
    assert len(got) == 6  # every line is stored or quarantined
    for fmt in ("jsonl", "parquet"):
        r = taomi_cli("--db", db, "export", "c", tmp_path / fmt, "--format", fmt, "--order", "random")
        assert r.code == 0 and "Traceback" not in r.output, r.output


def test_numbers_beyond_64_bits_are_stored_and_exported_as_their_own_text(tmp_path, taomi_cli):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "h1", "text": "huge float", "n": 1e999999, "k": 3}\n'
                    '{"id": "h2", "text": "huge int", "n": 123456789012345678901234567890123456789, "k": 4}\n'
                    '{"id": "h3", "text": "over int64", "n": 18446744073709551615, "k": 5}\n'
                    '{"id": "h4", "text": "plain", "n": 12, "k": 6}\n'
                    '{"id": "h5", "text": 1e400}\n')
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", path, "--tokenizer", "none").code == 0
    want = {"h1": "1e999999", "h2": "123456789012345678901234567890123456789", "h3": "18446744073709551615",
            "h4": "12"}
    for fmt in ("jsonl", "parquet"):
        r = taomi_cli("--db", db, "export", "c", tmp_path / fmt, "--format", fmt, "--order", "random")
        assert r.code == 0, r.output
        manifest = json.loads((tmp_path / fmt / "manifest.json").read_text())
        assert manifest["metadata_columns"] == {"k": "Int64", "n": "number_text"}
        rows = []
        for shard in manifest["shards"]:
            f = tmp_path / fmt / shard["file"]
            rows += pq.read_table(f).to_pylist() if fmt == "parquet" else [json.loads(x) for x in f.open()]
        assert {r["id"]: r["n"] for r in rows} == want
        assert {r["id"]: r["k"] for r in rows} == {"h1": 3, "h2": 4, "h3": 5, "h4": 6}

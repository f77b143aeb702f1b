"""Memory that bends, not breaks (issue 23, item 3): real documents are long-tailed. A chunk that
does not fit DuckDB's memory cap is retried in halves; a JSON line too long for DuckDB's parser
(it needs ~5x the line) is parsed by Python, classified exactly as DuckDB would; a 100 MB document
goes through ingest under the default memory limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]

LINES = ['{"id": 1, "text": "plain"}', '{"id": "x", "text": 5}', '{"text": ""}', '{"text": "   "}', '{"id": 2}',
         "[1, 2]", '"str"', "{broken", '{"id": 3.5, "text": "ok", "label": true, "annotator": null}',
         '{"id": {"a": 1}, "text": "nested id", "label": ["x"]}', '{"text": null}', '{"text": {"a": "b"}}',
         '{"text": "unicode \\u00e9 数据", "id": "é"}', "[" * 5000 + "]" * 5000,
         '{"text": "with metadata", "id": 9, "metadata": {"source": "web", "n": 3}, "url": "u", "source": "top"}',
         '{"text": "extra only", "lang": "de", "metadata": "not an object"}']


def test_python_classification_of_a_json_line_equals_duckdbs():
    from warehouse.readers import Fields, _jsonl_sql, json_line_row

    f = Fields("text", "id", "label", "annotator")
    con = duckdb.connect()
    con.register("chunk", pa.table({"line_no": list(range(1, len(LINES) + 1)), "raw": LINES}))
    duck = con.sql(_jsonl_sql(f)).fetchall()
    assert con.sql(_jsonl_sql(f, rich=False)).fetchall() == duck  # both metadata plans give the same rows
    py = [json_line_row(i, raw, f) for i, raw in enumerate(LINES, start=1)]
    assert [r[:8] for r in py] == [r[:8] for r in duck]
    assert [r[8] is None for r in py] == [r[8] is None for r in duck]  # raw kept for the same rows
    py = [r + (None,) * (10 - len(r)) for r in py]  # a bad row's tuple may stop before `meta`
    meta = [(json.loads(a[9]) if a[9] else None, json.loads(b[9]) if b[9] else None) for a, b in zip(py, duck)]
    assert all(a == b for a, b in meta), meta
    assert meta[-2][0] == {"source": "top", "n": 3, "url": "u"} and meta[-1][0] == {"lang": "de",
                                                                                   "metadata": "not an object"}


TRICKY = ['{"metadata": {"text": "inner", "k": "}{]["}, "text": "outer \\"q\\" \\\\ \\n", "id": 1}',
          '  {"text": "first", "text": "second wins"}  ', '{"te\\u0078t": "escaped key \\ud83d\\ude00 \\u6570"}',
          '{"text": "   ", "metadata": {"source": "s"}}', '{"text": "\\u0020\\t"}',
          '{"a": [1, {"b": "]"}, "x\\"y"], "text": "after nested", "n": -1.5e3, "t": true, "z": null}',
          '{"text": "trailing", "id": 7} junk', '{"text": "ok"', '{"text": "no close" , }', '{}']


def test_a_long_line_read_with_its_text_in_arrow_equals_the_python_classification():
    """The long-line path (issue 28: a 100 MB line parsed by json.loads held the line and its text
    as Python strings, +625 MB) finds the text's span without decoding and reads the text with
    pyarrow's JSON reader: the row equals json_line_row's on every line it takes, and it leaves
    every line that is not a plain object with a string text to json_line_row."""
    from warehouse.readers import Fields, _bad_table, json_line_row, long_json_line_table, top_level_span

    f = Fields("text", "id", "label", "annotator")
    taken = 0
    for i, raw in enumerate(LINES + TRICKY, start=1):
        got = long_json_line_table(i, raw.encode(), f)
        want = _bad_table([json_line_row(i, raw, f)])
        if got is None:
            obj, dups = None, []

            def hook(pairs, dups=dups):
                dups.append(len({k for k, _ in pairs}) < len(pairs))  # pyarrow refuses repeated keys
                return dict(pairs)
            try:
                obj = json.loads(raw, object_pairs_hook=hook)
            except (ValueError, RecursionError):
                pass
            assert any(dups) or not (isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip()), raw
            continue
        taken += 1
        assert got.to_pylist() == want.to_pylist(), raw
    assert taken >= 9
    assert top_level_span(b'{"a": "text", "text": "v"}', "text") == (22, 25)
    assert top_level_span(b'{"text": 1 2}', "text") is None


def rows(db: Path) -> list[tuple]:
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        return con.execute("SELECT ext_id, content_hash, n_chars FROM documents ORDER BY ext_id").fetchall()
    finally:
        con.close()


def test_a_chunk_that_does_not_fit_is_retried_in_halves(tmp_path):
    """A 64 MB chunk of 1 MB documents under a 150 MB DuckDB cap: halves, quarters... all kept,
    the same rows as an ingest with room to spare."""
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_file

    src = tmp_path / "long.jsonl"
    with open(src, "w") as fh:
        fh.writelines(json.dumps({"id": f"d{i}", "text": f"doc {i} " + "lorem ipsum dolor sit amet " * 40_000}) + "\n"
                      for i in range(40))
    for name, limit in (("tight", "150MB"), ("roomy", "4GB")):
        with session(tmp_path / f"{name}.duckdb") as con:
            con.execute(f"SET memory_limit = '{limit}'")
            r = ingest_file(con, src, IngestConfig("c"), chunk_bytes=64 << 20)
            assert r.rows_new == 40 and r.rows_quarantined == 0
    assert rows(tmp_path / "tight.duckdb") == rows(tmp_path / "roomy.duckdb")


def test_a_100_mb_document_goes_in_under_the_default_memory_limit(tmp_path, record_fault):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "Ωmega", "数据"]
    huge = " ".join(words[i % len(words)] for i in range(13_000_000))  # ~100 MB of UTF-8
    src = tmp_path / "big.jsonl"
    with open(src, "w") as fh:
        fh.write(json.dumps({"id": "small1", "text": "a small one"}) + "\n")
        fh.write(json.dumps({"id": "huge", "text": huge}, ensure_ascii=False) + "\n")
        fh.write(json.dumps({"id": "small2", "text": "another small one"}) + "\n")
    db = tmp_path / "w.duckdb"
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]);"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "taomi", "--db", str(db), "ingest", "-c", "c",
                          str(src)], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, rss_kb = map(int, out.stdout.split()[-2:])
    assert code == 0, out.stdout + out.stderr
    got = rows(db)
    assert [r[0] for r in got] == ["huge", "small1", "small2"] and got[0][2] == len(huge)
    # default budget: a quarter of RAM, at most 1 GB; plus ~5x the largest document while Python parses it
    assert rss_kb < (1024 + 600) * 1024, rss_kb
    record_fault("long_documents", largest_mb=round(len(huge.encode()) / 1e6), peak_rss_mb=rss_kb // 1024)

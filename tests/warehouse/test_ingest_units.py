"""Many small files (issue 28, item 4): small files are ingested in units that share one staging
table, one query per batch of chunks and one final transaction, so a folder of 1,500 shards costs
about what one file of the same rows costs. What a unit must still give, file by file: the same
documents as one file or one file at a time, each row's own file and line, per-file counts and
`sources` rows, ids resolved across the files of a unit as across calls, and all or nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import warehouse.ingest as ing
from warehouse.db import connect, one
from warehouse.ingest import IngestConfig, ingest_paths


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def shards(folder: Path, n_files: int, per: int, start: int = 0) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [jsonl(folder / f"part-{k:04d}.jsonl",
                  [{"id": f"d{start + k * per + i}", "text": f"file {k} row {i} words here"} for i in range(per)])
            for k in range(n_files)]


def table(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_a_folder_of_small_files_equals_the_files_one_at_a_time(tmp_path):
    files = shards(tmp_path / "in", 40, 7)
    # plus rows without ids (file:line ids), a bad line and a blank line in one of them
    with open(files[3], "a") as fh:
        fh.write('{"text": "no id here"}\n{not json\n\n{"text": "no id either"}\n')
    together, apart = connect(tmp_path / "t.duckdb"), connect(tmp_path / "a.duckdb")
    try:
        res = ingest_paths(together, [tmp_path / "in"], IngestConfig("c"))
        assert [r.path for r in res] == [str(f) for f in files]
        for f in files:
            ingest_paths(apart, [f], IngestConfig("c"))
        q = ("SELECT ext_id, text, content_hash, source_path, source_line, meta::VARCHAR FROM documents "
             "ORDER BY source_path, source_line")
        assert table(together, q) == table(apart, q) and len(table(together, q)) == 40 * 7 + 2
        q = "SELECT path, line, field, reason FROM quarantine ORDER BY path, line"
        assert table(together, q) == table(apart, q) == [(str(files[3]), 9, "(line)", "malformed JSON")]
        assert table(together, "SELECT ext_id FROM documents WHERE ext_id LIKE 'part-0003%' ORDER BY 1") == [
            ("part-0003.jsonl:11",), ("part-0003.jsonl:8",)]
        q = "SELECT path, rows_read, rows_new, rows_quarantined FROM sources ORDER BY path"
        assert table(together, q) == table(apart, q)
        assert (res[3].rows_read, res[3].rows_new, res[3].rows_quarantined) == (11, 9, 1)
        # the doc ids are dense and in file order, as one file at a time gives them
        assert table(together, "SELECT min(doc_id), max(doc_id), count(*) FROM documents") == [(1, 40 * 7 + 4, 282)]
    finally:
        together.close()
        apart.close()


def test_ids_across_the_files_of_one_unit_resolve_as_across_calls(con, tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": "first text", "label": "p", "annotator": "u1"},
                                     {"id": "y", "text": "why"}])
    b = jsonl(tmp_path / "b.jsonl", [{"id": "x", "text": "First  TEXT", "label": "q", "annotator": "u2"},
                                     {"id": "y", "text": "another text"}, {"id": "z", "text": "zed"},
                                     {"id": "z", "text": "zed two"}])
    ra, rb = ingest_paths(con, [a, b], IngestConfig("c"))
    assert (ra.rows_new, rb.rows_new, rb.rows_existing, rb.rows_quarantined) == (2, 1, 1, 2)
    assert (ra.annotations_new, rb.annotations_new) == (1, 1)
    got = table(con, "SELECT path, line, field, reason, raw FROM quarantine ORDER BY path, line")
    assert got == [(str(b), 2, "id", f"id already stored from {a} line 2 with a different text", "another text"),
                   (str(b), 4, "id", "id repeats line 3 with a different text", "zed two")]
    assert table(con, "SELECT source_path, source_line FROM annotations ORDER BY source_path") == [
        (str(a), 1), (str(b), 1)]


def test_the_same_content_twice_in_one_call_is_unchanged_the_second_time(con, tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"id": i, "text": f"t {i}"} for i in range(5)])
    b = tmp_path / "copy.jsonl"
    b.write_bytes(a.read_bytes())
    ra, rb = ingest_paths(con, [a, b], IngestConfig("c"))
    assert (ra.status, ra.rows_new, rb.status) == ("ingested", 5, "unchanged")
    assert one(con, "SELECT count(*) FROM sources")[0] == 1


def test_formats_mix_in_one_unit(con, tmp_path):
    j = jsonl(tmp_path / "a.jsonl", [{"id": "j1", "text": "json row", "source": "web"}])
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["parquet row", "another"], "lang": ["en", "de"]}),
                   tmp_path / "b.parquet")
    (tmp_path / "c.csv").write_text("id,text\nc1,csv row\n")
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"id": "g1", "text": "gzipped row"}) + "\n")
    res = ingest_paths(con, [j, tmp_path / "b.parquet", tmp_path / "c.csv", tmp_path / "d.jsonl.gz"],
                       IngestConfig("c"))
    assert [r.rows_new for r in res] == [1, 2, 1, 1]
    assert dict(table(con, "SELECT ext_id, meta::VARCHAR FROM documents")) == {
        "j1": '{"source":"web"}', "p1": '{"lang":"en"}', "p2": '{"lang":"de"}', "c1": None, "g1": None}
    assert table(con, "SELECT ext_id, source_line FROM documents WHERE ext_id = 'p2'") == [("p2", 2)]


def test_units_are_bounded_and_keep_the_order(tmp_path):
    files = shards(tmp_path / "in", 9, 2)
    members = [(f, "jsonl", False, str(i)) for i, f in enumerate(files)]
    size = files[0].stat().st_size
    got = ing.units(members, max_files=4, max_bytes=10 * size)
    assert [len(u) for u in got] == [3, 3, 3] and [m for u in got for m in u] == members  # spread evenly
    got = ing.units(members, max_files=100, max_bytes=int(2.5 * size))
    assert [len(u) for u in got] == [2, 2, 2, 2, 1]
    assert [len(u) for u in ing.units(members, max_files=100, max_bytes=1)] == [1] * 9  # big files alone
    assert [len(u) for u in ing.units(members[:4], max_files=100, max_bytes=int(3.5 * size))] == [2, 2]
    assert [len(u) for u in ing.units(members, max_files=100, max_bytes=100 * size)] == [9]
    empty = []
    for i in range(5):
        (tmp_path / f"e{i}.jsonl").write_text("")
        empty.append((tmp_path / f"e{i}.jsonl", "jsonl", False, f"e{i}"))
    assert [len(u) for u in ing.units(empty)] == [5]  # empty files share one unit too


def test_a_unit_is_all_or_nothing_and_the_units_before_it_stay(con, tmp_path, monkeypatch):
    files = shards(tmp_path / "in", 6, 3)
    monkeypatch.setattr(ing, "UNIT_FILES", 2)
    real = ing._finish_unit
    calls = {"n": 0}

    def dies_in_the_second_unit(c, cfg, base, results):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk went away (test)")
        return real(c, cfg, base, results)

    monkeypatch.setattr(ing, "_finish_unit", dies_in_the_second_unit)
    with pytest.raises(ing.PartialIngest, match=r"part-0002.jsonl \(and 3 more files\): disk went away") as info:
        ingest_paths(con, [tmp_path / "in"], IngestConfig("c"))
    assert [r.path for r in info.value.results] == [str(f) for f in files[:2]]
    assert table(con, "SELECT DISTINCT source_path FROM documents ORDER BY 1") == [(str(f),) for f in files[:2]]
    assert one(con, "SELECT count(*) FROM sources")[0] == 2
    monkeypatch.setattr(ing, "_finish_unit", real)
    res = ingest_paths(con, [tmp_path / "in"], IngestConfig("c"))  # the re-run finishes the job
    assert [r.status for r in res] == ["unchanged"] * 2 + ["ingested"] * 4
    assert one(con, "SELECT count(*) FROM documents")[0] == 18

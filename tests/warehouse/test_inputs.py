"""The corpus as it comes (issue 23, item 1): folders of shards, globs, Arrow IPC files as
`datasets.save_to_disk` writes them, zstd-compressed JSON lines, JSON arrays; every file checked
before the database is opened, and a glob that matches nothing is one line, exit 2, no database."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROWS = [{"id": f"d{i}", "text": f"document {i} about topic {i % 7} " + "word " * (i % 13)} for i in range(60)]


def docs(db) -> list[tuple[str, str]]:
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        return con.execute("SELECT ext_id, text FROM documents ORDER BY ext_id").fetchall()
    finally:
        con.close()


def want(rows=ROWS) -> list[tuple[str, str]]:
    return sorted((r["id"], r["text"]) for r in rows)


def hub_layout(root: Path) -> Path:
    """A Hub-style dataset: README.md, data/train-0000k-of-00003.parquet, a nested test split."""
    (root / "data" / "nested").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: mit\n---\n# a dataset card, not data\n")
    for k in range(3):
        part = ROWS[k * 20:(k + 1) * 20]
        where = root / "data" / ("nested" if k == 2 else "") / f"train-{k:05d}-of-00003.parquet"
        pq.write_table(pa.Table.from_pylist(part), where)
    return root


def test_a_hub_folder_is_ingested_by_its_folder_and_by_a_glob(tmp_path, taomi_cli):
    hub = hub_layout(tmp_path / "hub")
    r = taomi_cli("--db", tmp_path / "a.duckdb", "ingest", "-c", "c", hub, "--json")
    assert r.code == 0, r.output
    assert [Path(f["path"]).name for f in json.loads(r.out)["files"]] == [
        "train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
    assert docs(tmp_path / "a.duckdb") == want()
    r = taomi_cli("--db", tmp_path / "b.duckdb", "ingest", "-c", "c", f"{hub}/data/**/*.parquet")
    assert r.code == 0 and docs(tmp_path / "b.duckdb") == want(), r.output


def test_arrow_ipc_stream_and_file_formats(tmp_path, taomi_cli):
    table = pa.Table.from_pylist(ROWS)
    folder = tmp_path / "saved"  # the layout of datasets.save_to_disk: stream-format .arrow + json metadata
    folder.mkdir()
    with pa.ipc.new_stream(folder / "data-00000-of-00002.arrow", table.schema) as w:
        for b in table.slice(0, 30).to_batches(max_chunksize=7):
            w.write_batch(b)
    with pa.ipc.new_file(folder / "data-00001-of-00002.arrow", table.schema) as w:
        w.write_table(table.slice(30))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {"text": {"dtype": "string"}}}))
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00002.arrow"}]}))
    r = taomi_cli("--db", tmp_path / "w.duckdb", "ingest", "-c", "c", folder)
    assert r.code == 0, r.output
    assert docs(tmp_path / "w.duckdb") == want()


def test_zstd_json_lines_and_a_truncated_zstd_file_keeps_its_good_prefix(tmp_path, taomi_cli):
    data = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    buf = pa.BufferOutputStream()
    with pa.CompressedOutputStream(buf, "zstd") as out:
        out.write(data)
    whole = buf.getvalue().to_pybytes()
    (tmp_path / "c.jsonl.zst").write_bytes(whole)
    r = taomi_cli("--db", tmp_path / "w.duckdb", "ingest", "-c", "c", tmp_path / "c.jsonl.zst")
    assert r.code == 0 and docs(tmp_path / "w.duckdb") == want(), r.output
    big = "".join(json.dumps({"id": f"t{i}", "text": f"row {i} " * 40}) + "\n" for i in range(4000)).encode()
    buf = pa.BufferOutputStream()
    with pa.CompressedOutputStream(buf, "zstd") as out:
        out.write(big)
    cut = buf.getvalue().to_pybytes()
    (tmp_path / "cut.jsonl.zst").write_bytes(cut[: len(cut) * 2 // 3])
    r = taomi_cli("--db", tmp_path / "t.duckdb", "ingest", "-c", "c", tmp_path / "cut.jsonl.zst", "--json")
    assert r.code == 0, r.output
    f = json.loads(r.out)["files"][0]
    assert f["rows_new"] > 1000 and f["rows_quarantined"] == 1
    assert any("zstd" in reason for reason in f["reasons"])


def test_a_json_array_file(tmp_path, taomi_cli):
    rows = [*ROWS, {"id": "bad", "text": 5}]
    (tmp_path / "c.json").write_text(json.dumps(rows, indent=1))
    r = taomi_cli("--db", tmp_path / "w.duckdb", "ingest", "-c", "c", tmp_path / "c.json", "--json")
    assert r.code == 0, r.output
    assert docs(tmp_path / "w.duckdb") == want()
    q = json.loads(taomi_cli("--db", tmp_path / "w.duckdb", "quarantine", "c", "--json").out)
    assert [(x["line"], x["reason"]) for x in q] == [(61, "text is a number, expected a string")]
    (tmp_path / "broken.json").write_text(json.dumps(rows)[:-30])
    r = taomi_cli("--db", tmp_path / "x.duckdb", "ingest", "-c", "c", tmp_path / "broken.json")
    assert r.code == 2 and "not a readable JSON array" in r.err and not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize("arg", ["nomatch/*.parquet", "emptydir"])
def test_nothing_to_ingest_is_one_line_and_no_database(tmp_path, taomi_cli, arg):
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "emptydir" / "notes.md").write_text("not data\n")
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", tmp_path / arg)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.output
    assert ("no file matches" in r.err) or ("no .jsonl" in r.err)
    assert not db.exists()


def test_one_bad_file_in_a_folder_writes_nothing_and_names_it(tmp_path, taomi_cli):
    folder = tmp_path / "shards"
    folder.mkdir()
    for k in range(2):
        with gzip.open(folder / f"{k:05d}.jsonl.gz", "wt") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in ROWS[k * 30:(k + 1) * 30])
    (folder / "00002.jsonl.gz").write_bytes(b"not gzip at all")
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", folder)
    assert r.code == 2 and "00002.jsonl.gz: not a gzip file" in r.err, r.output
    assert not db.exists()
    (folder / "00002.jsonl.gz").unlink()
    assert taomi_cli("--db", db, "ingest", "-c", "c", folder).code == 0 and docs(db) == want()


def test_the_pipeline_config_takes_folders_and_globs(tmp_path):
    from flows.config import ConfigError, normalize

    hub = hub_layout(tmp_path / "hub")
    cfg = normalize({"corpus": [{"name": "c", "paths": ["hub/data", "hub/data/*.parquet"]}]}, tmp_path)
    assert cfg["corpus"][0]["paths"] == [str(tmp_path / "hub/data"), str(tmp_path / "hub/data/*.parquet")]
    with pytest.raises(ConfigError, match="no file matches"):
        normalize({"corpus": [{"name": "c", "paths": ["hub/nothing-*.parquet"]}]}, tmp_path)
    assert hub.exists()


def datatrove_shard(path: Path, rows: list[dict]) -> Path:
    """A shard as datatrove's JsonlWriter writes it: text, id, and a nested `metadata` object."""
    with gzip.open(path, "wt") as fh:
        for r in rows:
            fh.write(json.dumps({"text": r["text"], "id": r["id"], "metadata": {
                "source": r["source"], "url": f"https://example.org/{r['id']}", "dump": "CC-MAIN-2024-10",
                "language_score": r["score"], "token_count": r["tokens"]}}) + "\n")
    return path


def test_metadata_from_a_datatrove_shard_reaches_stats_and_export(tmp_path, taomi_cli):
    rows = [{**r, "source": ["web", "books", "code"][i % 3], "score": 0.5 + i / 200, "tokens": 10 + i}
            for i, r in enumerate(ROWS)]
    folder = tmp_path / "output"
    folder.mkdir()
    datatrove_shard(folder / "00000.jsonl.gz", rows[:30])
    datatrove_shard(folder / "00001.jsonl.gz", rows[30:])
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", folder).code == 0
    stats = json.loads(taomi_cli("--db", db, "stats", "c", "--json").out)
    assert stats["metadata_fields"] == ["dump", "language_score", "source", "token_count", "url"]
    by = json.loads(taomi_cli("--db", db, "stats", "c", "--by", "source", "--json").out)
    assert {r["value"]: (r["documents"], r["kept"], r["removed"]) for r in by} == {
        "web": (20, 20, 0), "books": (20, 20, 0), "code": (20, 20, 0)}
    assert sum(r["chars"] for r in by) == sum(len(r["text"]) for r in ROWS)
    r = taomi_cli("--db", db, "stats", "c", "--by", "nope")
    assert r.code == 2 and "fields: dump, language_score, source, token_count, url" in r.err
    r = taomi_cli("--db", db, "export", "c", tmp_path / "shards", "--order", "random", "--json")
    assert r.code == 0, r.output
    manifest = json.loads(r.out)
    assert manifest["metadata_columns"] == {"dump": "string", "language_score": "float64", "source": "string",
                                            "token_count": "Int64", "url": "string"}
    table = pa.concat_tables(pq.read_table(tmp_path / "shards" / s["file"]) for s in
                             json.loads((tmp_path / "shards" / "manifest.json").read_text())["shards"])
    got = {r["id"]: r for r in table.to_pylist()}
    assert table.schema.field("token_count").type == pa.int64() and len(got) == 60
    assert all(got[r["id"]]["source"] == r["source"] and got[r["id"]]["token_count"] == r["tokens"]
               and abs(got[r["id"]]["language_score"] - r["score"]) < 1e-12 for r in rows)


def test_parquet_columns_and_a_struct_metadata_column_and_csv_columns_are_kept(tmp_path, taomi_cli):
    table = pa.table({"id": [r["id"] for r in ROWS], "text": [r["text"] for r in ROWS],
                      "lang": ["en", "de"] * 30,
                      "metadata": [{"source": "hub", "n": i} for i in range(60)]})
    pq.write_table(table, tmp_path / "t.parquet")
    (tmp_path / "c.csv").write_text("id,text,origin\nx1,first csv row,forum\nx2,second csv row,\n")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", tmp_path / "t.parquet", tmp_path / "c.csv").code == 0
    from warehouse.db import connect

    con = connect(db, read_only=True)
    metas = dict(con.execute("SELECT ext_id, meta::VARCHAR FROM documents").fetchall())
    con.close()
    assert json.loads(metas["d3"]) == {"source": "hub", "n": 3, "lang": "de"}
    assert json.loads(metas["x1"]) == {"origin": "forum"} and metas["x2"] is None


def test_a_nested_metadata_field_is_a_slice_by_its_dotted_path(tmp_path, taomi_cli):
    """The Pile and RedPajama nest their source (`"meta": {"pile_set_name": "Pile-CC"}`): `stats
    --by meta.pile_set_name` slices by it, and so does the plot. A top-level field whose name holds
    a dot wins over a nested path of the same spelling; a dotted path no document has is the same
    one-line error as an unknown field."""
    sets = ["Pile-CC", "Github", "ArXiv"]
    lines = [{"text": r["text"], "meta": {"pile_set_name": sets[i % 3], "n": {"deep": i % 2}}}
             for i, r in enumerate(ROWS)]
    lines[0]["meta.pile_set_name"] = "top"  # one document with a literal dotted name
    (tmp_path / "pile.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "p", tmp_path / "pile.jsonl", "--quiet").code == 0
    by = json.loads(taomi_cli("--db", db, "stats", "p", "--by", "meta.n.deep", "--json").out)
    assert {r["value"]: r["documents"] for r in by} == {"0": 30, "1": 30}
    by = json.loads(taomi_cli("--db", db, "stats", "p", "--by", "meta.pile_set_name", "--json").out)
    assert {r["value"]: r["documents"] for r in by} == {"top": 1, "(none)": 59}  # the literal name wins
    (tmp_path / "pile.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines[1:]), encoding="utf-8")
    assert taomi_cli("--db", db, "ingest", "-c", "q", tmp_path / "pile.jsonl", "--quiet").code == 0
    r = taomi_cli("--db", db, "stats", "q", "--by", "meta.pile_set_name", "--plot", tmp_path / "l.png", "--json")
    assert r.code == 0, r.output
    by = json.loads(r.out)
    assert {x["value"]: x["documents"] for x in by} == {s: 20 - (s == "Pile-CC") for s in sets}
    assert sum(x["chars"] for x in by) == sum(len(x["text"]) for x in lines[1:])
    assert "by meta.pile_set_name: 3 curves" in r.err and (tmp_path / "l.png").stat().st_size > 1000
    for bad in ("meta.nope", "meta.", "nope.pile_set_name"):
        r = taomi_cli("--db", db, "stats", "q", "--by", bad)
        assert r.code == 2 and "no metadata field" in r.err and "FIELD.KEY" in r.err, r.output


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_text_stored_as_bytes_is_decoded_and_bad_bytes_are_quarantined(tmp_path, taomi_cli, fmt):
    """Parquet written without the UTF8 annotation (Impala, Hive, some Spark jobs), and Arrow
    with a binary column, hold text as bytes: UTF-8 bytes are the text (every row was quarantined
    as 'BLOB'), other bytes are quarantined saying so, and the good rows go in with the key their
    text has as a string."""
    from warehouse.ingest import content_hash

    texts = [b"plain bytes", "数据清洗 ภาษาไทย".encode(), b"\xff\xfe latin-1?", None, b" \n "]
    table = pa.table({"text": pa.array(texts, pa.binary()), "id": [f"b{i}" for i in range(5)]})
    path = tmp_path / f"b.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_stream(path, table.schema) as w:
            w.write_table(table)
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", path, "--tokenizer", "none", "--json")
    assert r.code == 0, r.output
    assert docs(db) == [("b0", "plain bytes"), ("b1", "数据清洗 ภาษาไทย")]
    from warehouse.db import connect

    con = connect(db, read_only=True)
    keys = dict(con.execute("SELECT ext_id, content_hash FROM documents").fetchall())
    bad = con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    con.close()
    assert keys == {"b0": content_hash("plain bytes"), "b1": content_hash("数据清洗 ภาษาไทย")}
    assert bad == [(3, "text is bytes that are not UTF-8, expected a string"), (4, "text is null, expected a string"),
                   (5, "empty text")]


def test_held_out_splits_brought_in_by_a_folder_are_named(tmp_path, taomi_cli):
    """A Hub dataset folder holds its test and validation splits beside train (`data/test-*`, a
    `save_to_disk` DatasetDict's `test/`): ingesting the folder puts them into the training
    corpus. They still go in (the user may want them), but the command says which, before any
    work, on stderr, and the report lists them; a glob of the train files, or a test file named on
    its own, gets no note."""
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    (root / "valid").mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS[:40]), root / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[40:50]), root / "data" / "test-00000-of-00001.parquet")
    (root / "valid" / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[50:]))
    (root / "data" / "latest-00000.jsonl").write_text(json.dumps({"text": "not a split"}) + "\n")
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", root, "--tokenizer", "none", "--json")
    assert r.code == 0, r.output
    report = json.loads(r.out)
    assert report["rows_new"] == 61
    assert {k: [Path(x).name for x in v] for k, v in report["held_out_splits"].items()} == {
        "test": ["test-00000-of-00001.parquet"], "validation": ["part.jsonl"]}
    assert "1 file(s) of the test split" in r.err and "1 file(s) of the validation split" in r.err
    for args in ([str(root / "data" / "train-*")], [str(root / "data" / "test-00000-of-00001.parquet")]):
        r = taomi_cli("--db", tmp_path / "x.duckdb", "ingest", "-c", "d", *args, "--tokenizer", "none", "--json")
        assert r.code == 0 and "held_out_splits" not in json.loads(r.out) and "split" not in r.err, r.output

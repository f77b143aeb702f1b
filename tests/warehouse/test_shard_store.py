"""Parquet shards of a corpus: exported once per content, read back by doc id in any order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from warehouse import dedup_store, shard_store
from warehouse.db import session
from warehouse.ingest import IngestConfig, ingest_paths


@pytest.fixture()
def db(tmp_path):
    rows = [{"id": f"d{i}", "text": ("长" * (i % 7)) + f" text {i} " + "x" * (i % 13)} for i in range(5000)]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    path = tmp_path / "w.duckdb"
    with session(path) as con:
        ingest_paths(con, [str(src)], IngestConfig("c"))
    return path


def test_texts_come_back_in_the_order_asked_across_shards_and_row_groups(db, tmp_path):
    work = shard_store.work_folder(tmp_path / "work")
    with session(db) as con:
        docs = dedup_store.doc_table(con, "c")
        # DuckDB rounds row groups up to 2,048 rows
        shards, written = shard_store.export_shards(con, "c", work, docs["doc_id"], docs["hash"], 4100, 1024)
        ids = docs["doc_id"]
        want = dedup_store.texts(con, "c", ids)
        chars = dedup_store.doc_chars(con, "c", ids)
    assert written == 2 and [s.n_docs for s in shards] == [4100, 900]
    assert [len(s.group_first_ids) for s in shards] == [3, 1]
    reader = shard_store.ShardTexts(shards)
    order = np.random.default_rng(1).permutation(len(ids))
    assert reader.texts(ids[order]).to_pylist() == [want[i] for i in order]
    assert np.array_equal(reader.chars(ids[order]), chars[order])
    assert reader.texts(ids[[5, 5, 4099, 4100]]).to_pylist() == [want[5], want[5], want[4099], want[4100]]
    with pytest.raises(KeyError):
        reader.texts(np.array([ids.max() + 1]))


def test_export_reuses_unchanged_shards_and_the_manifest_drops_missing_files(db, tmp_path):
    work = shard_store.work_folder(tmp_path / "work")
    with session(db) as con:
        docs = dedup_store.doc_table(con, "c")
        first, n1 = shard_store.export_shards(con, "c", work, docs["doc_id"], docs["hash"], 2000, 2048)
        again, n2 = shard_store.export_shards(con, "c", work, docs["doc_id"], docs["hash"], 2000, 2048)
        assert (n1, n2) == (3, 0) and first == again
        shard_store.record_signed(con, "c", "k", [(s.fingerprint, str(tmp_path / f"{s.shard_no}.sig"), s.n_docs)
                                                  for s in first])
        (tmp_path / "0.sig").write_bytes(b"x")
        assert set(shard_store.signed_shards(con, "c", "k")) == {first[0].fingerprint}  # files 1, 2 missing
        # fewer shards (a smaller shard size): the old files are removed, the manifest follows
        fewer, n3 = shard_store.export_shards(con, "c", work, docs["doc_id"], docs["hash"], 4000, 2048)
        assert n3 == 2 and len(shard_store.stored_shards(con, "c")) == 2
    assert sorted(p.name for p in (work / "texts").rglob("*.parquet")) == sorted(
        p.split("/")[-1] for p in (s.path for s in fewer))


def test_work_folder_refuses_a_users_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("a,b\n")
    with pytest.raises(FileExistsError, match="not a Taomi work folder"):
        shard_store.work_folder(mine)
    assert [p.name for p in mine.iterdir()] == ["data.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (shard_store.work_folder(empty) / shard_store.WORK_MARKER).is_file()
    run = shard_store.run_folder(empty, "r1")
    (run / "f.parquet").write_bytes(b"")
    shard_store.remove_run_folder(run)
    assert not run.exists()

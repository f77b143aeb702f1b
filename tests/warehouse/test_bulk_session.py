"""`bulk_session`: what `taomi ingest` writes through. The file is attached with 4,096-row groups
so that an insert of long documents is written as it goes rather than logged and checkpointed at
COMMIT; it keeps every guarantee of `session`, and never costs this process its lock on the file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from warehouse.db import BULK_ROW_GROUP_SIZE, WarehouseBusy, WarehouseError, bulk_session, connect, session
from warehouse.ingest import IngestConfig, ingest_paths


def corpus(path, n: int) -> None:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i}\nwith a second line " * 3}) + "\n"
                            for i in range(n)))


def row_groups(db) -> int:
    with session(db, read_only=True) as con:
        return con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('documents')").fetchall()[0][0]


def test_an_ingest_through_it_writes_small_row_groups_and_keeps_every_row(tmp_path):
    src = tmp_path / "c.jsonl"
    corpus(src, BULK_ROW_GROUP_SIZE + 1000)
    for kind, opener in (("bulk", bulk_session), ("plain", session)):
        db = tmp_path / f"{kind}.duckdb"
        with opener(db) as con:
            ingest_paths(con, [src], IngestConfig("c"))
        with session(db, read_only=True) as con:
            assert con.execute("SELECT count(*), count(DISTINCT ext_id) FROM documents").fetchall() == [(5096, 5096)]
        # the plain session writes one 122,880-row group; bulk mode is not silently lost
        assert row_groups(db) == (2 if kind == "bulk" else 1)


def test_shards_go_to_the_file_not_the_log(tmp_path, monkeypatch):
    """Every unit of a folder of shards writes its text as row groups, not into the write-ahead log
    (which the next commit would then compress all over again): the units are spread evenly, so
    none is left short of a row group (three shards and one logged the last one whole)."""
    import warehouse.ingest as ing

    folder = tmp_path / "shards"
    folder.mkdir()
    rows = BULK_ROW_GROUP_SIZE * 3 // 4
    for k in range(4):
        (folder / f"train-{k:05d}-of-00004.jsonl").write_text("".join(
            json.dumps({"id": f"{k}-{i}", "text": f"shard {k} document {i} " + "words " * 40}) + "\n"
            for i in range(rows)))
    size = (folder / "train-00000-of-00004.jsonl").stat().st_size
    monkeypatch.setattr(ing, "UNIT_BYTES", int(3.5 * size))  # a unit holds at most three shards
    db = tmp_path / "t.duckdb"
    with bulk_session(db) as con:
        ingest_paths(con, [folder], IngestConfig("c"))
        assert con.execute("SELECT count(*), count(DISTINCT source_path) FROM documents").fetchall() == [(4 * rows, 4)]
        wal = db.with_name(db.name + ".wal")
        logged = wal.stat().st_size if wal.exists() else 0
        assert logged < size / 4, f"{logged:,} bytes logged of {4 * size:,}"
    with session(db, read_only=True) as con:
        assert con.execute("SELECT source_path, count(*) FROM documents GROUP BY 1 ORDER BY 1").fetchall() == [
            (str(p), rows) for p in sorted(folder.iterdir())]


def test_documents_are_inserted_in_order(tmp_path):
    """From memory or from the stage, the documents go in through DuckDB's batch insert, which keeps
    the rows' order: a parallel insert without it leaves partial row groups that the next
    checkpoint merges again (0.75 s on a 70 MB Parquet folder)."""
    import pyarrow as pa

    import warehouse.ingest as ing

    db = tmp_path / "t.duckdb"
    with bulk_session(db) as con:
        con.register("parsed_rows", pa.table({"line_no": [1], "eid": ["a"], "text": ["x"], "chash": ["h"],
                                              "meta": pa.array([None], pa.string()), "fno": pa.array([0], pa.int32()),
                                              "src_line": [1], "bad_reason": pa.array([None], pa.string())}))
        con.execute('CREATE TEMP TABLE "stage" AS SELECT * EXCLUDE (bad_reason) FROM parsed_rows')
        for rows in ("(SELECT * FROM parsed_rows WHERE bad_reason IS NULL)", '"stage"'):
            plan = "".join(r[1] for r in con.execute("EXPLAIN " + ing.documents_insert_sql(rows), [0, "c", ["p"]])
                           .fetchall())
            assert "Batch Insert" in plan, plan


def test_it_checks_creates_and_migrates_like_a_session(tmp_path):
    foreign = tmp_path / "theirs.duckdb"
    duckdb.connect(str(foreign)).execute("CREATE TABLE mine (x INT)").close()
    before = foreign.read_bytes()
    with pytest.raises(WarehouseError, match="Taomi did not create"), bulk_session(foreign):
        pass
    assert foreign.read_bytes() == before
    db = tmp_path / "new" / "t.duckdb"
    with bulk_session(db) as con:
        assert con.execute("SELECT count(*) FROM documents").fetchall() == [(0,)]
        # spills (the temp stage of a large unit) go beside the database, as for any session
        assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == str(db) + ".tmp"


def test_while_it_is_open_this_process_waits_and_keeps_its_lock(tmp_path, another_process_opens):
    db = tmp_path / "t.duckdb"
    connect(db).close()
    errors = []
    with bulk_session(db) as con:
        con.execute("INSERT INTO documents (doc_id, corpus, ext_id, text, content_hash, n_chars, source_path, "
                    "source_line) VALUES (1, 'c', 'a', 'x', 'h', 1, 'p', 1)")

        def other():
            try:
                connect(db, wait_s=0.3).close()
            except WarehouseBusy as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert errors and "held by this process's ingest" in errors[0]
        # also an open that looked before the bulk session registered: DuckDB's open itself is
        # checked under the lock the attach takes
        import warehouse.db as wdb

        with pytest.raises(WarehouseBusy, match="held by this process's ingest"):
            wdb._open(db, False, 0.3)
        # A refused second open in this process would have dropped its POSIX lock on the file, and
        # another process could then have opened it read-write beside the bulk session.
        assert not another_process_opens(db)
    with session(db, read_only=True) as con:  # released on exit, for this process and others
        assert con.execute("SELECT ext_id FROM documents").fetchall() == [("a",)]
    assert another_process_opens(db)


def test_it_shares_a_database_this_process_already_has_open(tmp_path, another_process_opens):
    db = tmp_path / "t.duckdb"
    held = connect(db)
    try:
        src = tmp_path / "c.jsonl"
        corpus(src, 10)
        with bulk_session(db) as con:
            ingest_paths(con, [src], IngestConfig("c"))
        assert held.execute("SELECT count(*) FROM documents").fetchall() == [(10,)]
        assert not another_process_opens(db)  # the lock held all along
    finally:
        held.close()


def test_it_waits_for_another_process_then_names_it(tmp_path):
    db = tmp_path / "t.duckdb"
    connect(db).close()
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match=f"PID {holder.pid}"), bulk_session(db, wait_s=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db), "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with bulk_session(db, wait_s=30) as con:  # free after a second: it waited, then opened
            assert con.execute("SELECT count(*) FROM documents").fetchall() == [(0,)]
        assert time.monotonic() - t0 < 30
    finally:
        holder.wait()


def test_a_kill_while_row_groups_are_written_leaves_nothing_and_the_rerun_equals_a_clean_run(tmp_path):
    """SIGKILL of `taomi ingest` at seeded points of a unit big enough for row groups to be written
    before COMMIT (blocks no checkpoint refers to yet): the database is as before, and the re-run
    stores exactly what a clean run stores."""
    import os
    import random
    import signal
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}", "text": f"document {i} " + "long real-ish text " * (20 + i % 200)} for i in range(20_000)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(root)}

    def cmd(db):
        return [sys.executable, "-m", "taomi", "--db", str(db), "ingest", "-c", "c", str(src), "--tokenizer", "none",
                "--quiet"]

    def run(db):
        t = time.perf_counter()
        subprocess.run(cmd(db), check=True, cwd=root, env=env, capture_output=True, timeout=300)
        return time.perf_counter() - t

    def stored(db):
        with session(db, read_only=True) as con:
            return con.execute("SELECT doc_id, ext_id, content_hash, n_chars FROM documents ORDER BY ALL").fetchall()

    clean_s = run(tmp_path / "clean.duckdb")
    want = stored(tmp_path / "clean.duckdb")
    assert len(want) == 20_000
    rnd = random.Random(7)
    landed = 0
    for k in range(3):
        db = tmp_path / f"k{k}.duckdb"
        proc = subprocess.Popen(cmd(db), cwd=root, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.4, 0.95) * clean_s)
        landed += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if db.exists():
            with session(db, read_only=True) as con:  # all of the unit, or nothing of it
                assert con.execute("SELECT count(*) FROM documents").fetchall()[0][0] in (0, 20_000)
        run(db)
        assert stored(db) == want
    assert landed, "no kill landed while the ingest was running"


def test_an_ingest_allocates_arrow_memory_through_malloc(tmp_path):
    """pyarrow's default allocator (mimalloc) made the same Parquet read take 0.6-2.1 s from one
    run to the next; from an ingest on, Arrow allocates through the C library's malloc."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one", "two"]}), src)
    with bulk_session(tmp_path / "t.duckdb") as con:
        ingest_paths(con, [src], IngestConfig("c"))
        assert con.execute("SELECT count(*) FROM documents").fetchall() == [(2,)]
    assert pa.default_memory_pool().backend_name == "system"

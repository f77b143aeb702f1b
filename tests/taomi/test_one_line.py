"""One line everywhere (issue 29, item 5): a full disk under the database or an output folder, and
configuration errors that used to surface inside Prefect, end in one line naming what to do, an
exit code, no traceback; and the database stays consistent (a re-run after freeing space equals a
clean run). The full disk is real: a small tmpfs, mounted by the test (root on Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def one_line(r, code: int, text: str) -> None:
    assert r.code == code, (r.code, r.output[-3000:])
    assert "Traceback" not in r.output, r.output[-3000:]
    lines = [x for x in r.err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], r.err


@pytest.fixture
def small_fs(tmp_path):
    """A 6 MB tmpfs at tmp_path/fs (unmounted after the test); `resize(mb)` grows it in place."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the full-disk path is covered below by an "
                    "injected ENOSPC")

    def resize(mb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={mb}m", str(mnt)], check=True)

    yield mnt, resize
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def corpus(path: Path, n: int, words: int = 120, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(vocab) for _ in range(words))}) + "\n"
                      for i in range(n))
    return path


def tables(db: Path) -> dict:
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("documents", "sources", "quarantine", "dedup_signatures", "dedup_decisions")}
    finally:
        con.close()


def test_a_full_disk_is_one_line_and_the_rerun_finishes_the_job(tmp_path, small_fs, taomi_cli, record_fault):
    mnt, resize = small_fs
    big = corpus(tmp_path / "big.jsonl", 12_000)  # ~10 MB of text: does not fit in 6 MB
    db = mnt / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", big)
    one_line(r, 74, "the disk is full")
    assert "Free space" in r.err
    resize(64)
    before = tables(db) if db.exists() else None
    # nothing half-ingested: no document, or all of them with their source (written compressed as
    # they come, 12,000 documents fit; then counting their tokens is what found the disk full)
    assert before is None or (before["documents"], before["sources"]) in ((0, 0), (12_000, 1))
    if before and before["documents"]:
        assert "12,000 new documents are stored in 'c'; counting their tokens failed" in r.err
    assert taomi_cli("--db", db, "ingest", "-c", "c", big).code == 0  # the re-run finishes the job
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM doc_tokens").fetchall() == [(12_000,)]
    finally:
        con.close()
    # dedup on a disk that fills while signatures are written
    filler = mnt / "filler"
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    filler.write_bytes(b"\0" * max(free - (1 << 20), 0))
    r = taomi_cli("--db", db, "dedup", "c")
    one_line(r, 74, "the disk is full")
    filler.unlink()
    assert taomi_cli("--db", db, "dedup", "c").code == 0
    clean = tmp_path / "clean.duckdb"
    assert taomi_cli("--db", clean, "ingest", "-c", "c", big).code == 0
    assert taomi_cli("--db", clean, "dedup", "c").code == 0
    assert tables(db) == tables(clean)
    # an export onto a full disk: one line, no partial shards left behind
    filler.write_bytes(b"\0" * max(os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize - (256 << 10), 0))
    r = taomi_cli("--db", clean, "export", "c", mnt / "shards", "--format", "jsonl", "--order", "random")
    one_line(r, 74, "the disk is full")
    assert not any(p.name.startswith(".taomi-partial") for p in (mnt / "shards").iterdir())
    record_fault("full_disk", cases=3, tracebacks=0)


def test_an_injected_enospc_is_one_line_too(tmp_path, taomi_cli, monkeypatch):
    """The same path where no tmpfs can be mounted: the export's write fails with ENOSPC."""
    import errno

    import pyarrow.parquet as pq

    src = corpus(tmp_path / "c.jsonl", 50)
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", src).code == 0

    def full(writer, table, *a, **k):  # shards are written batch by batch through a ParquetWriter
        raise OSError(errno.ENOSPC, "No space left on device", "shard.parquet")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    one_line(taomi_cli("--db", db, "export", "c", tmp_path / "out", "--order", "random"), 74, "the disk is full")


def write_config(tmp: Path, db: str, outdir: str, src: Path) -> Path:
    cfg = tmp / f"p-{uuid.uuid4().hex[:6]}.toml"
    cfg.write_text(f'db = "{db}"\n[[corpus]]\nname = "c"\npaths = ["{src}"]\n[export]\noutdir = "{outdir}"\n')
    return cfg


@pytest.mark.parametrize("case", ["db is a folder", "outdir is a file", "db is a text file"])
def test_config_paths_that_cannot_work_fail_before_prefect_starts(tmp_path, taomi_cli, case):
    src = corpus(tmp_path / "c.jsonl", 20)
    (tmp_path / "afolder").mkdir()
    (tmp_path / "afile").write_text("mine\n")
    db, out = {"db is a folder": ("afolder", "shards"), "outdir is a file": ("w.duckdb", "afile"),
               "db is a text file": ("afile", "shards")}[case]
    r = taomi_cli("run", "curate", "--config", write_config(tmp_path, db, out, src))
    one_line(r, 2, {"db is a folder": "is a folder", "outdir is a file": "exists and is not a folder",
                    "db is a text file": "not a DuckDB database"}[case])
    assert not (tmp_path / "w.duckdb").exists() and (tmp_path / "afile").read_text() == "mine\n"


def test_a_known_error_inside_a_flow_is_one_line_without_prefects_traceback(tmp_path):
    """A real `taomi run` (Prefect's ephemeral API): the ingest task meets a DuckDB file that is
    not Taomi's. Prefect logs the task's failure with a traceback; the user sees one line."""
    import duckdb

    src = corpus(tmp_path / "c.jsonl", 20)
    con = duckdb.connect(str(tmp_path / "sales.duckdb"))
    con.execute("CREATE TABLE sales (a INTEGER)")
    con.close()
    before = (tmp_path / "sales.duckdb").read_bytes()
    cfg = write_config(tmp_path, "sales.duckdb", "shards", src)
    r = subprocess.run([sys.executable, "-m", "taomi", "run", "curate", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]
    errors = [x for x in r.stderr.splitlines() if "error" in x.lower()]
    assert len(errors) == 1 and errors[0].startswith("error:") and "did not create" in errors[0], r.stderr
    assert (tmp_path / "sales.duckdb").read_bytes() == before


def test_an_eval_onto_a_full_disk_is_one_line_and_the_rerun_equals_a_clean_run(tmp_path, small_fs, taomi_cli, sample,
                                                                                 record_fault):
    """`eval --train-corpus` writes contamination hits, the tracing index and the report: a disk
    that fills under the database or the report folder ends in one line (exit 74), and the re-run
    after freeing space gives what a clean run gives."""
    mnt, resize = small_fs
    resize(64)
    db = mnt / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"], "--tokenizer", "none").code == 0
    args = ["eval", sample["eval_set"], sample["predictions_current"], "--train-corpus", "c", "--quiet"]
    filler = mnt / "filler"
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    filler.write_bytes(b"\0" * max(free - (64 << 10), 0))
    r = taomi_cli("--db", db, *args, "--out", mnt / "rep")
    one_line(r, 74, "the disk is full")
    filler.unlink()
    again = taomi_cli("--db", db, *args, "--out", mnt / "rep2", "--json")
    assert again.code in (0, 3), again.output
    clean_db = tmp_path / "clean.duckdb"
    assert taomi_cli("--db", clean_db, "ingest", "-c", "c", sample["corpus"], "--tokenizer", "none").code == 0
    clean = taomi_cli("--db", clean_db, *args, "--out", tmp_path / "rep", "--json")
    assert clean.code == again.code
    keep = ("overall", "contamination")
    a, b = json.loads(again.out), json.loads(clean.out)
    for report in (a, b):
        report["contamination"].pop("scan_seconds")  # a timing, not a result
    assert {k: a.get(k) for k in keep} == {k: b.get(k) for k in keep}
    assert a["contamination"]["contaminated"] > 0
    record_fault("full_disk_eval", cases=1, tracebacks=0)

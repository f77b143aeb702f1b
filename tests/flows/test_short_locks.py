"""Busy, not broken (issue 12, item 8): long label checks and curriculum scoring compute with the
database closed, so another process can open it meanwhile; a partial ingest says so (exit 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SLOW = """
import sys, time
from pathlib import Path
stage, db, marker = sys.argv[1:4]
import flows.labels_task as lt
import flows.curriculum_task as ct
import flows.eval_task as et

def slow(real):
    def inner(*a, **k):
        Path(marker).write_text("computing")
        time.sleep(3)
        return real(*a, **k)
    return inner

def slow_scan(real):  # a long scan: it waits after the first batch of the training corpus
    def inner(items, batches, *a, **k):
        def slowed():
            for i, b in enumerate(batches() if callable(batches) else batches):
                yield b
                if i == 0:
                    Path(marker).write_text("scanning")
                    time.sleep(3)
        return real(items, slowed if callable(batches) else slowed(), *a, **k)
    return inner

if stage == "labels":
    lt.label_report = slow(lt.label_report)
    lt.check_labels(db, "c", n_boot=10)
elif stage.startswith("eval"):
    import flows.decontam_task as dt
    import flows.trace_task as tt

    def slow_first(real):  # the work on the first batch of the corpus waits, with the file closed
        calls = []
        def inner(*a, **k):
            calls.append(1)
            if len(calls) == 1:
                Path(marker).write_text("computing")
                time.sleep(3)
            return real(*a, **k)
        return inner

    if stage == "eval-contamination":
        dt.scan_documents = slow_first(dt.scan_documents)
    else:
        tt.document_frequencies = slow_first(tt.document_frequencies)
    et.store.training_batches.__defaults__ = (50, 16 << 20, None)  # several batches in this small corpus
    r = et.evaluate(db, sys.argv[4], sys.argv[5], train_corpus="c", n_boot=50)
    assert r["contamination"]["checked"] > 0 and r["failures"]
else:
    from curation.curriculum import CurriculumConfig
    ct.combine = slow(ct.combine)
    ct.build_curriculum(db, "c", CurriculumConfig())
"""


@pytest.mark.parametrize("stage", ["labels", "curriculum", "eval-contamination", "eval-tracing"])
def test_long_computation_does_not_hold_the_database(tmp_path, sample, ingest_files, stage, record_fault):
    """Also `eval --train-corpus` (issue 29, item 4): its contamination scan and failure tracing
    read the corpus in short sessions and compute with the file closed."""
    from warehouse.db import connect

    db = str(tmp_path / "t.duckdb")
    ingest_files(db, [sample["corpus"], sample["labels"]])
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", SLOW, stage, db, str(marker), sample["eval_set"],
                             sample["predictions_current"]], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        con = connect(db, wait_s=0.5)  # read-write, from another process, while it computes
        con.execute("SELECT count(*) FROM documents").fetchall()
        con.close()
    finally:
        assert proc.wait(60) == 0
    if stage.startswith("eval"):
        record_fault("eval_lock", stage=stage, blocked=0)


def test_partial_ingest_reports_each_files_fate_and_exits_4(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import warehouse.ingest as ing
    from taomi.cli import app

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": 1, "text": "first file"}\n')
    b.write_text('{"id": 2, "text": "second file"}\n')
    real = ing._ingest_unit

    def disk_fails_on_b(con, members, *args, **kw):
        if any(Path(m[0]).name == "b.jsonl" for m in members):
            raise OSError(5, "Input/output error", str(members[0][0]))
        return real(con, members, *args, **kw)

    monkeypatch.setattr(ing, "UNIT_FILES", 1)  # one file per unit, as two large files are
    monkeypatch.setattr(ing, "_ingest_unit", disk_fails_on_b)
    r = CliRunner().invoke(app, ["--db", str(tmp_path / "t.duckdb"), "ingest", "-c", "c", str(a), str(b)])
    assert r.exit_code == 4
    assert "a.jsonl" in r.stdout and "partial ingest" in r.stderr and "b.jsonl" in r.stderr
    assert "the 1 file(s) before them were ingested" in r.stderr

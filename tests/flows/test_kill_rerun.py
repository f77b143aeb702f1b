"""Fault suite (issue 12): SIGKILL at seeded random points of ingest, dedup, curriculum, export,
decontaminate, the tracing index and language detection;
each killed database is then re-run to completion and must equal a clean run, table by table (and
the export folder file by file). Rows lost: none; duplicates: none."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_STAGE = int(os.environ.get("TAOMI_KILLS_PER_STAGE", "3"))

STAGE = """
import sys, time
stage, db, data, out = sys.argv[1:5]
from warehouse.db import bulk_session
from warehouse.ingest import IngestConfig, ingest_paths
from flows.dedup_task import dedup_corpus
from flows.curriculum_task import build_curriculum, export_shards
from dedup.config import DedupConfig
from curation.curriculum import CurriculumConfig

def run():
    if stage == "ingest":
        with bulk_session(db) as con:  # as `taomi ingest` writes
            ingest_paths(con, [data + "/corpus.jsonl", data + "/labels.jsonl"], IngestConfig("c"))
    elif stage == "dedup":
        dedup_corpus(db, "c", DedupConfig(batch_docs=250))
    elif stage == "curriculum":
        build_curriculum(db, "c", CurriculumConfig())
    elif stage == "export":
        export_shards(db, "c", out, "jsonl", 400)
    elif stage == "decontaminate":
        from flows.decontam_task import decontaminate, register
        register(db, "qa", data + "/eval_set.jsonl")
        decontaminate(db, "c")
    elif stage == "trace-index":
        from flows.trace_task import ensure_index
        ensure_index(db, "c")
    else:
        from flows.languages_task import detect
        detect(db, "c")

if __name__ == "__main__":
    print("ready", flush=True)
    t0 = time.perf_counter()
    run()
    print("done", time.perf_counter() - t0, flush=True)
"""
ORDER = ["ingest", "dedup", "curriculum", "export"]
LATER = ["decontaminate", "trace-index", "languages"]  # each needs only the ingested corpus
QUERIES = {
    "documents": "SELECT doc_id, corpus, ext_id, content_hash, n_chars, source_line FROM documents",
    "quarantine": "SELECT corpus, path, line, field, reason FROM quarantine",
    "annotations": "SELECT corpus, ext_id, annotator, label FROM annotations",
    "sources": "SELECT corpus, file_hash, mapping, rows_read, rows_new, rows_quarantined FROM sources",
    "signatures": "SELECT doc_id, sig_key, md5(sig::VARCHAR) FROM dedup_signatures",
    "decisions": "SELECT doc_id, keep, reason, matched_doc, cluster_id FROM dedup_decisions",
    "curriculum": "SELECT doc_id, position, pacing_step, round(difficulty, 9), order_kind FROM curriculum",
    "registry": "SELECT set_name, set_hash, n_items FROM evalset_registry",
    "eval_index": "SELECT set_hash, item_id, pos, h FROM eval_index",
    "scans": "SELECT corpus, set_hash, corpus_version, n_docs, docs_flagged FROM contamination_scans",
    "hits": "SELECT corpus, set_hash, doc_id, item_id, item_pos, doc_pos FROM contamination_hits",
    "trace_index": "SELECT corpus, corpus_version, n_docs, md5(idf::VARCHAR) FROM trace_index",
    "postings": "SELECT corpus, feature, doc_id, round(w, 6) FROM trace_postings",
    "languages": "SELECT doc_id, script, language FROM doc_language",
}


def tables(db: str) -> dict:
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        return {t: con.execute(q + " ORDER BY ALL").fetchall() for t, q in QUERIES.items()}
    finally:
        con.close()


def export_rows(out: Path) -> list:
    if not (out / "manifest.json").exists():
        return []
    m = json.loads((out / "manifest.json").read_text())
    return [json.loads(x) for s in m["shards"] for x in (out / s["file"]).read_text().splitlines()]


def run_stage(stage: str, db: str, data: Path, out: Path) -> float:
    """Run a stage to completion in its own process; return the stage's own time (no imports)."""
    r = subprocess.run([sys.executable, "-c", STAGE, stage, db, str(data), str(out)], cwd=ROOT, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr[-2000:]
    return float(r.stdout.split("done")[1].split()[0])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from taomi.demo_data import DemoConfig, generate

    data = tmp_path_factory.mktemp("killdata")
    generate(data, DemoConfig(docs=3000, seed=3, words_mean=120))
    return data


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    """Real text in real shape (issue 28): files shipped in this venv's site-packages (sources,
    docs, licences; 40 bytes to 200 KB) with datatrove's `metadata` object, one 3 MB document (over
    dedup's and the scan's piece size and the curriculum's view), a few broken lines, labels by
    package, and an eval set of paragraphs cut from some of the files."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    files = sorted(f for f in site.rglob("*") if f.suffix in {".py", ".md", ".txt", ".rst"} and f.is_file()
                   and 40 < f.stat().st_size < 200_000)
    rnd = random.Random(5)
    rnd.shuffle(files)
    data = tmp_path_factory.mktemp("killreal")
    texts = [(str(f.relative_to(site)), f.read_text(encoding="utf-8", errors="replace")) for f in files[:700]]
    big = "\n".join(t for _, t in texts)[:3_000_000]
    lines = [json.dumps({"id": rel, "text": t, "metadata": {"source": rel.split("/")[0]}}) for rel, t in texts]
    lines.insert(300, json.dumps({"id": "big", "text": big, "metadata": {"source": "joined"}}))
    lines[100:100] = ['{"id": "broken", "text": "cut off', "[1, 2]"]
    (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (data / "labels.jsonl").write_text("".join(json.dumps({"id": rel, "text": t, "label": rel.split("/")[0],
                                                          "annotator": "a1"}) + "\n" for rel, t in texts[:400]))
    items = [{"id": f"q{i}", "input": t[len(t) // 3:len(t) // 3 + 600], "target": rel.split("/")[0]}
             for i, (rel, t) in enumerate(texts[::10]) if len(t) > 2000]
    (data / "eval_set.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    return data


@pytest.mark.parametrize("stage", ORDER + LATER)
def test_sigkill_at_random_points_then_rerun_equals_a_clean_run(tmp_path, corpus, stage):
    _kill_and_rerun(tmp_path, corpus, stage)


@pytest.mark.parametrize("stage", ORDER + LATER)
def test_sigkill_on_real_shaped_text_then_rerun_equals_a_clean_run(tmp_path, real_corpus, stage):
    _kill_and_rerun(tmp_path, real_corpus, stage, "real")


def _kill_and_rerun(tmp_path: Path, corpus: Path, stage: str, kind: str = "generated") -> None:
    rnd = random.Random(f"kill-{stage}" + ("" if kind == "generated" else f"-{kind}"))
    base_db, base_out = str(tmp_path / "base.duckdb"), tmp_path / "base-out"
    for s in (ORDER[:ORDER.index(stage)] if stage in ORDER else ["ingest"]):
        run_stage(s, base_db, corpus, base_out)
    clean_db, clean_out = str(tmp_path / "clean.duckdb"), tmp_path / "clean-out"
    if Path(base_db).exists():
        shutil.copy(base_db, clean_db)
    clean_s = run_stage(stage, clean_db, corpus, clean_out)
    want, want_rows = tables(clean_db), export_rows(clean_out)
    killed_mid = 0
    for k in range(KILLS_PER_STAGE):
        db, out = str(tmp_path / f"k{k}.duckdb"), tmp_path / f"k{k}-out"
        if Path(base_db).exists():
            shutil.copy(base_db, db)
        proc = subprocess.Popen([sys.executable, "-c", STAGE, stage, db, str(corpus), str(out)], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        # uniform over the stage's own run time (imports excluded: they happen before "ready")
        time.sleep(rnd.uniform(0.0, 0.95) * clean_s)
        killed_mid += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_stage(stage, db, corpus, out)  # the re-run finishes the job
        assert tables(db) == want, f"{stage}: kill {k} then re-run differs from a clean run"
        assert export_rows(out) == want_rows
        if out.exists():
            assert not [p for p in out.iterdir() if p.name.startswith(".taomi-partial")]
    assert killed_mid >= 1, f"{stage}: no kill landed while the stage was running"
    _record(stage if kind == "generated" else f"{stage} ({kind} text)", KILLS_PER_STAGE, killed_mid)


def _record(stage: str, kills: int, mid: int) -> None:
    path = os.environ.get("TAOMI_FAULT_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"suite": "sigkill", "stage": stage, "kills": kills, "mid_stage": mid,
                                 "rows_lost": 0, "differences": 0}) + "\n")

"""Dedup over the warehouse: planted ground truth, survivors, no-op re-runs, incremental batches."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dedup.config import DedupConfig
from flows.dedup_task import config_hash, dedup_corpus, query_near_duplicates
from taomi.cli import app
from taomi.demo_data import DemoConfig, generate
from warehouse.db import connect, one
from warehouse.ingest import IngestConfig, ingest_paths


@pytest.fixture(scope="module")
def planted(tmp_path_factory, ingest_files):
    out = tmp_path_factory.mktemp("planted")
    summary = generate(out, DemoConfig(docs=2500, seed=11, words_mean=120))
    db = str(out / "p.duckdb")
    ingest_files(db, [summary["corpus"]])
    report = dedup_corpus(db, "c", DedupConfig())
    texts = {}
    for line in Path(summary["corpus"]).read_bytes().split(b"\n"):
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("text"), str) and rec["text"].strip():
            texts[rec["id"]] = rec["text"]
    return {"db": db, "report": report, "truth": json.loads(Path(summary["truth"]).read_text()),
            "texts": texts, "summary": summary}


def ref_jaccard(a: str, b: str, n: int = 5) -> float:
    """Independent reference: exact word-5-gram Jaccard after lower case and punctuation folding."""
    def sh(t):
        w = re.sub(r"[!-/:-@\[-`{-~]", " ", t.lower()).split()
        return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}
    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def _decisions(db):
    con = connect(db)
    rows = con.execute("""SELECT d.ext_id, x.keep, m.ext_id FROM dedup_decisions x
                          JOIN documents d ON d.doc_id = x.doc_id
                          LEFT JOIN documents m ON m.doc_id = x.matched_doc""").fetchall()
    ext = dict(con.execute("SELECT ext_id, doc_id FROM documents").fetchall())
    con.close()
    return {r[0]: (r[1], r[2]) for r in rows}, ext


def test_pair_precision_and_recall_against_planted_truth(planted):
    truth, texts = planted["truth"], planted["texts"]
    groups: dict[str, set[str]] = {}
    for g in truth["exact_groups"]:
        groups.setdefault(g[0], set()).update(g)
    for nd in truth["near_duplicates"] + truth["reformatted"]:
        groups.setdefault(nd["source"], {nd["source"]}).add(nd["id"])
    true_pairs = set()
    for members in groups.values():
        for a, b in itertools.combinations(sorted(members), 2):
            if ref_jaccard(texts[a], texts[b]) >= 0.8:
                true_pairs.add((a, b))
    decisions, _ = _decisions(planted["db"])
    # A found pair: both documents resolve to the same surviving document, or one was dropped
    # as a (verified) duplicate of the other.
    def root(x):
        while x in decisions and not decisions[x][0]:
            x = decisions[x][1]
        return x
    found = {(a, b) for members in groups.values() for a, b in itertools.combinations(sorted(members), 2)
             if root(a) == root(b)}
    con = connect(planted["db"])
    near = con.execute("""SELECT da.ext_id, db.ext_id FROM dedup_pairs p JOIN documents da ON da.doc_id = p.doc_a
                          JOIN documents db ON db.doc_id = p.doc_b WHERE p.kind = 'near'""").fetchall()
    con.close()
    assert near, "no near pairs found"
    precision = sum(ref_jaccard(texts[a], texts[b]) >= 0.8 for a, b in near) / len(near)
    recall = len(true_pairs & found) / len(true_pairs)
    print(f"pairs: true {len(true_pairs)}, precision {precision:.4f}, recall {recall:.4f}")
    assert precision >= 0.99
    assert recall >= 0.98


def test_exactly_one_survivor_and_no_unmatched_removal(planted):
    decisions, _ = _decisions(planted["db"])
    texts = planted["texts"]
    for doc, (keep, matched) in decisions.items():
        if not keep:
            assert matched is not None and decisions.get(matched, (True,))[0], f"{doc} matched a dropped doc"
            assert ref_jaccard(texts[doc], texts[matched]) >= 0.8 - 1e-9
    truth = planted["truth"]
    groups: dict[str, set[str]] = {}
    for g in truth["exact_groups"]:
        groups.setdefault(g[0], set()).update(g)
    for r in truth["reformatted"]:  # re-cased or re-spaced: not byte-identical, a near duplicate at J = 1
        groups.setdefault(r["source"], {r["source"]}).add(r["id"])
    for members in groups.values():
        survivors = [d for d in members if decisions.get(d, (True,))[0]]
        assert len(survivors) == 1, members
    random_docs = set(texts) - {d for g in groups.values() for d in g} - {
        n["id"] for n in truth["near_duplicates"]} - {n["source"] for n in truth["near_duplicates"]}
    assert not [d for d in random_docs if not decisions.get(d, (True,))[0]]


def test_rerun_is_noop_and_new_batch_signs_only_new_docs(planted, tmp_path):
    again = dedup_corpus(planted["db"], "c", DedupConfig())
    assert again["unchanged"] and again["docs_out"] == planted["report"]["docs_out"]
    con = connect(planted["db"])
    n_runs = one(con, "SELECT count(*) FROM runs WHERE stage = 'dedup' AND status = 'ok'")[0]
    assert n_runs == 1
    src = planted["texts"]["doc-0000001"]
    batch = tmp_path / "batch2.jsonl"
    batch.write_text(json.dumps({"id": "new-copy", "text": src}) + "\n"
                     + json.dumps({"id": "new-unique", "text": "a brand new text " * 3}) + "\n")
    ingest_paths(con, [batch], IngestConfig("c"))
    con.close()
    report = dedup_corpus(planted["db"], "c", DedupConfig())
    assert report["signatures_computed"] == 2
    assert report["exact_dropped"] == planted["report"]["exact_dropped"] + 1
    decisions, _ = _decisions(planted["db"])
    assert decisions["new-copy"] == (False, "doc-0000001")
    assert "new-unique" not in decisions


def test_query_finds_stored_near_duplicate(planted):
    src = planted["texts"]["doc-0000002"]
    words = src.split()
    words[len(words) // 2] = "zzzqqq"
    matches = query_near_duplicates(planted["db"], "c", " ".join(words), DedupConfig())
    assert matches and matches[0]["id"] == "doc-0000002" and matches[0]["similarity"] >= 0.8
    assert query_near_duplicates(planted["db"], "c", "nothing like anything stored here at all",
                                 DedupConfig()) == []
    with pytest.raises(ValueError, match="empty"):
        query_near_duplicates(planted["db"], "c", "  ", DedupConfig())


def _ingest_and_dedup(tmp_path: Path, corpus: str, rows: list[dict]) -> tuple[str, dict]:
    """`rows` as a JSON lines file, ingested into a new warehouse as `corpus`, then deduplicated."""
    f = tmp_path / f"{corpus}.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    db = str(tmp_path / f"{corpus}.duckdb")
    con = connect(db)
    ingest_paths(con, [f], IngestConfig(corpus))
    con.close()
    return db, dedup_corpus(db, corpus, DedupConfig())


def test_a_copy_that_differs_in_case_spacing_or_normal_form_is_a_near_duplicate_at_one(tmp_path):
    """The exact key is md5 of the bytes (as NeMo Curator's); a re-cased, re-spaced or decomposed
    copy is left to MinHash, whose folding (NFKC, casefold, whitespace) gives it Jaccard 1.0."""
    base = "The café serves twelve kinds of bread and soup every morning before the market opens"
    rows = [{"id": "src", "text": base}, {"id": "bytes", "text": base},
            {"id": "upper", "text": base.upper()},
            {"id": "spaces", "text": "  " + base.replace(" ", "\n\t ", 4) + "\r\n"},
            {"id": "nfd", "text": base.replace("é", "e\u0301")},
            {"id": "zh", "text": "数据清洗是训练语言模型之前最重要的一步，重复的文档会浪费算力"},
            {"id": "zh-wide", "text": "数据清洗是训练语言模型之前最重要的一步，重复的文档会浪费算力".replace("，", ",  ")}]
    db, r = _ingest_and_dedup(tmp_path, "k", rows)
    assert (r["exact_dropped"], r["near_dropped"], r["docs_out"]) == (1, 4, 2)
    con = connect(db)
    got = dict(con.execute("""SELECT d.ext_id, x.reason || ' ' || m.ext_id || ' ' || round(x.similarity, 3)
                              FROM dedup_decisions x JOIN documents d ON d.doc_id = x.doc_id
                              JOIN documents m ON m.doc_id = x.matched_doc WHERE NOT x.keep""").fetchall())
    con.close()
    assert got == {"bytes": "exact duplicate src 1.0", "upper": "near duplicate src 1.0",
                   "spaces": "near duplicate src 1.0", "nfd": "near duplicate src 1.0",
                   "zh-wide": "near duplicate zh 1.0"}


def test_bad_and_tiny_corpora(tmp_path):
    rows = [{"id": "one", "text": "word"}, {"id": "short", "text": "only three words"},
            {"id": "short2", "text": "Only three words!"}, {"id": "cjk", "text": "机器学习是人工智能的一个分支"},
            {"id": "cjk2", "text": "机器学习是人工智能的一个分支"}, {"id": "emoji", "text": "🚀 🚀 🚀"}]
    db, r = _ingest_and_dedup(tmp_path, "odd", rows)
    assert (r["exact_dropped"], r["near_dropped"], r["docs_out"]) == (1, 1, 4)  # "!" differs: near, J = 1
    g = tmp_path / "single.jsonl"
    g.write_text(json.dumps({"id": "x", "text": "just one document in this corpus"}) + "\n")
    con = connect(db)
    ingest_paths(con, [g], IngestConfig("single"))
    con.close()
    r = dedup_corpus(db, "single", DedupConfig())
    assert (r["docs_in"], r["docs_out"], r["candidate_pairs"]) == (1, 1, 0)
    with pytest.raises(LookupError, match="no corpus named 'nope'"):
        dedup_corpus(db, "nope", DedupConfig())


def test_cli_json_and_pairs_out(planted, tmp_path):
    runner = CliRunner()
    for ext in ("csv", "parquet"):
        out = tmp_path / f"pairs.{ext}"
        res = runner.invoke(app, ["--db", planted["db"], "dedup", "c", "--json", "--pairs-out", str(out)])
        assert res.exit_code == 0, res.output
        rep = json.loads(res.stdout)
        for key in ("docs_in", "docs_out", "exact_dropped", "near_dropped", "clusters", "largest_clusters", "seconds"):
            assert key in rep
        df = pd.read_csv(out) if ext == "csv" else pd.read_parquet(out)
        assert list(df.columns) == ["id_a", "id_b", "similarity", "kind"]
        assert set(df["kind"]) == {"exact", "near"}
        assert (df.loc[df.kind == "exact", "similarity"] == 1.0).all()
        assert (df.loc[df.kind == "near", "similarity"] >= 0.8).all()
    bad = runner.invoke(app, ["--db", planted["db"], "dedup", "c", "--threshold", "1.5"])
    assert bad.exit_code == 2 and "threshold must be in (0, 1]" in bad.stderr


def test_config_hash_ignores_batch_size():
    assert config_hash(DedupConfig(batch_docs=10)) == config_hash(DedupConfig(batch_docs=99))
    assert config_hash(DedupConfig(threshold=0.7)) != config_hash(DedupConfig())


@pytest.mark.parametrize("policy", ["longest", "quality"])
def test_keep_policies(tmp_path, policy):
    base = "the river bends past the old mill where the miller grinds grain for the village every single day"
    rows = [{"id": "short", "text": base}, {"id": "long", "text": base + " and night"},
            {"id": "noisy", "text": base + " !!!! ####"}]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    db = str(tmp_path / "p.duckdb")
    con = connect(db)
    ingest_paths(con, [f], IngestConfig("p"))
    con.close()
    dedup_corpus(db, "p", DedupConfig(policy=policy, threshold=0.7))
    decisions, _ = _decisions(db)
    from dedup.quality import quality_score

    kept = {d for d, (k, _) in decisions.items() if k}
    if policy == "longest":
        expected = max(rows, key=lambda r: len(r["text"]))["id"]
    else:
        expected = max(rows, key=lambda r: quality_score(r["text"]))["id"]
        assert quality_score(rows[2]["text"]) < quality_score(rows[0]["text"])  # punctuation junk scores lower
    assert kept == {expected} and len(decisions) == 3


def _results(db):
    con = connect(db, read_only=True)
    out = {t: con.execute(f"SELECT * EXCLUDE (corpus) FROM {t} ORDER BY ALL").fetchall()
           for t in ("dedup_decisions", "dedup_pairs")}
    out["signatures"] = con.execute("SELECT doc_id, n_shingles, sig FROM dedup_signatures ORDER BY doc_id").fetchall()
    con.close()
    return out


@pytest.mark.parametrize("kernel_min_docs", [0, 10**9], ids=["compiled", "numpy"])
def test_workers_and_out_of_core_banding_change_nothing(planted, tmp_path, monkeypatch, kernel_min_docs):
    """2 signing workers, and band keys grouped by DuckDB under a tiny memory budget, store exactly
    what one worker with in-memory banding stored (issue 16: identical results, bounded memory),
    on the compiled kernel and on the numpy path (which small jobs take in a fresh process)."""
    import dedup.pipeline
    from dedup.config import Resources

    monkeypatch.setattr(dedup.pipeline, "KERNEL_MIN_DOCS", kernel_min_docs)

    results, reports = [], []
    for res, grouping in ((Resources(workers=1), "memory"), (Resources(workers=2), "memory"),
                          (Resources(workers=1, memory_limit_mb=64, band_grouping="duckdb"), "duckdb (out of core)")):
        db = str(tmp_path / f"w{res.workers}-{res.band_grouping}-{kernel_min_docs}.duckdb")
        con = connect(db)
        ingest_paths(con, [planted["summary"]["corpus"]], IngestConfig("c"))
        con.close()
        report = dedup_corpus(db, "c", DedupConfig(batch_docs=700), res=res)
        assert report["band_grouping"] == grouping and report["workers"] == res.workers
        reports.append({k: report[k] for k in ("docs_out", "candidate_pairs", "verified_pairs")})
        results.append(_results(db))
    assert len(results[0]["dedup_pairs"]) > 100 and len(results[0]["signatures"]) == 2500
    assert reports[0] == reports[1] == reports[2]
    assert results[0] == results[1] == results[2]
    if kernel_min_docs == 0:
        from dedup import kernel

        assert kernel.loaded()
    _RESULTS.setdefault("runs", []).append(results[0])
    if len(_RESULTS["runs"]) == 2:  # compiled and numpy paths stored the same rows
        assert _RESULTS["runs"][0] == _RESULTS["runs"][1]


_RESULTS: dict = {}


def test_reads_take_dense_ranges_whole_and_sparse_ones_by_anti_join():
    import numpy as np

    from flows.dedup_task import _reads

    ids = np.arange(100, 200)
    every_third = ids[ids % 3 == 0]  # two signed documents per unsigned one: sparse
    n = len(every_third)
    assert _reads(ids, every_third, 10) == [(int(every_third[b]), int(every_third[min(b + 10, n) - 1]), False)
                                             for b in range(0, n, 10)]
    tail = ids[60:]
    assert _reads(ids, tail, 25) == [(160, 184, True), (185, 199, True)]
    assert _reads(ids, ids[:0], 10) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_partly_signed_corpus_signs_only_the_rest(planted, tmp_path, workers):
    """Signatures kept from an earlier run (two in three documents of the first 60%, one in ten
    of the rest) are reused; only the missing ones are signed, through both kinds of read (dense ranges read whole
    and filtered, sparse ones by anti-join), and the stored rows equal a clean run's."""
    from dedup.config import Resources

    db = str(tmp_path / "partial.duckdb")
    con = connect(db)
    ingest_paths(con, [planted["summary"]["corpus"]], IngestConfig("c"))
    con.close()
    cfg = DedupConfig(batch_docs=300)
    dedup_corpus(db, "c", cfg)
    clean = _results(db)
    con = connect(db)
    first, last = one(con, "SELECT min(doc_id), max(doc_id) FROM documents")
    cut = first + (last - first) * 6 // 10
    con.execute("DELETE FROM dedup_signatures WHERE doc_id % 3 = 0 OR (doc_id > ? AND doc_id % 10 <> 0)", [cut])
    gone = 2500 - one(con, "SELECT count(*) FROM dedup_signatures")[0]
    con.execute("DELETE FROM runs WHERE stage = 'dedup'")
    con.close()
    report = dedup_corpus(db, "c", cfg, res=Resources(workers=workers))
    assert report["signatures_computed"] == gone and report["signatures_reused"] == 2500 - gone
    assert _results(db) == clean


def test_a_failed_signature_write_fails_the_run_and_a_rerun_finishes(planted, tmp_path, monkeypatch):
    """With 2 workers the last writes are still in flight while the run bands and verifies: a
    write that fails there still fails the run (nothing half-stored), and a re-run completes it."""
    from dedup.config import Resources
    from warehouse import dedup_store

    db = str(tmp_path / "fail.duckdb")
    con = connect(db)
    ingest_paths(con, [planted["summary"]["corpus"]], IngestConfig("c"))
    con.close()
    write, calls = dedup_store.write_signatures, []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full (test)")
        return write(*a, **k)

    monkeypatch.setattr(dedup_store, "write_signatures", failing)
    with pytest.raises(OSError, match="disk full"):
        dedup_corpus(db, "c", DedupConfig(batch_docs=700), res=Resources(workers=2))
    con = connect(db, read_only=True)
    assert one(con, "SELECT status FROM runs WHERE stage = 'dedup'")[0] == "failed"
    assert one(con, "SELECT count(*) FROM dedup_decisions")[0] == 0
    con.close()
    monkeypatch.setattr(dedup_store, "write_signatures", write)
    report = dedup_corpus(db, "c", DedupConfig(batch_docs=700), res=Resources(workers=2))
    assert report["docs_out"] == planted["report"]["docs_out"]
    assert report["signatures_computed"] == 2500 - report["signatures_reused"] > 0


def test_cli_workers_and_memory_limit_are_checked(planted):
    r = CliRunner().invoke(app, ["--db", planted["db"], "dedup", "c", "--memory-limit", "lots"])
    assert r.exit_code == 2 and "512MB" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["--db", planted["db"], "dedup", "c", "--memory-limit", "10MB"])
    assert r.exit_code == 2 and "64 MB" in r.output
    r = CliRunner().invoke(app, ["--db", planted["db"], "dedup", "c", "--workers", "2", "--memory-limit", "25%",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["unchanged"] is True  # resources are not part of the config: nothing to redo


def test_heap_is_kept_during_a_run_and_given_back_after():
    """Inside `_heap_kept` a freed 64 MB block is reused without page faults (each batch
    reused the last one's pages); after it, such blocks are mapped fresh again and the free
    heap goes back to the system."""
    import ctypes
    import resource

    import numpy as np

    from flows.dedup_task import _heap_kept

    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("malloc is not glibc's")

    def faults_of_a_fresh_block() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.ones(64 << 20, dtype=np.uint8)  # touches every page
        del block
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    with _heap_kept():
        faults_of_a_fresh_block()
        inside = faults_of_a_fresh_block()
    faults_of_a_fresh_block()
    after = faults_of_a_fresh_block()
    # numpy asks for huge pages for big blocks, so a fresh 64 MB block may fault only 32 times
    assert after >= 32 and inside <= after // 8, (inside, after)


def test_largest_clusters_from_the_decision_columns_equal_the_stored_tables(planted):
    """The report's largest clusters are computed from the run's arrays; the same query over the
    stored decisions gives the same rows."""
    con = connect(planted["db"], read_only=True)
    chash = config_hash(DedupConfig())
    cur = con.execute("""
        SELECT c.cluster_id, c.size, d.ext_id AS representative, left(d.text, 80) AS preview
        FROM (SELECT cluster_id, count(*) AS size FROM dedup_decisions
              WHERE corpus = 'c' AND config_hash = ? AND cluster_id IS NOT NULL GROUP BY cluster_id) c
        JOIN dedup_decisions k ON k.corpus = 'c' AND k.config_hash = ? AND k.cluster_id = c.cluster_id AND k.keep
        JOIN documents d ON d.doc_id = k.doc_id
        QUALIFY row_number() OVER (PARTITION BY c.cluster_id ORDER BY k.doc_id) = 1
        ORDER BY c.size DESC, c.cluster_id LIMIT 5""", [chash, chash])
    want = [dict(zip([x[0] for x in cur.description], r)) for r in cur.fetchall()]
    con.close()
    got = planted["report"]["largest_clusters"]
    assert len(want) == 5 and want[0]["size"] > want[-1]["size"] >= 2 and got == want

"""The dedup task: open the warehouse, read, call the dedup stages, write back.

exact -> sign (new documents only, batch by batch, each batch committed: resumable) -> band ->
verify -> cluster -> decisions. A re-run with the same corpus contents and config is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dedup.config import DedupConfig
from dedup.decisions import merge_decisions
from dedup.exact import exact_duplicates
from dedup.pipeline import near_duplicates, signatures_for
from dedup.quality import quality_score
from dedup.shingle import SHINGLE_VERSION
from warehouse import dedup_store as store
from warehouse.db import session
from warehouse.outputs import check_file
from warehouse.runlog import finish_run, last_ok_run, skip_run, stable_hash, start_run

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def config_hash(cfg: DedupConfig) -> str:
    return stable_hash({k: v for k, v in cfg.as_dict().items() if k != "batch_docs"} | {"shingle": SHINGLE_VERSION})


def _rank(con, corpus: str, docs: dict[str, np.ndarray], cfg: DedupConfig) -> np.ndarray:
    if cfg.policy == "first":
        return docs["doc_id"].astype(np.float64)
    if cfg.policy == "longest":
        return -docs["n_chars"].astype(np.float64)
    scores = np.empty(len(docs["doc_id"]))
    for lo in range(0, len(scores), cfg.batch_docs):
        ids = docs["doc_id"][lo:lo + cfg.batch_docs]
        scores[lo:lo + len(ids)] = [quality_score(t) for t in store.texts(con, corpus, ids)]
    return -scores


def compute_signatures(con, corpus: str, cfg: DedupConfig, progress: Progress | None = None) -> int:
    """Signatures for every document that has none under this config; returns how many."""
    key = cfg.signature_key()
    missing = store.missing_signature_ids(con, corpus, key)
    for lo in range(0, len(missing), cfg.batch_docs):
        ids = missing[lo:lo + cfg.batch_docs]
        n_sh, sigs = signatures_for(store.texts(con, corpus, ids), cfg)
        store.write_signatures(con, corpus, key, ids, n_sh, sigs)
        if progress:
            progress("sign", lo + len(ids), len(missing))
    return len(missing)


def dedup_corpus(db: str | Path | None, corpus: str, cfg: DedupConfig, progress: Progress | None = None,
                 pairs_out: Path | None = None, force: bool = False) -> dict:
    """Deduplicate a corpus; return the report (also stored in the run log)."""
    if pairs_out:
        check_file(pairs_out, force=force, what="pairs file")
    with session(db) as con:
        n_docs, fingerprint = store.corpus_fingerprint(con, corpus)
        if n_docs == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        chash = config_hash(cfg)
        inputs = stable_hash(fingerprint, chash)
        prev = last_ok_run(con, "dedup", corpus, inputs)
        if prev is not None:  # same documents, same config: the stored decisions are this run's
            skip_run(con, "dedup", inputs, cfg.as_dict(), corpus, prev["run_id"], counts_in=n_docs)
            report = dict(prev["details"], unchanged=True)
            if pairs_out:
                store.export_pairs(con, corpus, chash, pairs_out, force)
            return report
        run = start_run(con, "dedup", inputs, cfg.as_dict(), corpus=corpus, counts_in=n_docs)
        try:
            report = _dedup(con, corpus, cfg, chash, progress)
        except BaseException as exc:
            finish_run(con, run, status="failed", message=str(exc)[:500])
            raise
        if pairs_out:
            report["pairs_out"] = str(pairs_out)
            report["pairs_written"] = store.export_pairs(con, corpus, chash, pairs_out, force)
        finish_run(con, run, counts_out=report["docs_out"], details=report)
        return dict(report, unchanged=False)


def _dedup(con, corpus: str, cfg: DedupConfig, chash: str, progress: Progress | None) -> dict:
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    docs = store.doc_table(con, corpus)
    rank = _rank(con, corpus, docs, cfg)
    ex_drop, ex_keep = exact_duplicates(docs["doc_id"], docs["hash"], rank)
    seconds["exact"] = time.perf_counter() - t

    t = time.perf_counter()
    new_sigs = compute_signatures(con, corpus, cfg, progress)
    seconds["sign"] = time.perf_counter() - t

    ids, n_sh, sigs = store.load_signatures(con, corpus, cfg.signature_key(), cfg.num_perm)
    survivors = ~np.isin(ids, ex_drop)
    rank_of = dict(zip(docs["doc_id"].tolist(), rank.tolist()))
    near = near_duplicates(ids[survivors], n_sh[survivors], sigs[survivors], rank_of,
                           lambda d: store.texts(con, corpus, d), cfg)
    seconds.update(near.seconds)

    t = time.perf_counter()
    dec = near.decisions
    decisions, pairs = merge_decisions(ex_drop, ex_keep, dec, near.edges, near.similarities)
    store.save_results(con, corpus, chash, pairs, decisions)
    seconds["store"] = time.perf_counter() - t
    near_dropped = int((~dec.keep).sum())
    n_in = len(docs["doc_id"])
    return {
        "corpus": corpus,
        "config": cfg.as_dict(),
        "config_hash": chash,
        "bands": near.bands,
        "rows": near.rows,
        "docs_in": n_in,
        "exact_dropped": len(ex_drop),
        "near_dropped": near_dropped,
        "docs_out": n_in - len(ex_drop) - near_dropped,
        "signatures_computed": int(new_sigs),
        "signatures_reused": int(len(ids) - new_sigs),
        "empty_docs": int((n_sh == 0).sum()),
        "candidate_pairs": near.candidates,
        "verified_pairs": len(near.edges),
        "clusters": len(np.unique(dec.cluster_id)),
        "largest_clusters": store.largest_clusters(con, corpus, chash),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def query_near_duplicates(db: str | Path | None, corpus: str, text: str, cfg: DedupConfig,
                          limit: int = 10) -> list[dict]:
    """Stored documents of `corpus` that `text` near-duplicates (verified), best first.

    Signatures are computed first for any stored document that lacks them under this config.
    """
    from dedup.index import NearDuplicateIndex

    with session(db) as con:
        if store.corpus_fingerprint(con, corpus)[0] == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        compute_signatures(con, corpus, cfg)
        ids, n_sh, sigs = store.load_signatures(con, corpus, cfg.signature_key(), cfg.num_perm)
        index = NearDuplicateIndex(cfg, ids, n_sh, sigs, lambda d: store.texts(con, corpus, d))
        matches = index.query(text, limit)
        ext = store.ext_ids(con, [m.doc_id for m in matches])
    return [{"doc_id": m.doc_id, "id": ext[m.doc_id], "similarity": round(m.similarity, 4),
             "estimated": round(m.estimated, 4)} for m in matches]


def signature_shards(db, corpus: str, cfg: DedupConfig, shard_docs: int = 100_000) -> list[tuple[int, int]]:
    """doc-id ranges of about `shard_docs` documents that still lack signatures under this config."""
    with session(db) as con:
        missing = store.missing_signature_ids(con, corpus, cfg.signature_key())
    return [(int(missing[lo]), int(missing[min(lo + shard_docs, len(missing)) - 1]))
            for lo in range(0, len(missing), shard_docs)]


def sign_shard(db, corpus: str, cfg: DedupConfig, lo: int, hi: int) -> int:
    """Compute and store the missing signatures of documents lo..hi (one unit of scale-out work).

    The database is opened only to read a batch of texts and to write its signatures, so shards
    on other workers can take the single-writer lock in between."""
    key = cfg.signature_key()
    with session(db) as con:
        ids = store.missing_signature_ids(con, corpus, key)
    ids = ids[(ids >= lo) & (ids <= hi)]
    for b in range(0, len(ids), cfg.batch_docs):
        part = ids[b:b + cfg.batch_docs]
        with session(db) as con:
            texts = store.texts(con, corpus, part)
        n_sh, sigs = signatures_for(texts, cfg)
        with session(db) as con:
            # another run may have signed these meanwhile: write only what is still missing
            still = set(store.missing_signature_ids(con, corpus, key).tolist())
            keep = np.array([d in still for d in part.tolist()], dtype=bool)
            if keep.any():
                store.write_signatures(con, corpus, key, part[keep], n_sh[keep], sigs[keep])
    return len(ids)

"""The dedup task: open the warehouse, read, call the dedup stages, write back.

exact -> sign (new documents only, batch by batch, each batch committed: resumable) -> band ->
verify -> cluster -> decisions. A re-run with the same corpus contents and config is a no-op.
"""

from __future__ import annotations

import gc
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from curation.shards import shard_bounds
from dedup.bands import band_keys, candidate_pairs_from_keys, pairs_from_buckets
from dedup.bands import unique_id_pairs as unique_ids
from dedup.config import DedupConfig, Resources
from dedup.decisions import largest_clusters, merge_decisions
from dedup.exact import exact_duplicates
from dedup.pipeline import NearResult, band_params, finish, jit, signatures_arrow
from dedup.quality import quality_score
from dedup.shingle import SHINGLE_VERSION
from dedup.shuffle import member
from warehouse import band_store
from warehouse import dedup_store as store
from warehouse.db import session, set_memory_limit
from warehouse.outputs import check_file
from warehouse.runlog import finish_run, last_ok_run, skip_run, stable_hash, start_run
from warehouse.sql import arrow

Progress = Callable[[str, int, int], None]  # (stage, done, total)
OnBatch = Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # (doc ids, n_shingles, signatures)


def config_hash(cfg: DedupConfig) -> str:
    return stable_hash({k: v for k, v in cfg.as_dict().items() if k != "batch_docs"} | {"shingle": SHINGLE_VERSION})


def rank_documents(con, corpus: str, docs: dict[str, np.ndarray], cfg: DedupConfig) -> np.ndarray:
    if cfg.policy == "first":
        return docs["doc_id"].astype(np.float64)
    if cfg.policy == "longest":
        return -docs["n_chars"].astype(np.float64)
    scores = np.empty(len(docs["doc_id"]))
    for lo in range(0, len(scores), cfg.batch_docs):
        ids = docs["doc_id"][lo:lo + cfg.batch_docs]
        scores[lo:lo + len(ids)] = [quality_score(t) for t in store.texts(con, corpus, ids)]
    return -scores


def compute_signatures(con, corpus: str, cfg: DedupConfig, progress: Progress | None = None,
                       res: Resources = Resources(), lo: int | None = None, hi: int | None = None,
                       on_batch: OnBatch | None = None) -> int:
    """Signatures for every document (doc ids lo..hi if given) that has none under this config,
    all stored when it returns; returns how many. See `signing`."""
    with signing(con, corpus, cfg, progress, res, lo, hi, on_batch) as done:
        return done


@contextmanager
def signing(con, corpus: str, cfg: DedupConfig, progress: Progress | None = None, res: Resources = Resources(),
            lo: int | None = None, hi: int | None = None, on_batch: OnBatch | None = None) -> Iterator[int]:
    """Signs every document (doc ids lo..hi if given) that has none under this config, then yields
    how many. The last batches may still be being written during the block (2+ workers): a dedup
    run bands and verifies meanwhile. They are committed when the block ends, and a write error is
    raised there. Each batch is written in its own transaction on a second cursor, so a kill
    keeps the batches already written and a re-run signs only the rest.

    The unsigned documents are read in doc-id ranges (`_reads`). One worker: each batch is read,
    signed and written in turn (on one core extra threads only add switching; measured,
    bench/RESULTS.md). More workers: a pipeline of three stages on their own threads, so every
    core stays busy: a reader fetches the next batch of texts, `res.workers` threads sign the
    current one (the kernel releases the GIL), and a writer inserts the previous one. Batches are
    then smaller (about total / (2 x workers), at most `cfg.batch_docs`) so the pipeline fills fast
    (50k documents on 2 cores: 0.49 s with 12.5k-document batches, 0.52 s with 6.25k, 0.57 s with 3.1k).

    `on_batch(ids, n_shingles, sigs)` sees every signed batch (the dedup run builds band keys from
    them instead of reading the signatures back)."""
    key = cfg.signature_key()
    ids, signed, chars = store.signing_state(con, corpus, key, lo, hi, chars=True)
    missing = ids[~signed]
    total = len(missing)
    step = cfg.batch_docs if res.workers == 1 else min(cfg.batch_docs, max(1_000, -(-total // (2 * res.workers))))
    reads = _reads(ids, missing, step, chars[~signed], SIGN_CHARS_CHAR if cfg.char_ngrams else SIGN_CHARS)
    reader, writer = con.cursor(), con.cursor()

    def read(r: int) -> tuple[np.ndarray, pa.Array]:
        first, last, plain = reads[r]
        if not plain:
            return store.unsigned_texts(reader, corpus, key, first, last)
        got, column = store.texts_between(reader, corpus, first, last)
        keep = member(got, missing)
        return (got, column) if keep.all() else (got[keep], column.filter(arrow(keep)))

    def write(ids: np.ndarray, n_sh: np.ndarray, sigs: np.ndarray) -> None:
        store.write_signatures(writer, corpus, key, ids, n_sh, sigs)

    write_pool = ThreadPoolExecutor(1, thread_name_prefix="taomi-write") if res.workers > 1 else None
    pending: deque = deque()
    try:
        if write_pool:
            done = _sign_pipelined(read, lambda *b: write_pool.submit(write, *b), pending, len(reads), total, cfg,
                                   res, progress, on_batch)
        else:
            done = 0
            for r in range(len(reads)):
                got, column = read(r)
                n_sh, sigs = signatures_arrow(column, cfg, 1, docs=total)
                write(got, n_sh, sigs)
                if on_batch:
                    on_batch(got, n_sh, sigs)
                done += len(got)
                if progress:
                    progress("sign", done, total)
        yield done
        while pending:
            pending.popleft().result()
    finally:
        if write_pool:
            write_pool.shutdown(wait=True)  # the insert in flight ends (commits or rolls back) first
        reader.close()
        writer.close()


# Characters of text per signing batch (issue 28): the batch's texts, Python strings where the
# kernel cannot use Arrow's buffer, and the shingles of char n-grams (8 bytes a character, plus
# sorting) scale with it; 20,000 real files (318 MB) in one batch peaked at 2.5 GB with
# --char-ngrams. A longer document is one batch of its own, signed in pieces (dedup.pipeline).
SIGN_CHARS = 32_000_000
SIGN_CHARS_CHAR = 8_000_000


def _reads(ids: np.ndarray, missing: np.ndarray, step: int, chars: np.ndarray | None = None,
           max_chars: int | None = None) -> list[tuple[int, int, bool]]:
    """(first id, last id, plain) of each batch of at most `step` unsigned documents (`missing`, of
    the corpus's sorted `ids`) and at most `max_chars` characters (`chars`: per missing document;
    a longer one alone). `plain`: the range holds at most as many signed documents as unsigned
    ones, so it is read whole by a range scan and the signed ones dropped here; otherwise (a
    sparse range) by the anti-join, which reads only what it needs but costs 3x per row."""
    if chars is None or max_chars is None:
        bounds = [(b, min(b + step, len(missing))) for b in range(0, len(missing), step)]
    else:
        bounds = shard_bounds(chars, step, max_chars)
    out = []
    for b, e in bounds:
        first, last = int(missing[b]), int(missing[e - 1])
        span = int(np.searchsorted(ids, last, "right") - np.searchsorted(ids, first, "left"))
        out.append((first, last, span <= 2 * (e - b)))
    return out


# Signed batches that may wait for the writer: enough that signing goes on while DuckDB runs a
# checkpoint (a commit that crosses its WAL threshold takes ~4x a plain one), few enough that
# memory stays a few batches of signatures.
WRITES_IN_FLIGHT = 3


def _sign_pipelined(read: Callable[[int], tuple[np.ndarray, pa.Array]], submit_write: Callable[..., Future],
                    pending: deque, n_reads: int, total: int, cfg: DedupConfig, res: Resources,
                    progress: Progress | None, on_batch: OnBatch | None) -> int:
    """Reads on a thread, signs on `res.workers` threads, hands each batch to `submit_write`;
    returns with up to WRITES_IN_FLIGHT writes still in `pending`."""
    read_pool = ThreadPoolExecutor(1, thread_name_prefix="taomi-read")
    done = 0
    try:
        nxt = read_pool.submit(read, 0) if n_reads else None
        for r in range(n_reads):
            ids, column = nxt.result()
            if r + 1 < n_reads:
                nxt = read_pool.submit(read, r + 1)
            n_sh, sigs = signatures_arrow(column, cfg, res.workers, docs=total)
            while len(pending) >= WRITES_IN_FLIGHT:
                pending.popleft().result()  # errors surface here
            pending.append(submit_write(ids, n_sh, sigs))
            if on_batch:
                on_batch(ids, n_sh, sigs)
            done += len(ids)
            if progress:
                progress("sign", done, total)
    finally:
        read_pool.shutdown(wait=True)
    return done


class _BandKeys:
    """Band keys of the documents that take part in banding (shingles, not an exact duplicate),
    gathered batch by batch: from the signing stage as it goes, or from signatures streamed back."""

    def __init__(self, bands: int, rows: int, ex_drop: np.ndarray, fast: bool):
        self.bands, self.rows, self.fast = bands, rows, fast
        self.ex_sorted = np.sort(ex_drop)
        self.ids: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        self.empty = 0

    def add(self, ids: np.ndarray, n_sh: np.ndarray, sigs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.empty += int((n_sh == 0).sum())
        keep = (n_sh > 0) & ~member(ids, self.ex_sorted)
        keys = band_keys(sigs, self.bands, self.rows, jit=self.fast)  # then filter: keys are 1/3 the bytes
        return (ids, keys) if keep.all() else (ids[keep], keys[keep])

    def gather(self, ids: np.ndarray, n_sh: np.ndarray, sigs: np.ndarray) -> None:
        kept, keys = self.add(ids, n_sh, sigs)
        self.ids.append(kept)
        self.keys.append(keys)

    def candidates(self) -> np.ndarray:
        ids = np.concatenate(self.ids) if self.ids else np.empty(0, dtype=np.int64)
        keys = np.concatenate(self.keys) if self.keys else np.empty((0, self.bands), dtype=np.uint64)
        self.ids, self.keys = [], []
        order = np.argsort(ids, kind="stable")
        return candidate_pairs_from_keys(keys[order], ids[order], jit=self.fast)


def _band_plan(cfg: DedupConfig, n_docs: int, res: Resources) -> tuple[int, int, bool]:
    """(bands, rows, out_of_core): band keys are grouped in memory while they fit the budget."""
    bands, rows = band_params(cfg)
    return bands, rows, res.out_of_core(n_docs * (bands * 8 * 2 + 16))  # keys, the sort's copy, ids


def _band_candidates(con, corpus: str, cfg: DedupConfig, ex_drop: np.ndarray, res: Resources,
                     gathered: _BandKeys | None = None) -> tuple[np.ndarray, int, int, int, bool]:
    """(candidate pairs of doc ids, bands, rows, empty docs, out_of_core). Band keys come from
    `gathered` when the signing stage built them (it signed every document), else from signatures
    streamed back batch by batch (the signature matrix is never held whole); they are grouped in
    memory while they fit the budget, else in DuckDB (warehouse.band_store)."""
    if gathered is not None:
        return gathered.candidates(), *band_params(cfg), gathered.empty, False
    n_docs = store.signature_count(con, corpus, cfg.signature_key())
    bands, rows, out_of_core = _band_plan(cfg, n_docs, res)
    keys_of = _BandKeys(bands, rows, ex_drop, jit(n_docs))
    grouper = con.cursor()  # its own connection: it writes while `con` streams signatures
    try:
        if out_of_core:
            band_store.create(grouper)
        for ids, n_sh, sigs in store.stream_signatures(con, corpus, cfg.signature_key(), cfg.num_perm,
                                                       cfg.batch_docs):
            if out_of_core:
                band_store.append(grouper, *keys_of.add(ids, n_sh, sigs))
            else:
                keys_of.gather(ids, n_sh, sigs)
        if out_of_core:
            found = [pairs_from_buckets(m, o) for m, o in band_store.buckets(grouper, cfg.batch_docs)]
            band_store.drop(grouper)
            cand = unique_ids(np.concatenate(found)) if found else np.empty((0, 2), dtype=np.int64)
            return cand, bands, rows, keys_of.empty, True
    finally:
        grouper.close()
    return keys_of.candidates(), bands, rows, keys_of.empty, False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off for the run, back on after. The run makes
    few cyclic objects (its memory is numpy arrays, freed by reference counting), but numba's
    loaded code adds ~80k long-lived objects that each full collection rescans: 0.07 s per pass,
    part of every `taomi dedup` (measured at 50k documents)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@contextmanager
def _heap_kept() -> Iterator[None]:
    """Freed memory stays in the process during the run, and goes back to the system after.

    Every batch allocates tens of MB (its texts as Arrow, shingles, signatures), and glibc maps
    each big block fresh and unmaps it on free, so each batch paid its pages' first-touch faults
    again: a third of the time of reading texts. Blocks under 256 MB now come from the heap and
    up to 512 MB of free heap is kept, so later batches reuse warm pages. After the run the
    heap is trimmed and glibc's usual thresholds come back. A no-op where malloc is not glibc's."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, 256 << 20)
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    try:
        yield
    finally:
        mallopt(_M_TRIM_THRESHOLD, 128 << 10)
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        trim(0)


def dedup_corpus(db: str | Path | None, corpus: str, cfg: DedupConfig, progress: Progress | None = None,
                 pairs_out: Path | None = None, force: bool = False, res: Resources | None = None) -> dict:
    """Deduplicate a corpus; return the report (also stored in the run log)."""
    if pairs_out:
        check_file(pairs_out, force=force, what="pairs file")
    res = res or Resources.default()
    with _collector_paused(), _heap_kept(), session(db) as con:
        set_memory_limit(con, res.duckdb_mb)
        docs = store.doc_table(con, corpus)
        n_docs = len(docs["doc_id"])
        if n_docs == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        chash = config_hash(cfg)
        inputs = stable_hash(store.fingerprint(docs), chash)
        prev = last_ok_run(con, "dedup", corpus, inputs)
        if prev is not None:  # same documents, same config: the stored decisions are this run's
            skip_run(con, "dedup", inputs, cfg.as_dict(), corpus, prev["run_id"], counts_in=n_docs)
            report = dict(prev["details"], unchanged=True)
            if pairs_out:
                store.export_pairs(con, corpus, chash, pairs_out, force)
            return report
        run = start_run(con, "dedup", inputs, cfg.as_dict(), corpus=corpus, counts_in=n_docs)
        try:
            report = _dedup(con, corpus, docs, cfg, chash, progress, res)
        except BaseException as exc:
            finish_run(con, run, status="failed", message=str(exc)[:500])
            raise
        if pairs_out:
            report["pairs_out"] = str(pairs_out)
            report["pairs_written"] = store.export_pairs(con, corpus, chash, pairs_out, force)
        finish_run(con, run, counts_out=report["docs_out"], details=report)
        return dict(report, unchanged=False)


def _near(con, corpus: str, docs: dict[str, np.ndarray], rank: np.ndarray, cfg: DedupConfig, ex_drop: np.ndarray,
          res: Resources, gathered: _BandKeys | None, seconds: dict[str, float]) -> tuple[NearResult, int, bool]:
    """Band, verify and cluster: (the result, empty documents, whether banding went out of core)."""
    t = time.perf_counter()
    cand, bands, rows, n_empty, out_of_core = _band_candidates(con, corpus, cfg, ex_drop, res, gathered)
    seconds["band"] = time.perf_counter() - t
    rank_of = dict(zip(docs["doc_id"].tolist(), rank.tolist())) if len(cand) else {}
    near = finish(cand, rank_of, lambda d: store.texts_arrow(con, corpus, d), cfg, bands, rows, seconds, res.workers,
                  lambda d: store.doc_chars(con, corpus, d))
    return near, n_empty, out_of_core


def _dedup(con, corpus: str, docs: dict[str, np.ndarray], cfg: DedupConfig, chash: str, progress: Progress | None,
           res: Resources) -> dict:
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    rank = rank_documents(con, corpus, docs, cfg)
    ex_drop, ex_keep = exact_duplicates(docs["doc_id"], docs["hash"], rank)
    seconds["exact"] = time.perf_counter() - t

    t = time.perf_counter()
    # A run that signs every document builds the band keys as it signs (no read-back of signatures)
    # when they fit in memory; otherwise (some signatures stored before, or out of core) banding
    # streams the stored signatures.
    n_docs = len(docs["doc_id"])
    bands, rows, out_of_core = _band_plan(cfg, n_docs, res)
    gathered = None
    if not out_of_core and store.signature_count(con, corpus, cfg.signature_key()) == 0:
        gathered = _BandKeys(bands, rows, ex_drop, jit(n_docs))
    with signing(con, corpus, cfg, progress, res, on_batch=gathered.gather if gathered else None) as new_sigs:
        seconds["sign"] = time.perf_counter() - t
        if gathered is not None:  # band and verify while the last batches of signatures are written
            near, n_empty, out_of_core = _near(con, corpus, docs, rank, cfg, ex_drop, res, gathered, seconds)
    if gathered is None:  # banding reads the stored signatures back: all of them written first
        near, n_empty, out_of_core = _near(con, corpus, docs, rank, cfg, ex_drop, res, None, seconds)

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
        "signatures_reused": int(n_in - new_sigs),
        "empty_docs": n_empty,
        "band_grouping": "duckdb (out of core)" if out_of_core else "memory",
        "workers": res.workers,
        "memory_limit_mb": res.memory_limit_mb,
        "candidate_pairs": near.candidates,
        "verified_pairs": len(near.edges),
        "clusters": len(np.unique(dec.cluster_id)),
        "largest_clusters": store.cluster_rows(con, largest_clusters(decisions)),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def query_near_duplicates(db: str | Path | None, corpus: str, text: str, cfg: DedupConfig,
                          limit: int = 10) -> list[dict]:
    """Stored documents of `corpus` that `text` near-duplicates (verified), best first.

    Signatures are computed first for any stored document that lacks them under this config.
    """
    from dedup.index import NearDuplicateIndex

    with session(db) as con:
        if store.doc_count(con, corpus) == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        compute_signatures(con, corpus, cfg)
        ids, n_sh, sigs = store.load_signatures(con, corpus, cfg.signature_key(), cfg.num_perm)
        index = NearDuplicateIndex(cfg, ids, n_sh, sigs, lambda d: store.texts(con, corpus, d))
        matches = index.query(text, limit)
        ext = store.ext_ids(con, [m.doc_id for m in matches])
    return [{"doc_id": m.doc_id, "id": ext[m.doc_id], "similarity": round(m.similarity, 4),
             "estimated": round(m.estimated, 4)} for m in matches]


def signature_shards(db, corpus: str, cfg: DedupConfig, shard_docs: int = 100_000) -> list[tuple[int, int, int]]:
    """(first doc id, last doc id, documents) of ranges of about `shard_docs` documents that still
    lack signatures under this config."""
    with session(db) as con:
        missing = store.missing_signature_ids(con, corpus, cfg.signature_key())
    return [(int(missing[lo]), int(missing[min(lo + shard_docs, len(missing)) - 1]),
             min(shard_docs, len(missing) - lo)) for lo in range(0, len(missing), shard_docs)]


def unsigned_count(db, corpus: str, cfg: DedupConfig) -> int:
    """Documents of the corpus still without a signature under this config (after the shards ran:
    what the workers did not do, seen from the client's own database)."""
    with session(db) as con:
        return len(store.missing_signature_ids(con, corpus, cfg.signature_key()))


def sign_shard(db, corpus: str, cfg: DedupConfig, lo: int, hi: int, workers: int = 1) -> int:
    """Compute and store the missing signatures of documents lo..hi (one unit of scale-out work,
    e.g. a Dask task in another process). The database is opened only to read a batch of texts
    and to write its signatures, so shards on other workers take the single-writer lock in between."""
    key = cfg.signature_key()
    where = os.path.abspath(db)
    if not Path(where).is_file():  # never create a warehouse here: this worker cannot see the client's
        raise FileNotFoundError(f"{socket.gethostname()}: no Taomi database at {where} (working folder "
                                f"{os.getcwd()}); every worker must see the warehouse at the same absolute path")
    with session(db) as con:  # the shard's own range: one scan per shard, not the corpus per batch
        ids = store.missing_signature_ids(con, corpus, key, lo, hi)
    for b in range(0, len(ids), cfg.batch_docs):
        part = ids[b:b + cfg.batch_docs]
        with session(db) as con:
            texts = store.texts_arrow(con, corpus, part)
        n_sh, sigs = signatures_arrow(texts, cfg, workers)
        with session(db) as con:
            # another run may have signed these meanwhile: write only what is still missing
            keep = np.isin(part, store.missing_signature_ids(con, corpus, key, int(part[0]), int(part[-1])))
            if keep.any():
                store.write_signatures(con, corpus, key, part[keep], n_sh[keep], sigs[keep])
    return len(ids)

"""Near-dedup on a Dask cluster where no worker opens the DuckDB file (issue 27).

The client (this process) opens the warehouse; the workers read and write Parquet files in a work
folder that every worker sees at the same path (a shared file system, as datatrove and Spark
deployments use):

    client: exact duplicates, ranks; texts -> Parquet shards (only new or changed shards)
    sign    one task per shard: texts -> signature file (a re-run reuses a shard's file: the
            manifest in the warehouse names it)
    band    one task per shard: signatures -> band keys -> one file per partition (key % parts)
    pairs   one task per partition: its buckets -> candidate pairs by the single-machine rule ->
            one file per shard of the pair's first document
    verify  one task per shard: its candidates, exact Jaccard, texts read from the row groups
            that hold them -> verified edges
    client: components and keep/drop by the same `decide`; decisions, pairs and the run-log row
            in one transaction.

Every exchange is a file written under a temporary name and renamed into place, so a task that
Dask runs again after its worker died (killed, out of memory) writes the same file: the result is
the same. The shuffle runs on files rather than Dask's in-memory P2P shuffle for the same reason:
no shuffle state lives in a worker, and memory per task is one partition.

Components run on the client (scipy, inside `decide`): the verified edges of a corpus are a small
fraction of its documents (3M documents: see bench/RESULTS.md), so they fit where the decisions
are written. The equality with `taomi dedup` is tested (tests/flows/test_dask_dedup.py).
"""

from __future__ import annotations

import math
import os
import resource
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from dedup.bands import unique_id_pairs
from dedup.cluster import decide
from dedup.config import DedupConfig, Resources
from dedup.decisions import largest_clusters, merge_decisions
from dedup.exact import exact_duplicates
from dedup.pipeline import band_params, jit, signatures_arrow, verify
from dedup.shuffle import band_rows, bucket_pairs, group_of, partition_of
from flows.dedup_task import Progress, config_hash, rank_documents
from warehouse import dedup_store as store
from warehouse import shard_store as shards_io
from warehouse.db import db_path, session, set_memory_limit
from warehouse.outputs import check_file
from warehouse.runlog import finish_run, last_ok_run, skip_run, stable_hash, start_run
from warehouse.shard_store import Shard, ShardTexts
from warehouse.sql import arrow

SHARD_DOCS = 100_000   # documents per text shard (and per signing / verification task)
GROUP_DOCS = 10_000    # documents per Parquet row group: what a verification read pulls in at once
PARTITION_ROWS = 4_000_000  # band-key rows per shuffle partition (~60 bytes each while grouped)


# ---- cluster ---------------------------------------------------------------------------------

@contextmanager
def dask_client(address: str | None = None, workers: int = 2, memory_per_worker: str | None = None) -> Iterator:
    """A `distributed.Client`: to the scheduler at `address`, or to a local cluster of `workers`
    processes (one thread each, `memory_per_worker` each: Dask's nanny restarts a worker past it)."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address, timeout="20s") as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=memory_per_worker or "auto") as cluster, Client(cluster) as client:
        yield client


def _fault(stage: str) -> None:
    """Fault injection for tests: with TAOMI_DASK_FAULTS naming a folder, the first task of `stage`
    to run on a Dask worker while the file `<folder>/<stage>` exists claims that file (a rename:
    one task only) and kills its own worker process (SIGKILL)."""
    folder = os.environ.get("TAOMI_DASK_FAULTS")
    if not folder:
        return
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return  # not on a worker: never kill the client
    try:
        os.rename(os.path.join(folder, stage), os.path.join(folder, f"{stage}.fired"))
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


# ---- tasks (run on workers: files only, never the DuckDB file) --------------------------------

def sign_task(shard: Shard, out: str, cfg: DedupConfig) -> tuple[str, str, int]:
    """Signatures of one text shard, row group by row group -> `out` (doc_id, n_shingles, sig)."""
    _fault("sign")
    parts = []
    for ids, texts in shards_io.text_groups(shard):
        n_sh, sigs = signatures_arrow(texts, cfg, 1, docs=shard.n_docs)
        parts.append(shards_io.signature_table(ids, n_sh, sigs))
    shards_io.write_table(pa.concat_tables(parts), out, row_group_rows=_sig_rows(cfg))
    return shard.fingerprint, out, shard.n_docs


def _sig_rows(cfg: DedupConfig) -> int:
    return max(1_000, 8_000_000 // (cfg.num_perm * 4))  # ~8 MB of signatures per row group


def band_task(sig_path: str, shard_no: int, bands: int, rows: int, excluded_path: str, parts: int,
              out_dir: str, fast: bool) -> tuple[int, int]:
    """Band keys of one shard's signatures -> one file per partition; (rows written, empty documents).
    `excluded_path`: the exact duplicates that are dropped (sorted doc ids), which take no part."""
    _fault("band")
    excluded = shards_io.int_columns(excluded_path, ["doc_id"])[0].astype(np.int64)
    acc: list[tuple[np.ndarray, ...]] = []
    empty = 0
    for ids, n_sh, sigs in shards_io.signature_batches(sig_path, 50_000):
        empty += int((n_sh == 0).sum())
        acc.append(band_rows(ids, n_sh, sigs, bands, rows, excluded, fast))
    band = np.concatenate([a[0] for a in acc]) if acc else np.empty(0, np.uint16)
    key = np.concatenate([a[1] for a in acc]) if acc else np.empty(0, np.uint64)
    doc = np.concatenate([a[2] for a in acc]) if acc else np.empty(0, np.int64)
    part = partition_of(key, parts)
    order = np.argsort(part, kind="stable")
    cuts = np.searchsorted(part[order], np.arange(parts + 1))
    for p in range(parts):
        sel = order[cuts[p]:cuts[p + 1]]
        if len(sel):
            shards_io.write_table(pa.table({"band": arrow(band[sel]), "key": arrow(key[sel]), "doc_id": arrow(doc[sel])}),
                                  Path(out_dir) / f"p{p:05d}-s{shard_no:05d}.parquet")
    return len(doc), empty


def pairs_task(p: int, band_dir: str, firsts: np.ndarray, out_dir: str) -> int:
    """Candidate pairs of partition `p` -> one file per shard of each pair's first document."""
    _fault("pairs")
    files = sorted(Path(band_dir).glob(f"p{p:05d}-s*.parquet"))
    cols = [shards_io.int_columns(str(f), ["band", "key", "doc_id"]) for f in files]
    if not cols:
        return 0
    band, key, doc = (np.concatenate([c[i] for c in cols]) for i in range(3))
    del cols
    cand = bucket_pairs(band, key, doc)
    del band, key, doc
    g = group_of(cand[:, 0], firsts)
    order = np.argsort(g, kind="stable")
    cuts = np.searchsorted(g[order], np.arange(len(firsts) + 1))
    for s in range(len(firsts)):
        sel = order[cuts[s]:cuts[s + 1]]
        if len(sel):
            shards_io.write_table(pa.table({"a": arrow(cand[sel, 0]), "b": arrow(cand[sel, 1])}),
                                  Path(out_dir) / f"v{s:05d}-p{p:05d}.parquet")
    return len(cand)


def verify_task(s: int, cand_dir: str, shards: list[Shard], cfg: DedupConfig, out: str) -> tuple[int, int]:
    """Every candidate whose first document is in shard `s`, checked by exact Jaccard; texts come
    from the row groups that hold them. -> `out` (a, b, similarity); (candidates, verified)."""
    _fault("verify")
    files = sorted(Path(cand_dir).glob(f"v{s:05d}-p*.parquet"))
    parts = [np.stack(shards_io.int_columns(str(f), ["a", "b"]), axis=1) for f in files]
    cand = unique_id_pairs(np.concatenate(parts)) if parts else np.empty((0, 2), np.int64)
    reader = ShardTexts(shards)
    edges, sims = verify(cand, reader.texts, cfg, 1, reader.chars)
    shards_io.write_table(pa.table({"a": arrow(edges[:, 0].astype(np.int64)), "b": arrow(edges[:, 1].astype(np.int64)),
                                    "similarity": arrow(sims.astype(np.float64))}), out)
    return len(cand), len(edges)


def worker_peak_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the client ------------------------------------------------------------------------------

def _gather(client, futures: list, stage: str, progress: Progress | None, weights: list[int] | None = None) -> list:
    """Results of the futures in their order, advancing `stage` as each finishes."""
    from distributed import as_completed

    index = {f.key: i for i, f in enumerate(futures)}
    out: list = [None] * len(futures)
    total = sum(weights) if weights else len(futures)
    done = 0
    for fut in as_completed(futures):
        i = index[fut.key]
        out[i] = fut.result()
        done += weights[i] if weights else 1
        if progress:
            progress(stage, done, total)
    return out


def partitions_for(n_docs: int, bands: int, partitions: int = 0) -> int:
    return partitions or max(1, math.ceil(n_docs * bands / PARTITION_ROWS))


def dedup_distributed(db: str | Path | None, corpus: str, cfg: DedupConfig, client, work_dir: str | Path | None = None,
                      progress: Progress | None = None, partitions: int = 0, shard_docs: int = SHARD_DOCS,
                      group_docs: int = GROUP_DOCS, pairs_out: Path | None = None, force: bool = False,
                      res: Resources | None = None, keep_files: bool = False) -> dict:
    """`dedup_corpus` on a Dask cluster (`client`): the same decisions, pairs and cluster ids,
    the same run-log inputs (a run with the same documents and config, on either path, is a
    no-op), with every per-document stage on the workers and the DuckDB file open only here."""
    if pairs_out:
        check_file(pairs_out, force=force, what="pairs file")
    res = res or Resources.default()
    sig_key = cfg.signature_key()
    chash = config_hash(cfg)
    with session(db) as con:
        folder = shards_io.work_folder(work_dir or f"{db_path(db).resolve()}.work")
        docs = store.doc_table(con, corpus)
        n_docs = len(docs["doc_id"])
        if n_docs == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        inputs = stable_hash(store.fingerprint(docs), chash)
        prev = last_ok_run(con, "dedup", corpus, inputs)
        if prev is not None:
            skip_run(con, "dedup", inputs, cfg.as_dict(), corpus, prev["run_id"], counts_in=n_docs)
            if pairs_out:
                store.export_pairs(con, corpus, chash, pairs_out, force)
            return dict(prev["details"], unchanged=True)
        run = start_run(con, "dedup", inputs, cfg.as_dict(), corpus=corpus, counts_in=n_docs)
    try:
        report = _run(db, corpus, cfg, client, folder, docs, chash, run, progress, partitions, shard_docs,
                      group_docs, res, sig_key, keep_files)
    except BaseException as exc:
        with session(db) as con:
            finish_run(con, run, status="failed", message=str(exc)[:500])
        raise
    if pairs_out:
        with session(db) as con:
            report["pairs_out"] = str(pairs_out)
            report["pairs_written"] = store.export_pairs(con, corpus, chash, pairs_out, force)
    return dict(report, unchanged=False)


def _run(db, corpus: str, cfg: DedupConfig, client, folder: Path, docs: dict, chash: str, run, progress: Progress | None,
         partitions: int, shard_docs: int, group_docs: int, res: Resources, sig_key: str, keep_files: bool) -> dict:
    seconds: dict[str, float] = {}
    n_docs = len(docs["doc_id"])
    workers_before = set(client.scheduler_info()["workers"])
    t = time.perf_counter()
    with session(db) as con:
        set_memory_limit(con, res.duckdb_mb)
        rank = rank_documents(con, corpus, docs, cfg)
        ex_drop, ex_keep = exact_duplicates(docs["doc_id"], docs["hash"], rank)
        seconds["exact"] = time.perf_counter() - t
        t = time.perf_counter()
        shards, exported = shards_io.export_shards(con, corpus, folder, docs["doc_id"], docs["hash"], shard_docs,
                                                   group_docs)
        signed = shards_io.signed_shards(con, corpus, sig_key)
    seconds["shards"] = time.perf_counter() - t
    if progress:
        progress("shards", len(shards), len(shards))

    t = time.perf_counter()
    todo = [s for s in shards if s.fingerprint not in signed]
    futs = [client.submit(sign_task, s, shards_io.signature_path(folder, sig_key, s.fingerprint), cfg,
                          key=f"taomi-sign-{s.fingerprint}-{sig_key}", pure=False) for s in todo]
    done = _gather(client, futs, "sign", progress, [s.n_docs for s in todo])
    with session(db) as con:
        shards_io.record_signed(con, corpus, sig_key, done)
    signed.update({fp: p for fp, p, _ in done})
    seconds["sign"] = time.perf_counter() - t

    bands, rows = band_params(cfg)
    parts = partitions_for(n_docs, bands, partitions)
    work = shards_io.run_folder(folder, f"{chash[:12]}-{run.run_id[:12]}")
    band_dir, cand_dir, edge_dir = (str(work / d) for d in ("band", "cand", "edges"))
    try:
        t = time.perf_counter()
        excluded = str(work / "exact-dropped.parquet")  # a file, not scattered data: a lost worker loses nothing
        shards_io.write_table(pa.table({"doc_id": arrow(np.sort(ex_drop).astype(np.int64))}), excluded)
        fast = jit(n_docs)
        futs = [client.submit(band_task, signed[s.fingerprint], s.shard_no, bands, rows, excluded, parts, band_dir,
                              fast, pure=False) for s in shards]
        banded = _gather(client, futs, "band", progress, [s.n_docs for s in shards])
        seconds["band"] = time.perf_counter() - t

        t = time.perf_counter()
        firsts = np.array([s.first_id for s in shards], dtype=np.int64)
        futs = [client.submit(pairs_task, p, band_dir, firsts, cand_dir, pure=False) for p in range(parts)]
        _gather(client, futs, "pairs", progress)
        seconds["pairs"] = time.perf_counter() - t

        t = time.perf_counter()
        futs = [client.submit(verify_task, s.shard_no, cand_dir, shards, cfg, str(Path(edge_dir) / f"e{s.shard_no:05d}.parquet"),
                              pure=False) for s in shards]
        checked = _gather(client, futs, "verify", progress, [s.n_docs for s in shards])
        seconds["verify"] = time.perf_counter() - t
        shuffle_bytes = _folder_bytes(Path(band_dir)) + _folder_bytes(Path(cand_dir))

        t = time.perf_counter()
        edges, sims = _read_edges(edge_dir, len(shards))
        nodes = np.unique(edges.ravel())
        at = np.searchsorted(docs["doc_id"], nodes)
        dec = decide(edges, sims, dict(zip(nodes.tolist(), rank[at].tolist())))
        seconds["cluster"] = time.perf_counter() - t
    finally:
        if not keep_files:
            shards_io.remove_run_folder(work)

    peaks = client.run(worker_peak_mb)
    workers_after = set(client.scheduler_info()["workers"])
    t = time.perf_counter()
    decisions, pairs = merge_decisions(ex_drop, ex_keep, dec, edges, sims)
    near_dropped = int((~dec.keep).sum())
    n_signed_now = sum(n for _, _, n in done)
    report = {
        "corpus": corpus, "config": cfg.as_dict(), "config_hash": chash, "bands": bands, "rows": rows,
        "docs_in": n_docs, "exact_dropped": len(ex_drop), "near_dropped": near_dropped,
        "docs_out": n_docs - len(ex_drop) - near_dropped,
        "signatures_computed": n_signed_now, "signatures_reused": n_docs - n_signed_now,
        "empty_docs": sum(b[1] for b in banded), "band_grouping": f"dask ({parts} partitions)",
        "workers": len(workers_after), "memory_limit_mb": res.memory_limit_mb,
        "candidate_pairs": sum(c[0] for c in checked), "verified_pairs": len(edges),
        "clusters": len(np.unique(dec.cluster_id)),
        "engine": "dask", "shards": len(shards), "shards_exported": exported, "shards_signed": len(done),
        "partitions": parts, "band_rows": sum(b[0] for b in banded), "shuffle_bytes": shuffle_bytes,
        "worker_peak_mb": {w: round(v, 1) for w, v in peaks.items()},
        "worker_restarts": len(workers_before - workers_after),
        "work_dir": str(folder),
    }
    with session(db) as con:
        report["largest_clusters"] = store.cluster_rows(con, largest_clusters(decisions))
        seconds["store"] = time.perf_counter() - t
        report["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        store.save_results(con, corpus, chash, pairs, decisions,
                           then=lambda: finish_run(con, run, counts_out=report["docs_out"], details=report))
    return report


def _read_edges(edge_dir: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    a, b, s = [], [], []
    for k in range(n):
        path = Path(edge_dir) / f"e{k:05d}.parquet"
        cols = shards_io.int_columns(str(path), ["a", "b", "similarity"])
        a.append(cols[0])
        b.append(cols[1])
        s.append(cols[2])
    edges = np.stack((np.concatenate(a), np.concatenate(b)), axis=1).astype(np.int64) if a else np.empty((0, 2), np.int64)
    sims = np.concatenate(s).astype(np.float64) if s else np.empty(0)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return edges[order], sims[order]


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.parquet")) if path.is_dir() else 0

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
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from dedup import kernel
from dedup.bands import unique_id_pairs
from dedup.cluster import Decisions, decide
from dedup.components import arcs_by_partition, labels, large_star, small_star
from dedup.config import DedupConfig, Resources
from dedup.decisions import largest_clusters, merge_decisions
from dedup.exact import exact_duplicates
from dedup.pipeline import band_params, jit, shingle_sets_flat, signatures_arrow
from dedup.shuffle import band_rows, bucket_pairs, group_of, partition_of, take_segments
from dedup.verify import verify_flat
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
# Verified edges up to which components and keep/drop run on the client (scipy and `decide`, ~0.5 GB
# of Python objects per million edges); beyond, large-star/small-star and `decide` per cluster
# partition run on the workers.
LOCAL_EDGES = 2_000_000
MAX_ROUNDS = 100


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

def _visible(path: str) -> None:
    """A worker that cannot see the work folder says so, naming itself and the path."""
    if not Path(path).is_file():
        import socket

        raise FileNotFoundError(f"{socket.gethostname()}: cannot see {path} (working folder {os.getcwd()}); every "
                                "Dask worker must see the work folder (--work-dir) at the same absolute path")


def sign_task(shard: Shard, out: str, cfg: DedupConfig) -> tuple[str, str, int]:
    """Signatures of one text shard, row group by row group -> `out` (doc_id, n_shingles, sig)."""
    _fault("sign")
    _visible(shard.path)
    parts = []
    for ids, texts in shards_io.text_groups(shard):
        n_sh, sigs = signatures_arrow(texts, cfg, 1, docs=shard.n_docs)
        parts.append(shards_io.signature_table(ids, n_sh, sigs))
    shards_io.write_table(pa.concat_tables(parts), out, row_group_rows=_sig_rows(cfg), hashes=True)
    return shard.fingerprint, out, shard.n_docs


def _sig_rows(cfg: DedupConfig) -> int:
    return max(1_000, 8_000_000 // (cfg.num_perm * 4))  # ~8 MB of signatures per row group


def band_task(sig_path: str, shard_no: int, bands: int, rows: int, excluded_path: str, parts: int,
              out_dir: str, fast: bool) -> tuple[int, int]:
    """Band keys of one shard's signatures -> one file per partition; (rows written, empty documents).
    `excluded_path`: the exact duplicates that are dropped (sorted doc ids), which take no part."""
    _fault("band")
    _visible(sig_path)
    excluded = shards_io.int_columns(excluded_path, ["doc_id"])[0].astype(np.int64)
    acc: list[tuple[np.ndarray, ...]] = []
    empty = 0
    for ids, n_sh, sigs in shards_io.signature_batches(sig_path, 50_000):
        empty += int((n_sh == 0).sum())
        acc.append(band_rows(ids, n_sh, sigs, bands, rows, excluded, fast))
    band = np.concatenate([a[0] for a in acc]) if acc else np.empty(0, np.uint16)
    key = np.concatenate([a[1] for a in acc]) if acc else np.empty(0, np.uint64)
    doc = np.concatenate([a[2] for a in acc]) if acc else np.empty(0, np.int64)
    _split(pa.table({"band": arrow(band), "key": arrow(key), "doc_id": arrow(doc)}), partition_of(key, parts), parts,
           lambda p: Path(out_dir) / f"p{p:05d}-s{shard_no:05d}.parquet", hashes=True)
    return len(doc), empty


def pairs_task(p: int, band_dir: str, firsts: np.ndarray, out_dir: str, need_dir: str) -> int:
    """Candidate pairs of partition `p` -> one file per shard of each pair's first document (the
    verification task), and for each shard the documents of it that those tasks need."""
    _fault("pairs")
    cols = _columns(sorted(Path(band_dir).glob(f"p{p:05d}-s*.parquet")), ["band", "key", "doc_id"])
    if cols is None:
        return 0
    cand = bucket_pairs(*cols)
    del cols
    g = group_of(cand[:, 0], firsts)
    _split(pa.table({"a": arrow(cand[:, 0]), "b": arrow(cand[:, 1])}), g, len(firsts),
           lambda s: Path(out_dir) / f"v{s:05d}-p{p:05d}.parquet")
    # which verification task needs each document: both ends of a pair go to the task of its first
    doc = np.concatenate((cand[:, 0], cand[:, 1]))
    target = np.concatenate((g, g))
    _split(pa.table({"doc_id": arrow(doc), "target": arrow(target)}), group_of(doc, firsts), len(firsts),
           lambda t: Path(need_dir) / f"t{t:05d}-p{p:05d}.parquet")
    return len(cand)


def _split(table: pa.Table, key: np.ndarray, n: int, path_of, hashes: bool = False) -> None:
    """One file per value of `key` (0..n-1) with that value's rows, in their order; none for an
    empty one."""
    order = np.argsort(key, kind="stable")
    cuts = np.searchsorted(key[order], np.arange(n + 1))
    for k in range(n):
        if cuts[k + 1] > cuts[k]:
            shards_io.write_table(table.take(arrow(order[cuts[k]:cuts[k + 1]])), path_of(k), hashes=hashes)


def _columns(files: list, names: list[str]) -> list[np.ndarray] | None:
    """The named columns of the files, each concatenated in file order (None: no files)."""
    cols = [shards_io.int_columns(str(f), names) for f in files]
    if not cols:
        return None
    return [np.concatenate([c[i] for c in cols]) for i in range(len(names))]


# Characters of text shingled at once by a gather task (the sets of a batch are written before the next)
GATHER_CHARS = 8_000_000


def gather_task(t: int, need_dir: str, shard: Shard, cfg: DedupConfig, out_dir: str) -> int:
    """The shingle sets of shard `t`'s documents that verification needs, each read once from the
    shard and written to every verification task that needs it (`sets/v<task>-t<t>-b<batch>`):
    a shuffle join, so the texts are read once in all, not once per task."""
    _fault("gather")
    cols = _columns(sorted(Path(need_dir).glob(f"t{t:05d}-p*.parquet")), ["doc_id", "target"])
    if cols is None:
        return 0
    doc, target = cols
    code = np.unique(doc.astype(np.int64) * (1 << 20) + target)  # unique (document, task), by document
    doc, target = code >> 20, code & ((1 << 20) - 1)
    docs = np.unique(doc)
    _visible(shard.path)
    reader = ShardTexts([shard])
    chars = reader.chars(docs)
    lo = 0
    for b, hi in enumerate(_char_batches(chars, GATHER_CHARS)):
        part = docs[lo:hi]
        hashes, offsets = shingle_sets_flat(reader.texts(part), cfg, len(docs))
        sel = (doc >= part[0]) & (doc <= part[-1])
        rows = np.searchsorted(part, doc[sel])
        for v in np.unique(target[sel]).tolist():
            mine = rows[target[sel] == v]
            values, offs = take_segments(hashes, offsets, mine)
            sets = pa.LargeListArray.from_arrays(arrow(offs), arrow(values))
            shards_io.write_table(pa.table({"doc_id": arrow(part[mine]), "set": sets}),
                                  Path(out_dir) / f"v{v:05d}-t{t:05d}-b{b:05d}.parquet", hashes=True)
        lo = hi
    return len(docs)


def _char_batches(chars: np.ndarray, limit: int) -> list[int]:
    """Ends of consecutive batches of at most `limit` characters (a longer document alone)."""
    ends, held = [], 0
    for i, c in enumerate(chars.tolist()):
        if held and held + c > limit:
            ends.append(i)
            held = 0
        held += c
    return [*ends, len(chars)]


def verify_task(s: int, cand_dir: str, sets_dir: str, cfg: DedupConfig, out: str) -> tuple[int, int]:
    """Every candidate whose first document is in shard `s`, checked by exact Jaccard of the
    shingle sets the gather tasks sent. -> `out` (a, b, similarity); (candidates, verified)."""
    _fault("verify")
    cols = _columns(sorted(Path(cand_dir).glob(f"v{s:05d}-p*.parquet")), ["a", "b"])
    cand = unique_id_pairs(np.stack(cols, axis=1)) if cols else np.empty((0, 2), np.int64)
    ids, values, offsets = shards_io.read_sets(sorted(Path(sets_dir).glob(f"v{s:05d}-t*.parquet")))
    order = np.argsort(ids, kind="stable")
    values, offsets = take_segments(values, offsets, order)
    ids = ids[order]
    edges, sims = verify_flat(cand, np.searchsorted(ids, cand), values, offsets, cfg.threshold, jit=kernel.AVAILABLE)
    shards_io.write_table(pa.table({"a": arrow(edges[:, 0].astype(np.int64)), "b": arrow(edges[:, 1].astype(np.int64)),
                                    "similarity": arrow(sims.astype(np.float64))}), out)
    return len(cand), len(edges)


def arcs_task(edge_path: str, k: int, parts: int, level_dir: str, edge_dir: str) -> int:
    """One shard's verified edges -> arcs both ways by partition of their source node (level 0 of
    large-star/small-star), and the edges with their similarity by partition of their first node."""
    _fault("components")
    a, b, sim = shards_io.int_columns(edge_path, ["a", "b", "similarity"])
    for p, (u, v) in enumerate(arcs_by_partition(a, b, parts)):
        if len(u):
            shards_io.write_table(pa.table({"u": arrow(u), "v": arrow(v)}), Path(level_dir) / f"p{p:05d}-s{k:05d}.parquet")
    _split(pa.table({"a": arrow(a), "b": arrow(b), "similarity": arrow(sim)}), a % parts, parts,
           lambda p: Path(edge_dir) / f"p{p:05d}-s{k:05d}.parquet")
    return len(a)


def _arcs(level_dir: str, p: int) -> tuple[np.ndarray, np.ndarray]:
    cols = _columns(sorted(Path(level_dir).glob(f"p{p:05d}-s*.parquet")), ["u", "v"])
    return (cols[0], cols[1]) if cols else (np.empty(0, np.int64), np.empty(0, np.int64))


def star_task(step: str, p: int, parts: int, level_dir: str, out_dir: str) -> bool:
    """One large-star or small-star step of partition `p`: its arcs -> the new edges' arcs, by
    partition of their source node; whether anything changed."""
    _fault("components")
    u, v = _arcs(level_dir, p)
    a, b, changed = (large_star if step == "large" else small_star)(u, v)
    for q, (nu, nv) in enumerate(arcs_by_partition(a, b, parts)):
        if len(nu):
            shards_io.write_table(pa.table({"u": arrow(nu), "v": arrow(nv)}), Path(out_dir) / f"p{q:05d}-s{p:05d}.parquet")
    return changed


def label_task(p: int, parts: int, level_dir: str, edge_dir: str, out_dir: str) -> int:
    """Partition `p`'s converged stars -> each node's cluster id; its edges (first node in `p`)
    -> one file per partition of their cluster id."""
    _fault("components")
    nodes, lab = labels(*_arcs(level_dir, p))
    cols = _columns(sorted(Path(edge_dir).glob(f"p{p:05d}-s*.parquet")), ["a", "b", "similarity"])
    if cols is None:
        return 0
    a, b, sim = cols
    cluster = lab[np.searchsorted(nodes, a)]
    _split(pa.table({"cluster": arrow(cluster), "a": arrow(a), "b": arrow(b), "similarity": arrow(sim)}),
           cluster % parts, parts, lambda k: Path(out_dir) / f"q{k:05d}-p{p:05d}.parquet")
    return len(nodes)


def decide_task(q: int, cluster_dir: str, rank_path: str | None, out: str) -> int:
    """keep/drop for the whole clusters of partition `q` by `dedup.cluster.decide` (rank: the
    client's file, or the doc id for the policy 'first')."""
    _fault("decide")
    cols = _columns(sorted(Path(cluster_dir).glob(f"q{q:05d}-p*.parquet")), ["a", "b", "similarity"])
    a, b, sim = cols or (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    order = np.lexsort((b, a))
    edges, sims = np.stack((a[order], b[order]), axis=1).astype(np.int64), sim[order].astype(np.float64)
    nodes = np.unique(edges.ravel())
    rank = shards_io.values_for(rank_path, nodes, "rank") if rank_path else nodes.astype(np.float64)
    dec = decide(edges, sims, dict(zip(nodes.tolist(), rank.tolist())))
    shards_io.write_table(pa.table({"doc_id": arrow(dec.doc_id), "cluster_id": arrow(dec.cluster_id),
                                    "keep": pa.array(dec.keep), "matched_doc": arrow(dec.matched_doc),
                                    "similarity": arrow(dec.similarity)}), out)
    return len(dec.doc_id)


def worker_peak_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the client ------------------------------------------------------------------------------

def _gather(client, futures: list, stage: str, progress: Progress | None, weights: list[int] | None = None) -> list:
    """Results of the futures in their order, advancing `stage` as each finishes; the list is
    emptied."""
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
    # Release the futures: their results are files and small counts, and a finished task still
    # held here is recomputed by Dask when the worker that ran it dies later.
    futures.clear()
    return out


def partitions_for(n_docs: int, bands: int, partitions: int = 0) -> int:
    return partitions or max(1, math.ceil(n_docs * bands / PARTITION_ROWS))


def dedup_distributed(db: str | Path | None, corpus: str, cfg: DedupConfig, client, work_dir: str | Path | None = None,
                      progress: Progress | None = None, partitions: int = 0, shard_docs: int = SHARD_DOCS,
                      group_docs: int = GROUP_DOCS, pairs_out: Path | None = None, force: bool = False,
                      res: Resources | None = None, keep_files: bool = False, components: str = "auto") -> dict:
    """`dedup_corpus` on a Dask cluster (`client`): the same decisions, pairs and cluster ids,
    the same run-log inputs (a run with the same documents and config, on either path, is a
    no-op), with every per-document stage on the workers and the DuckDB file open only here.
    `components`: auto (on the client up to LOCAL_EDGES verified edges, else on the workers),
    local or dask."""
    if components not in ("auto", "local", "dask"):
        raise ValueError(f"components must be auto, local or dask, got {components!r}")
    if pairs_out:
        check_file(pairs_out, force=force, what="pairs file")
    res = res or Resources.default()
    sig_key = cfg.signature_key()
    chash = config_hash(cfg)
    with session(db) as con:
        docs = store.doc_table(con, corpus)
        n_docs = len(docs["doc_id"])
        if n_docs == 0:
            raise LookupError(f"no corpus named '{corpus}' (see `taomi corpora`)")
        folder = shards_io.work_folder(work_dir or f"{db_path(db).resolve()}.work")
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
                      group_docs, res, sig_key, keep_files, components)
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
         partitions: int, shard_docs: int, group_docs: int, res: Resources, sig_key: str, keep_files: bool,
         components: str) -> dict:
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
    band_dir, cand_dir, need_dir, sets_dir, edge_dir = (str(work / d) for d in ("band", "cand", "need", "sets", "edges"))
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
        futs = [client.submit(pairs_task, p, band_dir, firsts, cand_dir, need_dir, pure=False) for p in range(parts)]
        _gather(client, futs, "pairs", progress)
        seconds["pairs"] = time.perf_counter() - t

        t = time.perf_counter()
        futs = [client.submit(gather_task, s.shard_no, need_dir, s, cfg, sets_dir, pure=False) for s in shards]
        _gather(client, futs, "gather", progress, [s.n_docs for s in shards])
        seconds["gather"] = time.perf_counter() - t

        t = time.perf_counter()
        futs = [client.submit(verify_task, s.shard_no, cand_dir, sets_dir, cfg,
                              str(Path(edge_dir) / f"e{s.shard_no:05d}.parquet"), pure=False) for s in shards]
        checked = _gather(client, futs, "verify", progress, [s.n_docs for s in shards])
        seconds["verify"] = time.perf_counter() - t
        shuffle_bytes = sum(_folder_bytes(Path(d)) for d in (band_dir, cand_dir, need_dir, sets_dir))

        t = time.perf_counter()
        n_edges = sum(c[1] for c in checked)
        where = components if components != "auto" else ("local" if n_edges <= LOCAL_EDGES else "dask")
        if where == "local":
            edges, sims = _read_edges(edge_dir, len(shards))
            nodes = np.unique(edges.ravel())
            at = np.searchsorted(docs["doc_id"], nodes)
            dec = decide(edges, sims, dict(zip(nodes.tolist(), rank[at].tolist())))
            rounds = 0
        else:
            dec, rounds = _components_on_dask(client, work, edge_dir, len(shards), parts, cfg, docs, rank, progress)
            edges, sims = _read_edges(edge_dir, len(shards))
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
        "components": where, "component_rounds": rounds,
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


def _components_on_dask(client, work: Path, edge_dir: str, n_shards: int, parts: int, cfg: DedupConfig, docs: dict,
                        rank: np.ndarray, progress: Progress | None) -> tuple[Decisions, int]:
    """Components by large-star/small-star and keep/drop per cluster, on the workers: (the
    decisions, rounds)."""
    level = work / "cc" / "L0000"
    by_node = str(work / "cc" / "edges")
    futs = [client.submit(arcs_task, str(Path(edge_dir) / f"e{k:05d}.parquet"), k, parts, str(level), by_node,
                          pure=False) for k in range(n_shards)]
    _gather(client, futs, "components", progress)
    rounds, n_level = 0, 0
    while True:
        rounds += 1
        changed = False
        for step in ("large", "small"):
            n_level += 1
            out = work / "cc" / f"L{n_level:04d}"
            futs = [client.submit(star_task, step, p, parts, str(level), str(out), pure=False) for p in range(parts)]
            changed |= any(_gather(client, futs, "components", None))
            shutil.rmtree(level, ignore_errors=True)  # the next level is complete: the previous one is spent
            level = out
        if progress:
            progress("components", rounds, rounds + int(changed))
        if not changed:
            break
        if rounds >= MAX_ROUNDS:
            raise RuntimeError(f"large-star/small-star did not converge in {MAX_ROUNDS} rounds")
    by_cluster = str(work / "cc" / "clusters")
    futs = [client.submit(label_task, p, parts, str(level), by_node, by_cluster, pure=False) for p in range(parts)]
    _gather(client, futs, "components", None)
    rank_path = None
    if cfg.policy != "first":
        rank_path = str(work / "rank.parquet")
        shards_io.write_table(pa.table({"doc_id": arrow(docs["doc_id"]), "rank": arrow(rank.astype(np.float64))}),
                              rank_path, row_group_rows=65_536)
    out = work / "decisions"
    futs = [client.submit(decide_task, q, by_cluster, rank_path, str(out / f"d{q:05d}.parquet"), pure=False)
            for q in range(parts)]
    _gather(client, futs, "decide", progress)
    cols = [shards_io.read_table(str(out / f"d{q:05d}.parquet")) for q in range(parts)]
    t = pa.concat_tables(cols)
    order = np.argsort(np.asarray(t.column("doc_id")), kind="stable")

    def col(name: str, dtype) -> np.ndarray:
        return np.asarray(t.column(name).to_numpy(), dtype=dtype)[order]

    return Decisions(col("doc_id", np.int64), col("cluster_id", np.int64), col("keep", bool),
                     col("matched_doc", np.int64), col("similarity", np.float64)), rounds


def _read_edges(edge_dir: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every verified edge (a, b) and its similarity, sorted by (a, b)."""
    cols = _columns([Path(edge_dir) / f"e{k:05d}.parquet" for k in range(n)], ["a", "b", "similarity"])
    if cols is None:
        return np.empty((0, 2), np.int64), np.empty(0)
    edges = np.stack((cols[0], cols[1]), axis=1).astype(np.int64)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return edges[order], cols[2].astype(np.float64)[order]


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.parquet")) if path.is_dir() else 0

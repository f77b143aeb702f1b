"""band and verify, spread over partitions: the pure steps of the distributed path (flows/dask_dedup.py).

Each shard's band keys become (band, key, doc id) rows and go to partition `key % parts`, so every
document of a bucket (same band, same key) lands in the same partition; each partition then
finds its buckets and pairs their members by `pairs_from_buckets`, the rule of the single-machine
path (all pairs up to 64 members, sorted neighbours and the first member beyond). The union of the
partitions' pairs is the single-machine candidate set exactly (tested).
"""

from __future__ import annotations

import numpy as np

from dedup.bands import band_keys, pairs_from_buckets, unique_id_pairs


def member(ids: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """ids that are in sorted_set (a sorted array)."""
    if len(sorted_set) == 0:
        return np.zeros(len(ids), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, ids), len(sorted_set) - 1)
    return sorted_set[pos] == ids


def band_rows(ids: np.ndarray, n_shingles: np.ndarray, sigs: np.ndarray, bands: int, rows: int,
              excluded: np.ndarray, jit: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(band, key, doc id) rows of the documents that take part in banding: they have shingles and
    are not in `excluded` (sorted: exact duplicates that are dropped)."""
    keep = (n_shingles > 0) & ~member(ids, excluded)
    keys = band_keys(sigs[keep], bands, rows, jit=jit)
    n = int(keep.sum())
    return (np.tile(np.arange(bands, dtype=np.uint16), n), keys.ravel(),
            np.repeat(ids[keep].astype(np.int64), bands))


def partition_of(keys: np.ndarray, parts: int) -> np.ndarray:
    """The partition of each band key (keys are already well-mixed 64-bit hashes)."""
    return (keys % np.uint64(parts)).astype(np.int64)


def bucket_pairs(band: np.ndarray, key: np.ndarray, doc_id: np.ndarray) -> np.ndarray:
    """Unique (a, b), a < b, doc ids that share a (band, key) bucket among these rows."""
    if len(doc_id) < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = np.lexsort((doc_id, key, band))
    b, k = band[order], key[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (b[1:] != b[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(new)
    lens = np.diff(np.append(starts, len(order)))
    multi = lens > 1
    if not multi.any():
        return np.empty((0, 2), dtype=np.int64)
    members = doc_id[order]
    take = np.repeat(multi, lens)  # the rows of buckets with two or more members
    offsets = np.concatenate(([0], np.cumsum(lens[multi])))
    return unique_id_pairs(pairs_from_buckets(members[take], offsets))


def take_segments(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of the segments `rows` (in that order) of a flat array cut at `offsets`."""
    starts, ends = offsets[rows], offsets[np.asarray(rows) + 1]
    lens = ends - starts
    out_off = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=out_off[1:])
    idx = np.repeat(starts - out_off[:-1], lens) + np.arange(out_off[-1])
    return values[idx], out_off


def group_of(ids: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Index of the range each id falls in, for ranges starting at `firsts` (ascending)."""
    return np.searchsorted(firsts, ids, "right") - 1

"""band: LSH bands x rows for a threshold, band keys, and candidate pairs by sorting keys.

Recall-heavy by design: datasketch's `_optimal_param(0.8, 128)` picks 9x13, which finds only ~40%
of pairs at J = 0.8; every candidate is verified by exact Jaccard later, so false positives cost
only verification time.
"""

from __future__ import annotations

import numpy as np

from dedup.shingle import _splitmix

U64 = np.uint64
_ROW_MULT = np.array([(0xD6E8FEB86659FD93 * (2 * k + 1)) % (1 << 64) | 1 for k in range(1024)], dtype=U64)
MAX_BUCKET_ALL_PAIRS = 64  # larger buckets: each member paired with its sorted neighbours only


def collision_probability(j: float, bands: int, rows: int) -> float:
    """P(a pair of Jaccard j shares at least one band) = 1 - (1 - j^r)^b (Leskovec et al., MMDS 3.4)."""
    return 1.0 - (1.0 - j ** rows) ** bands


def choose_bands(threshold: float, num_perm: int, recall_at_threshold: float = 0.995) -> tuple[int, int]:
    """The most selective (bands, rows) whose candidate probability at `threshold` is >= target."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if collision_probability(threshold, bands, rows) >= recall_at_threshold:
            return bands, rows
    return num_perm, 1


def band_keys(sigs: np.ndarray, bands: int, rows: int, jit: bool = False) -> np.ndarray:
    """(n_docs, bands) uint64 keys, one per band of `rows` signature values (`jit`: by the
    compiled twin in dedup.kernel, same keys)."""
    if jit:
        from dedup.kernel import _band_keys

        return _band_keys(np.ascontiguousarray(sigs, dtype=np.uint32), bands, rows, _ROW_MULT)
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=U64)
    for b in range(bands):
        block = sigs[:, b * rows:(b + 1) * rows].astype(U64)
        acc = np.full(n, U64(b), dtype=U64)
        for r in range(rows):
            acc = _splitmix(acc ^ (block[:, r] * _ROW_MULT[r]))
        keys[:, b] = acc
    return keys


def _pairs_in_runs(order: np.ndarray, run_starts: np.ndarray, run_lens: np.ndarray) -> np.ndarray:
    out = []
    for size in np.unique(run_lens):
        starts = run_starts[run_lens == size]
        if size <= MAX_BUCKET_ALL_PAIRS:
            i, j = np.triu_indices(size, 1)
        else:  # a huge bucket (boilerplate): neighbours in sorted order, and the first member
            i = np.concatenate((np.arange(size - 1), np.zeros(size - 2, dtype=np.int64)))
            j = np.concatenate((np.arange(1, size), np.arange(2, size)))
        a = order[starts[:, None] + i[None, :]].ravel()
        b = order[starts[:, None] + j[None, :]].ravel()
        out.append(np.stack((np.minimum(a, b), np.maximum(a, b)), axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def candidate_pairs_from_keys(keys: np.ndarray, doc_ids: np.ndarray, jit: bool = False) -> np.ndarray:
    """Unique (a, b), a < b, doc ids sharing at least one band key. `keys` (n, bands) rows belong
    to `doc_ids` (ascending: members of a bucket are then paired in id order). `jit`: buckets by
    the compiled hash grouping in dedup.kernel instead of one argsort per band (same pairs)."""
    n = len(doc_ids)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    if jit:
        from dedup.kernel import _bucket_pairs

        return doc_ids[unique_pairs(_bucket_pairs(np.ascontiguousarray(keys), MAX_BUCKET_ALL_PAIRS), n)]
    found = []
    for b in range(keys.shape[1]):
        k = keys[:, b]
        order = np.argsort(k, kind="stable")
        ks = k[order]
        same = ks[1:] == ks[:-1]
        if not same.any():
            continue
        edges = np.diff(np.concatenate(([0], same.astype(np.int8), [0])))
        run_starts = np.flatnonzero(edges == 1)
        run_lens = np.flatnonzero(edges == -1) - run_starts + 1
        found.append(_pairs_in_runs(order, run_starts, run_lens))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return doc_ids[unique_pairs(np.concatenate(found), n)]


def unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Distinct (i, j) rows of non-negative ints below n, sorted."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    code = np.unique(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
    return np.stack((code // n, code % n), axis=1)


def candidate_pairs(sigs: np.ndarray, bands: int, rows: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j), i < j, row indices of documents sharing at least one band key.

    `mask` excludes rows (documents without shingles share the all-max signature).
    """
    idx = np.arange(sigs.shape[0]) if mask is None else np.flatnonzero(mask)
    return candidate_pairs_from_keys(band_keys(sigs[idx], bands, rows), idx)


def pairs_from_buckets(members: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(a, b), a < b, doc ids paired inside each bucket members[offsets[i]:offsets[i+1]] (ascending),
    by the same rule as the in-memory path (all pairs, or sorted neighbours in a huge bucket)."""
    if len(offsets) < 2:
        return np.empty((0, 2), dtype=np.int64)
    return _pairs_in_runs(members, offsets[:-1], np.diff(offsets))


def unique_id_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct rows of (a, b) doc-id pairs, sorted."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    n = int(pairs.max()) + 1
    if n < 3_000_000_000:  # a * n + b fits int64
        return unique_pairs(pairs, n)
    return np.unique(pairs, axis=0)

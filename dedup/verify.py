"""verify: exact Jaccard of candidate pairs on their shingle sets."""

from __future__ import annotations

import numpy as np


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two sorted unique arrays (two empty sets: 0, never a duplicate)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def verify_flat(pairs: np.ndarray, rows: np.ndarray, hashes: np.ndarray, offsets: np.ndarray,
                threshold: float, jit: bool = True, sorted_sets: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(verified pairs, their similarities): the candidates whose exact Jaccard >= threshold. The
    sets are one flat array of hashes per segment, sorted and unique (or, `sorted_sets=False`,
    raw shingle lists, compiled path only); `rows[i]` gives the segments of `pairs[i]`. Every
    candidate is checked: an unverified band collision is never an edge."""
    from dedup import kernel

    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.empty(0, dtype=np.float64)
    if not sorted_sets:
        sims = kernel.jaccard_pairs(hashes, offsets, rows[:, 0], rows[:, 1])
    elif jit and kernel.AVAILABLE:
        sims = kernel.jaccard_rows(hashes, offsets, rows[:, 0], rows[:, 1])
    else:
        sims = np.fromiter((jaccard(hashes[offsets[a]:offsets[a + 1]], hashes[offsets[b]:offsets[b + 1]])
                            for a, b in rows.tolist()), dtype=np.float64, count=len(rows))
    keep = sims >= threshold - 1e-12
    return pairs[keep], sims[keep]

"""exact: documents whose content hash (md5 of the text's bytes) is equal; one survivor per group by policy."""

from __future__ import annotations

import numpy as np


def exact_duplicates(doc_ids: np.ndarray, hashes: np.ndarray, rank: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(dropped doc ids, the kept doc each duplicates). `rank`: lower is preferred."""
    if len(doc_ids) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.lexsort((doc_ids, rank, hashes))
    h = hashes[order]
    first = np.concatenate(([True], h[1:] != h[:-1]))
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(h)), 0))
    keeper = doc_ids[order][group_start]
    dropped = ~first
    return doc_ids[order][dropped], keeper[dropped]

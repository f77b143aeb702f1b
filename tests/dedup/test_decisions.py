"""The largest clusters of a run, from its decision columns."""

from __future__ import annotations

import numpy as np

from dedup.decisions import largest_clusters


def test_largest_first_ties_by_cluster_id_representative_is_first_kept():
    decisions = {  # cluster 7: 3 docs (kept: 9 and 4), cluster 2: 3 docs, cluster 5: 2 docs with none kept
        "doc_id": np.array([9, 4, 11, 2, 3, 8, 5, 6, 20]),
        "keep": np.array([True, True, False, True, False, False, False, False, True]),
        "cluster_id": np.array([7, 7, 7, 2, 2, 2, 5, 5, -1]),
    }
    assert largest_clusters(decisions) == [(2, 3, 2), (7, 3, 4)]
    assert largest_clusters(decisions, limit=1) == [(2, 3, 2)]
    empty = {k: v[:0] for k, v in decisions.items()}
    assert largest_clusters(empty) == []

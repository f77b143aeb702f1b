"""The final keep/drop decision per document and the duplicate pairs, merged from the exact stage
(dropped ids and the copy each matches) and the near stage (cluster decisions, verified edges)."""

from __future__ import annotations

import numpy as np


def merge_decisions(ex_drop: np.ndarray, ex_keep: np.ndarray, dec, edges: np.ndarray,
                    similarities: np.ndarray) -> tuple[dict, dict]:
    """(decisions, pairs) as column dicts. An exact group's kept copy that no near cluster
    covers is recorded as kept (its group's representative); every exact drop names its keeper."""
    in_cluster = set(dec.doc_id.tolist())
    exact_keepers = np.unique(ex_keep)
    extra_keep = np.array([d for d in exact_keepers.tolist() if d not in in_cluster], dtype=np.int64)
    decisions = {
        "doc_id": np.concatenate((ex_drop, extra_keep, dec.doc_id)),
        "keep": np.concatenate((np.zeros(len(ex_drop), bool), np.ones(len(extra_keep), bool), dec.keep)),
        "reason": np.array(["exact duplicate"] * len(ex_drop) + ["kept: exact-group representative"] * len(extra_keep)
                           + ["kept: cluster representative" if k else "near duplicate" for k in dec.keep.tolist()],
                           dtype=object),
        "matched_doc": np.concatenate((ex_keep, np.full(len(extra_keep), -1), dec.matched_doc)),
        "similarity": np.concatenate((np.ones(len(ex_drop)), np.full(len(extra_keep), np.nan), dec.similarity)),
        "cluster_id": np.concatenate((ex_keep, extra_keep, dec.cluster_id)),
    }
    pairs = {
        "doc_a": np.concatenate((ex_keep, edges[:, 0] if len(edges) else np.empty(0, np.int64))),
        "doc_b": np.concatenate((ex_drop, edges[:, 1] if len(edges) else np.empty(0, np.int64))),
        "similarity": np.concatenate((np.ones(len(ex_drop)), similarities)),
        "kind": np.array(["exact"] * len(ex_drop) + ["near"] * len(edges), dtype=object),
    }
    return decisions, pairs


def largest_clusters(decisions: dict[str, np.ndarray], limit: int = 5) -> list[tuple[int, int, int]]:
    """(cluster id, size, representative doc id) of the `limit` largest clusters that kept a
    document, largest first (ties: the lower cluster id); the representative is the cluster's
    first kept document. From the decision columns of `merge_decisions` (no query)."""
    cid, keep, doc = decisions["cluster_id"], decisions["keep"], decisions["doc_id"]
    valid = cid >= 0
    ids, sizes = np.unique(cid[valid], return_counts=True)
    kept = valid & keep
    out: list[tuple[int, int, int]] = []
    for i in np.lexsort((ids, -sizes)).tolist():
        members = doc[kept & (cid == ids[i])]
        if len(members):
            out.append((int(ids[i]), int(sizes[i]), int(members.min())))
            if len(out) == limit:
                break
    return out

"""cluster: connected components of verified edges, and keep/drop decisions per policy.

Inside a cluster, documents are visited in policy order (first seen, longest, highest quality);
a document is dropped only if it has a verified edge to a document already kept, and its
`matched_doc` is that kept document. So a chain A~B~C with A !~ C keeps A and C: no document
is removed without a verified duplicate that survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Decisions:
    doc_id: np.ndarray       # documents that are in a cluster of size >= 2
    cluster_id: np.ndarray   # smallest doc id of the cluster
    keep: np.ndarray         # bool
    matched_doc: np.ndarray  # kept document it duplicates (-1 for kept documents)
    similarity: np.ndarray   # Jaccard to matched_doc (nan for kept)


def components(doc_ids: np.ndarray, edges: np.ndarray) -> dict[int, np.ndarray]:
    """Clusters (size >= 2) of the verified edge graph: cluster id (min doc id) -> member ids."""
    if len(edges) == 0:
        return {}
    nodes, inv = np.unique(edges.ravel(), return_inverse=True)
    inv = inv.reshape(-1, 2)
    g = coo_matrix((np.ones(len(inv)), (inv[:, 0], inv[:, 1])), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(g, directed=False)
    order = np.argsort(labels, kind="stable")
    groups = np.split(nodes[order], np.flatnonzero(np.diff(labels[order])) + 1)
    return {int(g.min()): np.sort(g) for g in groups}


def decide(edges: np.ndarray, sims: np.ndarray, rank: dict[int, float]) -> Decisions:
    """Keep/drop for every clustered document. `rank[doc]`: lower is preferred (policy order)."""
    clusters = components(np.array([]), edges)
    adj: dict[int, dict[int, float]] = {}
    for (a, b), s in zip(edges.tolist(), sims.tolist()):
        adj.setdefault(a, {})[b] = s
        adj.setdefault(b, {})[a] = s
    out_doc, out_cl, out_keep, out_match, out_sim = [], [], [], [], []
    for cid, members in clusters.items():
        kept: list[int] = []
        for d in sorted(members.tolist(), key=lambda x: (rank[x], x)):
            nbrs = adj.get(d, {})
            best = max(((nbrs[k], k) for k in kept if k in nbrs), default=None)
            out_doc.append(d)
            out_cl.append(cid)
            if best is None:
                kept.append(d)
                out_keep.append(True)
                out_match.append(-1)
                out_sim.append(np.nan)
            else:
                out_keep.append(False)
                out_match.append(best[1])
                out_sim.append(best[0])
    return Decisions(np.array(out_doc, dtype=np.int64), np.array(out_cl, dtype=np.int64),
                     np.array(out_keep, dtype=bool), np.array(out_match, dtype=np.int64),
                     np.array(out_sim, dtype=np.float64))

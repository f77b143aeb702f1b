"""cluster, spread over partitions: connected components by large-star / small-star.

Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii, "Connected Components in MapReduce and
Beyond" (SoCC 2014), the algorithm text-dedup runs on Spark. Each step is a group-by on one node:
a partition holds the arcs (u -> v) of its nodes (u % parts == p) and rewrites them alone.

- large-star: every node u links each larger neighbour v to m(u) = min(u, neighbours of u);
- small-star: every node u links itself and each smaller neighbour to m = min(u, smaller neighbours).

Alternating the two ends in stars (each component: its smallest node linked to every other) in
O(log n) rounds. A large-star changed nothing when every node with a larger neighbour is its own
minimum; a small-star, when no node has two smaller neighbours: each partition reports that for
its nodes, and the run stops after a round where no partition changed. The label of a node is
then min(itself, its neighbours): the smallest doc id of its component, the cluster id of
`dedup.cluster.components`. Tested against scipy's connected_components.
"""

from __future__ import annotations

import numpy as np

EMPTY = np.empty(0, dtype=np.int64)


def arcs_by_partition(a: np.ndarray, b: np.ndarray, parts: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The arcs of undirected edges (a, b), both ways, as (u, v) arrays per partition of u."""
    u = np.concatenate((a, b)).astype(np.int64)
    v = np.concatenate((b, a)).astype(np.int64)
    p = u % parts
    order = np.argsort(p, kind="stable")
    cuts = np.searchsorted(p[order], np.arange(parts + 1))
    return [(u[order[cuts[k]:cuts[k + 1]]], v[order[cuts[k]:cuts[k + 1]]]) for k in range(parts)]


def _unique_arcs(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(u) == 0:
        return EMPTY, EMPTY
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    keep = np.ones(len(u), dtype=bool)
    keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[keep], v[keep]


def _min_per_node(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes, m = min(node, its neighbours v), index of each arc's node) for arcs sorted by u."""
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    nodes = u[starts]
    m = np.minimum(nodes, np.minimum.reduceat(v, starts))
    at = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(u)]))
    return nodes, m, at


def large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(a, b, changed): the edges a partition's arcs (u -> v) become (each undirected edge is
    rewritten at its smaller end, so only arcs with v > u emit)."""
    u, v = _unique_arcs(u, v)
    if len(u) == 0:
        return EMPTY, EMPTY, False
    _, m, at = _min_per_node(u, v)
    up = v > u
    a, b = v[up], m[at][up]
    return a, b, bool((b != u[up]).any())


def small_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(a, b, changed): each node u links itself and its smaller neighbours to their minimum (each
    undirected edge is rewritten at its larger end, so only arcs with v < u take part)."""
    u, v = _unique_arcs(u, v)
    down = v < u
    u, v = u[down], v[down]
    if len(u) == 0:
        return EMPTY, EMPTY, False
    nodes, m, at = _min_per_node(u, v)
    counts = np.bincount(at, minlength=len(nodes))
    a = np.concatenate((v, nodes))
    b = np.concatenate((m[at], m))
    keep = a != b
    return a[keep], b[keep], bool((counts > 1).any())


def labels(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, label = min(node, neighbours)) of a partition's arcs: the component's smallest node
    once the stars have converged."""
    u, v = _unique_arcs(u, v)
    if len(u) == 0:
        return EMPTY, EMPTY
    nodes, m, _ = _min_per_node(u, v)
    return nodes, m


def components_local(a: np.ndarray, b: np.ndarray, parts: int = 1, max_rounds: int = 200
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """(nodes, labels, rounds): the whole algorithm in one process, `parts` partitions exchanged
    in memory, as the distributed path (flows.dask_dedup) exchanges them as files."""
    held = arcs_by_partition(a, b, parts)
    for rounds in range(1, max_rounds + 1):
        changed = False
        for step in (large_star, small_star):
            out = [step(u, v) for u, v in held]
            changed |= any(c for _, _, c in out)
            na = np.concatenate([o[0] for o in out]) if out else EMPTY
            nb = np.concatenate([o[1] for o in out]) if out else EMPTY
            held = arcs_by_partition(na, nb, parts)
        if not changed:
            break
    else:
        raise RuntimeError(f"large-star/small-star did not converge in {max_rounds} rounds")
    got = [labels(u, v) for u, v in held]
    nodes = np.concatenate([g[0] for g in got])
    lab = np.concatenate([g[1] for g in got])
    order = np.argsort(nodes)
    return nodes[order], lab[order], rounds

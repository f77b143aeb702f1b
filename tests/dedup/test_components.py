"""Large-star / small-star against scipy's connected components, on random graphs of every shape."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.cluster import components
from dedup.components import components_local, large_star, small_star


def _reference(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
    """node -> cluster id (smallest member), by scipy (dedup.cluster.components)."""
    out = {}
    for cid, members in components(np.array([]), np.stack((a, b), axis=1)).items():
        for m in members.tolist():
            out[m] = cid
    return out


edges = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400)), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(edges=edges, parts=st.integers(1, 7))
def test_labels_equal_scipy_components(edges, parts):
    e = np.array([(min(x, y), max(x, y)) for x, y in edges if x != y], dtype=np.int64).reshape(-1, 2)
    if len(e) == 0:
        return
    nodes, lab, _ = components_local(e[:, 0], e[:, 1], parts)
    assert dict(zip(nodes.tolist(), lab.tolist())) == _reference(e[:, 0], e[:, 1])


def test_long_chains_and_big_stars_converge_in_few_rounds():
    rng = np.random.default_rng(3)
    ids = rng.permutation(200_000)[:20_000]  # a path through 20k nodes in random id order
    a, b = np.minimum(ids[:-1], ids[1:]), np.maximum(ids[:-1], ids[1:])
    star = np.arange(300_000, 310_000)  # a star centred on its largest node
    a = np.concatenate((a, star[:-1]))
    b = np.concatenate((b, np.full(len(star) - 1, star[-1])))
    nodes, lab, rounds = components_local(a, b, parts=5)
    assert rounds <= 40
    ref = _reference(a, b)
    assert dict(zip(nodes.tolist(), lab.tolist())) == ref and len(set(ref.values())) == 2


def test_steps_report_no_change_on_a_star():
    u = np.array([1, 1, 1, 5, 7, 9])
    v = np.array([5, 7, 9, 1, 1, 1])
    assert large_star(u, v)[2] is False and small_star(u, v)[2] is False
    u2, v2 = np.array([9, 9, 5, 7]), np.array([5, 7, 9, 9])  # 9 has two smaller neighbours
    assert small_star(u2, v2)[2] is True

"""The distributed banding steps against the single-machine ones: same candidate pairs."""

from __future__ import annotations

import numpy as np
import pytest

from dedup.bands import MAX_BUCKET_ALL_PAIRS, band_keys, candidate_pairs_from_keys, unique_id_pairs
from dedup.shuffle import band_rows, bucket_pairs, group_of, member, partition_of, take_segments


def _keys(rng, n: int, bands: int, collide: float) -> np.ndarray:
    """Random band keys where about `collide` of the rows copy another row's key in that band,
    plus one huge bucket (boilerplate) in band 0."""
    keys = rng.integers(0, 2**63, size=(n, bands), dtype=np.int64).astype(np.uint64)
    for b in range(bands):
        dup = rng.random(n) < collide
        keys[dup, b] = keys[rng.integers(0, n, size=int(dup.sum())), b]
    keys[: MAX_BUCKET_ALL_PAIRS + 30, 0] = 7  # a bucket over the all-pairs limit
    return keys


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("parts", [1, 3, 8])
def test_partitioned_buckets_give_the_single_machine_pairs(seed, parts):
    rng = np.random.default_rng(seed)
    n, bands = int(rng.integers(50, 600)), int(rng.integers(1, 20))
    ids = np.sort(rng.choice(10**6, size=n, replace=False)).astype(np.int64)
    keys = _keys(rng, n, bands, collide=float(rng.uniform(0, 0.3)))
    want = candidate_pairs_from_keys(keys, ids)
    band = np.tile(np.arange(bands, dtype=np.uint16), n)
    key, doc = keys.ravel(), np.repeat(ids, bands)
    # shuffle the rows (workers hand them over in any order), then split by partition
    perm = rng.permutation(len(doc))
    band, key, doc = band[perm], key[perm], doc[perm]
    p = partition_of(key, parts)
    got = [bucket_pairs(band[p == k], key[p == k], doc[p == k]) for k in range(parts)]
    assert np.array_equal(unique_id_pairs(np.concatenate(got)), want)
    assert len(want) > 0


def test_band_rows_skip_empty_and_excluded_documents():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(6, 32), dtype=np.uint64).astype(np.uint32)
    ids = np.array([3, 5, 8, 13, 21, 34])
    n_sh = np.array([10, 0, 10, 10, 10, 10])
    band, key, doc = band_rows(ids, n_sh, sigs, 4, 8, np.array([13, 34]))
    assert sorted(set(doc.tolist())) == [3, 8, 21]
    assert np.array_equal(key.reshape(3, 4), band_keys(sigs[[0, 2, 4]], 4, 8))
    assert np.array_equal(band.reshape(3, 4), np.tile(np.arange(4), (3, 1)))


def test_member_and_groups():
    assert member(np.array([1, 2, 9]), np.array([2, 9])).tolist() == [False, True, True]
    assert member(np.array([1]), np.array([], dtype=np.int64)).tolist() == [False]
    assert group_of(np.array([0, 99, 100, 250]), np.array([0, 100, 200])).tolist() == [0, 0, 1, 2]


def test_take_segments_in_any_order():
    values = np.arange(10, 20)
    offsets = np.array([0, 3, 3, 7, 10])  # segments [10 11 12] [] [13..16] [17 18 19]
    got, offs = take_segments(values, offsets, np.array([3, 1, 0, 3]))
    assert got.tolist() == [17, 18, 19, 10, 11, 12, 17, 18, 19] and offs.tolist() == [0, 3, 3, 6, 9]
    got, offs = take_segments(values, offsets, np.array([], dtype=np.int64))
    assert got.tolist() == [] and offs.tolist() == [0]

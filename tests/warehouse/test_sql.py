"""numpy <-> Arrow conversions of the warehouse (`warehouse.sql.arrow`, `warehouse.sql.numpy`):
the same values `pa.array` / `to_numpy` give, without their pandas import."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from warehouse.sql import arrow, numpy, single

CASES = [np.array([True, False, True, True, False, False, False, False, True, True]),
         np.array(["exact duplicate", "kept: exact-group representative", "", "naïve ✓"], dtype=object),
         np.array([1.0, np.nan, -0.5]), np.arange(7, dtype=np.uint16), np.arange(12, dtype=np.int64)[::3],
         np.arange(5, dtype=np.uint64) << np.uint64(60), np.zeros(0, dtype=np.int32), np.array([], dtype=object)]


@pytest.mark.parametrize("values", CASES, ids=lambda v: f"{v.dtype}-{len(v)}")
def test_arrow_equals_pa_array(values):
    got = arrow(values)
    got.validate(full=True)
    want = pa.array(values.tolist() if values.dtype == object else values)
    assert got.null_count == 0 and got.to_pylist() == pytest.approx(want.to_pylist(), nan_ok=True) \
        if values.dtype.kind == "f" else got.to_pylist() == want.to_pylist()


def test_numpy_of_sliced_chunked_and_null_columns():
    base = arrow(np.arange(20, dtype=np.uint32))
    assert np.array_equal(numpy(base.slice(5, 6)), np.arange(5, 11))
    chunked = pa.chunked_array([arrow(np.arange(3)), arrow(np.arange(3, 8))])
    assert np.array_equal(numpy(chunked), np.arange(8)) and numpy(chunked).dtype == np.int64
    with_nulls = pa.array([1.5, None, 2.0])
    assert np.isnan(numpy(with_nulls)[1]) and numpy(with_nulls)[2] == 2.0


def test_single_keeps_one_chunk_in_place_and_joins_several():
    texts = pa.array(["a", "bb", "ccc"])
    one_chunk = pa.chunked_array([texts])
    got = single(one_chunk)
    assert got.buffers()[2].address == texts.buffers()[2].address  # no copy (combine_chunks copies)
    several = pa.chunked_array([texts, pa.array(["dddd"])])
    assert single(several).to_pylist() == ["a", "bb", "ccc", "dddd"] and single(texts) is texts

"""numpy <-> Arrow conversions of the warehouse (`warehouse.sql.arrow`, `warehouse.sql.numpy`):
the same values `pa.array` / `to_numpy` give, without their pandas import."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from warehouse.sql import arrow, bounded_runs, numpy, single

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


@pytest.mark.parametrize("seed", range(5))
def test_bounded_runs_cover_every_row_once_within_both_bounds(seed):
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([rng.lognormal(6, 2.5, 3000).astype(np.int64), [0, 0, 10**9], rng.integers(0, 9, 50)])
    rng.shuffle(sizes)
    max_rows, max_size = int(rng.integers(1, 600)), int(rng.integers(1, 50_000))
    runs = list(bounded_runs(sizes, max_rows, max_size))
    assert [lo for lo, _ in runs] == [0] + [hi for _, hi in runs[:-1]] and runs[-1][1] == len(sizes)
    for lo, hi in runs:
        assert 0 < hi - lo <= max_rows
        assert sizes[lo:hi].sum() <= max_size or hi - lo == 1
        if hi < len(sizes) and hi - lo < max_rows:  # cut only where the next row would not fit
            assert sizes[lo:hi + 1].sum() > max_size
    assert list(bounded_runs(np.zeros(0, dtype=np.int64), 5, 5)) == []


def test_texts_are_read_in_batches_bounded_by_characters(tmp_path):
    """Token counting and language detection read texts in batches of 5,000 documents: one that
    held a 100 MB document took the token count to 1.7 GB. Batches are bounded by characters."""
    import json

    from warehouse.curation_store import texts_in_batches
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_paths

    lengths = [5, 3000, 40, 12_000, 7, 7, 9000, 1, 2, 3]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": "é" * n}) + "\n" for i, n in enumerate(lengths)))
    db = tmp_path / "w.duckdb"
    with session(db) as con:
        ingest_paths(con, [src], IngestConfig("c"))
        ids = np.array([r[0] for r in con.execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall()])
    got = list(texts_in_batches(db, ids, batch=4, max_chars=10_000))
    assert [len(t) for _, texts in got for t in texts] == lengths and np.array_equal(
        np.concatenate([part for part, _ in got]), ids)
    assert [[len(t) for t in texts] for _, texts in got] == [[5, 3000, 40], [12_000], [7, 7, 9000, 1], [2, 3]]


def test_numpy_reads_nulls_of_integers_as_the_value_given_without_pandas():
    import subprocess
    import sys

    col = pa.chunked_array([pa.array([3, None, 7], pa.int32()), pa.array([None, 9], pa.int32())])
    assert numpy(col, null=0).tolist() == [3, 0, 7, 0, 9] and numpy(col.chunk(0).slice(1), null=-1).tolist() == [-1, 7]
    assert numpy(pa.array([1, 2], pa.int64()), null=0).tolist() == [1, 2]
    probe = ("import sys, pyarrow as pa, pyarrow.compute as pc\nfrom warehouse.sql import numpy, arrow\nimport numpy as np\n"
             "numpy(pc.binary_length(pa.Table.from_arrays([arrow(np.array(['ab', 'c'], dtype=object))], names=['t'])"
             ".column(0)), null=0)\nprint('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr

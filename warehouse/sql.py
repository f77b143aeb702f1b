"""Small helpers every store uses: read a one-row result fully, a transaction block, numpy
arrays as Arrow columns for `register`, and batches bounded by size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolling back on any exception (a kill leaves nothing half-written)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, or None; the result is read to the end.

    duckdb 2 keeps a result open until fetched to exhaustion, and refuses other work on the
    connection meanwhile, so `fetchone()` on a one-row result is not enough.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def arrow(values: np.ndarray) -> pa.Array:
    """A numpy array (numbers, bools, or str objects) as an Arrow array without nulls, numbers
    zero-copy. `pa.array` does the same but imports pandas on its first call, which added 0.2 s to
    every command that writes arrays."""
    values = np.asarray(values)
    n = len(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(bits)])
    if values.dtype.kind in "OU":
        parts = [str(v).encode("utf-8") for v in values.tolist()]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets),
                                                            pa.py_buffer(b"".join(parts))])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n, [None, pa.py_buffer(values)])


def single(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one Arrow array: its only chunk as it is (`combine_chunks` copies even one
    chunk: 30 MB of texts and their page faults per 20k-document batch), else the chunks joined."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def numpy(column: pa.Array | pa.ChunkedArray, null: int | None = None) -> np.ndarray:
    """An Arrow column of numbers as numpy, zero-copy when it has one chunk and no nulls
    (`to_numpy` imports pandas on its first call: 0.2 s). `null`: what a null of an integer
    column becomes (read without pandas too); without it such a column goes through `to_numpy`."""
    column = single(column)
    integer = pa.types.is_integer(column.type)
    if (column.null_count and (null is None or not integer)) or not (integer or pa.types.is_floating(column.type)):
        return column.to_numpy(zero_copy_only=False)
    dtype = np.dtype(column.type.to_pandas_dtype())
    values = np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize)
    if column.null_count:  # a null's slot holds no defined value
        values = values.copy()
        values[~numpy(pc.cast(pc.is_valid(column), pa.int8())).astype(bool)] = null
    return values


@contextmanager
def wanted_docs(con: duckdb.DuckDBPyConnection, doc_ids) -> Iterator[None]:
    """`want_docs(doc_id, pos)` registered for the block: join it and ORDER BY pos to read rows
    of documents in the order the caller gave."""
    con.register("want_docs", pa.table({"doc_id": arrow(np.asarray(doc_ids, dtype=np.int64)),
                                        "pos": arrow(np.arange(len(doc_ids), dtype=np.int64))}))
    try:
        yield
    finally:
        con.unregister("want_docs")


def bounded_runs(sizes: np.ndarray, max_rows: int, max_size: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) runs of consecutive rows of at most `max_rows` rows and `max_size` in summed
    `sizes`; a row larger than `max_size` is a run of its own. Real documents are long-tailed (a
    batch of 5,000 can hold a 100 MB one), so a batch is bounded by what its rows hold."""
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    lo, n = 0, len(ends)
    while lo < n:
        before = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, min(lo + max_rows, int(np.searchsorted(ends, before + max_size, side="right"))))
        yield lo, hi
        lo = hi

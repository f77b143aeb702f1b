"""Out-of-core banding: band keys grouped by DuckDB when they do not fit the memory budget.

This is where SQL *is* the algorithm (ARCHITECTURE.md): the (band, key, doc_id) rows go into a
temporary table, and `GROUP BY band, key` finds the buckets, spilling to disk under DuckDB's
memory limit. Buckets come back streamed, members in doc-id order, so the pairs built from them
are the in-memory path's pairs exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from warehouse.sql import arrow, numpy

TABLE = "taomi_band_keys"


def create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} (band USMALLINT, key UBIGINT, doc_id BIGINT)")


def append(con: duckdb.DuckDBPyConnection, doc_ids: np.ndarray, keys: np.ndarray) -> None:
    """Add one batch: keys (n, bands) of the documents doc_ids."""
    n, bands = keys.shape
    con.register("band_batch", pa.table({
        "band": arrow(np.tile(np.arange(bands, dtype=np.uint16), n)),
        "key": arrow(keys.ravel()),
        "doc_id": arrow(np.repeat(doc_ids.astype(np.int64), bands))}))
    try:
        con.execute(f"INSERT INTO {TABLE} SELECT band, key, doc_id FROM band_batch").fetchall()
    finally:
        con.unregister("band_batch")


def buckets(con: duckdb.DuckDBPyConnection, batch_rows: int = 100_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(members, offsets) batches of the buckets with two or more documents: bucket i holds
    members[offsets[i]:offsets[i+1]], ascending."""
    rel = con.sql(f"""SELECT list(doc_id ORDER BY doc_id) AS m FROM {TABLE}
                      GROUP BY band, key HAVING count(*) > 1""")
    with rel.to_arrow_reader(batch_size=batch_rows) as reader:
        for batch in reader:
            col = batch.column(0)
            offsets = numpy(col.offsets).astype(np.int64)
            values = numpy(col.values).astype(np.int64)
            yield values[offsets[0]:offsets[-1]], offsets - offsets[0]


def drop(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {TABLE}")

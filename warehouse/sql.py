"""Two small helpers every store uses: read a one-row result fully, and a transaction block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


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

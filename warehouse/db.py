"""Connections to the one DuckDB file, with retry on the single-writer lock.

DuckDB lets one process hold a file read-write; while it does, another process cannot open the
file at all, not even read-only (measured with duckdb 2.0.1, see ARCHITECTURE.md). So every
caller opens short-lived connections and retries with backoff while another process holds it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

DEFAULT_DB = "taomi.duckdb"
ENV_DB = "TAOMI_DB"


class WarehouseBusy(RuntimeError):
    """Another process held the database lock for longer than the wait allowed."""


def db_path(path: str | os.PathLike | None = None) -> Path:
    """Resolve the database path: explicit argument, else $TAOMI_DB, else ./taomi.duckdb."""
    return Path(path or os.environ.get(ENV_DB) or DEFAULT_DB)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_s: float = 30.0,
    migrate_schema: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``wait_s`` seconds (with jittered backoff) for the lock.

    A read-write open also brings the schema up to date. A read-only open of a file that does
    not exist yet raises FileNotFoundError naming it.
    """
    target = db_path(path)
    if read_only and not target.exists():
        raise FileNotFoundError(f"{target}: no Taomi database here yet (run `taomi ingest` first)")
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise WarehouseBusy(
                        f"{target}: held by another process for more than {wait_s:.0f} s "
                        "(a pipeline run?); retry later or raise the wait"
                    ) from exc
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    if not read_only and migrate_schema:
        from warehouse.schema import migrate

        migrate(con)
    return con


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


@contextmanager
def session(path: str | os.PathLike | None = None, *, read_only: bool = False,
            wait_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit so other processes can take the lock."""
    con = connect(path, read_only=read_only, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, or None; the result is read to the end.

    duckdb 2 keeps a result open until fetched to exhaustion, and refuses other work on the
    connection meanwhile, so `fetchone()` on a one-row result is not enough.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None

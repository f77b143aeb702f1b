"""Connections to the one DuckDB file, with retry on the single-writer lock.

DuckDB lets one process hold a file read-write; while it does, another process cannot open the
file at all, not even read-only (measured with duckdb 2.0.1, see ARCHITECTURE.md). So every
caller opens short-lived connections and retries with backoff while another process holds it.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.sql import one, transaction  # noqa: F401  (re-exported: most stores import them from here)

DEFAULT_DB = "taomi.duckdb"
ENV_DB = "TAOMI_DB"


class WarehouseError(RuntimeError):
    """The database path is unusable (a folder, not a DuckDB file, not writable...)."""


class WarehouseBusy(WarehouseError):
    """Another process held the database lock for longer than the wait allowed."""

    def __init__(self, message: str, holder_pid: int | None = None):
        super().__init__(message)
        self.holder_pid = holder_pid


LOCK_WAIT_S = float(os.environ.get("TAOMI_LOCK_WAIT_S", "30"))
# One duckdb.connect at a time per process: two threads opening the same file at once (Prefect
# tasks on a worker) could share a database instance before the Python client had registered its
# Arrow scan on it ("python_arrow_scan does not exist", seen on Dask workers under load).
_CONNECT = threading.Lock()
_HOLDER = re.compile(r"held in (.*?) \(PID (\d+)\)")


def db_path(path: str | os.PathLike | None = None) -> Path:
    """Resolve the database path: explicit argument, else $TAOMI_DB, else ./taomi.duckdb."""
    return Path(path or os.environ.get(ENV_DB) or DEFAULT_DB)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: lock contention and I/O hiccups, never bad input or a programming error."""
    if isinstance(exc, WarehouseBusy) or (isinstance(exc, duckdb.IOException) and _is_lock_error(exc)):
        return True
    permanent = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
    return isinstance(exc, (TimeoutError, ConnectionError, InterruptedError)) or (
        type(exc) is OSError and not isinstance(exc, permanent))


def _holder(exc: Exception) -> tuple[int | None, str]:
    """(pid, command line) of the process that holds the lock, from DuckDB's message and /proc."""
    m = _HOLDER.search(str(exc))
    if not m:
        return None, "another process"
    pid = int(m.group(2))
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = m.group(1)
    return pid, f"PID {pid} ({cmd[:120] or m.group(1)})"


def check_db_file(target: Path) -> None:
    """Refuse a path that is not (or cannot become) a DuckDB database, before DuckDB touches it."""
    if target.is_dir():
        raise WarehouseError(f"{target}: is a folder, not a database file; give --db a file path")
    if target.exists():
        if not target.is_file():
            raise WarehouseError(f"{target}: not a regular file (a device or a pipe?); give --db a database file")
        with open(target, "rb") as fh:
            head = fh.read(12)
        if head and head[8:12] != b"DUCK":
            raise WarehouseError(f"{target}: not a DuckDB database (no DuckDB header); Taomi will not write into "
                                 "it; give --db a new or existing .duckdb file")


def connect(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_s: float | None = None,
    migrate_schema: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``wait_s`` seconds (default $TAOMI_LOCK_WAIT_S or 30,
    jittered exponential backoff) while another process holds the lock.

    A read-write open also brings the schema up to date. A read-only open of a file that does
    not exist yet raises FileNotFoundError naming it. An unusable path raises WarehouseError; a
    lock held past the wait raises WarehouseBusy naming the process that holds it.
    """
    target = db_path(path)
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    check_db_file(target)
    if read_only and not target.exists():
        raise FileNotFoundError(f"{target}: no Taomi database here yet (run `taomi ingest` first)")
    if not read_only:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"{target.parent}: cannot create the database folder ({exc.strerror})") from exc
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            with _CONNECT:
                con = duckdb.connect(str(target), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise WarehouseError(f"{target}: cannot open the database ({str(exc).splitlines()[0]})") from exc
            if time.monotonic() >= deadline:
                pid, who = _holder(exc)
                raise WarehouseBusy(f"{target}: busy, held by {who} for more than {wait_s:.0f} s; "
                                    "retry when it finishes (or raise TAOMI_LOCK_WAIT_S)", pid) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise WarehouseError(f"{target}: cannot open the database ({str(exc).splitlines()[0]})") from exc
    _fit_threads(con)
    if not read_only and migrate_schema:
        from warehouse.schema import migrate

        migrate(con)
    return con


def _fit_threads(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB starts one thread per core of the machine, also when this process may use fewer
    (taskset, a container's cpuset): its threads then time-share those cores. Match them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - no affinity API (macOS, Windows)
        return
    if cores < int(con.execute("SELECT current_setting('threads')").fetchall()[0][0]):
        con.execute(f"SET threads = {max(1, cores)}")


def open_read_only(path: str | os.PathLike | None = None, wait_s: float | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection; a file of an older schema version is first brought up to date by
    a brief read-write open (so readers can rely on the current tables)."""
    from warehouse.schema import SCHEMA_VERSION, current_version_read_only

    con = connect(path, read_only=True, wait_s=wait_s)
    if current_version_read_only(con) < SCHEMA_VERSION:
        con.close()
        connect(path, wait_s=wait_s).close()
        con = connect(path, read_only=True, wait_s=wait_s)
    return con


@contextmanager
def session(path: str | os.PathLike | None = None, *, read_only: bool = False,
            wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit so other processes can take the lock.

    Read-only sessions let several readers share the file (see `open_read_only`)."""
    con = open_read_only(path, wait_s) if read_only else connect(path, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


def set_memory_limit(con: duckdb.DuckDBPyConnection, limit_mb: int) -> None:
    """Cap DuckDB's memory for this database (buffer pool and operators; they spill to disk past it)."""
    con.execute(f"SET memory_limit = '{int(limit_mb)}MB'")

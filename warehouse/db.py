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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.procs import pid_alive
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
        head = _head(target)
        if not head:
            raise WarehouseError(f"{target}: an empty file, not a Taomi database; Taomi creates its own database "
                                 "file and writes into no other: give --db a new path (or delete the empty file)")
        if head[8:12] != b"DUCK":
            raise WarehouseError(f"{target}: not a DuckDB database (no DuckDB header); Taomi will not write into "
                                 "it; give --db a new or existing .duckdb file")


# Files this process has seen to be Taomi warehouses, by (st_dev, st_ino), each with a read-only
# descriptor held open: while it is open the inode cannot be freed and reused by another file, so
# the key names the same file for the life of the process. A read-write open of a file not known
# here is preceded by a read-only look, so a foreign file is never opened for writing. The
# descriptors are never closed: closing any descriptor of a file drops this process's POSIX locks
# on it, DuckDB's included. Past _KNOWN_MAX files, each read-write open looks first (~13 ms).
_KNOWN: dict[tuple[int, int], int] = {}
_KNOWN_MAX = 64
_KNOWN_LOCK = threading.Lock()


def _is_known(target: Path) -> bool:
    st = target.stat()
    return (st.st_dev, st.st_ino) in _KNOWN


def _remember(target: Path) -> None:
    with _KNOWN_LOCK:
        if len(_KNOWN) >= _KNOWN_MAX or _is_known(target):
            return
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        st = os.fstat(fd)
        _KNOWN.setdefault((st.st_dev, st.st_ino), fd)  # never closed (see above), even if already held


def _head(target: Path, size: int = 12) -> bytes:
    """The first bytes of the file, read without closing a descriptor of a file this process may
    hold open in DuckDB: closing one drops the process's POSIX lock on it, DuckDB's included, and
    another process could then open the database read-write beside this one. A second `connect`
    in a process (a thread's session while another's is open) did exactly that, until the header
    was read through the descriptor kept for a known file."""
    try:
        st = target.stat()
    except OSError:
        st = None
    if st is not None:
        with _KNOWN_LOCK:
            fd = _KNOWN.get((st.st_dev, st.st_ino))
            if fd is not None:
                return os.pread(fd, size, 0)
        # past _KNOWN_MAX files: DuckDB's own descriptor, if this process has the file open
        head = _read_held(st, size)
        if head is not None:
            return head
    with open(target, "rb") as fh:  # no descriptor of it is open in this process: no lock to drop
        return fh.read(size)


def _read_held(st: os.stat_result, size: int) -> bytes | None:
    """The first bytes of the file (st_dev, st_ino), read through a descriptor this process already
    holds on it (found in /proc/self/fd); None if it holds none (or on a system without /proc)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            fd = int(name)
            if os.stat(f"/proc/self/fd/{name}").st_ino != st.st_ino:
                continue
            head = os.pread(fd, size, 0)
            got = os.fstat(fd)  # still that file (another thread may have closed and reused the number)
        except (OSError, ValueError):
            continue
        if (got.st_dev, got.st_ino) == (st.st_dev, st.st_ino):
            return head
    return None


def _wait_or_raise(target: Path, exc: duckdb.Error, wait_s: float, deadline: float) -> None:
    """After DuckDB refused to open the file: return when another process holds its lock and the
    wait has time left (the caller backs off and retries); else raise the error to show."""
    if not (isinstance(exc, duckdb.IOException) and _is_lock_error(exc)):
        raise WarehouseError(f"{target}: cannot open the database ({str(exc).splitlines()[0]})") from exc
    if time.monotonic() >= deadline:
        pid, who = _holder(exc)
        raise WarehouseBusy(f"{target}: busy, held by {who} for more than {wait_s:.0f} s; "
                            "retry when it finishes (or raise TAOMI_LOCK_WAIT_S)", pid) from exc


def _open(target: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried with jittered backoff while another process holds the lock."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            with _CONNECT:  # checked under the lock the bulk attach takes: never refused by it (see _BULK)
                if not _BULK.get(_bulk_key(target)):
                    return duckdb.connect(str(target), read_only=read_only)
            _wait_for_bulk(target, max(0.0, deadline - time.monotonic()))
        except duckdb.IOException as exc:
            _wait_or_raise(target, exc, wait_s, deadline)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            # Another thread of this process has the file open read-only for a moment (its look
            # before writing, `_probe`): DuckDB refuses a read-write connection beside it. Wait for
            # it like for a lock; a read-only open reports it at once (`_probe` relies on that).
            if read_only or "different configuration" not in str(exc) or time.monotonic() >= deadline:
                raise WarehouseError(f"{target}: cannot open the database ({str(exc).splitlines()[0]})") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)


def _refuse_foreign(target: Path, kind: str) -> None:
    if kind == "foreign":
        raise WarehouseError(f"{target}: a DuckDB database that Taomi did not create (no Taomi format marker); "
                             "Taomi reads and writes only its own warehouses and left it unchanged: give --db a "
                             "new path or a Taomi database")


def _create(target: Path) -> None:
    """Make a new warehouse at `target` whole or not at all: built under a temporary name beside
    it (schema and format marker), then linked into place only if nothing is there yet. A kill
    leaves at worst a temporary file, removed by the next creation in that folder."""
    from warehouse.schema import migrate

    for stale in target.parent.glob(f".{target.name}.taomi-new-*"):
        pid = stale.name.rsplit("-", 2)[-2] if stale.name.count("-") >= 3 else ""
        if pid.isdigit() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
    tmp = target.with_name(f".{target.name}.taomi-new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        con = duckdb.connect(str(tmp))
        try:
            migrate(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        try:
            os.link(tmp, target)  # atomic: fails if another process created the file meanwhile
        except FileExistsError:
            return
        except OSError:  # a filesystem without hard links
            if not target.exists():
                os.rename(tmp, target)
        _remember(target)
    except duckdb.Error as exc:
        raise WarehouseError(f"{target}: cannot create the database ({str(exc).splitlines()[0]})") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


def connect(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_s: float | None = None,
    migrate_schema: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``wait_s`` seconds (default $TAOMI_LOCK_WAIT_S or 30,
    jittered exponential backoff) while another process holds the lock.

    Only Taomi's own files are opened: a DuckDB file without Taomi's format marker (and not a
    Taomi file from before the marker) is refused and left byte-for-byte unchanged. A read-write
    open creates a missing file (whole, see `_create`) and brings the schema up to date; a
    read-only open creates and migrates nothing: a missing file raises FileNotFoundError, a file
    of an older schema WarehouseOutdated. An unusable path raises WarehouseError; a lock held
    past the wait raises WarehouseBusy naming the process that holds it.
    """
    target = db_path(path)
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    _wait_for_bulk(target, wait_s)
    check_db_file(target)
    if read_only:
        if not target.exists():
            raise FileNotFoundError(f"{target}: no Taomi database here yet (run `taomi ingest` first)")
        con = _open(target, True, wait_s)
        try:
            _check_readable(target, con)
        except BaseException:
            con.close()
            raise
        _fit_threads(con)
        return con
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"{target.parent}: cannot create the database folder ({exc.strerror})") from exc
        _create(target)
    if not _is_known(target):  # look before writing: a foreign file is never opened read-write
        _probe(target, wait_s)
    con = _open(target, False, wait_s)
    _fit_threads(con)
    if migrate_schema:
        from warehouse.schema import SchemaNewer, migrate

        try:
            migrate(con)
        except SchemaNewer as exc:
            con.close()
            raise WarehouseError(f"{target}: {exc}") from None
        except BaseException:
            con.close()
            raise
    _remember(target)
    return con


def _probe(target: Path, wait_s: float) -> None:
    """Refuse a foreign file after a read-only look. DuckDB refuses that look when this process
    already holds a read-write connection to the file (another thread's session): that connection
    was opened by `connect`, which looked first, so the file is known to be Taomi's."""
    from warehouse.schema import warehouse_kind

    try:
        probe = _open(target, True, wait_s)
    except WarehouseError as exc:
        if "different configuration" in str(exc):
            return
        raise
    try:
        _refuse_foreign(target, warehouse_kind(probe))
    finally:
        probe.close()


class WarehouseOutdated(WarehouseError):
    """A Taomi file of an older schema, opened read-only (which never migrates)."""


def _check_readable(target: Path, con: duckdb.DuckDBPyConnection) -> None:
    """A read-only open: a Taomi warehouse of the current (or a newer) schema, else one line."""
    from warehouse.schema import SCHEMA_VERSION, current_version_read_only, warehouse_kind

    kind = warehouse_kind(con)
    _refuse_foreign(target, kind)
    version = current_version_read_only(con)
    if kind == "legacy" or version < SCHEMA_VERSION:
        raise WarehouseOutdated(
            f"{target}: written by an older Taomi (schema version {version}; this Taomi reads {SCHEMA_VERSION}); "
            "read-only commands change nothing: run `taomi migrate` (or any writing command) once to bring "
            "it up to date")
    _remember(target)


def upgrade(path: str | os.PathLike | None = None, wait_s: float | None = None) -> tuple[int, int]:
    """Bring a Taomi warehouse of an older schema up to date: (version before, version now)."""
    from warehouse.schema import current_version_read_only, warehouse_kind

    target = db_path(path)
    check_db_file(target)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no Taomi database here (nothing to migrate)")
    probe = _open(target, True, LOCK_WAIT_S if wait_s is None else wait_s)
    try:
        _refuse_foreign(target, warehouse_kind(probe))
        before = current_version_read_only(probe)
    finally:
        probe.close()
    con = connect(target, wait_s=wait_s)
    try:
        return before, current_version_read_only(con)
    finally:
        con.close()


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
    """A read-only connection to a Taomi warehouse of the current schema (see `connect`): it
    never creates, migrates or writes anything."""
    return connect(path, read_only=True, wait_s=wait_s)


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


# Bulk writes (`taomi ingest`) attach the file with row groups of BULK_ROW_GROUP_SIZE rows, not
# DuckDB's 122,880. DuckDB writes an insert's rows to the file as it goes (compressed, in
# parallel, "optimistic writes") only once they fill a row group; below that, they are kept in
# memory and, at COMMIT, written to the write-ahead log and then again, compressed, by the
# checkpoint. 12,000 real documents (194 MB) are far below 122,880 rows: their commit wrote a
# 194 MB log and a checkpoint, 1.5-2.8 s. Attached with 4,096-row groups, the same insert and
# commit took 1.5-1.8 s against 1.8-3.1 s, and a whole ingest of those files 4.0-4.7 s against
# 5.4-6.2 s (alternating runs). 2,048-row groups doubled the file (87 against 47 MB). The row
# group size is not stored in the file: other connections write 122,880-row groups beside them.
BULK_ROW_GROUP_SIZE = 4096
BULK_ALIAS = "taomi"
# The files this process has attached for bulk writing. While one is, no other connection of this
# process may be opened on it: DuckDB refuses it ("Unique file handle conflict"), and the refused
# open closes a descriptor of the file, which drops this process's POSIX lock on it (measured:
# another process could then open the file read-write). `connect` waits for the bulk session
# instead, as it waits for another process's lock. A file is registered here before its attach,
# and `_open` looks here under the same lock (_CONNECT) as the attach: either the other open comes
# first (then the attach is refused, which keeps the lock, and the bulk session shares it), or it
# sees the registration and waits.
_BULK: dict[str, int] = {}
_BULK_LOCK = threading.Lock()


def _bulk_key(target: Path) -> str:
    return os.path.realpath(target)


def _wait_for_bulk(target: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while _BULK.get(_bulk_key(target)):
        if time.monotonic() >= deadline:
            raise WarehouseBusy(f"{target}: busy, held by this process's ingest for more than {wait_s:.0f} s; "
                                "retry when it finishes (or raise TAOMI_LOCK_WAIT_S)", os.getpid())
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)


def _attach(target: Path, wait_s: float) -> duckdb.DuckDBPyConnection | None:
    """An in-memory DuckDB with `target` attached read-write in bulk mode, retried while another
    process holds the lock; None when this process already has the file open (the caller then
    shares that connection's database, as `connect` does)."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        con = duckdb.connect()
        try:
            with _CONNECT:
                con.execute(f"ATTACH '{str(target).replace(chr(39), chr(39) * 2)}' AS {BULK_ALIAS} "
                            f"(ROW_GROUP_SIZE {BULK_ROW_GROUP_SIZE})")
            con.execute(f"USE {BULK_ALIAS}")
            # an in-memory database spills to ./.tmp; a file's own default is beside the file
            con.execute(f"SET temp_directory = '{(str(target) + '.tmp').replace(chr(39), chr(39) * 2)}'")
            return con
        except duckdb.Error as exc:
            con.close()
            if "Unique file handle conflict" in str(exc):
                return None
            _wait_or_raise(target, exc, wait_s, deadline)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)


@contextmanager
def bulk_session(path: str | os.PathLike | None = None, *,
                 wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write session for writing many long rows at once (see BULK_ROW_GROUP_SIZE), with
    every guarantee of `session`: only Taomi's own files, created whole, schema brought up to
    date. Where this process already has the file open, it shares that database instead."""
    target = db_path(path)
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    connect(target, wait_s=wait_s).close()  # checks, creates, probes and migrates, as a session does
    key = _bulk_key(target)
    _bulk_count(key, 1)
    try:
        con = _attach(target, wait_s)
    except BaseException:
        _bulk_count(key, -1)
        raise
    if con is None:  # this process has the file open: share its database, as `session` does
        _bulk_count(key, -1)
        with session(target, wait_s=wait_s) as con:
            yield con
        return
    try:
        _fit_threads(con)
        yield con
    finally:
        con.close()
        _bulk_count(key, -1)


def _bulk_count(key: str, step: int) -> None:
    with _BULK_LOCK:
        _BULK[key] = _BULK.get(key, 0) + step
        if not _BULK[key]:
            del _BULK[key]


def set_memory_limit(con: duckdb.DuckDBPyConnection, limit_mb: int) -> None:
    """Cap DuckDB's memory for this database (buffer pool and operators; they spill to disk past it)."""
    con.execute(f"SET memory_limit = '{int(limit_mb)}MB'")

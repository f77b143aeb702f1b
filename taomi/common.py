"""What every `taomi` command shares: the consoles, the chosen database, one-line errors, exit
codes. The sub-command modules import this, never `taomi.cli` (no import cycles)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import typer

from taomi.output import SafeConsole, styled

console = SafeConsole()  # every string is plain text: user data never becomes markup or control codes
err = SafeConsole(stderr=True)
# Exit codes: 1 nothing usable in the input, 2 bad usage/input/path (nothing written), 3 a release
# gate failed (eval), 4 partial (some files ingested, then one failed), 74 the disk is full
# (EX_IOERR: free space, re-run), 75 busy (EX_TEMPFAIL: retry).
EXIT_USAGE, EXIT_PARTIAL, EXIT_IOERR, EXIT_TEMPFAIL = 2, 4, 74, 75


class State:
    db: str | None = None


state = State()


def fail(message: str, code: int = 2) -> None:
    err.print(styled(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reading():
    """A read-only session for commands that only look (several can run at once); a missing
    database is a one-line error, not a new empty file."""
    from warehouse.db import open_read_only

    try:
        con = open_read_only(state.db)
    except FileNotFoundError as exc:
        fail(str(exc))
    try:
        yield con
    finally:
        con.close()


def name_numbers(items: list[str], option: str) -> dict[str, float]:
    """Parse repeated NAME=NUMBER options (e.g. --fix alpha=0.34); a bad one is a clear error."""
    out: dict[str, float] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            fail(f"{option} expects NAME=NUMBER, got {item!r}")
    return out


def one_line(message: str, code: int) -> int:
    err.print(styled(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return code


def known_error(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit code) for an error a user can act on; None for a bug. Error classes are
    looked up only if their module was loaded (a command that never opened the database cannot
    have raised them): quick commands stay quick."""
    import errno
    import sys

    db, out = sys.modules.get("warehouse.db"), sys.modules.get("warehouse.outputs")
    config, duck = sys.modules.get("flows.config"), sys.modules.get("duckdb")
    if db is not None and isinstance(exc, db.WarehouseBusy):
        return str(exc), EXIT_TEMPFAIL
    if (db is not None and isinstance(exc, db.WarehouseError)) or (out is not None and isinstance(exc, out.OutputRefused)) \
            or (config is not None and isinstance(exc, config.ConfigError)):
        return str(exc), EXIT_USAGE
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    full = (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
        duck is not None and isinstance(exc, duck.Error) and "No space left on device" in str(exc))
    if full:
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        return ((f"{where}the disk is full ({text}); nothing was half-written: the step's transaction was rolled "
                "back. Free space (or move --db, the output folder or TMPDIR elsewhere) and re-run"), EXIT_IOERR)
    if duck is not None and isinstance(exc, duck.OutOfMemoryException):
        return ((f"DuckDB ran out of memory ({text}); give the command a larger --memory-limit (or set "
                "memory_limit in the config)"), EXIT_USAGE)
    if isinstance(exc, RuntimeError) and "Timed out while attempting to connect" in str(exc):
        return (("the Prefect API did not start in time (a loaded machine?); retry, raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or point PREFECT_API_URL at a server"), EXIT_TEMPFAIL)
    if isinstance(exc, OSError):  # a path the OS refused: name it and say why
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_USAGE
    return None


@contextmanager
def prefect_console():
    """While a Prefect flow runs in this process: its console lines show control characters
    visibly, and its ERROR records (a failed task's traceback, the flow's failure) are held back.
    When the run ends in an error a user can act on, only that error's one line is shown; any
    other failure (a bug) releases them as Prefect wrote them."""
    import logging

    from taomi.output import visible

    class Visible(logging.Formatter):
        def __init__(self, inner: logging.Formatter | None):
            super().__init__()
            self.inner = inner or logging.Formatter()

        def format(self, record: logging.LogRecord) -> str:
            return visible(self.inner.format(record))

    class HoldErrors(logging.Filter):
        def __init__(self):
            super().__init__()
            self.held: list[logging.LogRecord] = []

        def filter(self, record: logging.LogRecord) -> bool:
            if record.levelno >= logging.ERROR:
                self.held.append(record)
                return False
            return True

    consoles = [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]
    hold, formatters = HoldErrors(), [h.formatter for h in consoles]
    for h in consoles:
        h.setFormatter(Visible(h.formatter))
        h.addFilter(hold)
    try:
        yield
    except BaseException as exc:
        if known_error(exc) is None and not isinstance(exc, (typer.Exit, KeyboardInterrupt)):
            for h in consoles:
                h.removeFilter(hold)
                for record in hold.held:
                    h.handle(record)
        raise
    finally:
        for h, f in zip(consoles, formatters):
            h.removeFilter(hold)
            h.setFormatter(f)


def quiet_prefect() -> None:
    """No telemetry (there is no internet here) and no INFO chatter on the console; INFO to the API."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Flow and task runs log at INFO to the Prefect API (their pages in the UI have logs); the
    # terminal shows warnings and errors only (the console handler's own level).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # Prefect's default of 20 s for the ephemeral server's start timed out on a loaded 2-core
    # machine (3 of 35 runs at load 4-6); a user's own setting wins.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

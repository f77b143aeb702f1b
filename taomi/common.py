"""What every `taomi` command shares: the consoles, the chosen database, one-line errors, exit
codes. The sub-command modules import this, never `taomi.cli` (no import cycles)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)
# Exit codes: 1 nothing usable in the input, 2 bad usage/input/path (nothing written), 3 a release
# gate failed (eval), 4 partial (some files ingested, then one failed), 75 busy (EX_TEMPFAIL: retry).
EXIT_USAGE, EXIT_PARTIAL, EXIT_TEMPFAIL = 2, 4, 75


class State:
    db: str | None = None


state = State()


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return code


def quiet_prefect() -> None:
    """No telemetry (there is no internet here) and no INFO chatter on the console."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Prefect's default of 20 s for the ephemeral server's start timed out on a loaded 2-core
    # machine (3 of 35 runs at load 4-6); a user's own setting wins.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

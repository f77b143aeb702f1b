"""Rendering for the command line: rich tables for people, JSON for machines, progress bars."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "" if value is None else str(value)


def table_of(rows: list[dict], title: str | None = None) -> Table:
    table = Table(title=title)
    cols = list(rows[0]) if rows else []
    for c in cols:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*[_fmt(r.get(c)) for c in cols])
    return table


def emit(data: Any, as_json: bool, title: str | None = None, console: Console | None = None) -> None:
    """Print `data` as JSON (one document on stdout) or as rich tables."""
    if as_json:
        print(json.dumps(data, default=str, ensure_ascii=False))
        return
    console = console or Console()
    if isinstance(data, list):
        console.print(table_of(data, title) if data else f"{title}: (none)")
        return
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    nested: list[tuple[str, list]] = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            nested.append((key, value))
            continue
        table.add_row(str(key), _fmt(value))
    console.print(table)
    for key, rows in nested:
        console.print(table_of(rows, key))


def make_progress(console: Console, quiet: bool = False, units: str = "bytes") -> Progress:
    """A progress bar in bytes or counts (hidden with --json so stdout stays machine-readable)."""
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    DownloadColumn() if units == "bytes" else MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet,
                    transient=False)

"""Rendering for the command line: rich tables for people, JSON for machines, progress bars.

User text is data, never markup or terminal control: corpus names, ids, labels, file names,
quarantined lines and error messages reach the terminal through `SafeConsole`, which reads every
string as plain text (no rich markup, no emoji codes) and shows control characters visibly
(`\x1b`, `\u202e`) instead of sending them; Taomi's own styling is built with `styled`. The JSON
of --json escapes the same characters (`dumps`).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# C0 controls but newline and tab, DEL, C1 controls (8-bit CSI/OSC), and the bidirectional
# overrides and isolates that reorder what a terminal shows ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(text: str) -> str:
    """`text` with every control character written out (ESC -> `\x1b`), safe for a terminal."""
    return _CONTROL.sub(_shown, text)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Taomi's own styling around data: `styled(("error:", "bold red"), " ", message)`; every
    part is plain text (see `visible`), whatever brackets it holds."""
    return Text.assemble(*[(visible(p[0]), p[1]) if isinstance(p, tuple) else visible(p) for p in parts])


class SafeConsole(Console):
    """A rich Console for which every string is plain text: markup and emoji codes are never
    interpreted and control characters are shown, not sent (tables, titles, messages alike)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"markup": False, "emoji": False, **kwargs})

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(visible(text), **{**kwargs, "markup": False, "emoji": False})

    def status(self, status, **kwargs):
        return super().status(Text(visible(status)) if isinstance(status, str) else status, **kwargs)


_JSON_CONTROL = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def dumps(data: Any, indent: int | None = None) -> str:
    """JSON for --json: non-ASCII kept, but the controls json.dumps leaves raw (DEL, C1, bidi)
    escaped as \\uXXXX (they can only occur inside strings, so the JSON stays valid)."""
    text = json.dumps(data, default=str, ensure_ascii=False, indent=indent)
    return _JSON_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(data: Any) -> None:
    """One JSON document on stdout (--json)."""
    print(dumps(data))


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
        print_json(data)
        return
    console = console or SafeConsole()
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


class DescriptionColumn(ProgressColumn):
    """A task's description as plain text (it often holds a file name)."""

    def render(self, task) -> Text:
        return Text(visible(str(task.description)))


def make_progress(console: Console, quiet: bool = False, units: str = "bytes") -> Progress:
    """A progress bar in bytes or counts (hidden with --json so stdout stays machine-readable)."""
    return Progress(DescriptionColumn(), BarColumn(),
                    DownloadColumn() if units == "bytes" else MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet,
                    transient=False)


class RunStages:
    """`taomi run`'s stage lines (flows.progress reporter): a spinner per running task with how far
    it is inside (documents signed, scored, scanned, written), then ✓/✗, the stage, its one-line
    summary and its time. Descriptions are plain text (corpus names
    and summaries are user data)."""

    def __init__(self, progress: Progress):
        self.progress, self.tasks = progress, {}

    def begin(self, key: str, label: str) -> None:
        self.tasks[key] = self.progress.add_task(label, total=None)

    def step(self, key: str, label: str, what: str, done: int, total: int) -> None:
        """How far the running stage is: its line reads `label · what done/total (pct)`."""
        if key in self.tasks:
            pct = f" ({100 * done // total}%)" if total else ""
            self.progress.update(self.tasks[key], description=f"{label} · {what} {done:,}/{total:,}{pct}")

    def end(self, key: str, label: str, ok: bool, note: str, seconds: float) -> None:
        task = self.tasks.pop(key) if key in self.tasks else self.progress.add_task(label, total=None)  # ids start at 0
        text = f"{'✓' if ok else '✗'} {label}" + (f": {note}" if note else "") + ("" if ok else " (failed)")
        self.progress.update(task, description=text, total=1, completed=1)


def stage_progress(console: Console, quiet: bool = False) -> Progress:
    """One line per pipeline stage: spinner, description, time."""
    from rich.progress import SpinnerColumn

    return Progress(SpinnerColumn(finished_text=" "), DescriptionColumn(), TimeElapsedColumn(), console=console,
                    disable=quiet, transient=False)


class StageBars:
    """`progress(stage, done, total)` callbacks shown as one bar per stage (in documents, or `units`)."""

    def __init__(self, progress: Progress, units: str = "docs"):
        self.progress, self.tasks, self.units = progress, {}, units

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(f"{stage} ({self.units})", total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def error_text(exc: BaseException) -> str:
    """An exception's message for one error line: a KeyError's own text without the quotes its
    str() adds, any other exception's text as it is (stripping quotes from every message cut the
    closing quote off "got '0.3'")."""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)

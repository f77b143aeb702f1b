"""Stage progress for `taomi run`: each pipeline task says when it starts and ends (with the one
line its artifact leads with), and how far it is inside (`step`), to a reporter the command line
installs. The default reporter does
nothing, so flows served by `taomi schedule` or run from Python stay silent. Tasks that run on a
remote worker (Dask's signature shards) report there, not here."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    def begin(self, key: str, label: str) -> None: ...

    def end(self, key: str, label: str, ok: bool, note: str, seconds: float) -> None: ...

    def step(self, key: str, label: str, what: str, done: int, total: int) -> None: ...


_REPORTER: list[Reporter] = []
_NOTE = threading.local()


def install(reporter: Reporter | None) -> None:
    """Report stages to `reporter` (None: stop reporting)."""
    _REPORTER.clear()
    if reporter is not None:
        _REPORTER.append(reporter)


def note(line: str) -> None:
    """The running stage's summary line (shown when it ends)."""
    _NOTE.line = line


def step(what: str, done: int, total: int) -> None:
    """Progress inside the running stage: the `progress(stage, done, total)` callback that every
    long task takes (documents signed, scored, scanned, written). Reported from the thread that
    runs the stage; elsewhere (another thread, a remote worker) it does nothing."""
    key = getattr(_NOTE, "key", None)
    if _REPORTER and key is not None:
        _REPORTER[0].step(key, _NOTE.label, what, done, total)


def reported(stage: str, what: Callable[..., str] | None = None):
    """Decorate a task's function (under @task): begin/end reports with `stage` and `what(*args)`
    (default: the second argument, the corpus of most tasks). The wrapper refers to module-level
    functions only: Dask pickles a task's function by value, and a thread-local is not picklable."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            return _run_reported(stage, what, fn, args, kwargs)
        return run
    return wrap


def _run_reported(stage: str, what, fn, args: tuple, kwargs: dict):
    if not _REPORTER:
        return fn(*args, **kwargs)
    label = f"{stage} {what(*args, **kwargs) if what else (str(args[1]) if len(args) > 1 else '')}".strip()
    key = f"{label}:{threading.get_ident()}"
    _NOTE.line, _NOTE.key, _NOTE.label = "", key, label
    _REPORTER[0].begin(key, label)
    t, ok = time.perf_counter(), False
    try:
        out = fn(*args, **kwargs)
        ok = True
        return out
    finally:
        _NOTE.key = None
        if _REPORTER:
            _REPORTER[0].end(key, label, ok, getattr(_NOTE, "line", ""), time.perf_counter() - t)

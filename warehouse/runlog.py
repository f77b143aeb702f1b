"""The run log: one row per stage execution (inputs' hash, config, counts in/out, time, status).

Statuses: `running`, then `ok`, `failed` (with the error), `skipped` (the inputs equal those of
the run named in `reuses`, whose results are still the stored ones: no work was done), or
`abandoned` (its process died: found by pid and host when any later run starts). `logged_run` is
the one context manager every stage uses to open and close its row.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from warehouse.procs import pid_alive


def stable_hash(*parts: Any) -> str:
    """A short, stable hash of JSON-serialisable parts (config dicts, file hashes)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Run:
    run_id: str
    stage: str
    corpus: str | None
    inputs_hash: str
    config: dict


HOST = socket.gethostname()


def mark_abandoned(con: duckdb.DuckDBPyConnection) -> int:
    """Rows left `running` by a process of this host that no longer exists become `abandoned`."""
    rows = con.execute("SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL",
                       [HOST]).fetchall()
    dead = [(rid, pid) for rid, pid in rows if pid != os.getpid() and not pid_alive(pid)]
    for rid, pid in dead:
        con.execute("UPDATE runs SET status = 'abandoned', finished_at = ?, message = ? WHERE run_id = ?",
                    [_now(), f"its process (pid {pid} on {HOST}) ended without finishing the run", rid]).fetchall()
    return len(dead)


def start_run(con: duckdb.DuckDBPyConnection, stage: str, inputs_hash: str, config: dict,
              corpus: str | None = None, counts_in: int | None = None) -> Run:
    mark_abandoned(con)
    run = Run(uuid.uuid4().hex, stage, corpus, inputs_hash, config)
    con.execute(
        "INSERT INTO runs (run_id, stage, corpus, inputs_hash, config, counts_in, started_at, status, pid, host) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
        [run.run_id, stage, corpus, inputs_hash, json.dumps(config, default=str), counts_in, _now(),
         os.getpid(), HOST],
    ).fetchall()
    return run


def skip_run(con: duckdb.DuckDBPyConnection, stage: str, inputs_hash: str, config: dict, corpus: str | None,
             reuses: str | None = None, counts_in: int | None = None) -> Run:
    """Record that a stage did no work: its inputs equal those of run `reuses` (default: the
    latest successful run of the stage with these inputs, when there is one)."""
    mark_abandoned(con)
    if reuses is None:
        prev = last_ok_run(con, stage, corpus, inputs_hash)
        reuses = prev["run_id"] if prev else None
    run = Run(uuid.uuid4().hex, stage, corpus, inputs_hash, config)
    now = _now()
    con.execute(
        "INSERT INTO runs (run_id, stage, corpus, inputs_hash, config, counts_in, started_at, finished_at, status, "
        "message, pid, host, reuses) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'skipped', ?, ?, ?, ?)",
        [run.run_id, stage, corpus, inputs_hash, json.dumps(config, default=str), counts_in, now, now,
         f"inputs unchanged since run {reuses}" if reuses else "inputs unchanged", os.getpid(), HOST, reuses],
    ).fetchall()
    return run


def effective_run(con: duckdb.DuckDBPyConnection, stage: str, corpus: str | None) -> dict | None:
    """The latest run of a stage that did the work (status ok): its results are the stored ones."""
    return last_ok_run(con, stage, corpus)


@dataclass
class RunHandle:
    """What a stage reports back to `logged_run` before the row is closed."""

    run: Run
    counts_out: int | None = None
    details: dict | None = None
    skipped_for: str | None = field(default=None)


@contextmanager
def logged_run(db, stage: str, inputs_hash: str, config: dict, corpus: str | None = None,
               counts_in: int | None = None) -> Iterator[RunHandle]:
    """Open a run row (`running`), and close it `ok` with the counts and details the stage set,
    or `failed` with the error; each in its own short connection, so the stage's work in between
    never holds the database."""
    from warehouse.db import session

    with session(db) as con:
        handle = RunHandle(start_run(con, stage, inputs_hash, config, corpus, counts_in))
    try:
        yield handle
    except BaseException as exc:
        with session(db) as con:
            finish_run(con, handle.run, status="failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    with session(db) as con:
        finish_run(con, handle.run, counts_out=handle.counts_out, details=handle.details)


def finish_run(con: duckdb.DuckDBPyConnection, run: Run, *, status: str = "ok",
               counts_in: int | None = None, counts_out: int | None = None,
               message: str | None = None, details: dict | None = None) -> None:
    con.execute(
        "UPDATE runs SET status = ?, counts_in = coalesce(?, counts_in), counts_out = ?, "
        "finished_at = ?, message = ?, details = ? WHERE run_id = ?",
        [status, counts_in, counts_out, _now(), message,
         json.dumps(details, default=str) if details is not None else None, run.run_id],
    ).fetchall()


def last_ok_run(con: duckdb.DuckDBPyConnection, stage: str, corpus: str | None = None,
                inputs_hash: str | None = None) -> dict | None:
    """The most recent successful run of a stage (optionally with these exact inputs)."""
    sql = "SELECT * FROM runs WHERE stage = ? AND status = 'ok'"
    params: list[Any] = [stage]
    if corpus is not None:
        sql += " AND corpus = ?"
        params.append(corpus)
    if inputs_hash is not None:
        sql += " AND inputs_hash = ?"
        params.append(inputs_hash)
    sql += " ORDER BY finished_at DESC LIMIT 1"
    cur = con.execute(sql, params)
    rows = cur.fetchall()
    row = rows[0] if rows else None
    if row is None:
        return None
    out = dict(zip([d[0] for d in cur.description], row))
    for key in ("config", "details"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict]:
    cur = con.execute(
        "SELECT run_id, stage, corpus, status, counts_in, counts_out, started_at, finished_at, message, reuses, "
        "pid, host FROM runs ORDER BY started_at DESC, run_id LIMIT ?", [limit])
    cols = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        row = dict(zip(cols, r))
        pid, host = row.pop("pid"), row.pop("host")
        if row["status"] == "running" and host == HOST and pid and pid != os.getpid() and not pid_alive(pid):
            row["status"] = "abandoned"  # recorded as such when the next run starts
            row["message"] = f"its process (pid {pid}) ended without finishing the run"
        out.append(row)
    return out

"""The run log: one row per stage execution (inputs' hash, config, counts in/out, time, status)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb


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


def start_run(con: duckdb.DuckDBPyConnection, stage: str, inputs_hash: str, config: dict,
              corpus: str | None = None, counts_in: int | None = None) -> Run:
    run = Run(uuid.uuid4().hex, stage, corpus, inputs_hash, config)
    con.execute(
        "INSERT INTO runs (run_id, stage, corpus, inputs_hash, config, counts_in, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
        [run.run_id, stage, corpus, inputs_hash, json.dumps(config, default=str), counts_in, _now()],
    ).fetchall()
    return run


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
        "SELECT run_id, stage, corpus, status, counts_in, counts_out, started_at, finished_at, message "
        "FROM runs ORDER BY started_at DESC LIMIT ?", [limit])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]

"""Storage for throughput calibrations (read back by planning for its MFU)."""

from __future__ import annotations

import json

import duckdb

from warehouse.db import transaction


def save_calibration(con: duckdb.DuckDBPyConnection, r: dict) -> None:
    with transaction(con):
        con.execute("""INSERT INTO calibrations (gpu, device_name, torch_version, size, config, params, flops_per_token,
                       tokens_per_s, flops_per_s, peak_flops, peak_source, mfu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [r["gpu"], r["device_name"], r["torch_version"], r["size"], json.dumps(r["config"]), r["params"],
                     r["flops_per_token"], r["tokens_per_s"], r["flops_per_s"], r["peak_flops"], r["peak_source"],
                     r["mfu"]]).fetchall()


def list_calibrations(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict]:
    cur = con.execute("""SELECT created_at, gpu, device_name, size, tokens_per_s, mfu, peak_source, torch_version
                         FROM calibrations ORDER BY created_at DESC LIMIT ?""", [limit])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def calibrations_for(con: duckdb.DuckDBPyConnection, gpu: str) -> list[dict]:
    """This GPU's calibrations with an MFU, newest first (mfu, params, size, created_at)."""
    has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'calibrations'").fetchall()
    if not has[0][0]:
        return []
    cur = con.execute("SELECT mfu, params, size, created_at FROM calibrations WHERE lower(gpu) = lower(?) "
                      "AND mfu IS NOT NULL ORDER BY created_at DESC", [gpu])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]

"""Storage for scaling observations and fits (a fit row names the hash of its inputs)."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from warehouse.db import one, transaction


def save_observations(con: duckdb.DuckDBPyConnection, inputs_hash: str, source: str, frame: pd.DataFrame) -> int:
    """Store a validated observation set once per content hash; returns rows stored now."""
    if one(con, "SELECT 1 FROM scaling_observations WHERE inputs_hash = ? LIMIT 1", [inputs_hash]):
        return 0
    df = frame.copy()
    df.insert(0, "row_no", range(1, len(df) + 1))
    for col in ("U", "weight", "run"):
        if col not in df.columns:
            df[col] = None
    con.register("obs_frame", df[["row_no", "N", "D", "loss", "U", "weight", "run"]])
    try:
        with transaction(con):
            con.execute("""INSERT INTO scaling_observations SELECT ?, ?, row_no, N, D, loss, U::DOUBLE,
                           weight::DOUBLE, run::VARCHAR FROM obs_frame""", [inputs_hash, source]).fetchall()
    finally:
        con.unregister("obs_frame")
    return len(df)


def save_fit(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    with transaction(con):
        con.execute("""INSERT INTO scaling_fits (name, law, inputs_hash, config, params, ci, poorly_determined,
                       objective, n_points, n_at_best, converged, seconds, samples)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [row["name"], row["law"], row["inputs_hash"], json.dumps(row["config"]), json.dumps(row["params"]),
                     json.dumps(row.get("ci")), json.dumps(row.get("poorly_determined")), row["objective"],
                     row["n_points"], row.get("n_at_best"), row.get("converged"), row.get("seconds"),
                     json.dumps(row.get("samples")) if row.get("samples") is not None else None]).fetchall()


def _decode(r: dict) -> dict:
    for k in ("config", "params", "ci", "poorly_determined", "samples"):
        if isinstance(r.get(k), str):
            r[k] = json.loads(r[k])
    return r


def get_fit(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    """The latest fit stored under `name`."""
    cur = con.execute("SELECT * FROM scaling_fits WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name])
    rows = cur.fetchall()
    if not rows:
        return None
    return _decode(dict(zip([d[0] for d in cur.description], rows[0])))


def find_fit(con: duckdb.DuckDBPyConnection, inputs_hash: str, config: dict) -> dict | None:
    cur = con.execute("SELECT * FROM scaling_fits WHERE inputs_hash = ? ORDER BY created_at DESC", [inputs_hash])
    cols = [d[0] for d in cur.description]
    for r in cur.fetchall():
        d = _decode(dict(zip(cols, r)))
        if d["config"] == config:
            return d
    return None


def list_fits(con: duckdb.DuckDBPyConnection) -> list[dict]:
    cur = con.execute("""SELECT name, law, params, ci, poorly_determined, objective, n_points, created_at FROM scaling_fits
                         QUALIFY row_number() OVER (PARTITION BY name ORDER BY created_at DESC) = 1
                         ORDER BY created_at DESC""")
    cols = [d[0] for d in cur.description]
    return [_decode(dict(zip(cols, r))) for r in cur.fetchall()]


def fitted_ranges(con: duckdb.DuckDBPyConnection, inputs_hash: str) -> dict:
    """The ranges of N, D and 6ND that a fit's observations span (empty when none are stored)."""
    r = con.execute("""SELECT min(N), max(N), min(D), max(D), min(6 * N * D), max(6 * N * D), count(*)
                       FROM scaling_observations WHERE inputs_hash = ?""", [inputs_hash]).fetchone()
    if not r or not r[6]:
        return {}
    return {"params": [r[0], r[1]], "tokens": [r[2], r[3]], "flops": [r[4], r[5]]}


def observations_of(con: duckdb.DuckDBPyConnection, inputs_hash: str) -> pd.DataFrame:
    return con.execute("SELECT N, D, loss FROM scaling_observations WHERE inputs_hash = ? ORDER BY row_no",
                       [inputs_hash]).df()

"""Registered eval sets, their n-gram index (built once per set version), contamination scans of
training corpora (one per corpus version, set version and rule) and their hits."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import one, transaction


def register_set(con: duckdb.DuckDBPyConnection, name: str, set_hash: str, path: str, fmt: str, n_items: int) -> str:
    """Register (or re-point) an eval set by name: 'added', 'updated' or 'unchanged'."""
    row = one(con, "SELECT set_hash FROM evalset_registry WHERE set_name = ?", [name])
    if row and row[0] == set_hash:
        return "unchanged"
    with transaction(con):
        con.execute("""INSERT INTO evalset_registry (set_name, set_hash, source_path, format, n_items) VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (set_name) DO UPDATE SET set_hash = excluded.set_hash, source_path = excluded.source_path,
                       format = excluded.format, n_items = excluded.n_items, added_at = now()""",
                    [name, set_hash, path, fmt, n_items]).fetchall()
    return "updated" if row else "added"


def registered_sets(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> list[dict]:
    rows = con.execute("SELECT set_name, set_hash, source_path, format, n_items, added_at FROM evalset_registry "
                       "ORDER BY set_name").fetchall()
    out = [dict(zip(("name", "set_hash", "source_path", "format", "n_items", "added_at"), r)) for r in rows]
    if names is not None:
        known = {r["name"] for r in out}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LookupError(f"no registered eval set named {', '.join(map(repr, unknown))} (see `taomi evalset list`)")
        out = [r for r in out if r["name"] in names]
    return out


def remove_set(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    with transaction(con):
        return bool(con.execute("DELETE FROM evalset_registry WHERE set_name = ? RETURNING 1", [name]).fetchall())


def index_built(con: duckdb.DuckDBPyConnection, set_hash: str, n: int, rule: str) -> bool:
    return one(con, "SELECT 1 FROM eval_index_items WHERE set_hash = ? AND n = ? AND rule = ? LIMIT 1",
               [set_hash, n, rule]) is not None


def write_index(con: duckdb.DuckDBPyConnection, set_hash: str, n: int, rule: str, item_ids: list[str],
                h: np.ndarray, item: np.ndarray, pos: np.ndarray, status: list[str]) -> None:
    """The n-gram index of one eval-set version, written once (a second writer finds it built)."""
    ids = np.asarray(item_ids, dtype=object)
    grams = pd.DataFrame({"item_id": ids[item] if len(item) else np.zeros(0, dtype=object), "pos": pos.astype(np.int32),
                          "h": h.astype(np.uint64)})
    items = pd.DataFrame({"item_id": list(item_ids), "status": status})
    con.register("idx_grams", grams)
    con.register("idx_items", items)
    try:
        with transaction(con):
            if index_built(con, set_hash, n, rule):
                return
            con.execute("INSERT INTO eval_index SELECT ?, ?, ?, item_id, pos, h FROM idx_grams",
                        [set_hash, n, rule]).fetchall()
            con.execute("INSERT INTO eval_index_items SELECT ?, ?, ?, item_id, status FROM idx_items",
                        [set_hash, n, rule]).fetchall()
    finally:
        con.unregister("idx_grams")
        con.unregister("idx_items")


def read_index(con: duckdb.DuckDBPyConnection, set_hashes: list[str], n: int, rule: str) -> pd.DataFrame:
    """set_hash, item_id, pos, h of the given set versions."""
    return con.execute("""SELECT set_hash, item_id, pos, h FROM eval_index
                          WHERE set_hash IN (SELECT unnest(?)) AND n = ? AND rule = ?""",
                       [list(set_hashes), n, rule]).fetchdf()


def item_status(con: duckdb.DuckDBPyConnection, set_hash: str, n: int, rule: str) -> dict[str, str]:
    return dict(con.execute("SELECT item_id, status FROM eval_index_items WHERE set_hash = ? AND n = ? AND rule = ?",
                            [set_hash, n, rule]).fetchall())


def scanned(con: duckdb.DuckDBPyConnection, corpus: str, set_hashes: list[str], n: int, rule: str,
            version: str) -> set[str]:
    """Which of these set versions have a complete scan of this corpus version."""
    rows = con.execute("""SELECT set_hash FROM contamination_scans WHERE corpus = ? AND n = ? AND rule = ?
                          AND corpus_version = ? AND set_hash IN (SELECT unnest(?))""",
                       [corpus, n, rule, version, list(set_hashes)]).fetchall()
    return {r[0] for r in rows}


def write_scan(con: duckdb.DuckDBPyConnection, corpus: str, set_hashes: list[str], n: int, rule: str, version: str,
               pairs: pd.DataFrame, n_docs: int, seconds: float) -> None:
    """One scan's hits (set_hash, item_id, doc_id, item_pos, doc_pos) and its record, in one
    transaction; hits of older corpus versions for these sets are dropped (they are superseded)."""
    con.register("scan_pairs", pairs[["set_hash", "item_id", "doc_id", "item_pos", "doc_pos"]])
    try:
        with transaction(con):
            con.execute("""DELETE FROM contamination_hits WHERE corpus = ? AND n = ? AND rule = ?
                           AND set_hash IN (SELECT unnest(?))""", [corpus, n, rule, list(set_hashes)]).fetchall()
            con.execute("""DELETE FROM contamination_scans WHERE corpus = ? AND n = ? AND rule = ?
                           AND set_hash IN (SELECT unnest(?))""", [corpus, n, rule, list(set_hashes)]).fetchall()
            con.execute("""INSERT INTO contamination_hits SELECT ?, set_hash, ?, ?, ?, doc_id, item_id, item_pos, doc_pos
                           FROM scan_pairs""", [corpus, n, rule, version]).fetchall()
            flagged = dict(con.execute("SELECT set_hash, count(DISTINCT doc_id) FROM scan_pairs GROUP BY set_hash")
                           .fetchall())
            for sh in set_hashes:
                con.execute("INSERT INTO contamination_scans VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
                            [corpus, sh, n, rule, version, n_docs, int(flagged.get(sh, 0)), seconds]).fetchall()
    finally:
        con.unregister("scan_pairs")


def hits(con: duckdb.DuckDBPyConnection, corpus: str, set_hash: str, n: int, rule: str, version: str) -> pd.DataFrame:
    """item_id, doc_id, item_pos, doc_pos of one scan."""
    return con.execute("""SELECT item_id, doc_id, item_pos, doc_pos FROM contamination_hits WHERE corpus = ?
                          AND set_hash = ? AND n = ? AND rule = ? AND corpus_version = ?""",
                       [corpus, set_hash, n, rule, version]).fetchdf()


def flagged_documents(con: duckdb.DuckDBPyConnection, corpus: str, set_hashes: list[str], n: int, rule: str,
                      version: str) -> pd.DataFrame:
    """doc_id, ext_id, set_hash, item_id, shared n-grams and doc positions, per (document, item)."""
    return con.execute("""
        SELECT h.doc_id, d.ext_id, h.set_hash, h.item_id, count(*) AS ngrams, list(h.doc_pos ORDER BY h.doc_pos) AS doc_pos
        FROM contamination_hits h JOIN documents d ON d.doc_id = h.doc_id
        WHERE h.corpus = ? AND h.n = ? AND h.rule = ? AND h.corpus_version = ? AND h.set_hash IN (SELECT unnest(?))
        GROUP BY ALL ORDER BY h.doc_id, ngrams DESC""", [corpus, n, rule, version, list(set_hashes)]).fetchdf()


def flagged_docs(con: duckdb.DuckDBPyConnection, corpus: str, version: str, n: int, rule: str
                 ) -> tuple[str, list, bool, int]:
    """(subquery of the doc_ids flagged at this corpus version under this n-gram rule, its
    parameters, decontaminated?, registered sets): the documents export leaves out. Decontaminated
    means every registered set was scanned at this version under this rule; otherwise the subquery is
    empty (nothing is known to be flagged; hits of an older rule do not count)."""
    regs = [r[0] for r in con.execute("SELECT set_hash FROM evalset_registry").fetchall()]
    done = bool(regs) and set(regs) <= scanned(con, corpus, regs, n, rule, version)
    sql = """(SELECT DISTINCT doc_id FROM contamination_hits WHERE corpus = ? AND n = ? AND rule = ?
              AND corpus_version = ? AND set_hash IN (SELECT unnest(?)))"""
    return sql, [corpus, n, rule, version, regs if done else []], done, len(regs)

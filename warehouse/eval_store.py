"""Storage for eval sets, runs and per-item results."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from warehouse.curation_store import view_sql
from warehouse.db import one, session, transaction


def save_eval_set(con: duckdb.DuckDBPyConnection, name: str, set_hash: str, items: pd.DataFrame) -> bool:
    """Store a version of an eval set once (by content hash); True when new."""
    if one(con, "SELECT 1 FROM eval_items WHERE set_name = ? AND set_hash = ? LIMIT 1", [name, set_hash]):
        return False
    df = items.assign(slices=items["slices"].map(json.dumps), meta=items["meta"].map(lambda m: json.dumps(m, default=str)))
    con.register("items_df", df[["id", "input", "target", "slices", "meta"]])
    try:
        with transaction(con):
            con.execute("""INSERT INTO eval_items (set_name, set_hash, id, input, target, slices, meta)
                           SELECT ?, ?, id, input, target, slices::JSON, meta::JSON FROM items_df""",
                        [name, set_hash]).fetchall()
    finally:
        con.unregister("items_df")
    return True


def previous_run(con: duckdb.DuckDBPyConnection, set_name: str) -> dict | None:
    rows = con.execute("""SELECT run_id, model, created_at FROM eval_runs WHERE set_name = ?
                          ORDER BY created_at DESC LIMIT 1""", [set_name]).fetchall()
    return {"run_id": rows[0][0], "model": rows[0][1], "created_at": rows[0][2]} if rows else None


def run_results(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    return con.execute("SELECT id, score, passed FROM eval_results WHERE run_id = ?", [run_id]).fetchdf()


def save_run(con: duckdb.DuckDBPyConnection, run: dict, results: pd.DataFrame) -> None:
    con.register("res_df", results[["id", "prediction", "score", "passed"]])
    try:
        with transaction(con):
            con.execute("""INSERT INTO eval_runs (run_id, set_name, set_hash, model, metric, git_sha, summary)
                           VALUES (?, ?, ?, ?, ?, ?, ?)""",
                        [run["run_id"], run["set_name"], run["set_hash"], run["model"], run["metric"], run.get("git_sha"),
                         json.dumps(run.get("summary"), default=str)]).fetchall()
            con.execute("INSERT INTO eval_results SELECT ?, id, prediction, score, passed FROM res_df",
                        [run["run_id"]]).fetchall()
    finally:
        con.unregister("res_df")


def training_doc_ids(con: duckdb.DuckDBPyConnection, corpus: str) -> tuple[np.ndarray, np.ndarray]:
    """The doc ids of a training corpus, in order, and each text's UTF-8 bytes (the plan for
    reading it in batches)."""
    got = con.execute("SELECT doc_id, strlen(text) AS n FROM documents WHERE corpus = ? ORDER BY doc_id",
                      [corpus]).fetchnumpy()
    return got["doc_id"].astype(np.int64), got["n"].astype(np.int64)


BATCH_BYTES = 16 << 20  # text per batch: a batch's shingles, features and postings stay ~10x this


def batch_bounds(sizes: np.ndarray, max_docs: int, max_bytes: int) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of consecutive documents: at most max_docs and (unless one document
    alone is larger) max_bytes of text each."""
    out, lo, n = [], 0, len(sizes)
    while lo < n:
        cum = np.cumsum(sizes[lo:min(n, lo + max_docs)])
        hi = lo + max(1, int(np.searchsorted(cum, max_bytes, side="right")))
        out.append((lo, hi))
        lo = hi
    return out


def training_batches(db, corpus: str, batch: int = 20_000, max_bytes: int = BATCH_BYTES,
                     view: tuple[int, int] | None = None):
    """(doc_ids, texts) of a training corpus in batches (by count and by bytes), each read in its
    own short session, so the work done between batches (a scan, a scoring) never holds the
    database lock. `view` = (head, tail): each text as its bounded view, cut in the database."""
    with session(db) as con:
        ids, sizes = training_doc_ids(con, corpus)
    if view is not None:
        sizes = np.minimum(sizes, 4 * sum(view))  # bytes of a view: at most 4 per character
    for lo, hi in batch_bounds(sizes, batch, max_bytes):
        part = ids[lo:hi]
        with session(db) as con:
            got = training_texts(con, corpus, int(part[0]), int(part[-1]), view)
        yield got  # closed before the caller works on the batch


def training_texts(con: duckdb.DuckDBPyConnection, corpus: str, lo: int, hi: int,
                   view: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """(doc_ids, texts or their bounded views) of the corpus's documents with lo <= doc_id <= hi."""
    df = con.execute(f"""SELECT doc_id, {view_sql('text', view)} AS text FROM documents
                         WHERE corpus = ? AND doc_id BETWEEN ? AND ? ORDER BY doc_id""",
                     [corpus, int(lo), int(hi)]).fetchdf()
    return df["doc_id"].to_numpy(np.int64), df["text"].tolist()


def doc_info(con: duckdb.DuckDBPyConnection, doc_ids: list[int]) -> dict[int, dict]:
    """ext_id, corpus, given label and curriculum position of documents."""
    if not doc_ids:
        return {}
    rows = con.execute("""
        SELECT d.doc_id, d.ext_id, d.corpus, a.label, c.position
        FROM documents d
        LEFT JOIN annotations a ON a.corpus = d.corpus AND a.ext_id = d.ext_id AND a.annotator IS NULL
        LEFT JOIN curriculum c ON c.doc_id = d.doc_id AND c.order_kind = 'curriculum'
        WHERE d.doc_id IN (SELECT unnest(?))""", [list(map(int, doc_ids))]).fetchall()
    return {r[0]: {"id": r[1], "corpus": r[2], "label": r[3], "curriculum_position": r[4]} for r in rows}


def last_run_failures(con: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
    """id, input, target, slices and meta (every other field of the item, as JSON text) of the
    items each eval set's latest run failed, and the set they come from."""
    return con.execute("""
        SELECT i.id, i.input, i.target, i.slices::VARCHAR AS slices, i.meta::VARCHAR AS meta, u.set_name
        FROM eval_results r JOIN eval_runs u ON u.run_id = r.run_id
        JOIN eval_items i ON i.set_name = u.set_name AND i.set_hash = u.set_hash AND i.id = r.id
        WHERE NOT r.passed AND u.run_id IN (SELECT run_id FROM eval_runs
            QUALIFY row_number() OVER (PARTITION BY set_name ORDER BY created_at DESC) = 1)
        LIMIT ?""", [limit]).fetchdf()


_LABEL_PROBLEMS = {
    "suspects": """SELECT s.ext_id AS id, d.text AS input, s.suggested AS target FROM label_suspects s
                   JOIN documents d ON d.corpus = s.corpus AND d.ext_id = s.ext_id WHERE s.corpus = ?
                   ORDER BY s.rank LIMIT ?""",
    "disagreement": """SELECT c.ext_id AS id, d.text AS input, c.dawid_skene AS target FROM label_consensus c
                       JOIN documents d ON d.corpus = c.corpus AND d.ext_id = c.ext_id
                       WHERE c.corpus = ? AND c.majority_confidence < 0.67 ORDER BY c.ds_confidence LIMIT ?""",
    "conflicts": """SELECT d.ext_id AS id, d.text AS input, a.label AS target FROM label_conflicts k,
                    unnest(from_json(k.ext_ids, '["VARCHAR"]')) AS t(eid)
                    JOIN documents d ON d.corpus = k.corpus AND d.ext_id = t.eid
                    JOIN annotations a ON a.corpus = d.corpus AND a.ext_id = d.ext_id AND a.annotator IS NULL
                    WHERE k.corpus = ? LIMIT ?""",
}


def label_problem_items(con: duckdb.DuckDBPyConnection, corpus: str, kind: str, limit: int) -> pd.DataFrame:
    """id, input, target of items with a label problem: suspects (suggested label), annotator
    disagreement (Dawid-Skene label) or conflicting duplicates (given label)."""
    return con.execute(_LABEL_PROBLEMS[kind], [corpus, limit]).fetchdf()



def item_texts_for(con: duckdb.DuckDBPyConnection, set_hashes: list[str]) -> pd.DataFrame:
    """set_hash, id, text (input, a space, target: what a leak of the item looks like) of every
    item of these set versions."""
    return con.execute("""SELECT DISTINCT set_hash, id, coalesce(input, '') || ' ' || coalesce(target, '') AS text
                          FROM eval_items WHERE set_hash IN (SELECT unnest(?))""", [list(set_hashes)]).fetchdf()


def latest_items(con: duckdb.DuckDBPyConnection, set_name: str) -> pd.DataFrame | None:
    """id, input, target, slices (list), meta (dict) of an eval set's latest stored version."""
    row = one(con, """SELECT set_hash FROM eval_items WHERE set_name = ? GROUP BY set_hash
                      ORDER BY max(rowid) DESC LIMIT 1""", [set_name])
    if row is None:
        return None
    df = con.execute("""SELECT id, input, target, slices::VARCHAR AS slices, meta::VARCHAR AS meta FROM eval_items
                        WHERE set_name = ? AND set_hash = ? ORDER BY rowid""", [set_name, row[0]]).fetchdf()
    return df.assign(slices=df["slices"].map(lambda s: json.loads(s or "[]")),
                     meta=df["meta"].map(lambda s: json.loads(s or "{}")))

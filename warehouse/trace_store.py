"""The failure-tracing index of a training corpus: its idf vector and its TF-IDF rows as an
inverted index (feature -> document, weight), kept once per corpus version. A query is a sparse
matrix product done by DuckDB: the items' weighted features joined to the postings, summed per
(item, document), the top k per item kept. Here SQL is the algorithm: the index lives on disk and
the product never needs the corpus's matrix in memory."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import one, transaction


def index_version(con: duckdb.DuckDBPyConnection, corpus: str) -> tuple[str, int, np.ndarray] | None:
    """(corpus version, documents, idf) of the corpus's complete index, or None."""
    row = one(con, "SELECT corpus_version, n_docs, idf FROM trace_index WHERE corpus = ? ORDER BY corpus_version "
                   "LIMIT 1", [corpus])
    return (row[0], int(row[1]), np.asarray(row[2], dtype=np.float64)) if row else None


def start_index(con: duckdb.DuckDBPyConnection, corpus: str) -> None:
    """Drop the corpus's old index and any postings a killed build left behind."""
    with transaction(con):
        con.execute("DELETE FROM trace_index WHERE corpus = ?", [corpus]).fetchall()
        con.execute("DELETE FROM trace_postings WHERE corpus = ?", [corpus]).fetchall()


def add_postings(con: duckdb.DuckDBPyConnection, corpus: str, version: str, feature: np.ndarray, doc_id: np.ndarray,
                 w: np.ndarray) -> None:
    con.register("post_df", pd.DataFrame({"feature": feature, "doc_id": doc_id, "w": w}))
    try:
        with transaction(con):
            con.execute("INSERT INTO trace_postings SELECT ?, ?, feature, doc_id, w FROM post_df",
                        [corpus, version]).fetchall()
    finally:
        con.unregister("post_df")


def finish_index(con: duckdb.DuckDBPyConnection, corpus: str, version: str, n_docs: int, idf: np.ndarray) -> None:
    """The completion marker: readers use postings only once it is written."""
    with transaction(con):
        con.execute("INSERT INTO trace_index VALUES (?, ?, ?, ?)", [corpus, version, n_docs, idf.tolist()]).fetchall()


def nearest(con: duckdb.DuckDBPyConnection, corpus: str, version: str, item: np.ndarray, feature: np.ndarray,
            w: np.ndarray, k: int, threshold: float) -> pd.DataFrame:
    """item, doc_id, similarity (cosine), support (documents at or above threshold) of the top k
    documents per item."""
    con.register("query_df", pd.DataFrame({"item": item, "feature": feature, "w": w}))
    try:
        return con.execute("""
            WITH s AS (
                SELECT q.item, p.doc_id, sum(q.w * p.w) AS similarity
                FROM query_df q JOIN trace_postings p ON p.feature = q.feature
                WHERE p.corpus = ? AND p.corpus_version = ?
                GROUP BY q.item, p.doc_id)
            SELECT item, doc_id, similarity,
                   count(*) FILTER (WHERE similarity >= ?) OVER (PARTITION BY item) AS support
            FROM s QUALIFY row_number() OVER (PARTITION BY item ORDER BY similarity DESC, doc_id) <= ?
            ORDER BY item, similarity DESC, doc_id""", [corpus, version, threshold, k]).fetchdf()
    finally:
        con.unregister("query_df")

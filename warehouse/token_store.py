"""Token counts per document and tokenizer (`doc_tokens`), and their totals."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import one, transaction
from warehouse.sql import wanted_docs


def missing_token_ids(con: duckdb.DuckDBPyConnection, corpus: str, key: str) -> np.ndarray:
    """doc ids of the corpus with no count under this tokenizer yet."""
    return con.execute("""SELECT d.doc_id FROM documents d WHERE d.corpus = ? AND NOT EXISTS (
                              SELECT 1 FROM doc_tokens t WHERE t.doc_id = d.doc_id AND t.tokenizer = ?)
                          ORDER BY d.doc_id""", [corpus, key]).fetchnumpy()["doc_id"].astype(np.int64)


def write_token_counts(con: duckdb.DuckDBPyConnection, key: str, doc_ids: np.ndarray, counts: np.ndarray) -> None:
    con.register("token_df", pd.DataFrame({"doc_id": np.asarray(doc_ids, np.int64), "n": np.asarray(counts, np.int64)}))
    try:
        with transaction(con):
            con.execute("""INSERT INTO doc_tokens SELECT doc_id, ?, n FROM token_df
                           ON CONFLICT DO NOTHING""", [key]).fetchall()
    finally:
        con.unregister("token_df")


def token_totals(con: duckdb.DuckDBPyConnection, corpus: str, key: str, dedup_config: str | None) -> dict:
    """Tokens of the corpus under this tokenizer: all, and those dedup kept; documents counted."""
    row = one(con, """
        SELECT count(t.n_tokens), coalesce(sum(t.n_tokens), 0),
               coalesce(sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false), 0)
        FROM documents d LEFT JOIN doc_tokens t ON t.doc_id = d.doc_id AND t.tokenizer = ?
        LEFT JOIN dedup_decisions x ON x.corpus = d.corpus AND x.doc_id = d.doc_id AND x.config_hash = ?
        WHERE d.corpus = ?""", [key, dedup_config or "", corpus])
    return {"tokenizer": key, "documents_counted": int(row[0]), "tokens": int(row[1]), "tokens_kept": int(row[2])}


def current_tokenizer(con: duckdb.DuckDBPyConnection, corpus: str) -> str | None:
    """The tokenizer the corpus was last counted with (a run that counted, or found all counted):
    what stats and plans report in."""
    row = one(con, """SELECT json_extract_string(config, '$.tokenizer') FROM runs
                      WHERE stage = 'tokens' AND corpus = ? AND status IN ('ok', 'skipped')
                      ORDER BY started_at DESC LIMIT 1""", [corpus])
    return row[0] if row else None


def doc_token_counts(con: duckdb.DuckDBPyConnection, doc_ids: np.ndarray, key: str) -> np.ndarray:
    """Each document's token count under `key`, in the order of `doc_ids`; -1 where there is none."""
    with wanted_docs(con, doc_ids):
        return con.execute("""SELECT coalesce(t.n_tokens, -1) AS n FROM want_docs w LEFT JOIN doc_tokens t
                              ON t.doc_id = w.doc_id AND t.tokenizer = ? ORDER BY w.pos""",
                           [key]).fetchnumpy()["n"].astype(np.int64)

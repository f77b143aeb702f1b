"""Each document's dominant script and language (`doc_language`)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import one, transaction


def missing_ids(con: duckdb.DuckDBPyConnection, corpus: str) -> np.ndarray:
    return con.execute("""SELECT d.doc_id FROM documents d WHERE d.corpus = ? AND NOT EXISTS (
                              SELECT 1 FROM doc_language l WHERE l.doc_id = d.doc_id) ORDER BY d.doc_id""",
                       [corpus]).fetchnumpy()["doc_id"].astype(np.int64)


def write(con: duckdb.DuckDBPyConnection, doc_ids: np.ndarray, scripts: list[str], languages: list[str],
          detector: str) -> None:
    con.register("lang_df", pd.DataFrame({"doc_id": np.asarray(doc_ids, np.int64), "script": scripts,
                                          "language": languages}))
    try:
        with transaction(con):
            con.execute("INSERT INTO doc_language SELECT doc_id, script, language, ? FROM lang_df ON CONFLICT DO NOTHING",
                        [detector]).fetchall()
    finally:
        con.unregister("lang_df")


def shares(con: duckdb.DuckDBPyConnection, corpus: str, column: str) -> list[tuple[str, int]]:
    """(value, documents) of `script` or `language`, most frequent first."""
    if column not in ("script", "language"):
        raise ValueError(column)
    return con.execute(f"""SELECT l.{column}, count(*) AS n FROM documents d JOIN doc_language l ON l.doc_id = d.doc_id
                           WHERE d.corpus = ? GROUP BY 1 ORDER BY n DESC, 1""", [corpus]).fetchall()


def last_dedup_units(con: duckdb.DuckDBPyConnection, corpus: str) -> tuple | None:
    """(script_units, char_ngrams) of the corpus's latest successful dedup run, as stored JSON."""
    return one(con, """SELECT json_extract(config, '$.script_units'), json_extract(config, '$.char_ngrams')
                       FROM runs WHERE stage = 'dedup' AND corpus = ? AND status = 'ok'
                       ORDER BY finished_at DESC LIMIT 1""", [corpus])

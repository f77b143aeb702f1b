"""Storage for label checks and the curriculum."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import one, session, transaction
from warehouse.sql import bounded_runs, wanted_docs


def latest_dedup_config(con: duckdb.DuckDBPyConnection, corpus: str) -> str | None:
    row = one(con, """SELECT json_extract_string(details, '$.config_hash') FROM runs
                      WHERE stage = 'dedup' AND corpus = ? AND status = 'ok' ORDER BY finished_at DESC LIMIT 1""",
              [corpus])
    return row[0] if row else None


def annotations(con: duckdb.DuckDBPyConnection, corpus: str) -> pd.DataFrame:
    """ext_id, doc_id, annotator ('' for the item's given label), label, for stored documents."""
    return con.execute("""SELECT a.ext_id, d.doc_id, coalesce(a.annotator, '') AS annotator, a.label
                          FROM annotations a JOIN documents d ON d.corpus = a.corpus AND d.ext_id = a.ext_id
                          WHERE a.corpus = ? ORDER BY d.doc_id, annotator""", [corpus]).fetchdf()


def label_groups(con: duckdb.DuckDBPyConnection, corpus: str, config_hash: str | None) -> pd.DataFrame:
    """Given labels with their duplicate group: the near-dup cluster when dedup ran, else the
    exact content hash."""
    return con.execute("""
        SELECT d.ext_id, a.label, coalesce(x.cluster_id, -1) AS cluster_id, d.content_hash
        FROM annotations a JOIN documents d ON d.corpus = a.corpus AND d.ext_id = a.ext_id
        LEFT JOIN dedup_decisions x ON x.corpus = d.corpus AND x.doc_id = d.doc_id AND x.config_hash = ?
        WHERE a.corpus = ? AND a.annotator IS NULL""", [config_hash or "", corpus]).fetchdf()


def view_sql(col: str, view: tuple[int, int] | None) -> str:
    """SQL for a bounded view of a text column: (head, tail) characters joined by "\n…\n" when
    the text is longer than head + tail; the whole column when `view` is None."""
    if view is None:
        return col
    head, tail = (int(v) for v in view)
    return (f"CASE WHEN length({col}) <= {head + tail} THEN {col} "
            f"ELSE left({col}, {head}) || chr(10) || '…' || chr(10) || right({col}, {tail}) END")


def texts_by_ext_id(con: duckdb.DuckDBPyConnection, corpus: str, ext_ids: list[str],
                    view: tuple[int, int] | None = None) -> list[str]:
    """The texts of these documents, in this order. `view` = (head, tail): a text longer than
    head + tail characters comes back as its first head and last tail characters joined by
    "\n…\n" (curation.suspects.bounded_view), cut in DuckDB so a 100 MB document never reaches Python."""
    con.register("want", pd.DataFrame({"ext_id": ext_ids, "pos": np.arange(len(ext_ids))}))
    col = view_sql("d.text", view)
    try:
        rows = con.execute(f"""SELECT {col} FROM want w JOIN documents d ON d.corpus = ? AND d.ext_id = w.ext_id
                              ORDER BY w.pos""", [corpus]).fetchall()
    finally:
        con.unregister("want")
    return [r[0] for r in rows]


def write_texts_file(con: duckdb.DuckDBPyConnection, corpus: str, ext_ids: list[str], path,
                     view: tuple[int, int] | None = None, batch: int = 2_000) -> np.ndarray:
    """`texts_by_ext_id` written to an Arrow IPC file (one string column) batch by batch instead
    of returned: the label check reads it by index (curation.suspects.TextFile), so 100k views
    never sit in one process as Python strings. The rows are written in doc-id order, `batch`
    documents a query (a range of doc ids: DuckDB skips the rest of the table), because one
    ORDER BY over every view held them all in DuckDB (+450 MB at 100k); returns, for each of
    `ext_ids`, its row in the file."""
    import pyarrow as pa

    con.register("want", pd.DataFrame({"ext_id": ext_ids, "pos": np.arange(len(ext_ids))}))
    try:
        found = con.execute("""SELECT w.pos, d.doc_id FROM want w JOIN documents d
                               ON d.corpus = ? AND d.ext_id = w.ext_id ORDER BY d.doc_id""", [corpus]).fetchnumpy()
    finally:
        con.unregister("want")
    pos, doc_ids = (np.asarray(found[c], dtype=np.int64) for c in ("pos", "doc_id"))
    if len(pos) != len(ext_ids):
        raise KeyError(f"{len(ext_ids) - len(pos)} of the ids are not documents of corpus {corpus!r}")
    schema = pa.schema([("text", pa.string())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
        for lo in range(0, len(doc_ids), batch):
            with wanted_docs(con, doc_ids[lo:lo + batch]):
                got = con.sql(f"""SELECT {view_sql('d.text', view)}::VARCHAR AS text FROM want_docs w
                                  JOIN documents d ON d.doc_id = w.doc_id ORDER BY w.pos""").to_arrow_table()
            out.write_table(got.cast(schema))
    row = np.empty(len(ext_ids), dtype=np.int64)
    row[pos] = np.arange(len(pos))
    return row


def save_labels(con: duckdb.DuckDBPyConnection, corpus: str, agreement: dict | None, consensus: pd.DataFrame,
                suspects: pd.DataFrame, conflicts: pd.DataFrame) -> None:
    """Replace this corpus's label findings atomically."""
    con.register("c_df", consensus)
    con.register("s_df", suspects)
    con.register("k_df", conflicts)
    try:
        with transaction(con):
            for t in ("label_agreement", "label_consensus", "label_suspects", "label_conflicts"):
                con.execute(f"DELETE FROM {t} WHERE corpus = ?", [corpus]).fetchall()
            if agreement is not None:
                con.execute("INSERT INTO label_agreement (corpus, report) VALUES (?, ?)",
                            [corpus, json.dumps(agreement)]).fetchall()
            if len(consensus):
                con.execute("""INSERT INTO label_consensus SELECT ?, ext_id, n_ratings, majority, majority_confidence,
                               majority_tie, dawid_skene, ds_confidence FROM c_df""", [corpus]).fetchall()
            if len(suspects):
                con.execute("""INSERT INTO label_suspects SELECT ?, ext_id, given, suggested, score, rank
                               FROM s_df""", [corpus]).fetchall()
            if len(conflicts):
                con.execute("""INSERT INTO label_conflicts SELECT ?, group_id, kind, ext_ids::JSON, labels::JSON
                               FROM k_df""", [corpus]).fetchall()
    finally:
        for v in ("c_df", "s_df", "k_df"):
            con.unregister(v)


def label_scores(con: duckdb.DuckDBPyConnection, corpus: str) -> pd.DataFrame:
    """Per-document label-quality signals for the curriculum (suspect score; 1.0 = no doubt)."""
    return con.execute("""SELECT d.doc_id, s.score AS label_quality FROM label_suspects s
                          JOIN documents d ON d.corpus = s.corpus AND d.ext_id = s.ext_id WHERE s.corpus = ?""",
                       [corpus]).fetchdf()


def kept_documents(con: duckdb.DuckDBPyConnection, corpus: str, config_hash: str | None) -> np.ndarray:
    """doc ids that enter the curriculum: every document, less those dedup dropped (when it ran)."""
    t = con.execute("""SELECT d.doc_id FROM documents d WHERE d.corpus = ? AND NOT EXISTS (
                           SELECT 1 FROM dedup_decisions x WHERE x.corpus = d.corpus AND x.doc_id = d.doc_id
                           AND x.config_hash = ? AND NOT x.keep) ORDER BY d.doc_id""",
                    [corpus, config_hash or ""]).fetchnumpy()
    return t["doc_id"].astype(np.int64)


def cluster_sizes(con: duckdb.DuckDBPyConnection, corpus: str, config_hash: str | None) -> pd.DataFrame:
    return con.execute("""SELECT x.doc_id, c.size FROM dedup_decisions x JOIN (
                              SELECT cluster_id, count(*) AS size FROM dedup_decisions
                              WHERE corpus = ? AND config_hash = ? AND cluster_id IS NOT NULL GROUP BY cluster_id) c
                          ON c.cluster_id = x.cluster_id WHERE x.corpus = ? AND x.config_hash = ?""",
                       [corpus, config_hash or "", corpus, config_hash or ""]).fetchdf()


def texts_by_doc_id(con: duckdb.DuckDBPyConnection, doc_ids: np.ndarray, view: tuple[int, int] | None = None
                    ) -> pd.DataFrame:
    """doc_id, ext_id, text (or its bounded `view`, cut in DuckDB) and meta, in `doc_ids` order."""
    with wanted_docs(con, doc_ids):
        return con.execute(f"""SELECT d.doc_id, d.ext_id, {view_sql('d.text', view)} AS text, d.meta
                               FROM want_docs w JOIN documents d ON d.doc_id = w.doc_id ORDER BY w.pos""").fetchdf()


# At most this many characters of text per batch of `texts_in_batches` (up to 4 bytes each as a
# Python str): a batch of 5,000 documents that held a 100 MB one took token counting to 1.7 GB.
TEXT_BATCH_CHARS = 32 << 20


def texts_in_batches(db, doc_ids: np.ndarray, batch: int, max_chars: int = TEXT_BATCH_CHARS):
    """(doc ids, texts) of `doc_ids` in batches of at most `batch` documents and `max_chars`
    characters (a longer document comes alone), each read in its own short session (the work
    between batches never holds the database)."""
    with session(db) as con:
        sizes = texts_sizes(con, doc_ids, chars=True)
    for lo, hi in bounded_runs(sizes, batch, max_chars):
        part = doc_ids[lo:hi]
        with session(db) as con, wanted_docs(con, part):
            texts = con.execute("""SELECT d.text FROM want_docs w JOIN documents d ON d.doc_id = w.doc_id
                                   ORDER BY w.pos""").fetchnumpy()["text"].tolist()
        yield part, texts


def texts_sizes(con: duckdb.DuckDBPyConnection, doc_ids: np.ndarray, chars: bool = False) -> np.ndarray:
    """UTF-8 bytes (or, with `chars`, characters: the stored count) of each document's text, in
    the order of `doc_ids`."""
    col = "d.n_chars" if chars else "strlen(d.text)"
    with wanted_docs(con, doc_ids):
        return con.execute(f"""SELECT {col} AS n FROM want_docs w JOIN documents d
                               ON d.doc_id = w.doc_id ORDER BY w.pos""").fetchnumpy()["n"].astype(np.int64)


def save_curriculum(con: duckdb.DuckDBPyConnection, corpus: str, order_kind: str, config_hash: str,
                    frame: pd.DataFrame) -> None:
    con.register("cur_df", frame)
    try:
        with transaction(con):
            con.execute("DELETE FROM curriculum WHERE corpus = ? AND order_kind = ?", [corpus, order_kind]).fetchall()
            con.execute("""INSERT INTO curriculum SELECT ?, doc_id, position, pacing_step, difficulty, percentile,
                           scores::JSON, ?, ? FROM cur_df""", [corpus, order_kind, config_hash]).fetchall()
    finally:
        con.unregister("cur_df")


def curriculum_rows(con: duckdb.DuckDBPyConnection, corpus: str, order_kind: str) -> pd.DataFrame:
    return con.execute("""SELECT doc_id, position, pacing_step, difficulty, percentile, config_hash FROM curriculum
                          WHERE corpus = ? AND order_kind = ? ORDER BY position""", [corpus, order_kind]).fetchdf()

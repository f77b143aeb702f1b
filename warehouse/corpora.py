"""Read-side queries about corpora: the list, per-corpus statistics, quarantine."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb

from warehouse.db import one

if TYPE_CHECKING:  # pandas costs ~0.18 s to import, and ingest, which imports this module, never uses it
    import pandas as pd


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def list_corpora(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return _rows(con.execute("""
        SELECT d.corpus, count(*) AS documents, sum(d.n_chars) AS chars,
               (SELECT count(*) FROM quarantine q WHERE q.corpus = d.corpus) AS quarantined,
               (SELECT count(*) FROM sources s WHERE s.corpus = d.corpus) AS files,
               max(d.ingested_at) AS last_ingest
        FROM documents d GROUP BY d.corpus ORDER BY d.corpus"""))


def corpus_exists(con: duckdb.DuckDBPyConnection, corpus: str) -> bool:
    return one(con, "SELECT 1 FROM documents WHERE corpus = ? LIMIT 1", [corpus]) is not None


WORDS_SAMPLE = 5_000  # documents whose words are counted for `mean_words` (a seeded sample past it)


def corpus_stats(con: duckdb.DuckDBPyConnection, corpus: str, word_re2: str) -> dict:
    """Counts, length distribution, exact-duplicate count, labels and quarantine reasons.

    `mean_words`: words per document as the text-units layer counts them (`word_re2`, one match
    per word: dedup.shingle.WORD_RE2, where a character of Chinese, Japanese, Korean or Thai is a
    word; splitting on ' ' made a Chinese document one or two "words" and an indented source file
    thousands), over every document, or over a seeded sample of WORDS_SAMPLE of them when there
    are more (`mean_words_documents` says how many): each match is a value DuckDB builds."""
    row = one(con, """
        SELECT count(*), coalesce(sum(n_chars), 0), count(DISTINCT content_hash),
               min(n_chars), quantile_cont(n_chars, 0.5), max(n_chars)
        FROM documents WHERE corpus = ?""", [corpus])
    docs, chars, distinct, cmin, cmed, cmax = row
    pattern = "'" + word_re2.replace("'", "''") + "'"  # a constant: RE2 compiles it once
    words, sampled = one(con, f"""
        SELECT coalesce(avg(len(regexp_extract_all(text, {pattern}))), 0), count(*)
        FROM (SELECT text FROM documents WHERE corpus = ?)
        USING SAMPLE reservoir({WORDS_SAMPLE} ROWS) REPEATABLE (7)""", [corpus])
    labels = con.execute("""
        SELECT label, count(*) FROM annotations WHERE corpus = ? AND annotator IS NULL
        GROUP BY label ORDER BY 2 DESC, 1""", [corpus]).fetchall()
    ann = one(con, """
        SELECT count(*), count(DISTINCT ext_id), count(DISTINCT annotator)
        FROM annotations WHERE corpus = ? AND annotator IS NOT NULL""", [corpus])
    reasons = con.execute("""
        SELECT reason, count(*) FROM quarantine WHERE corpus = ? GROUP BY reason ORDER BY 2 DESC, 1""",
                          [corpus]).fetchall()
    files = _rows(con.execute("""
        SELECT path, format, size_bytes, rows_read, rows_new, rows_quarantined, ingested_at
        FROM sources WHERE corpus = ? ORDER BY ingested_at""", [corpus]))
    return {
        "corpus": corpus,
        "documents": int(docs),
        "chars": int(chars),
        "mean_words": round(float(words), 1),
        "mean_words_documents": int(sampled),
        "chars_min": cmin, "chars_median": cmed, "chars_max": cmax,
        "distinct_content_hashes": int(distinct),
        "exact_duplicate_docs": int(docs) - int(distinct),
        "given_labels": {k: int(v) for k, v in labels},
        "annotations": {"rows": int(ann[0]), "items": int(ann[1]), "annotators": int(ann[2])},
        "quarantined": {k: int(v) for k, v in reasons},
        "files": files,
    }


def stats_by(con: duckdb.DuckDBPyConnection, corpus: str, field: str, dedup_config: str | None,
             limit: int = 50, tokenizer: str | None = None, *, rule: tuple[int, str]) -> list[dict]:
    """Per value of one metadata field (`source`, `url`, `dump`, a Parquet column...), or of the
    detected `language` / `script` (`taomi languages`; they win over a metadata field of that name
    once detected): documents, characters, tokens, how many the latest dedup kept and removed
    (kept = all when dedup has not run), and how many of the kept ones decontamination flagged
    (`contaminated`, under the contamination `rule` (n, rule), with the tokens left for training:
    what export writes and plans count).
    The most frequent `limit` values; documents without the field count under '(none)'."""
    from warehouse.decontam_store import flagged_docs

    detected = field in ("language", "script") and con.execute(
        "SELECT count(*) FROM doc_language l JOIN documents d ON d.doc_id = l.doc_id WHERE d.corpus = ?",
        [corpus]).fetchall()[0][0] > 0
    value = f"coalesce(l.{field}, '(not detected)')" if detected else "coalesce(d.meta ->> ?, '(none)')"
    flagged, flagged_args, _, _ = flagged_docs(con, corpus, content_version(con, corpus), *rule)
    return _rows(con.execute(f"""
        SELECT {value} AS value, count(*) AS documents, sum(d.n_chars) AS chars,
               sum(t.n_tokens) AS tokens, sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false) AS tokens_kept,
               count(*) FILTER (x.keep IS DISTINCT FROM false) AS kept, count(*) FILTER (x.keep = false) AS removed,
               count(*) FILTER (x.keep IS DISTINCT FROM false AND c.doc_id IS NOT NULL) AS contaminated,
               sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false AND c.doc_id IS NULL) AS tokens_for_training
        FROM documents d LEFT JOIN dedup_decisions x
          ON x.corpus = d.corpus AND x.doc_id = d.doc_id AND x.config_hash = ?
        LEFT JOIN doc_tokens t ON t.doc_id = d.doc_id AND t.tokenizer = ?
        LEFT JOIN doc_language l ON l.doc_id = d.doc_id
        LEFT JOIN {flagged} c ON c.doc_id = d.doc_id
        WHERE d.corpus = ? GROUP BY ALL ORDER BY documents DESC, value LIMIT ?""",
                             ([] if detected else [meta_path(con, corpus, field) or "$." + json.dumps(field)])
                             + [dedup_config or "", tokenizer or "", *flagged_args, corpus, limit]))


def length_histogram(con: duckdb.DuckDBPyConnection, corpus: str, field: str | None, tokenizer: str | None,
                     top: int = 8) -> pd.DataFrame:
    """Documents per (value of `field`, length bin), counted in DuckDB: the bins are quarter
    octaves (bin b holds lengths in [2^(b/4), 2^((b+1)/4))) of the document's tokens under
    `tokenizer`, or of its characters without one. The `top` most frequent values keep their
    name, the rest are '(other)'; no field: one value, '(all)'. Columns: value, bin, documents."""
    length = "t.n_tokens" if tokenizer else "d.n_chars"
    value = "coalesce(d.meta ->> ?, '(none)')" if field else "'(all)'"
    params = ([meta_path(con, corpus, field) or "$." + json.dumps(field)] if field else []) + [tokenizer or "", corpus]
    return con.execute(f"""
        WITH v AS (SELECT {value} AS value, {length} AS n FROM documents d
                   LEFT JOIN doc_tokens t ON t.doc_id = d.doc_id AND t.tokenizer = ?
                   WHERE d.corpus = ? AND {length} IS NOT NULL),
             ranked AS (SELECT value, row_number() OVER (ORDER BY count(*) DESC, value) AS r FROM v GROUP BY value)
        SELECT CASE WHEN r <= {int(top)} THEN v.value ELSE '(other)' END AS value,
               floor(4 * log2(greatest(n, 1)))::INTEGER AS bin, count(*) AS documents
        FROM v JOIN ranked USING (value) GROUP BY ALL ORDER BY min(r), bin""", params).fetchdf()


def meta_fields(con: duckdb.DuckDBPyConnection, corpus: str, sample: int = 10_000) -> list[str]:
    """The metadata fields of a corpus (from its first `sample` documents that have any)."""
    rows = con.execute("""SELECT DISTINCT unnest(json_keys(meta)) FROM (
                              SELECT meta FROM documents WHERE corpus = ? AND meta IS NOT NULL LIMIT ?)
                          ORDER BY 1""", [corpus, sample]).fetchall()
    return [r[0] for r in rows]


def meta_path(con: duckdb.DuckDBPyConnection, corpus: str, field: str, fields: list[str] | None = None) -> str | None:
    """The JSON path of a metadata field: a top-level field by its name (`source`), else a dotted
    path into a nested object that some document of the corpus has (`meta.pile_set_name`, as The
    Pile and RedPajama nest theirs; a top-level name may hold dots itself). None: neither."""
    fields = meta_fields(con, corpus) if fields is None else fields
    if field in fields:
        return "$." + json.dumps(field)
    parts = field.split(".")
    for k in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:k]), parts[k:]
        if head in fields and all(rest):
            path = "$." + ".".join(json.dumps(p) for p in [head, *rest])
            if con.execute("""SELECT count(*) FROM (SELECT 1 FROM documents WHERE corpus = ? AND meta IS NOT NULL
                                                     AND json_exists(meta, ?) LIMIT 1)""",
                           [corpus, path]).fetchall()[0][0]:
                return path
    return None


def quarantine_rows(con: duckdb.DuckDBPyConnection, corpus: str, limit: int = 50) -> list[dict]:
    return _rows(con.execute("""
        SELECT path, line, field, reason, raw FROM quarantine WHERE corpus = ?
        ORDER BY path, line LIMIT ?""", [corpus, limit]))


def document_count(con: duckdb.DuckDBPyConnection, corpus: str) -> int:
    return int(con.execute("SELECT count(*) FROM documents WHERE corpus = ?", [corpus]).fetchall()[0][0])


def content_version(con: duckdb.DuckDBPyConnection, corpus: str) -> str:
    """An order-independent fingerprint of a corpus's documents and annotations: what the label
    check and the curriculum read (with the dedup config). Equal versions, equal inputs."""
    d = con.execute("SELECT count(*), coalesce(bit_xor(hash(doc_id, content_hash)), 0) FROM documents "
                    "WHERE corpus = ?", [corpus]).fetchall()[0]
    a = con.execute("SELECT count(*), coalesce(bit_xor(hash(ext_id, coalesce(annotator, ''), label)), 0) "
                    "FROM annotations WHERE corpus = ?", [corpus]).fetchall()[0]
    return f"{d[0]}:{d[1]}|{a[0]}:{a[1]}"


def known_sources(con: duckdb.DuckDBPyConnection, corpus: str, mapping: str) -> set[str]:
    """Content hashes of the files already ingested into the corpus with this field mapping."""
    return {r[0] for r in con.execute("SELECT DISTINCT file_hash FROM sources WHERE corpus = ? AND mapping = ?",
                                      [corpus, mapping]).fetchall()}


def source_known(con: duckdb.DuckDBPyConnection, corpus: str, file_hash: str, mapping: str) -> bool:
    """Was this file (by content) already ingested into the corpus with this field mapping?"""
    return bool(con.execute("SELECT count(*) FROM sources WHERE corpus = ? AND file_hash = ? AND mapping = ?",
                            [corpus, file_hash, mapping]).fetchall()[0][0])


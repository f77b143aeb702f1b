"""Ingest JSON lines / JSON arrays (.gz, .zst), Parquet, Arrow IPC and CSV (.gz, .zst) files,
folders of them and globs into `documents`, bad rows into `quarantine`.

Per file, in ONE transaction: each ~64 MB chunk is parsed by DuckDB (JSON functions, vectorised)
and its good rows go straight into `documents`, its line bookkeeping into a small staging table;
then ids repeated within the file or already stored are resolved, bad rows are quarantined with
file, line, field and reason, and the file is recorded in `sources`. A file whose content hash is
already recorded for the corpus is a no-op; a new version of a file adds only rows whose id is
new. A kill before COMMIT leaves the database exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.corpora import source_known
from warehouse.csv_reader import csv_chunks
from warehouse.db import one, set_memory_limit, transaction
from warehouse.readers import (
    CHUNK_BYTES,
    RAW_KEEP_CHARS,
    Fields,
    InputError,
    Progress,
    _bad_table,
    arrow_chunks,
    check_input,
    chunk_bytes_for,
    classify_sql,
    expand_inputs,
    file_hash,
    json_line_row,
    jsonl_chunks,
    lit,
    parquet_chunks,
)
from warehouse.runlog import finish_run, skip_run, stable_hash, start_run

__all__ = [
    "FileResult",
    "IngestConfig",
    "InputError",
    "PartialIngest",
    "content_hash",
    "content_hash_sql",
    "ingest_file",
    "ingest_paths",
]

# The exact-duplicate key: md5 hex of the text lower-cased, ASCII whitespace runs folded to one
# space and trimmed, NFC-composed when it holds combining marks (U+0300-036F, Hangul jamo,
# kana voicing marks). The CASE fast paths skip the regex and NFC where they cannot change the
# text: ~2.5x less time than applying both to every row (375 MB corpus, bench/ingest_bench.py).
COMBINING = "[\\x{0300}-\\x{036F}\\x{1100}-\\x{11FF}\\x{3099}\\x{309A}]"
_CONTENT_HASH_SQL = """md5(CASE
    WHEN contains({col}, '  ') OR contains({col}, chr(9)) OR contains({col}, chr(10))
         OR contains({col}, chr(12)) OR contains({col}, chr(13))
         OR starts_with({col}, ' ') OR ends_with({col}, ' ')
    THEN trim(regexp_replace(N_, '[ \\t\\n\\f\\r]+', ' ', 'g')) ELSE N_ END)""".replace(
    "N_", "lower(CASE WHEN strlen({col}) <> length({col}) AND regexp_matches({col}, '" + COMBINING + "') "
          "THEN nfc_normalize({col}) ELSE {col} END)")


def content_hash_sql(col: str) -> str:
    """SQL for the exact-duplicate key of column `col`."""
    return _CONTENT_HASH_SQL.replace("{col}", col)


def content_hash(text: str) -> str:
    """The same key in Python (tests, and callers hashing a text that is not stored)."""
    import re
    import unicodedata

    if re.search("[\u0300-\u036f\u1100-\u11ff\u3099\u309a]", text):
        text = unicodedata.normalize("NFC", text)
    folded = re.sub(r"[ \t\n\f\r]+", " ", text.lower()).strip(" ")
    return hashlib.md5(folded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IngestConfig:
    """Field names of one ingest. `id_field` missing from a row: the id becomes `file:line`."""

    corpus: str
    text_field: str = "text"
    id_field: str = "id"
    label_field: str | None = "label"
    annotator_field: str | None = "annotator"

    def __post_init__(self) -> None:
        if not self.corpus or not self.corpus.strip():
            raise ValueError("corpus name must be a non-empty string (--corpus NAME)")
        for name in ("text_field", "id_field"):
            if not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty field name")
        fields = [f for f in (self.text_field, self.id_field, self.label_field, self.annotator_field) if f]
        if len(set(fields)) != len(fields):
            raise ValueError(f"text/id/label/annotator fields must differ, got {fields}")

    def fields(self) -> Fields:
        return Fields(self.text_field, self.id_field, self.label_field, self.annotator_field)



@dataclass
class FileResult:
    path: str
    format: str
    status: str  # "ingested" | "unchanged"
    file_hash: str
    size_bytes: int
    rows_read: int = 0
    rows_new: int = 0
    rows_existing: int = 0
    rows_quarantined: int = 0
    annotations_new: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)



STAGING_DDL = """CREATE OR REPLACE TEMP TABLE staging (
    line_no BIGINT, eid VARCHAR, chash VARCHAR, label VARCHAR, annotator VARCHAR,
    bad_field VARCHAR, bad_reason VARCHAR, raw VARCHAR)"""


FLUSH_BYTES = 256 << 20  # parsed rows held before an INSERT: bounds memory per file
STAGE_PREFIX = "taomi_ingest_stage_"


def drop_stale_stages(con) -> list[str]:
    """Drop the text staging tables of ingests that were killed before their final commit (they
    are Taomi's own scratch; the lock means no other ingest is running)."""
    names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND "
                                       "starts_with(table_name, ?)", [STAGE_PREFIX]).fetchall()]
    for name in names:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
    return names


def _load_chunks(con, chunks, cfg: IngestConfig, path: Path, stage: str) -> int:
    """Stage good rows (keyed by line number) in the committed table `stage`, and every row's
    bookkeeping (no text) in the temp table `staging`; return the last line number read.

    Each flush of up to FLUSH_BYTES commits on its own: DuckDB holds the appends of an open
    transaction in memory (measured: a 1M-document file in one transaction peaked at 4.3 GB with
    a 512 MB memory limit; batches committed as they come stay flat). The documents appear in one
    INSERT ... SELECT in the file's final transaction (`ingest_file`), so the file is still
    all or nothing.
    """
    eid = f"coalesce(ext_id, {lit(path.name + ':')} || line_no)"
    last = 0
    pending: list[pa.Table] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        if not pending:
            return
        con.register("parsed_rows", pa.concat_tables(pending))
        with transaction(con):
            con.execute(f"""INSERT INTO "{stage}" SELECT line_no, eid, text, chash, meta
                            FROM parsed_rows WHERE bad_reason IS NULL""").fetchall()
            con.execute("""INSERT INTO staging SELECT line_no, eid, chash, label, annotator, bad_field,
                           bad_reason, raw FROM parsed_rows""").fetchall()
        con.unregister("parsed_rows")
        pending, pending_bytes = [], 0

    query = f"""SELECT *, {eid} AS eid, CASE WHEN bad_reason IS NULL THEN {content_hash_sql('text')} END AS chash
                FROM ({{source}})"""

    def in_python(table: pa.Table):  # a JSON line too long for DuckDB's parser: parsed by Python
        if set(table.column_names) != {"line_no", "raw"}:
            return None
        row = json_line_row(int(table.column(0)[0].as_py()), table.column(1)[0].as_py(), cfg.fields())
        return {"chunk": _bad_table([row])}, query.replace("{source}", classify_sql("SELECT * FROM chunk",
                                                                                     cfg.text_field))

    for objects, source, last_line in chunks:
        sql = query.replace("{source}", classify_sql(source, cfg.text_field))
        for table in _classified(con, objects, sql, path, in_python):
            pending.append(table)
            pending_bytes += table.nbytes
            if pending_bytes >= FLUSH_BYTES:
                flush()
        last = max(last, last_line)
    flush()
    return last


def _classified(con, objects: dict[str, pa.Table], sql: str, path: Path, in_python=None) -> list[pa.Table]:
    """Run a chunk's query; when DuckDB runs out of memory, run it on each half of the chunk's
    rows, down to one row: a chunk of long documents goes through in smaller pieces. One JSON line
    that still does not fit is parsed by Python (`in_python`); any other row that does not fit
    is one error naming the file, the line and the setting to raise."""
    for name, obj in objects.items():
        con.register(name, obj)
    try:
        return [con.sql(sql).to_arrow_table()]
    except duckdb.OutOfMemoryException as exc:
        error = str(exc).splitlines()[0]
    finally:
        for name in objects:
            con.unregister(name)
    table = next(iter(objects.values())) if len(objects) == 1 else None
    if table is not None and table.num_rows == 1 and in_python is not None:
        fallback = in_python(table)
        if fallback is not None:
            return _classified(con, fallback[0], fallback[1], path)
    if table is None or table.num_rows <= 1:
        where = f"line {table.column(0)[0].as_py()}" if table is not None and table.num_rows else "a row"
        raise IngestMemoryError(f"{path}: {where} needs more memory than DuckDB may use ({error}); raise "
                                "--memory-limit (memory_limit in the config)")
    name, half = next(iter(objects)), table.num_rows // 2
    return (_classified(con, {name: table.slice(0, half)}, sql, path, in_python)
            + _classified(con, {name: table.slice(half)}, sql, path, in_python))


class IngestMemoryError(InputError):
    """One row of a file needs more memory than DuckDB may use; nothing of the file was written."""


def _resolve_ids(con, cfg: IngestConfig, base: int) -> None:
    """Keep one document per id: the first line of the file, unless the id was already stored.

    A later line with the same id and the same (normalised) text is an annotation row; with a
    different text it is quarantined, naming the line it conflicts with.
    """
    corpus = cfg.corpus
    repeated = one(con, """SELECT count(*) FROM (SELECT eid FROM staging WHERE bad_reason IS NULL
                              GROUP BY eid HAVING count(*) > 1)""")[0]
    if repeated:
        con.execute(f"""
            UPDATE staging SET bad_field = {lit(cfg.id_field)},
                bad_reason = 'id repeats line ' || d.first_line || ' with a different text'
            FROM (SELECT eid, min(line_no) AS first_line, arg_min(chash, line_no) AS first_hash
                  FROM staging WHERE bad_reason IS NULL GROUP BY eid HAVING count(*) > 1) d
            WHERE staging.eid = d.eid AND staging.bad_reason IS NULL AND staging.chash <> d.first_hash""").fetchall()
        con.execute("""
            DELETE FROM documents WHERE doc_id > ? AND corpus = ? AND doc_id - ? NOT IN (
                SELECT min(line_no) FROM staging WHERE bad_reason IS NULL GROUP BY eid)""",
                    [base, corpus, base]).fetchall()
    if one(con, "SELECT 1 FROM documents WHERE corpus = ? AND doc_id <= ? LIMIT 1",
                   [corpus, base]):
        # An id stored earlier (another file, or an older version of this one): the same text is
        # the same document (its labels are still taken); a different text is quarantined, naming
        # where the stored one came from. Never dropped silently.
        con.execute(f"""
            UPDATE staging SET bad_field = {lit(cfg.id_field)},
                bad_reason = 'id already stored from ' || s.source_path || ' line ' || s.source_line
                             || ' with a different text',
                raw = s.raw_text
            FROM (SELECT st.line_no, o.source_path, o.source_line, left(n.text, {RAW_KEEP_CHARS}) AS raw_text
                  FROM staging st JOIN documents o ON o.corpus = ? AND o.doc_id <= ? AND o.ext_id = st.eid
                  LEFT JOIN documents n ON n.doc_id = ? + st.line_no
                  WHERE st.bad_reason IS NULL AND o.content_hash <> st.chash) s
            WHERE staging.line_no = s.line_no""", [corpus, base, base]).fetchall()
        con.execute("""
            DELETE FROM documents WHERE doc_id > ? AND corpus = ? AND ext_id IN (
                SELECT ext_id FROM documents WHERE corpus = ? AND doc_id <= ?)""",
                    [base, corpus, corpus, base]).fetchall()


def _finish_file(con, cfg: IngestConfig, path: Path, base: int, result: FileResult) -> None:
    corpus, src = cfg.corpus, str(path)
    result.rows_new = one(con, "SELECT count(*) FROM documents WHERE doc_id > ? AND corpus = ?",
                                  [base, corpus])[0]
    good = one(con, "SELECT count(DISTINCT eid) FROM staging WHERE bad_reason IS NULL")[0]
    result.rows_existing = int(good) - int(result.rows_new)
    result.annotations_new = one(con, """
        INSERT INTO annotations (corpus, ext_id, annotator, label, source_path, source_line)
        SELECT ?, eid, annotator, label, ?, line_no
        FROM (SELECT * FROM staging WHERE bad_reason IS NULL AND label IS NOT NULL
              QUALIFY row_number() OVER (PARTITION BY eid, annotator ORDER BY line_no) = 1) s
        WHERE NOT EXISTS (SELECT 1 FROM annotations a WHERE a.corpus = ? AND a.ext_id = s.eid
                          AND a.annotator IS NOT DISTINCT FROM s.annotator)""",
                                          [corpus, src, corpus])[0]
    con.execute("""
        INSERT INTO quarantine (corpus, path, line, field, reason, raw)
        SELECT ?, ?, line_no, bad_field, bad_reason, raw FROM staging s
        WHERE bad_reason IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM quarantine q WHERE q.corpus = ? AND q.path = ? AND q.line = s.line_no
            AND q.reason = s.bad_reason)""", [corpus, src, corpus, src]).fetchall()
    reasons = con.execute("SELECT bad_reason, count(*) FROM staging WHERE bad_reason IS NOT NULL "
                          "GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
    result.reasons = {r: int(c) for r, c in reasons}
    result.rows_quarantined = sum(result.reasons.values())
    con.execute(
        "INSERT INTO sources (corpus, path, file_hash, format, size_bytes, rows_read, rows_new, "
        "rows_quarantined, config, mapping) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [corpus, src, result.file_hash, result.format, result.size_bytes, result.rows_read,
         result.rows_new, result.rows_quarantined, json.dumps(asdict(cfg)), json.dumps(asdict(cfg))]).fetchall()


def ingest_file(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, cfg: IngestConfig,
                progress: Progress | None = None, known_hash: str | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> FileResult:
    """Ingest one file in one transaction; see the module docstring for the guarantees."""
    p, fmt, gz = check_input(path, cfg.fields())
    digest = known_hash or file_hash(p)
    size = p.stat().st_size
    result = FileResult(str(p), fmt, "ingested", digest, size)
    if source_known(con, cfg.corpus, digest, json.dumps(asdict(cfg))):
        if progress:
            progress(size)
        result.status = "unchanged"
        return result
    f = cfg.fields()
    if fmt == "jsonl":
        chunks = jsonl_chunks(p, gz, f, progress, chunk_bytes)
    elif fmt == "csv":
        chunks = csv_chunks(p, gz, f, progress, chunk_bytes)
    elif fmt == "arrow":
        chunks = arrow_chunks(con, p, f, progress, chunk_bytes)
    else:
        chunks = parquet_chunks(con, p, f, progress, chunk_bytes)
    con.execute(STAGING_DDL)
    stage = f"{STAGE_PREFIX}{uuid.uuid4().hex[:12]}"
    con.execute(f'CREATE TABLE "{stage}" (line_no BIGINT, eid VARCHAR, text VARCHAR, chash VARCHAR, meta JSON)')
    try:
        result.rows_read = _load_chunks(con, chunks, cfg, p, stage)
        with transaction(con):
            base = one(con, "SELECT coalesce(max(doc_id), 0) FROM documents")[0]
            con.execute(f"""INSERT INTO documents (doc_id, corpus, ext_id, text, content_hash, n_chars,
                                                   source_path, source_line, meta)
                            SELECT ? + line_no, ?, eid, text, chash, length(text), ?, line_no, meta FROM "{stage}"
                            """, [base, cfg.corpus, str(p)]).fetchall()
            _resolve_ids(con, cfg, base)
            _finish_file(con, cfg, p, base, result)
            con.execute(f'DROP TABLE "{stage}"')
    finally:
        con.execute("DROP TABLE IF EXISTS staging")
        con.execute(f'DROP TABLE IF EXISTS "{stage}"')
    return result


class PartialIngest(RuntimeError):
    """A file failed after earlier files of the same call were committed; `results` says which."""

    def __init__(self, message: str, results: list[FileResult], failed: str):
        super().__init__(message)
        self.results, self.failed = results, failed


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: list[str | os.PathLike], cfg: IngestConfig,
                 progress_factory: Callable[[Path], Progress | None] | None = None,
                 duckdb_memory_mb: int | None = 512) -> list[FileResult]:
    """Check every path first (exists, readable, format, the text field where the format shows it
    up front): nothing is written if any fails. Then ingest each file in its own transaction; if
    one still fails midway (an I/O error), the files before it stay committed and PartialIngest
    says so, naming the failed file. DuckDB's memory is capped at `duckdb_memory_mb` (its default,
    80% of RAM, let a 1M-document ingest peak at 5 GB); parsed rows add at most FLUSH_BYTES."""
    if duckdb_memory_mb:
        set_memory_limit(con, duckdb_memory_mb)
    drop_stale_stages(con)
    fields = cfg.fields()
    probed = [check_input(p, fields) for p in expand_inputs(paths)]
    checked = [p for p, _, _ in probed]
    hashes = [file_hash(p) for p in checked]
    inputs_hash = stable_hash(sorted(hashes), asdict(cfg))
    mapping = json.dumps(asdict(cfg))
    if all(source_known(con, cfg.corpus, h, mapping) for h in hashes):  # nothing new: a skipped run
        skip_run(con, "ingest", inputs_hash, asdict(cfg), cfg.corpus)
        return [FileResult(str(p), fmt, "unchanged", h, p.stat().st_size) for (p, fmt, _), h in zip(probed, hashes)]
    run = start_run(con, "ingest", inputs_hash, asdict(cfg), corpus=cfg.corpus)
    results: list[FileResult] = []
    try:
        for p, h in zip(checked, hashes):
            results.append(ingest_file(con, p, cfg, progress_factory(p) if progress_factory else None, h,
                                       chunk_bytes_for(duckdb_memory_mb)))
    except BaseException as exc:
        finish_run(con, run, status="failed", message=str(exc)[:500],
                   details={"files": [r.as_dict() for r in results]})
        if results and isinstance(exc, Exception):
            failed = str(checked[len(results)])
            raise PartialIngest(f"{failed}: {exc}; nothing of this file was written, the {len(results)} "
                                "file(s) before it were ingested", results, failed) from exc
        raise
    finish_run(con, run, counts_in=sum(r.rows_read for r in results),
               counts_out=sum(r.rows_new for r in results),
               details={"files": [r.as_dict() for r in results]})
    return results

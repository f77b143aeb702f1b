"""Ingest JSON lines / JSON arrays (.gz, .zst), Parquet, Arrow IPC and CSV (.gz, .zst) files,
folders of them and globs into `documents`, bad rows into `quarantine`.

Per unit (a file, or consecutive small files up to UNIT_FILES / UNIT_BYTES), in ONE final
transaction: each ~chunk of input is parsed by DuckDB (JSON functions, vectorised; the chunks of
small files share a query); ids repeated within the unit or already stored are resolved, bad rows
are quarantined with file, line, field and reason, and each file is recorded in `sources`. A unit
whose parsed rows fit FLUSH_BYTES is written once, from memory, in that transaction; a larger one
(or one DuckDB cannot write in its memory limit) is staged first in batches. A file
whose content hash is already recorded for the corpus is a no-op; a new version of a file adds
only rows whose id is new. A kill before COMMIT leaves the database exactly as it was: a unit
appears whole or not at all.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.corpora import known_sources, source_known
from warehouse.csv_reader import csv_chunks
from warehouse.db import one, set_memory_limit, transaction
from warehouse.readers import (
    CHUNK_BYTES,
    MAX_LINE_BYTES,
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
    long_json_line_table,
    mark_deep,
    parquet_chunks,
)
from warehouse.runlog import finish_run, skip_run, stable_hash, start_run
from warehouse.sql import arrow, numpy

__all__ = [
    "FileResult",
    "IngestConfig",
    "InputError",
    "PartialIngest",
    "content_hash",
    "content_hash_sql",
    "folded_key",
    "folded_key_sql",
    "ingest_file",
    "ingest_paths",
]

# The exact-duplicate key: md5 hex of the text's UTF-8 bytes, as DuckDB's `md5(text)` and NeMo
# Curator's ExactDuplicates compute it: "exact" is byte-identical. A copy that differs only in
# case, whitespace, Unicode normal form or punctuation is a near duplicate: MinHash's defaults
# (NFKC, casefold, punctuation fold, text units) give it Jaccard 1.0 with its original, so dedup
# still removes it, with reason `near` and its cluster.
# Until schema 19 the stored key was the folded key below. Its fold cost 2.6 CPU-s of 5.9 on a
# 70 MB Parquet folder and kept ingest at 1.6-2.5x DuckDB's md5 CTAS (bench/RESULTS.md);
# migration 19 rewrote the stored keys.


def content_hash_sql(col: str) -> str:
    """SQL for the exact-duplicate key of column `col` (what ingest stores)."""
    return f"md5({col})"


def content_hash(text: str) -> str:
    """The same key in Python (tests, and callers hashing a text that is not stored)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# The folded key: is a second row with a stored id the same document? A later line (or file) with
# the same id whose text differs only in case, ASCII whitespace runs, the ends' spaces or NFC is
# an annotation of the stored document, not a conflict. Computed only for rows whose id is stored
# and whose exact key differs, so it costs ingest nothing on the common path.
# It is the md5 hex of the text lower-cased, ASCII whitespace runs folded to one space and trimmed,
# NFC-composed when it holds combining marks (U+0300-036F, Hangul jamo,
# kana voicing marks). The CASE fast paths skip the regex and NFC where they cannot change the
# text: ~2.5x less time than applying both to every row (375 MB corpus, bench/ingest_bench.py).
# The fold's regex leaves a lone space alone (replacing ' ' by ' ' changes nothing): every run it
# matches starts with a tab, newline, form feed or return, or is two or more characters. Same
# output, far fewer matches: 1.6-2.1x faster on real package text.
# The trim: DuckDB's trim() walks every character of the text (0.37 s of 1.1 s on 194 MB of real
# package text), though it only strips the ends. So the ASCII whitespace at the ends is cut before
# the fold by two regexes anchored at an end (RE2 reads only the end), and trim() runs only on a
# text that still starts or ends with one of the space separators it strips (`SPACE_SEPARATORS`,
# found by trying every code point). The lambda binds the folded text once: DuckDB does not share
# an expression repeated inside a CASE branch, and evaluated the fold three times. The same key,
# 1.2-1.3x faster (12,000 real package files, 194 MB).
COMBINING = "[\\x{0300}-\\x{036F}\\x{1100}-\\x{11FF}\\x{3099}\\x{309A}]"
SPACE_SEPARATORS = "[\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{202F}\\x{205F}\\x{3000}]"
# (DuckDB's nfc_normalize stops at a NUL character: a text holding one is not NFC-composed, else
# 'é\0abc' and 'é\0xyz' got one key)
_LOWER_NFC = ("lower(CASE WHEN strlen({col}) <> length({col}) AND regexp_matches({col}, '" + COMBINING + "') "
              "AND NOT contains({col}, chr(0)) THEN nfc_normalize({col}) ELSE {col} END)")
_FOLDED = ("regexp_replace(regexp_replace(regexp_replace(N_, '^[ \\t\\n\\f\\r]+', ''), '[ \\t\\n\\f\\r]+$', ''), "
           "'[\\t\\n\\f\\r][ \\t\\n\\f\\r]*| [ \\t\\n\\f\\r]+', ' ', 'g')")
_FOLDED_KEY_SQL = """md5(CASE
    WHEN contains({col}, '  ') OR contains({col}, chr(9)) OR contains({col}, chr(10))
         OR contains({col}, chr(12)) OR contains({col}, chr(13))
         OR starts_with({col}, ' ') OR ends_with({col}, ' ')
    THEN list_transform([F_], lambda f: CASE WHEN regexp_matches(f, '^S_') OR regexp_matches(f, 'S_$') THEN trim(f)
                                              ELSE f END)[1]
    ELSE N_ END)""".replace("F_", _FOLDED).replace("S_", SPACE_SEPARATORS).replace("N_", _LOWER_NFC)


def folded_key_sql(col: str) -> str:
    """SQL for the folded key of column `col` (same id, same document?)."""
    return _FOLDED_KEY_SQL.replace("{col}", col)


def folded_key(text: str) -> str:
    """The folded key in Python (its reference in tests)."""
    import re
    import unicodedata

    if re.search("[\u0300-\u036f\u1100-\u11ff\u3099\u309a]", text) and "\x00" not in text:
        text = unicodedata.normalize("NFC", text)
    folded = text.lower()
    if re.search("[\t\n\f\r]|  ", text) or text.startswith(" ") or text.endswith(" "):
        # DuckDB's trim removes the Unicode space separators, not only U+0020
        folded = re.sub(r"[ \t\n\f\r]+", " ", folded).strip(" \u00a0\u1680\u2000\u2001\u2002\u2003\u2004"
                                                           "\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000")
    return hashlib.md5(folded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IngestConfig:
    """Field names of one ingest. `id_field` missing from a row: the id becomes `file:line`."""

    corpus: str
    text_field: str = "text"
    id_field: str = "id"
    label_field: str | None = "label"
    annotator_field: str | None = "annotator"
    # a longer JSON line / CSV record is quarantined unread; None: `line_limit(chunk_bytes)`
    max_line_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_line_bytes is not None and (not isinstance(self.max_line_bytes, int) or self.max_line_bytes < 1):
            raise ValueError(f"max_line_bytes must be a positive number of bytes, got {self.max_line_bytes!r}")
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

    def as_dict(self) -> dict:
        """The options that decide what a file yields, as recorded in `sources` and the run log;
        the line limit only when it is given (so files ingested before it existed are still
        known, and a raised limit reads a file again)."""
        d = asdict(self)
        if d["max_line_bytes"] is None:
            del d["max_line_bytes"]
        return d


def line_limit(cfg: IngestConfig, chunk_bytes: int) -> int:
    """The line limit of an ingest: the one given, else 8 chunks (a quarter of DuckDB's memory
    cap: 128 MB at the default 512 MB), at most MAX_LINE_BYTES. A line that DuckDB cannot hold
    is then quarantined up front, not read into memory and parsed in vain."""
    return cfg.max_line_bytes or min(MAX_LINE_BYTES, 8 * chunk_bytes)



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



# `line_no` is a row's number within its ingest unit (one file, or a group of small files read
# one after the other); `fno` the file's place in the unit and `src_line` its line in that file.
STAGING_DDL = """CREATE OR REPLACE TEMP TABLE staging (
    line_no BIGINT, fno INTEGER, src_line BIGINT, eid VARCHAR, chash VARCHAR, label VARCHAR, annotator VARCHAR,
    bad_field VARCHAR, bad_reason VARCHAR, raw VARCHAR)"""
UNIT_FILES_DDL = "CREATE OR REPLACE TEMP TABLE unit_files (fno INTEGER, path VARCHAR)"


FLUSH_BYTES = 256 << 20  # parsed rows held before an INSERT: bounds memory per file
STAGE_PREFIX = "taomi_ingest_stage_"
# Small files are ingested in units: up to UNIT_FILES files and UNIT_BYTES of input share one
# staging table and one final transaction. One transaction per file cost ~45 ms of fixed work
# (commits, id resolution, bookkeeping queries that scan the corpus) and grew with the corpus:
# 1,308 files of ~130 KB took 129 s against 8.4 s for the same rows in one file.
UNIT_FILES = 512
UNIT_BYTES = 64 << 20


def drop_stale_stages(con) -> list[str]:
    """Drop the text staging tables that ingests before the stage became a temp table left in
    the database when they were killed (Taomi's own scratch; the lock means no other ingest is
    running)."""
    names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND "
                                       "starts_with(table_name, ?)", [STAGE_PREFIX]).fetchall()]
    for name in names:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
    return names


def _line_column(table: pa.Table) -> str | None:
    """The column holding a chunk's 1-based line (row) numbers."""
    return next((c for c in ("line_no", "__taomi_line") if c in table.column_names), None)


class _Batch:
    """Chunks of consecutive files that share one query, run together (a query costs ~7 ms
    of planning and start-up whatever its size: 1,308 files of ~130 KB spent 17 s in it). Line
    numbers are shifted to the unit's numbering; `spans` maps them back to file and line."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.sql: str | None = None
        self.name: str | None = None
        self.nbytes = 0
        self.spans: list[tuple[int, int, str]] = []  # (fno, unit line before the file's first, file)

    def fits(self, objects: dict[str, pa.Table], sql: str, chunk_bytes: int) -> bool:
        if len(objects) != 1:
            return False
        (name, table), = objects.items()
        return not self.tables or (sql == self.sql and name == self.name and table.schema == self.tables[0].schema
                                   and self.nbytes + table.nbytes <= chunk_bytes)

    def add(self, objects: dict[str, pa.Table], sql: str, fno: int, offset: int, path: Path) -> None:
        (name, table), = objects.items()
        col = _line_column(table)
        if offset and col is not None:
            i = table.column_names.index(col)
            table = table.set_column(i, col, arrow(numpy(table.column(i)).astype(np.int64) + offset))
        self.tables.append(table)
        self.sql, self.name, self.nbytes = sql, name, self.nbytes + table.nbytes
        if not self.spans or self.spans[-1][0] != fno:
            self.spans.append((fno, offset, str(path)))

    def locate(self, line: int) -> str:
        """'FILE: line N' of a unit line number."""
        _fno, first, path = self.spans[bisect.bisect_left([s[1] for s in self.spans], line) - 1]
        return f"{path}: line {line - first}"


def _load_unit(con, members: list[tuple[Path, str, bool, str]], cfg: IngestConfig, stage: str,
               progress_factory: Callable[[Path], Progress | None] | None, chunk_bytes: int
               ) -> tuple[list[int], _Pending]:
    """Parse a unit's files; return each file's last line number, and the parsed rows not yet
    written (keyed by their line number in the unit).

    Past FLUSH_BYTES of parsed rows, they are written as they come (`_flush`): the good rows to
    the temp table `stage`, every row's bookkeeping (no text) to the temp table `staging`, each
    flush committing on its own: DuckDB holds the appends of an open transaction in memory
    (measured: a 1M-document file in one transaction peaked at 4.3 GB with a 512 MB memory limit;
    batches committed as they come stay flat). A temp table spills to DuckDB's temp directory
    past the memory limit and is neither compressed nor logged: 361 MB of generated JSON lines
    ingested in 12.0-13.3 s against 13.6-14.4 s with a stage in the database file. A unit under
    FLUSH_BYTES is written once, straight from memory, in the unit's final transaction
    (`_ingest_unit`); either way the documents appear all at once or not at all.
    """
    f = cfg.fields()
    pending = _Pending()
    # Every column cast to one type, whatever the format: the rows of the files of a unit are
    # written together. Each row's file, its line in that file and its fallback id come after the
    # query, from the batch's spans (`_placed`): an ASOF join with the spans held the whole chunk
    # before its projection, which then ran on one thread (the content key on 41 MB of real text:
    # 0.51 s joined, 0.31 s without).
    query = f"""SELECT src.line_no::BIGINT AS line_no, src.text::VARCHAR AS text, src.label::VARCHAR AS label,
                       src.annotator::VARCHAR AS annotator, src.bad_field::VARCHAR AS bad_field,
                       src.bad_reason::VARCHAR AS bad_reason, src.raw::VARCHAR AS raw, src.meta::VARCHAR AS meta,
                       src.ext_id::VARCHAR AS ext_id,
                       CASE WHEN src.bad_reason IS NULL THEN {content_hash_sql('src.text')} END::VARCHAR AS chash
                FROM ({{source}}) AS src"""

    bad_sql = query.replace("{source}", classify_sql("SELECT * FROM chunk", cfg.text_field))

    def in_python(table: pa.Table):  # a JSON line too long for DuckDB's parser: parsed by Python
        if set(table.column_names) != {"line_no", "raw"}:
            return None
        line = int(table.column(0)[0].as_py())
        parsed = long_json_line_table(line, table.column(1).cast(pa.binary())[0].as_buffer(), f)
        if parsed is None:  # not a plain object with a string text: parsed whole, to say what it is
            parsed = _bad_table([json_line_row(line, table.column(1)[0].as_py(), f)])
        return {"chunk": parsed}, bad_sql

    def too_big(line: int, error: str):  # one row DuckDB cannot hold: quarantined, the file goes on
        return {"chunk": _bad_table([(line, None, None, None, None, None, "(line)", _too_big(error), None)])}, bad_sql

    def run(batch: _Batch) -> None:
        if not batch.tables:
            return
        tables = _classified(con, {batch.name: pa.concat_tables(batch.tables)}, batch.sql, batch.locate,
                             in_python, too_big)
        for table in tables:
            table = _placed(table, batch.spans)
            table = mark_deep(table, {"meta": ("(metadata)", 1), "eid": (cfg.id_field, 0),
                                      "label": (cfg.label_field or "label", 0),
                                      "annotator": (cfg.annotator_field or "annotator", 0)})
            pending.tables.append(table)
            pending.nbytes += table.nbytes
            if pending.nbytes >= FLUSH_BYTES:
                _flush(con, stage, pending)

    lasts, offset, batch = [], 0, _Batch()
    for fno, (p, fmt, gz, _) in enumerate(members):
        last = 0
        for objects, source, last_line in _chunks_of(con, p, fmt, gz, f, progress_factory(p) if progress_factory
                                                     else None, chunk_bytes, line_limit(cfg, chunk_bytes)):
            sql = query.replace("{source}", classify_sql(source, cfg.text_field))
            if not batch.fits(objects, sql, chunk_bytes):
                run(batch)
                batch = _Batch()
            if len(objects) == 1:
                batch.add(objects, sql, fno, offset, p)
            else:  # not a one-table chunk: run alone (no reader yields one today)
                raise AssertionError(f"{p}: a chunk of {len(objects)} tables")
            last = max(last, last_line)
        lasts.append(last)
        offset += last
    run(batch)
    return lasts, pending


def _placed(table: pa.Table, spans: list[tuple[int, int, str]]) -> pa.Table:
    """A chunk query's rows with their file (`fno`), their line in it (`src_line`) and their id
    (`eid`: the id field, else 'FILE_NAME:LINE'), from the spans (fno, unit line before the file's
    first, path) of the batch they were read in."""
    line = numpy(table.column("line_no")).astype(np.int64)
    firsts = np.array([s[1] for s in spans], dtype=np.int64)
    k = np.searchsorted(firsts, line, side="left") - 1  # the last span whose first line is before
    src_line = arrow(line - firsts[k])
    ext = table.column("ext_id")
    if ext.null_count:
        # (Arrow arrays only: a Python scalar argument imports pandas, 0.18 s)
        prefixes = pc.cast(arrow(np.array([Path(s[2]).name + ":" for s in spans] + [""], dtype=object)), pa.string())
        made = pc.binary_join_element_wise(pc.take(prefixes, arrow(k)), pc.cast(src_line, pa.string()),
                                           pc.take(prefixes, arrow(np.full(len(k), len(spans)))))
        ext = pc.coalesce(ext, pc.cast(made, ext.type))
    table = table.drop_columns(["ext_id"])
    return (table.append_column("fno", arrow(np.array([s[0] for s in spans], dtype=np.int32)[k]))
            .append_column("src_line", src_line).append_column("eid", ext))


@dataclass
class _Pending:
    """Parsed rows not yet written, and their size; `staged`: some were written to the stage."""

    tables: list[pa.Table] = field(default_factory=list)
    nbytes: int = 0
    staged: bool = False


def _too_big(error: str) -> str:
    return (f"the row needs more memory than DuckDB may use ({error}); raise --memory-limit "
            "(memory_limit in the config) to read it")


def _flush(con, stage: str, pending: _Pending) -> None:
    """Write parsed rows to the stage (good rows, with text) and to `staging` (every row's
    bookkeeping), in transactions of their own; empties `pending`."""
    if pending.tables:
        _write_stage(con, stage, pa.concat_tables(pending.tables))
    pending.tables, pending.nbytes, pending.staged = [], 0, True


def _write_stage(con, stage: str, rows: pa.Table) -> None:
    """`_flush` of one table; when DuckDB runs out of memory, each half is written on its own, and
    one row that still cannot be written is quarantined (its bookkeeping kept, its text not)."""
    con.register("parsed_rows", rows)
    try:
        with transaction(con):
            con.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (line_no BIGINT, eid VARCHAR, text VARCHAR, '
                        'chash VARCHAR, meta JSON, fno INTEGER, src_line BIGINT)')
            con.execute(f"""INSERT INTO "{stage}" SELECT line_no, eid, text, chash, meta, fno, src_line
                            FROM parsed_rows WHERE bad_reason IS NULL""").fetchall()
            con.execute("""INSERT INTO staging SELECT line_no, fno, src_line, eid, chash, label, annotator,
                           bad_field, bad_reason, raw FROM parsed_rows""").fetchall()
        return
    except duckdb.OutOfMemoryException as exc:
        error = str(exc).splitlines()[0]
        if rows.num_rows == 1:
            with transaction(con):
                con.execute(f"""INSERT INTO staging SELECT line_no, fno, src_line, eid, chash, label, annotator,
                                   coalesce(bad_field, '(line)'), coalesce(bad_reason, ?),
                                   coalesce(raw, left(text, {RAW_KEEP_CHARS})) FROM parsed_rows""",
                            [_too_big(error)]).fetchall()
            return
    finally:
        con.unregister("parsed_rows")
    half = rows.num_rows // 2
    _write_stage(con, stage, rows.slice(0, half))
    _write_stage(con, stage, rows.slice(half))


def _classified(con, objects: dict[str, pa.Table], sql: str, locate: Callable[[int], str], in_python=None,
                too_big=None) -> list[pa.Table]:
    """Run a chunk's query; when DuckDB runs out of memory, run it on each half of the chunk's
    rows, down to one row: a chunk of long documents goes through in smaller pieces. One JSON line
    that still does not fit is parsed by Python (`in_python`); a row that does not fit even so is
    quarantined (`too_big(line, error)`), and without that fallback it is one error naming the
    file (`locate(line)`), the line and the setting to raise."""
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
            return _classified(con, fallback[0], fallback[1], locate, None, too_big)
    if table is None or table.num_rows <= 1:
        col = _line_column(table) if table is not None and table.num_rows else None
        if col and too_big is not None:
            line = int(table.column(col)[0].as_py())
            return _classified(con, *too_big(line, error), locate)
        where = locate(int(table.column(col)[0].as_py())) if col else "a row"
        raise IngestMemoryError(f"{where} needs more memory than DuckDB may use ({error}); raise "
                                "--memory-limit (memory_limit in the config)")
    name, half = next(iter(objects)), table.num_rows // 2
    return (_classified(con, {name: table.slice(0, half)}, sql, locate, in_python, too_big)
            + _classified(con, {name: table.slice(half)}, sql, locate, in_python, too_big))


class IngestMemoryError(InputError):
    """One row of a file needs more memory than DuckDB may use; nothing of the file was written."""


def _resolve_ids(con, cfg: IngestConfig, base: int) -> None:
    """Keep one document per id: its first line in the unit, unless the id was already stored.

    A later line with the same id and the same text up to case, whitespace and NFC (the folded
    key, computed only where the exact keys differ) is an annotation row; with a different text it
    is quarantined with its own text, naming the line (and, from another file of the unit, the
    file) it conflicts with.
    """
    corpus = cfg.corpus
    repeated = one(con, """SELECT count(*) FROM (SELECT eid FROM staging WHERE bad_reason IS NULL
                              GROUP BY eid HAVING count(*) > 1)""")[0]
    if repeated:
        con.execute(f"""
            UPDATE staging SET bad_field = {lit(cfg.id_field)},
                bad_reason = CASE WHEN staging.fno = d.first_fno THEN 'id repeats line ' || d.first_src
                                  ELSE 'id already stored from ' || d.first_path || ' line ' || d.first_src END
                             || ' with a different text',
                raw = (SELECT left(t.text, {RAW_KEEP_CHARS}) FROM documents t WHERE t.doc_id = {int(base)} + staging.line_no)
            FROM (SELECT r.*, u.path AS first_path FROM (
                      SELECT eid, arg_min(chash, line_no) AS first_hash, arg_min(fno, line_no) AS first_fno,
                             arg_min(src_line, line_no) AS first_src, min(line_no) AS first_line
                      FROM staging WHERE bad_reason IS NULL GROUP BY eid HAVING count(*) > 1) r
                  JOIN unit_files u ON u.fno = r.first_fno) d
            WHERE staging.eid = d.eid AND staging.bad_reason IS NULL AND staging.chash <> d.first_hash
              AND (SELECT {folded_key_sql('t.text')} FROM documents t WHERE t.doc_id = {int(base)} + staging.line_no)
                  IS DISTINCT FROM
                  (SELECT {folded_key_sql('t.text')} FROM documents t WHERE t.doc_id = {int(base)} + d.first_line)
            """).fetchall()
        con.execute("""
            DELETE FROM documents WHERE doc_id > ? AND corpus = ? AND doc_id - ? NOT IN (
                SELECT min(line_no) FROM staging WHERE bad_reason IS NULL GROUP BY eid)""",
                    [base, corpus, base]).fetchall()
    if one(con, "SELECT 1 FROM documents WHERE corpus = ? AND doc_id <= ? LIMIT 1",
                   [corpus, base]):
        # An id stored earlier (another file, or an older version of this one): the same text is
        # the same document (its labels are still taken); a different text is quarantined, naming
        # where the stored one came from. Never dropped silently. "The same" is the folded key,
        # taken of the unit's kept row for the id (`k`): a later row of the id in this unit was
        # folded-equal to it, and has left `documents` already.
        con.execute(f"""
            UPDATE staging SET bad_field = {lit(cfg.id_field)},
                bad_reason = 'id already stored from ' || s.source_path || ' line ' || s.source_line
                             || ' with a different text',
                raw = s.raw_text
            FROM (SELECT st.line_no, o.source_path, o.source_line, left(n.text, {RAW_KEEP_CHARS}) AS raw_text
                  FROM staging st JOIN documents o ON o.corpus = ? AND o.doc_id <= ? AND o.ext_id = st.eid
                  LEFT JOIN documents n ON n.doc_id = ? + st.line_no
                  JOIN (SELECT eid, min(line_no) AS first_line FROM staging WHERE bad_reason IS NULL
                        GROUP BY eid) f ON f.eid = st.eid
                  LEFT JOIN documents k ON k.doc_id = ? + f.first_line
                  WHERE st.bad_reason IS NULL AND o.content_hash <> st.chash
                        AND {folded_key_sql('o.text')} IS DISTINCT FROM {folded_key_sql('k.text')}) s
            WHERE staging.line_no = s.line_no""", [corpus, base, base, base]).fetchall()
        con.execute("""
            DELETE FROM documents WHERE doc_id > ? AND corpus = ? AND ext_id IN (
                SELECT ext_id FROM documents WHERE corpus = ? AND doc_id <= ?)""",
                    [base, corpus, corpus, base]).fetchall()


def _finish_unit(con, cfg: IngestConfig, base: int, results: list[FileResult]) -> None:
    """Per file of the unit: count what it added, take its annotations, quarantine its bad rows
    with file and line, and record it in `sources`."""
    corpus = cfg.corpus
    new = dict(con.execute("""SELECT s.fno, count(*) FROM documents d JOIN staging s ON d.doc_id = ? + s.line_no
                               WHERE d.doc_id > ? AND d.corpus = ? GROUP BY s.fno""", [base, base, corpus]).fetchall())
    good = dict(con.execute("SELECT fno, count(DISTINCT eid) FROM staging WHERE bad_reason IS NULL GROUP BY fno"
                            ).fetchall())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE unit_annotations AS
        SELECT s.fno, eid, annotator, label, u.path, src_line
        FROM (SELECT * FROM staging WHERE bad_reason IS NULL AND label IS NOT NULL
              QUALIFY row_number() OVER (PARTITION BY eid, annotator ORDER BY line_no) = 1) s
        JOIN unit_files u ON u.fno = s.fno
        WHERE NOT EXISTS (SELECT 1 FROM annotations a WHERE a.corpus = ? AND a.ext_id = s.eid
                          AND a.annotator IS NOT DISTINCT FROM s.annotator)""", [corpus])
    added = dict(con.execute("SELECT fno, count(*) FROM unit_annotations GROUP BY fno").fetchall())
    con.execute("""INSERT INTO annotations (corpus, ext_id, annotator, label, source_path, source_line)
                   SELECT ?, eid, annotator, label, path, src_line FROM unit_annotations""", [corpus]).fetchall()
    con.execute("DROP TABLE unit_annotations")
    con.execute("""
        INSERT INTO quarantine (corpus, path, line, field, reason, raw)
        SELECT ?, u.path, src_line, bad_field, bad_reason, raw FROM staging s JOIN unit_files u ON u.fno = s.fno
        WHERE bad_reason IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM quarantine q WHERE q.corpus = ? AND q.path = u.path AND q.line = s.src_line
            AND q.reason = s.bad_reason)""", [corpus, corpus]).fetchall()
    reasons: dict[int, dict[str, int]] = {}
    for fno, reason, n in con.execute("SELECT fno, bad_reason, count(*) FROM staging WHERE bad_reason IS NOT NULL "
                                      "GROUP BY ALL ORDER BY 1, 3 DESC, 2").fetchall():
        reasons.setdefault(fno, {})[reason] = int(n)
    mapping = json.dumps(cfg.as_dict())
    for fno, result in enumerate(results):
        result.rows_new = int(new.get(fno, 0))
        result.rows_existing = int(good.get(fno, 0)) - result.rows_new
        result.reasons = reasons.get(fno, {})
        result.rows_quarantined = sum(result.reasons.values())
        result.annotations_new = int(added.get(fno, 0))
    con.executemany(
        "INSERT INTO sources (corpus, path, file_hash, format, size_bytes, rows_read, rows_new, "
        "rows_quarantined, config, mapping) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[corpus, r.path, r.file_hash, r.format, r.size_bytes, r.rows_read, r.rows_new, r.rows_quarantined,
          mapping, mapping] for r in results])


def _chunks_of(con, p: Path, fmt: str, gz: bool, f: Fields, progress: Progress | None, chunk_bytes: int,
               max_line: int | None = None):
    if fmt == "jsonl":
        return jsonl_chunks(p, gz, f, progress, chunk_bytes, max_line)
    if fmt == "csv":
        return csv_chunks(p, gz, f, progress, chunk_bytes, max_line=max_line)
    if fmt == "arrow":
        return arrow_chunks(con, p, f, progress, chunk_bytes)
    return parquet_chunks(con, p, f, progress, chunk_bytes)


def _ingest_unit(con: duckdb.DuckDBPyConnection, members: list[tuple[Path, str, bool, str]], cfg: IngestConfig,
                 progress_factory: Callable[[Path], Progress | None] | None, chunk_bytes: int) -> list[FileResult]:
    """Ingest files (path, format, gzipped, content hash) in one final transaction: all of them
    or none. Past FLUSH_BYTES, rows are staged in batches first (bounded memory); the
    documents appear in one INSERT ... SELECT at the end."""
    results = [FileResult(str(p), fmt, "ingested", h, p.stat().st_size) for p, fmt, _, h in members]
    con.execute(STAGING_DDL)
    con.execute(UNIT_FILES_DDL)
    paths = [str(m[0]) for m in members]
    con.executemany("INSERT INTO unit_files VALUES (?, ?)", list(enumerate(paths)))
    stage = f"{STAGE_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        lasts, pending = _load_unit(con, members, cfg, stage, progress_factory, chunk_bytes)
        for result, last in zip(results, lasts):
            result.rows_read = last
        if not pending.staged:
            # The rows are still in memory: written once, in the final transaction. The stage (a
            # second write and commit of every text) is the fallback when DuckDB cannot do that
            # in its memory limit.
            rows = pa.concat_tables(pending.tables) if pending.tables else None
            try:
                with transaction(con):
                    base = one(con, "SELECT coalesce(max(doc_id), 0) FROM documents")[0]
                    if rows is not None:
                        con.register("parsed_rows", rows)
                        con.execute("""INSERT INTO staging SELECT line_no, fno, src_line, eid, chash, label,
                                       annotator, bad_field, bad_reason, raw FROM parsed_rows""").fetchall()
                        _insert_documents(con, cfg, base, "(SELECT * FROM parsed_rows WHERE bad_reason IS NULL)", paths)
                    _resolve_ids(con, cfg, base)
                    _finish_unit(con, cfg, base, results)
                return results
            except duckdb.OutOfMemoryException:
                try:  # rolled back already, unless it was the COMMIT that failed
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
            finally:
                if rows is not None:
                    con.unregister("parsed_rows")
        _flush(con, stage, pending)
        with transaction(con):
            base = one(con, "SELECT coalesce(max(doc_id), 0) FROM documents")[0]
            if one(con, "SELECT 1 FROM duckdb_tables() WHERE table_name = ?", [stage]):
                _insert_documents(con, cfg, base, f'"{stage}"', paths)
            _resolve_ids(con, cfg, base)
            _finish_unit(con, cfg, base, results)
            con.execute(f'DROP TABLE IF EXISTS "{stage}"')
    finally:
        con.execute("DROP TABLE IF EXISTS staging")
        con.execute("DROP TABLE IF EXISTS unit_files")
        con.execute(f'DROP TABLE IF EXISTS "{stage}"')
    return results


def _insert_documents(con, cfg: IngestConfig, base: int, rows: str, paths: list[str]) -> None:
    """The good rows of a unit (`rows`: the stage, or the parsed rows in memory) into `documents`,
    numbered after `base` by their line in the unit; `paths[fno]` is each row's file.

    The path is taken from a list, not joined from `unit_files`: a join's output has no order,
    so DuckDB inserts it in parallel, each thread filling row groups of its own, and the next
    checkpoint merges their partial ones (4,096 + 1,904 rows, twice, per unit): 0.75 s more on a
    70 MB Parquet folder, paid when the session closes. DuckDB's batch insert keeps the order and
    writes row groups that the checkpoint leaves as they are (bench/ingest_real_bench.py)."""
    con.execute(documents_insert_sql(rows), [base, cfg.corpus, paths]).fetchall()


def documents_insert_sql(rows: str) -> str:
    """`_insert_documents`'s statement; parameters: base, corpus, the unit's paths."""
    return f"""INSERT INTO documents (doc_id, corpus, ext_id, text, content_hash, n_chars, source_path,
                                      source_line, meta)
               SELECT ? + s.line_no, ?, s.eid, s.text, s.chash, length(s.text), (?::VARCHAR[])[s.fno + 1],
                      s.src_line, s.meta
               FROM {rows} s"""


def ingest_file(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, cfg: IngestConfig,
                progress: Progress | None = None, known_hash: str | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> FileResult:
    """Ingest one file in one transaction; see the module docstring for the guarantees."""
    p, fmt, gz = check_input(path, cfg.fields())
    digest = known_hash or file_hash(p)
    if source_known(con, cfg.corpus, digest, json.dumps(cfg.as_dict())):
        if progress:
            progress(p.stat().st_size)
        return FileResult(str(p), fmt, "unchanged", digest, p.stat().st_size)
    return _ingest_unit(con, [(p, fmt, gz, digest)], cfg, (lambda _p: progress) if progress else None,
                        chunk_bytes)[0]


def units(members: list[tuple[Path, str, bool, str]], max_files: int | None = None, max_bytes: int | None = None
          ) -> list[list[tuple[Path, str, bool, str]]]:
    """Consecutive files grouped into ingest units of at most `max_files` files and `max_bytes`
    of input (UNIT_FILES, UNIT_BYTES; a file at least that large is a unit of its own); order is
    kept. The files are spread evenly over as few units as the bounds allow: four shards of
    17.5 MB made units of three and one, and the lone shard's 3,000 rows, short of one row group,
    went to DuckDB's write-ahead log and then through a checkpoint (48.5 MB, 0.3-0.7 s); two units of
    two fill a row group each, and are written straight to the file."""
    max_files = max_files or UNIT_FILES
    max_bytes = max_bytes or UNIT_BYTES
    sizes = [m[0].stat().st_size for m in members]
    n_units = max(1, -(-sum(sizes) // max_bytes), -(-len(members) // max_files))
    files_each, bytes_each = min(max_files, -(-len(members) // n_units)), sum(sizes) / n_units
    out: list[list] = []
    size = 0
    for m, n in zip(members, sizes):
        if not out or len(out[-1]) >= files_each or size + n > max_bytes or 0 < bytes_each <= size:
            out.append([])
            size = 0
        out[-1].append(m)
        size += n
    return out


class PartialIngest(RuntimeError):
    """A file failed after earlier files of the same call were committed; `results` says which."""

    def __init__(self, message: str, results: list[FileResult], failed: str):
        super().__init__(message)
        self.results, self.failed = results, failed


def use_system_allocator() -> None:
    """Arrow allocates through the C library's malloc from here on, in this process, not through
    pyarrow's default (mimalloc). Under mimalloc, pyarrow's read of the same four 17.5 MB Parquet
    shards took 0.6 to 2.1 s from one run to the next, and the ingest of them 2.9 to 5.1 s; under
    malloc 0.5-0.6 s and 3.1-3.4 s, with the same peak memory, and JSON lines as fast as before
    (bench/RESULTS.md). Buffers made before the call are freed to their own pool."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: list[str | os.PathLike], cfg: IngestConfig,
                 progress_factory: Callable[[Path], Progress | None] | None = None,
                 duckdb_memory_mb: int | None = 512) -> list[FileResult]:
    """Check every path first (exists, readable, format, the text field where the format shows it
    up front): nothing is written if any fails. Then ingest the files in order, in units (a large
    file alone, small ones up to UNIT_FILES / UNIT_BYTES together), each unit in one final
    transaction; if one still fails midway (an I/O error), the units before it stay committed and
    PartialIngest says so, naming the files that were not written. A file whose content is
    already stored (or appears earlier in the same call) is "unchanged". DuckDB's memory is capped
    at `duckdb_memory_mb` (its default, 80% of RAM, let a 1M-document ingest peak at 5 GB);
    parsed rows add at most FLUSH_BYTES."""
    if duckdb_memory_mb:
        set_memory_limit(con, duckdb_memory_mb)
    use_system_allocator()
    drop_stale_stages(con)
    fields = cfg.fields()
    probed = [check_input(p, fields) for p in expand_inputs(paths)]
    hashes = [file_hash(p) for p, _, _ in probed]
    inputs_hash = stable_hash(sorted(hashes), cfg.as_dict())
    mapping = json.dumps(cfg.as_dict())
    known = known_sources(con, cfg.corpus, mapping)
    results: list[FileResult | None] = [None] * len(probed)
    todo: list[tuple[Path, str, bool, str]] = []
    place: dict[str, int] = {}
    for i, ((p, fmt, gz), h) in enumerate(zip(probed, hashes)):
        if h in known:
            results[i] = FileResult(str(p), fmt, "unchanged", h, p.stat().st_size)
        else:
            known.add(h)
            todo.append((p, fmt, gz, h))
            place[str(p)] = i
    if not todo:  # nothing new: a skipped run
        skip_run(con, "ingest", inputs_hash, cfg.as_dict(), cfg.corpus)
        return results
    run = start_run(con, "ingest", inputs_hash, cfg.as_dict(), corpus=cfg.corpus)
    for r in results:
        if r is not None and progress_factory and (bar := progress_factory(Path(r.path))):
            bar(r.size_bytes)
    done: list[FileResult] = []
    try:
        for unit in units(todo):
            for r in _ingest_unit(con, unit, cfg, progress_factory, chunk_bytes_for(duckdb_memory_mb)):
                results[place[r.path]] = r
                done.append(r)
    except BaseException as exc:
        finish_run(con, run, status="failed", message=str(exc)[:500], details={"files": [r.as_dict() for r in done]})
        if done and isinstance(exc, Exception):
            failed = [str(m[0]) for m in todo[len(done):]]
            where = failed[0] if len(failed) == 1 else f"{failed[0]} (and {len(failed) - 1:,} more files)"
            raise PartialIngest(f"{where}: {exc}; nothing of these was written, the {len(done)} file(s) "
                                "before them were ingested", [r for r in results if r is not None], failed[0]) from exc
        raise
    finish_run(con, run, counts_in=sum(r.rows_read for r in done), counts_out=sum(r.rows_new for r in done),
               details={"files": [r.as_dict() for r in results]})
    return results

"""Readers for ingest: each format becomes chunks of one standard shape, bad rows marked.

A chunk is a SQL query (over objects the reader registered on the connection) with the columns
`line_no, text, text_type, ext_id, label, annotator, bad_field, bad_reason, raw, meta`; `bad_reason`
is set for rows that cannot be kept. `classify_sql` adds the checks common to every format.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sql import arrow, bounded_runs, numpy
from warehouse.streams import head_bytes, lf_lines, open_bytes, stream_error, strip_bom

CHUNK_BYTES = 64 << 20  # the most text parsed in one DuckDB query


def chunk_bytes_for(duckdb_mb: int | None) -> int:
    """Bytes of input per chunk under a DuckDB memory cap: a 64 MB chunk of real documents (7 KB
    median, a tail to 1 MB) needed more than the 488 MB DuckDB gets by default; 1/32 of the cap
    went through with room (measured on 12,000 package files, 204 MB of JSON lines)."""
    if not duckdb_mb:
        return CHUNK_BYTES
    return max(1 << 20, min(CHUNK_BYTES, (duckdb_mb << 20) // 32))
RAW_KEEP_CHARS = 300
# A JSON line (or CSV record) longer than this is quarantined with its length and not parsed
# (`--max-line-bytes`, `max_line_bytes` in the config): a 100 MB document goes in, a line that
# would take gigabytes to parse does not take the file's other rows with it.
MAX_LINE_BYTES = 256 << 20
FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",  # a .json holding one array: see json_array
    ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
    ".csv": "csv",
}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}
# In a folder: files a dataset tool writes beside the data (datasets.save_to_disk, the Hub).
NOT_DATA = {"dataset_info.json", "state.json", "dataset_dict.json", "dataset_infos.json", ".taomi-owned.json"}
COLUMNS = ["line_no", "text", "text_type", "ext_id", "label", "annotator", "bad_field", "bad_reason", "raw", "meta"]
# `meta`: every field of a row besides text, id, label and annotator, as one JSON object (NULL
# when there is none). datatrove's nested `metadata` object is flattened into it, its keys beside
# the row's other fields (a top-level field wins a clash), so `source`, `url`, `dump` are fields.
META = "metadata"


def meta_patch(f: Fields, flatten: bool = True) -> str:
    """The JSON merge patch (RFC 7386) that removes the mapped fields (and, when it is an object
    to flatten, `metadata`) from a row."""
    return json.dumps({k: None for k in (f.text, f.id, f.label, f.annotator, META if flatten else None) if k})

Progress = Callable[[int], None]


class InputError(ValueError):
    """A file that cannot be ingested at all (missing, unknown or unreadable format)."""


@dataclass(frozen=True)
class Fields:
    text: str
    id: str
    label: str | None
    annotator: str | None


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def json_path(name: str) -> str:
    return lit('$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def detect_format(path: Path) -> tuple[str, str | None]:
    """(format, compression: None, "gzip" or "zstd") from the file name; InputError otherwise."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    core = suffixes[-2] if comp and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(core)
    if fmt is None or (comp and fmt in ("parquet", "arrow")):
        raise InputError(
            f"{path}: unknown format '{''.join(path.suffixes) or '(no extension)'}'; expected .jsonl, .json, "
            ".parquet, .arrow or .csv (JSON lines and CSV also .gz or .zst)")
    return fmt, comp


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _data_files(folder: Path) -> list[Path]:
    """Every file of a known format below `folder` (recursive, sorted, hidden names skipped,
    the metadata files dataset tools write beside the data skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in NOT_DATA:
                continue
            try:
                detect_format(Path(name))
            except InputError:
                continue
            out.append(Path(dirpath) / name)
    return out


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Files, folders (every data file below, recursively: a Hub dataset's `data/`, a datatrove
    output folder, a `datasets.save_to_disk` folder) and globs (`data/*.parquet`, `**` for any
    depth), in the order given, each expanded in sorted order; a file named twice is read once.
    A glob or folder that yields no data file is an InputError naming it."""
    import glob

    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = _data_files(p)
            if not found:
                raise InputError(f"{p}: a folder with no .jsonl, .json, .parquet, .arrow or .csv file in it")
        elif not p.exists() and _has_glob(str(raw)):
            found = [Path(x) for x in sorted(glob.glob(str(raw), recursive=True))]
            found = [f for d in found for f in (_data_files(d) if d.is_dir() else [d])]
            if not found:
                raise InputError(f"{raw}: no file matches this pattern")
        else:
            found = [p]
        out.extend(found)
    seen: set[Path] = set()
    return [f for f in out if not (f.resolve() in seen or seen.add(f.resolve()))]


# Held-out split names as `datasets` reads them from a Hub dataset's file layout (its
# data_files keywords: a folder named so, or a file name starting with or holding the keyword
# between separators: `data/test-00000-of-00001.parquet`, `validation/data-00000-of-00001.arrow`)
HELD_OUT = {"validation": ("validation", "valid", "dev", "val"), "test": ("test", "testing", "eval", "evaluation")}
_SEP = "[-._ 0-9]"
_HELD_OUT_NAME = {split: re.compile(f"(?:^|{_SEP})(?:{'|'.join(words)})(?:{_SEP}|$)", re.IGNORECASE)
                  for split, words in HELD_OUT.items()}


def held_out_splits(paths: list[str | os.PathLike], files: list[Path]) -> dict[str, list[str]]:
    """Files that a folder or glob among `paths` brought in and whose layout names a held-out
    split ({'test': [file, ...], 'validation': [...]}): ingested with the rest, they would train
    on the data a model is tested on. A file named on its own is taken as meant."""
    named = {Path(p).resolve() for p in paths if Path(p).is_file()}
    out: dict[str, list[str]] = {}
    for f in files:
        if f.resolve() in named:
            continue
        parts = [x.lower() for x in f.parts[:-1]] + [f.name.split(".", 1)[0]]
        for split, pattern in _HELD_OUT_NAME.items():
            if any(x in HELD_OUT[split] for x in parts[:-1]) or pattern.search(parts[-1]):
                out.setdefault(split, []).append(str(f))
                break
    return out


def held_out_note(corpus: str, split: str, names: list[str]) -> str:
    """What ingest says of the files of a held-out split it takes in (the CLI and `taomi run`)."""
    return (f"{len(names):,} file(s) of the {split} split by their names (e.g. {names[0]}) go into '{corpus}' "
            "with the rest")


def check_input(path: str | os.PathLike, fields: Fields | None = None) -> tuple[Path, str, bool]:
    """Validate a path before anything is written: exists, readable, known and parseable format,
    and (given `fields`) the text field present where the format says so up front."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    fmt, gz = detect_format(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from exc
    if gz and not head.startswith(MAGIC[gz]):
        raise InputError(f"{p}: not a {gz} file (bad magic bytes)")
    if fmt == "arrow":
        cols = arrow_columns(p)
        if fields and fields.text not in cols:
            raise InputError(f"{p}: no column '{fields.text}' (columns: {', '.join(cols)}); "
                             "name the text column with --text-field")
    elif fmt == "parquet":
        try:
            with duckdb.connect() as probe:
                probe.execute(f"SELECT count(*) FROM parquet_metadata({lit(str(p))})").fetchall()
                cols = [r[0] for r in probe.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({lit(str(p))})").fetchall()]
        except duckdb.Error as exc:
            raise InputError(f"{p}: unreadable Parquet ({str(exc).splitlines()[0]})") from exc
        if fields and fields.text not in cols:
            raise InputError(f"{p}: no column '{fields.text}' (columns: {', '.join(cols)}); "
                             "name the text column with --text-field")
    elif fields:
        _check_head(p, fmt, gz, fields)
    return p, fmt, gz


def _check_head(p: Path, fmt: str, gz: bool, fields: Fields, sample: int = 1000) -> None:
    """A wrong --text-field is refused before anything is written: the CSV header lacks the
    column, or none of the first JSON objects has the field (while they do have others)."""
    head = head_bytes(p, gz)
    if fmt == "csv":
        import csv

        first = head.decode("utf-8", "replace").splitlines()[:1]
        header = next(csv.reader(first), []) if first else []
        if header and fields.text not in [h.strip() for h in header]:
            raise InputError(f"{p}: line 1: no column '{fields.text}' in the header {header}; "
                             "name the text column with --text-field")
        return
    if is_json_array(p, gz):  # one JSON array of objects (not JSON lines)
        _check_array(p, fields, sample)
        return
    seen: dict[str, None] = {}
    objects = 0
    for line in head.replace(b"\r", b"\n").split(b"\n")[:-1][:sample]:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            if fields.text in obj:
                return
            objects += 1
            seen.update(dict.fromkeys(obj))
    if objects:
        raise InputError(f"{p}: no field '{fields.text}' in the first {objects} JSON objects (fields there: "
                         f"{', '.join(list(seen)[:12])}); name the text field with --text-field")


def is_json_array(path: Path, comp: str | None) -> bool:
    """A .json file (.json.gz, .json.zst) whose content starts with '[': one array, read by
    DuckDB's read_json. A .jsonl or .ndjson file is always JSON lines (a line '[1, 2]' there is a
    bad row)."""
    core = [x.lower() for x in path.suffixes][-2 if comp else -1:][:1]
    return core == [".json"] and head_bytes(path, comp, 1 << 12).lstrip()[:1] == b"["


def _array_sql(path: Path) -> str:
    # elements up to 1 GiB (DuckDB's default maximum_object_size, 16 MB, refuses long documents)
    # each element as its JSON text (left to infer, a uniform array becomes STRUCTs, not JSON)
    return (f"read_json({lit(str(path))}, format = 'array', records = false, columns = {{'json': 'JSON'}}, "
            "maximum_object_size = 1073741824)")


def _check_array(p: Path, fields: Fields, sample: int) -> None:
    """The whole array parses (a broken array cannot be split into good and bad elements), and
    the text field is in its first objects."""
    try:
        with duckdb.connect() as probe:
            probe.execute(f"SELECT count(*) FROM {_array_sql(p)}").fetchall()
            keys = probe.execute(f"""SELECT list_distinct(flatten(list(json_keys(json)))),
                                            count(*) FILTER (json_type(json) = 'OBJECT'),
                                            bool_or(json_exists(json, {json_path(fields.text)}))
                                     FROM (SELECT json FROM {_array_sql(p)} LIMIT {sample})""").fetchall()[0]
    except duckdb.Error as exc:
        raise InputError(f"{p}: not a readable JSON array ({str(exc).splitlines()[0]})") from exc
    seen, objects, has_text = keys
    if objects and not has_text:
        raise InputError(f"{p}: no field '{fields.text}' in the first {objects} JSON objects (fields there: "
                         f"{', '.join((seen or [])[:12])}); name the text field with --text-field")


def file_hash(path: Path) -> str:
    """Content identity of a file (sha1: not for security; 2x faster than blake2b here)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def text_check_sql(type_col: str, text_col: str) -> tuple[str, str]:
    """(condition, reason) for a missing, non-string or empty text.

    regexp_full_match, not trim(): DuckDB's trim walks every character (10x slower here).
    """
    cond = f"({type_col} IS NULL OR {type_col} <> 'VARCHAR' OR regexp_full_match({text_col}, '\\s*'))"
    reason = f"""CASE WHEN {type_col} IS NULL THEN 'missing text field'
        WHEN {type_col} <> 'VARCHAR' THEN 'text is ' || CASE
            WHEN {type_col} IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'INTEGER', 'FLOAT') THEN 'a number'
            WHEN {type_col} = 'BOOLEAN' THEN 'a boolean' WHEN {type_col} = 'NULL' THEN 'null'
            WHEN {type_col} = 'OBJECT' THEN 'an object' WHEN {type_col} = 'ARRAY' THEN 'an array'
            ELSE {type_col} END || ', expected a string'
        ELSE 'empty text' END"""
    return cond, reason


def classify_sql(source: str, text_field: str) -> str:
    """Wrap a reader's chunk query: mark bad texts on rows not already marked."""
    cond, reason = text_check_sql("text_type", "text")
    return f"""
        SELECT line_no, text, text_type, ext_id, label, annotator,
               CASE WHEN bad_reason IS NOT NULL THEN bad_field WHEN {cond} THEN {lit(text_field)} END AS bad_field,
               CASE WHEN bad_reason IS NOT NULL THEN bad_reason WHEN {cond} THEN {reason} END AS bad_reason,
               CASE WHEN bad_reason IS NOT NULL THEN raw WHEN {cond} THEN left(raw, {RAW_KEEP_CHARS}) END AS raw,
               CASE WHEN bad_reason IS NULL AND NOT {cond} THEN meta END AS meta
        FROM ({source})"""


# ---- JSON lines ---------------------------------------------------------------------------

# A JSON value (metadata, id, label) nested deeper than this is quarantined with its depth: a
# document stored with one would break every later reader that parses JSON recursively
# (Python's json stops near 1,000 levels: an export of a 10,000-level value was a traceback).
MAX_JSON_DEPTH = 100
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deeply a JSON text nests arrays and objects (0 for a scalar), strings skipped."""
    b = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = (b == 91).astype(np.int32) + (b == 123) - (b == 93) - (b == 125)
    return int(np.cumsum(step).max()) if len(step) else 0


def mark_deep(table: pa.Table, columns: dict[str, tuple[str, int]], limit: int | None = None) -> pa.Table:
    """Classified rows whose JSON values in `columns` ({column: (field name, levels of wrapper)};
    the metadata column is one object around the fields) nest deeper than `limit` become bad
    rows (field, reason, raw kept); the others are untouched. Only values with more than
    `limit` brackets are scanned."""
    limit = limit or MAX_JSON_DEPTH
    bad: dict[int, tuple[str, int]] = {}
    good = _flags(pc.is_null(table.column("bad_reason")))
    for col, (name, wrap) in columns.items():
        if col not in table.column_names:
            continue
        values = table.column(col)
        many = good & (numpy(pc.count_substring_regex(values, r"[\[{]"), null=0) > limit + wrap)
        for i in np.flatnonzero(many):
            if int(i) not in bad and (d := json_depth(values[int(i)].as_py()) - wrap) > limit:
                bad[int(i)] = (name, d)
    if not bad:
        return table
    rows = np.zeros(table.num_rows, dtype=bool)
    rows[list(bad)] = True
    mask = pa.array(rows)
    field_col = pa.array([bad[i][0] if i in bad else None for i in range(table.num_rows)], pa.string())
    reason = pa.array([f"JSON nested {bad[i][1]:,} levels deep (the limit is {limit})" if i in bad else None
                       for i in range(table.num_rows)], pa.string())
    raw = pa.array([(table.column("text")[i].as_py() or "")[:RAW_KEEP_CHARS] if i in bad else None
                    for i in range(table.num_rows)], pa.string())
    out = table
    for col, new in (("bad_field", field_col), ("bad_reason", reason), ("raw", raw)):
        j = out.column_names.index(col)
        out = out.set_column(j, col, pc.if_else(mask, new, out.column(j)))
    return out


def long_line_row(line_no: int, size: int, limit: int, head: bytes) -> tuple:
    """The quarantine row of a line over the line limit: its length, and its start as raw."""
    return (line_no, None, None, None, None, None, "(line)",
            (f"line of {size:,} bytes is over the {limit:,}-byte line limit (not parsed; raise --max-line-bytes "
            "to read it)"), head[:RAW_KEEP_CHARS * 4].decode("utf-8", "replace")[:RAW_KEEP_CHARS].rstrip("\r\n"))


def _iter_blocks(path: Path, gz: bool, progress: Progress | None, status: dict, chunk_bytes: int = CHUNK_BYTES,
                 max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | tuple]]:
    """(first_line_no, bytes) blocks of ~64 MB, each ending just after a newline.

    A BOM is dropped, bare-CR line ends become LF. A line that grows past `max_line` bytes is
    not kept: the rest of it is read and dropped, and its quarantine row comes as
    (line_no, (row,)) in place of a block, so no line costs more than `max_line` + a block of
    memory. When a gzip stream ends early, the complete lines before the damage are yielded and
    `status` gets the reason, the next line number and the cut-off tail, for the caller to
    quarantine.
    """
    line_no = 1
    rest = carry = b""
    skipping = None  # (bytes of the long line so far, its head) while a long line is dropped
    with open(path, "rb") as raw_fh:
        fh = open_bytes(raw_fh, gz)
        first = True
        while True:
            block = fh.read(chunk_bytes)
            if progress:
                progress(raw_fh.tell())
            if first:
                block, first = strip_bom(block), False
            if not block:
                break
            block, carry = lf_lines(block, carry)
            if skipping is not None:
                end = block.find(b"\n")
                if end < 0:
                    skipping = (skipping[0] + len(block), skipping[1])
                    continue
                yield line_no, (long_line_row(line_no, skipping[0] + end, max_line, skipping[1]),)
                line_no, skipping, block = line_no + 1, None, block[end + 1:]
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                if len(block) > max_line:
                    skipping, rest = (len(block), block[:RAW_KEEP_CHARS * 4]), b""
                else:
                    rest = block
                continue
            rest = block[cut + 1:]
            block = block[:cut + 1]
            yield line_no, block
            line_no += block.count(b"\n")
            if len(rest) > max_line:
                skipping, rest = (len(rest), rest[:RAW_KEEP_CHARS * 4]), b""
        status["error"] = stream_error(fh)
    status["next_line"] = line_no
    if skipping is not None:  # the file ends inside a long line (no final newline)
        if status["error"]:
            status["tail"] = skipping[1]
        else:
            yield line_no, (long_line_row(line_no, skipping[0], max_line, skipping[1]),)
        return
    if status["error"]:
        status["tail"] = rest
    elif rest:
        yield line_no, rest + b"\n"


def _lines_table(first: int, block: bytes, max_line: int = MAX_LINE_BYTES) -> tuple[pa.Table, list[tuple]]:
    """Zero-copy Arrow strings, one per line (newline kept: JSON ignores it), and the rows of
    lines that are not read: bad UTF-8, or longer than `max_line` bytes.

    Arrow validates UTF-8 in C; only a block that fails is decoded line by line in Python.
    """
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    nos = np.arange(first, first + len(ends), dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(block))
    keep = np.ones(len(ends), dtype=bool)
    bad: list[tuple] = []
    sizes = np.diff(offsets) - 1  # without the newline
    for i in np.flatnonzero(sizes > max_line):
        keep[i] = False
        bad.append(long_line_row(int(nos[i]), int(sizes[i]), max_line, block[offsets[i]:offsets[i] + RAW_KEEP_CHARS * 4]))
    table = pa.table({"line_no": arrow(nos), "raw": arr})  # (pa.array of numpy imports pandas: 0.18 s)
    try:
        (table.filter(arrow(keep)) if bad else table).column("raw").validate(full=True)
        return _batched(table.filter(arrow(keep)) if bad else table), bad
    except pa.ArrowInvalid:
        pass
    for i in range(len(ends)):
        if not keep[i]:
            continue
        line = block[offsets[i]:offsets[i + 1]]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            keep[i] = False
            bad.append((int(nos[i]), None, None, None, None, None, f"(byte {exc.start})", "invalid UTF-8",
                        line[:RAW_KEEP_CHARS].decode("utf-8", "replace").rstrip("\r\n")))
    return _batched(pa.table({"line_no": arrow(nos), "raw": arr}).filter(arrow(keep))), bad


# A DuckDB vector is up to 2,048 rows, and every expression of a chunk query holds its own copy of
# a vector's strings: 2,048 real documents of ~17 KB (33 MB of JSON lines) ran out of a 1 GB memory
# limit in the JSON parse alone, while the same rows in batches of 256 took 0.14 s. A batch is
# therefore at most BATCH_BYTES of strings (and 2,048 rows), so memory follows bytes, not rows.
BATCH_BYTES = 1 << 20


def _flags(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow column without nulls as numpy bools, without pandas (which Arrow's
    `to_numpy` imports: 0.18 s of every ingest)."""
    return numpy(pc.cast(col, pa.int8())).astype(bool)


def _batched(table: pa.Table, rows: int = 2048, nbytes: int = BATCH_BYTES) -> pa.Table:
    """Record batches (zero-copy slices) of at most `rows` rows and, past the first row, at most
    `nbytes` of string data: DuckDB scans Arrow batches in parallel, one batch per thread (a single
    64 MB batch left the other core idle), and a batch's strings bound a query's memory."""
    sizes = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_binary(col.type) \
                or pa.types.is_large_binary(col.type):
            sizes += numpy(pc.binary_length(col), null=0)
    batches = [b for lo, hi in bounded_runs(sizes, rows, nbytes) for b in table.slice(lo, hi - lo).to_batches()]
    return pa.Table.from_batches(batches, schema=table.schema)


def _jsonl_sql(f: Fields, rich: bool = True) -> str:
    """The chunk query of JSON lines. `rich`: the file's rows carry other fields (decided from its
    first lines, `has_other_fields`): every row gets one JSON merge patch for its metadata; else a
    row gets one only when `json_keys` shows it has other fields (a cheaper parse). Either way no
    row's metadata is lost; the choice only decides which rows pay for which parse."""
    mapped = "[" + ", ".join(lit(k) for k in (f.text, f.id, f.label, f.annotator) if k) + "]"
    paths = [f.text, f.id, f.label or "\x00", f.annotator or "\x00", META]
    path_list = "[" + ", ".join(json_path(p) for p in paths) + "]"
    # One JSON parse per line: TRY(json_extract(...)) is NULL exactly when the line is not valid
    # JSON; an object is recognised by its first character, json_type runs only on the rest; a
    # string value by its opening quote. (Four parses per line before: 1.8x slower.)
    return f"""
        WITH parsed AS (
            SELECT line_no, raw, TRY(json_extract(raw, {path_list})) AS v FROM chunk),
        fields AS (
            SELECT line_no, raw, v, v IS NOT NULL AS ok,
                   CASE WHEN v IS NULL THEN NULL
                        WHEN starts_with(ltrim(left(raw, 16)), '{{') THEN 'OBJECT'
                        ELSE json_type(raw) END AS root_type
            FROM parsed
            WHERE v IS NOT NULL OR NOT regexp_full_match(raw, '\\s*')),  -- blank lines are skipped, not quarantined
        typed AS (
            SELECT line_no, raw, ok, root_type,
                   CASE WHEN root_type = 'OBJECT' THEN v[1] ->> '$' END AS text,
                   CASE WHEN root_type <> 'OBJECT' OR v[1] IS NULL THEN NULL
                        WHEN starts_with(v[1]::VARCHAR, '"') THEN 'VARCHAR' ELSE json_type(v[1]) END AS text_type,
                   CASE WHEN root_type = 'OBJECT' THEN v[2] ->> '$' END AS ext_id,
                   CASE WHEN root_type = 'OBJECT' THEN v[3] ->> '$' END AS label,
                   CASE WHEN root_type = 'OBJECT' THEN v[4] ->> '$' END AS annotator,
                   CASE WHEN root_type = 'OBJECT' THEN v[5] END AS meta_obj
            FROM fields)
        SELECT line_no, text, text_type, ext_id, label, annotator,
               CASE WHEN NOT ok OR root_type <> 'OBJECT' THEN '(line)' END AS bad_field,
               CASE WHEN NOT ok THEN 'malformed JSON'
                    WHEN root_type <> 'OBJECT' THEN 'not a JSON object (' || root_type || ')' END AS bad_reason,
               CASE WHEN NOT ok OR root_type <> 'OBJECT' OR text_type IS DISTINCT FROM 'VARCHAR'
                         OR regexp_full_match(text, '\\s*')  -- raw is kept for bad rows only
                    THEN rtrim(left(raw, {RAW_KEEP_CHARS}), chr(13) || chr(10)) END AS raw,
               CASE WHEN ok AND root_type = 'OBJECT' {"" if rich else f"AND NOT list_has_all({mapped}, json_keys(raw))"}
                    THEN nullif(CASE WHEN json_type(meta_obj) = 'OBJECT'
                    THEN json_merge_patch(meta_obj, json_merge_patch(raw, {lit(meta_patch(f))}))
                    ELSE json_merge_patch(raw, {lit(meta_patch(f, flatten=False))}) END, '{{}}') END AS meta
        FROM typed"""


def has_other_fields(block: bytes, f: Fields, sample: int = 200) -> bool:
    """Do the first JSON objects of a block carry fields besides text, id, label, annotator?"""
    mapped = {f.text, f.id, f.label, f.annotator}
    for line in block.split(b"\n", sample)[:sample]:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and set(obj) - mapped:
            return True
    return False


_JSON_TYPES = {str: "VARCHAR", bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", dict: "OBJECT", list: "ARRAY",
               type(None): "NULL"}


def json_line_row(line_no: int, raw: str, f: Fields) -> tuple:
    """One JSON line classified in Python, as `_jsonl_sql` classifies it in DuckDB: the path for a
    line too long for DuckDB's JSON parser under its memory cap (it needs ~5x the line)."""
    def value(v):
        return None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    keep = raw[:RAW_KEEP_CHARS].rstrip("\r\n")
    try:
        obj = json.loads(raw)
    except ValueError:
        return (line_no, None, None, None, None, None, "(line)", "malformed JSON", keep)
    except RecursionError:  # nested deeper than Python parses; an array is still not an object
        why = "not a JSON object (ARRAY)" if raw.lstrip().startswith("[") else "JSON nested too deeply to read"
        return (line_no, None, None, None, None, None, "(line)", why, keep)
    if not isinstance(obj, dict):
        return (line_no, None, None, None, None, None, "(line)", f"not a JSON object ({_JSON_TYPES[type(obj)]})", keep)
    text = obj.get(f.text)
    text_type = _JSON_TYPES[type(text)] if f.text in obj else None
    if text_type == "BIGINT" and text >= 0:  # DuckDB's json_type names a non-negative integer so
        text_type = "UBIGINT"
    good = text_type == "VARCHAR" and text.strip()
    flatten = isinstance(obj.get(META), dict)
    meta = {k: v for k, v in obj.items() if k not in (f.text, f.id, f.label, f.annotator) and not (flatten and k == META)}
    if flatten:
        meta = {**obj[META], **meta}
    return (line_no, value(text), text_type, value(obj.get(f.id)), value(obj.get(f.label)) if f.label else None,
            value(obj.get(f.annotator)) if f.annotator else None, None, None, None if good else keep,
            json.dumps(meta, ensure_ascii=False, separators=(",", ":")) if meta and good else None)


_J_STR = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # one JSON string (unrolled: a tight loop over plain bytes)
_J_WS = re.compile(rb"[ \t\r\n]*")
_J_NEST = re.compile(_J_STR.pattern + rb"|[\[\]{}]")  # a string (skipped whole) or a bracket
_J_SCALAR = re.compile(rb"[^,}\]\s]*")


def top_level_span(raw, key: str) -> tuple[int, int] | None:
    """Byte span of the value of `key` in a JSON object line (the last one, as json.loads keeps),
    found without decoding the line; None when the line is not a plain object or has no such key
    (the caller then parses it whole)."""
    raw, ws = memoryview(raw), _J_WS.match
    pos = ws(raw, 0).end()
    if raw[pos:pos + 1] != b"{":
        return None
    pos, found = ws(raw, pos + 1).end(), None
    if raw[pos:pos + 1] == b"}":
        return None
    while True:
        m = _J_STR.match(raw, pos)
        if m is None:
            return None
        name = m.group()
        pos = ws(raw, m.end()).end()
        if raw[pos:pos + 1] != b":":
            return None
        start = pos = ws(raw, pos + 1).end()
        lead = raw[pos:pos + 1]
        if lead == b'"':
            m = _J_STR.match(raw, pos)
            if m is None:
                return None
            pos = m.end()
        elif lead in (b"{", b"["):
            depth = 0
            for t in _J_NEST.finditer(raw, pos):
                depth += {b"{": 1, b"[": 1, b"}": -1, b"]": -1}.get(t.group(), 0)
                if depth == 0:
                    pos = t.end()
                    break
            else:
                return None
        else:
            pos = _J_SCALAR.match(raw, pos).end()
        try:
            if json.loads(bytes(name)) == key:
                found = (start, pos)
        except ValueError:
            return None
        pos = ws(raw, pos).end()
        sep = raw[pos:pos + 1]
        if sep == b"}":
            return found if ws(raw, pos + 1).end() == len(raw) else None
        if sep != b",":
            return None
        pos = ws(raw, pos + 1).end()


def long_json_line_table(line_no: int, raw, f: Fields) -> pa.Table | None:
    """A JSON line too long for DuckDB's parser, read with its text kept in UTF-8: the text's
    string is decoded by pyarrow's JSON reader (+2x the text, where json.loads held the line and
    the text as Python strings: +6x on a 100 MB line), the rest of the line by `json_line_row`.
    `raw` is the line's bytes (any buffer). None when the text is not a JSON string at the top
    level of an object: the caller then parses the line whole."""
    import pyarrow.json as pj

    span = top_level_span(raw, f.text)
    if span is None or raw[span[0]:span[0] + 1] != b'"':
        return None
    a, b = span
    try:  # the line itself, its other fields parsed and ignored (a copy of the line cost +100 MB)
        text = pj.read_json(pa.BufferReader(raw), read_options=pj.ReadOptions(block_size=len(raw) + 16,
                                                                              use_threads=False),
                            parse_options=pj.ParseOptions(explicit_schema=pa.schema([(f.text, pa.string())]),
                                                          unexpected_field_behavior="ignore")
                            ).column(f.text).combine_chunks()
    except (pa.ArrowInvalid, ValueError):
        return None
    if len(text) != 1:
        return None
    rest = (bytes(memoryview(raw)[:a]) + b'"x"' + bytes(memoryview(raw)[b:])).decode("utf-8", "replace")
    row = json_line_row(line_no, rest, f)
    if row[6] is not None or row[2] != "VARCHAR":  # the rest is not a good object after all
        return None
    blank = pc.utf8_length(text)[0].as_py() == 0 or pc.utf8_is_space(text)[0].as_py()
    table = _bad_table([row])
    if blank:
        keep = bytes(memoryview(raw)[:RAW_KEEP_CHARS * 4]).decode("utf-8", "ignore")[:RAW_KEEP_CHARS].rstrip("\r\n")
        return table.set_column(COLUMNS.index("raw"), "raw", pa.array([keep], pa.string())).set_column(
            COLUMNS.index("meta"), "meta", pa.array([None], pa.string())).set_column(
            COLUMNS.index("text"), "text", text)
    return table.set_column(COLUMNS.index("text"), "text", text)


def _bad_table(bad: list[tuple]) -> pa.Table:
    """Rows already classified (tuples in COLUMNS order; a missing trailing `meta` is NULL)."""
    cols = list(zip(*[r + (None,) * (len(COLUMNS) - len(r)) for r in bad]))
    return pa.table({c: pa.array(v, pa.int64() if c == "line_no" else pa.string())
                     for c, v in zip(COLUMNS, cols)})


def jsonl_chunks(path: Path, gz: bool, f: Fields, progress: Progress | None, chunk_bytes: int = CHUNK_BYTES,
                 max_line: int | None = None) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    """(objects to register, chunk query, last line number) per ~64 MB block."""
    if is_json_array(path, gz):
        yield from _array_chunks(path, _jsonl_sql(f), progress)
        return
    status: dict = {}
    last = 0
    sql = None
    max_line = max_line or MAX_LINE_BYTES
    for first, block in _iter_blocks(path, gz, progress, status, chunk_bytes, max_line):
        if isinstance(block, tuple):  # a line over the limit, dropped unread
            yield {"chunk": _bad_table(list(block))}, "SELECT * FROM chunk", first
            continue
        sql = sql or _jsonl_sql(f, rich=has_other_fields(block, f))
        table, bad = _lines_table(first, block, max_line)
        last = first + block.count(b"\n") - 1
        yield {"chunk": table}, sql, last
        if bad:
            yield {"chunk": _bad_table(bad)}, "SELECT * FROM chunk", last
    if status.get("error"):
        yield {"chunk": _bad_table([truncated_row(status["next_line"], status["error"], status["tail"])])}, \
            "SELECT * FROM chunk", status["next_line"]


def _array_chunks(path: Path, sql: str, progress: Progress | None, batch: int = 20_000
                  ) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    """A JSON array's elements as numbered lines (element k is "line" k), in batches, through
    the same per-element checks as JSON lines."""
    with duckdb.connect() as reader:
        reader.execute("SET threads = 1")  # one scan thread: row_number() follows the array's order
        rows = reader.sql(f"SELECT row_number() OVER () AS line_no, json::VARCHAR AS raw FROM {_array_sql(path)}")
        for rb in rows.to_arrow_reader(batch):
            if rb.num_rows:
                yield {"chunk": _batched(pa.Table.from_batches([rb]))}, sql, int(rb.column(0)[-1].as_py())
    if progress:
        progress(path.stat().st_size)


def truncated_row(line_no: int, error: str, tail: bytes) -> tuple:
    """The quarantine row for the damaged end of a compressed file (the cut-off line, if any)."""
    what = "the line is cut off there" if tail else "nothing after this line could be read"
    return (line_no, None, None, None, None, None, "(file)", f"{error}; {what}",
            tail[:RAW_KEEP_CHARS * 4].decode("utf-8", "replace")[:RAW_KEEP_CHARS])


# ---- Parquet ------------------------------------------------------------------------------

def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columnar_sql(source: str, cols: dict[str, str], f: Fields, line_no: str) -> str:
    """The chunk query over a table-shaped source (Parquet, Arrow): `cols` maps column -> type."""
    def col(name: str | None) -> str:
        return f'CAST("{name}" AS VARCHAR)' if name and name in cols else "NULL"

    skip = {f.text, f.id, f.label, f.annotator, META, line_no}
    others = [c for c in cols if c not in skip]
    meta = f"to_json(struct_pack({', '.join(f'{_quote(c)} := {_quote(c)}' for c in others)}))" if others else "'{}'"
    if META in cols and cols[META].startswith(("STRUCT", "MAP", "JSON")):
        meta = f"json_merge_patch(coalesce(to_json({_quote(META)}), '{{}}'), {meta})"
    elif META in cols:
        others.append(META)
        meta = f"to_json(struct_pack({', '.join(f'{_quote(c)} := {_quote(c)}' for c in others)}))"
    text, kind = f'CAST("{f.text}" AS VARCHAR)', lit(cols[f.text])
    if cols[f.text] == "BLOB":
        # Parquet written without the UTF8 annotation (Impala, Hive, some Spark jobs) holds text
        # as bytes: decoded when they are UTF-8, else the row is quarantined saying so
        text = f'try(decode("{f.text}"))'
        kind = f"CASE WHEN {text} IS NULL THEN 'bytes that are not UTF-8' ELSE 'VARCHAR' END"
    return f"""
        SELECT {line_no} AS line_no, {text} AS text,
               CASE WHEN "{f.text}" IS NULL THEN 'NULL' ELSE {kind} END AS text_type,
               {col(f.id)} AS ext_id, {col(f.label)} AS label, {col(f.annotator)} AS annotator,
               NULL::VARCHAR AS bad_field, NULL::VARCHAR AS bad_reason,
               left(CAST("{f.text}" AS VARCHAR), {RAW_KEEP_CHARS}) AS raw,
               nullif(({meta})::VARCHAR, '{{}}') AS meta
        FROM {source}"""


def parquet_chunks(con: duckdb.DuckDBPyConnection, path: Path, f: Fields, progress: Progress | None,
                   chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    """Row groups read by pyarrow, gathered to ~chunk_bytes, numbered by file row (1-based):
    the same bounded path as Arrow IPC (one DuckDB query over a whole file held all its text)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    if f.text not in pf.schema_arrow.names:
        raise InputError(f"{path}: no column '{f.text}' (columns: {', '.join(pf.schema_arrow.names)})")
    rows = max(1, pf.metadata.num_rows)
    mean = max(1, (pf.metadata.serialized_size + sum(pf.metadata.row_group(i).total_byte_size
                                                     for i in range(pf.num_row_groups))) // rows)
    batches = pf.iter_batches(batch_size=max(1, min(65_536, chunk_bytes // (4 * mean))))
    yield from _table_chunks(con, pf.schema_arrow, batches, f, progress, path, chunk_bytes)


# ---- Arrow IPC (what `datasets.save_to_disk` writes) ----------------------------------------

def _open_arrow(path: Path):
    """A reader of record batches: the IPC file format, else the stream format (which
    `datasets` writes), memory-mapped so a batch is read only when it is used."""
    source = pa.memory_map(str(path))
    try:
        reader = pa.ipc.open_file(source)
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    except pa.ArrowInvalid:
        source.seek(0)
        reader = pa.ipc.open_stream(source)
        return reader.schema, iter(reader)


def arrow_columns(path: Path) -> list[str]:
    try:
        schema, _ = _open_arrow(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: unreadable Arrow IPC file ({str(exc).splitlines()[0]})") from exc
    return schema.names


def arrow_chunks(con: duckdb.DuckDBPyConnection, path: Path, f: Fields, progress: Progress | None,
                 chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    schema, batches = _open_arrow(path)
    yield from _table_chunks(con, schema, batches, f, progress, path, chunk_bytes)


def _table_chunks(con, schema: pa.Schema, batches, f: Fields, progress: Progress | None, path: Path,
                  chunk_bytes: int) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    """Record batches gathered to ~chunk_bytes, numbered by row (1-based), each chunk one query."""
    line, pending, size = 1, [], 0

    def chunk(rbs: list[pa.RecordBatch]) -> tuple[dict[str, pa.Table], str, int]:
        nonlocal line
        table = pa.Table.from_batches(rbs, schema=schema)
        table = table.append_column("__taomi_line", arrow(np.arange(line, line + table.num_rows, dtype=np.int64)))
        line += table.num_rows
        con.register("arrow_rows", table.slice(0, 0))
        cols = {c[0]: c[1] for c in con.execute("DESCRIBE SELECT * FROM arrow_rows").fetchall()}
        con.unregister("arrow_rows")
        return {"arrow_rows": _batched(table)}, _columnar_sql("arrow_rows", cols, f, "__taomi_line"), line - 1

    for rb in batches:
        pending.append(rb)
        size += rb.nbytes
        if size >= chunk_bytes:
            yield chunk(pending)
            pending, size = [], 0
    if pending or line == 1:
        yield chunk(pending)
    if progress:
        progress(path.stat().st_size)

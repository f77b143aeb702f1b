"""CSV for ingest: Python's csv module in strict mode, fed line by line so that a broken record
never takes the rows after it along.

- No field-size limit below the file's own size (the csv default of 131,072 characters would
  quarantine long documents that JSONL keeps).
- A UTF-8 byte-order mark is dropped before the header is read.
- LF, CRLF and bare-CR line ends all work; quoted fields may span lines.
- A quote that never closes (strict mode: end of data inside quotes, or text after a closing
  quote), or a multi-line record with the wrong number of columns, is quarantined at the line
  where it starts, and the lines it swallowed are read again as records of their own.
- A truncated .csv.gz keeps every complete record before the damage (see warehouse.streams).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from warehouse.readers import (
    MAX_LINE_BYTES,
    RAW_KEEP_CHARS,
    Fields,
    InputError,
    Progress,
    _bad_table,
    long_line_row,
    truncated_row,
)
from warehouse.streams import open_bytes, stream_error


class _Lines:
    """Lines of a text stream with a running line number; lines can be put back."""

    def __init__(self, source):
        self.source = iter(source)
        self.back: deque[str] = deque()
        self.line = 0
        self.taken: list[str] = []
        self.last = ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.back.popleft() if self.back else next(self.source)
        self.line += 1
        self.taken.append(line)
        self.last = line
        return line

    def put_back(self, lines: list[str]) -> None:
        self.back.extendleft(reversed(lines))
        self.line -= len(lines)


def _bad(line: int, reason: str, raw: str) -> tuple:
    raw = raw[:RAW_KEEP_CHARS].rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return (line, None, None, None, None, None, "(line)", reason, raw)


def _records(lines: _Lines, ncols: int) -> Iterator[tuple[int, list[str] | None, tuple | None]]:
    """(first line, row, None) for a good record, (line, None, quarantine row) for a bad one."""
    reader = csv.reader(lines, strict=True)
    while True:
        lines.taken = []
        first = lines.line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            taken = lines.taken
            if len(taken) > 1:  # the record ran past its first line: re-read what it swallowed
                lines.put_back(taken[1:])
                reason = ("unclosed quote: the quoted field that starts on this line never closes"
                          if "end of data" in str(exc) or "expected after" in str(exc) else f"malformed CSV: {exc}")
            else:
                reason = f"malformed CSV: {exc}"
            yield first, None, _bad(first, reason, taken[0] if taken else "")
            reader = csv.reader(lines, strict=True)
            continue
        taken = lines.taken
        if len(taken) > 1 and len(row) != ncols:
            lines.put_back(taken[1:])
            yield first, None, _bad(first, f"unclosed quote: a quoted field spans lines {first}-{first + len(taken) - 1} "
                                           f"and gives {len(row)} columns instead of {ncols}", taken[0])
            reader = csv.reader(lines, strict=True)
            continue
        yield first, row, None


def csv_chunks(path: Path, gz: bool, f: Fields, progress: Progress | None, chunk_bytes: int = 64 << 20,
               batch_rows: int = 100_000, max_line: int | None = None) -> Iterator[tuple[dict[str, pa.Table], str, int]]:
    """(objects to register, chunk query, last line number) per batch of rows (at most
    `batch_rows`, and at most ~`chunk_bytes` of text). A record longer than `max_line` bytes
    is quarantined with its length (it is read, as the csv module reads a record whole, but not
    kept)."""
    max_line = max_line or MAX_LINE_BYTES
    csv.field_size_limit(sys.maxsize)
    rows: list[tuple] = []
    size = 0
    line = 1
    with open(path, "rb") as raw_fh:
        fh = open_bytes(raw_fh, gz)
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        lines = _Lines(text)
        try:
            header = next(csv.reader(lines))
        except StopIteration:
            return
        index = {name.strip(): i for i, name in enumerate(header)}
        if f.text not in index:
            raise InputError(f"{path}: line 1: no column '{f.text}' in the header {header}")
        want = [index.get(name) if name else None for name in (f.text, f.id, f.label, f.annotator)]
        for line, row, bad in _records(lines, len(header)):
            if len(rows) >= batch_rows or size >= chunk_bytes:  # flushed before the next row
                if progress:
                    progress(raw_fh.tell())
                yield {"chunk": _bad_table(rows)}, "SELECT * FROM chunk", rows[-1][0]
                rows, size = [], 0
            if bad is None and sum(map(len, row)) * 4 > max_line and \
                    (size_b := sum(len(c.encode("utf-8", "surrogateescape")) for c in row)) > max_line:
                bad = long_line_row(line, size_b, max_line, ",".join(row)[:RAW_KEEP_CHARS].encode(
                    "utf-8", "surrogateescape"))
            if bad is not None:
                rows.append(bad)
            elif any(c.strip() for c in row):
                rows.append(_row(line, row, header, want))
                size += len(rows[-1][1] or "")
        error = stream_error(fh)
        if error:
            tail = "" if lines.last.endswith(("\n", "\r")) else lines.last
            if tail and rows and rows[-1][0] == lines.line:
                rows.pop()  # the cut-off last line was parsed as a short record: it is the damage
            rows.append(truncated_row(lines.line + (0 if tail else 1), error,
                                      tail.encode("utf-8", "surrogateescape")))
    if progress:
        progress(path.stat().st_size)
    if rows:
        yield {"chunk": _bad_table(rows)}, "SELECT * FROM chunk", line


def _row(line: int, row: list[str], header: list[str], want: list[int | None]) -> tuple:
    joined = ",".join(row)
    raw = joined[:RAW_KEEP_CHARS]
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:  # surrogateescape marks the undecodable bytes
        return _bad(line, "invalid UTF-8", raw.encode("utf-8", "replace").decode("utf-8", "replace"))
    if len(row) != len(header):
        return _bad(line, f"expected {len(header)} columns, got {len(row)}", raw)
    v = [row[i] if i is not None else None for i in want]
    meta = {h.strip(): row[i] for i, h in enumerate(header) if i not in want and row[i] != ""}
    return (line, v[0], "VARCHAR", v[1] or None, v[2] or None, v[3] or None, None, None, raw,
            json.dumps(meta, ensure_ascii=False) if meta else None)

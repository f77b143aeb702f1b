"""How an export is cut into shards: at most `max_rows` documents and (when given) at most
`max_bytes` of text per shard, whichever comes first; a document larger than `max_bytes` is a
shard of its own. Pure functions of the documents' sizes, in export order."""

from __future__ import annotations

import re

import numpy as np

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
          "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}


def parse_bytes(text: str | int, what: str = "shard size") -> int:
    """'512MB', '1.5GB', '200k' or a number of bytes -> bytes (binary units); ValueError otherwise."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise ValueError(f"{what} {text!r}: give a size like 256MB or 1GB")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ValueError(f"{what} {text!r} must be at least 1 byte")
    return value


def shard_bounds(sizes: np.ndarray, max_rows: int, max_bytes: int | None = None) -> list[tuple[int, int]]:
    """[(start, end), ...] half-open row ranges covering `sizes` (bytes per document, in order)."""
    n = len(sizes)
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    if max_bytes is None:
        return [(lo, min(lo + max_rows, n)) for lo in range(0, n, max_rows)]
    cum = np.cumsum(np.asarray(sizes, dtype=np.int64))
    out, start = [], 0
    while start < n:
        before = int(cum[start - 1]) if start else 0
        by_bytes = int(np.searchsorted(cum, before + max_bytes, side="right"))
        end = max(start + 1, min(start + max_rows, by_bytes))
        out.append((start, end))
        start = end
    return out

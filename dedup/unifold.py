"""Per-code-point Unicode folding, so the compiled kernel can normalise most non-ASCII text itself.

The reference (`dedup.shingle._normalize_unicode`) applies NFKC to the whole text, then casefold
and Unicode punctuation folding. Casefold and the punctuation map act per character; NFKC acts
per character too, except where characters compose or reorder. A code point gets a table entry
(the UTF-8 bytes it becomes) only when it cannot take part in that: it is a starter (canonical
combining class 0), it is not the second character of any canonical composition (Hangul vowel and
trailing jamo included), its decomposition starts with a starter, and what it becomes holds only
such starters. A text made of such code points (and ASCII) normalises character by character,
which the kernel does; any other text goes to the Python reference. Tests compare both on 207
languages. The table covers the first three planes and is cached on disk per Unicode version.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

LIMIT = 0x30000  # planes 0-2: every script, CJK extensions, emoji; beyond: the Python path
_CACHE = Path(__file__).with_name("__pycache__")
VERSION = 2  # bump when `_build` changes (2: script units)
_BUILD = threading.Lock()  # signing threads may ask for the table at once: build it once


def _seconds() -> set[int]:
    """Code points that can be the second character of a canonical composition."""
    out = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo (algorithmic)
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            parts = d.split()
            if len(parts) == 2:
                out.add(int(parts[1], 16))
    return out


def _build(nfkc: bool, casefold: bool, punct: bool, units: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from dedup.shingle import _UNICODE_PUNCT, split_units

    seconds = _seconds() if nfkc else set()

    def starter(c: str) -> bool:
        return unicodedata.combining(c) == 0 and ord(c) not in seconds

    offsets = np.full(LIMIT, -1, dtype=np.int64)
    lengths = np.full(LIMIT, -1, dtype=np.int64)
    pool = bytearray()
    for cp in range(0x80, LIMIT):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        out = ch
        if nfkc:
            if not starter(ch):
                continue
            nfkd = unicodedata.normalize("NFKD", ch)
            if nfkd and not starter(nfkd[0]):
                continue
            out = unicodedata.normalize("NFKC", ch)
            if not all(starter(c) for c in out):
                continue
        if casefold:
            out = out.casefold()
        if punct:
            out = _UNICODE_PUNCT.sub(" ", out)
        if units:
            out = split_units(out)
        b = out.encode("utf-8")
        offsets[cp], lengths[cp] = len(pool), len(b)
        pool += b
    return offsets, lengths, np.frombuffer(bytes(pool) or b"\0", dtype=np.uint8).copy()


def table(nfkc: bool, casefold: bool, punct: bool, units: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offset, length, pool): code point cp < LIMIT becomes pool[offset[cp]:offset[cp]+length[cp]];
    length -1: the text needs the Python reference. Built once (~0.5 s) and cached on disk."""
    with _BUILD:
        return _table(nfkc, casefold, punct, units)


@lru_cache(maxsize=8)
def _table(nfkc: bool, casefold: bool, punct: bool, units: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import hashlib

    from dedup.shingle import _UNICODE_PUNCT, UNIT_SCRIPTS

    # the rules that made the table are part of its name: a changed rule never reads an old table
    rules = hashlib.md5(f"{VERSION}|{LIMIT}|{_UNICODE_PUNCT.pattern}|{UNIT_SCRIPTS}".encode()).hexdigest()[:10]
    key = f"unifold-{unicodedata.unidata_version}-{rules}-{int(nfkc)}{int(casefold)}{int(punct)}{int(units)}.npz"
    path = _CACHE / key
    try:
        with np.load(path) as z:
            return z["offsets"], z["lengths"], z["pool"]
    except (OSError, KeyError, ValueError):
        pass
    offsets, lengths, pool = _build(nfkc, casefold, punct, units)
    try:
        _CACHE.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npz")
        np.savez(tmp, offsets=offsets, lengths=lengths, pool=pool)
        tmp.replace(path)
    except OSError:  # a read-only install: rebuilt per process, still correct
        pass
    return offsets, lengths, pool

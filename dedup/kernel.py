"""The compiled hot path: byte folding -> words -> 64-bit word hashes -> n-gram hashes -> affine32
MinHash, fused in one numba kernel per batch, with no Python object per document.

It computes exactly what the numpy reference does (`dedup.shingle.shingle_batch` then
`dedup.minhash.sign`), bit for bit: the same byte map, the same chained splitmix64 word hash read
8 bytes at a time, the same per-position n-gram multipliers, the same fmix32 + a*h+b mod 2^32.
Tests compare both paths on thousands of real documents, and against datasketch.

Input is one UTF-8 byte buffer with a (start, end) per document, so an Arrow string column out
of DuckDB is signed straight from its data buffer. Documents that are not pure ASCII need NFKC
and Unicode case/punctuation folding first; `dedup.pipeline` does that in Python for those only.

numba compiles on first use and caches the machine code next to this file (`cache=True`), so the
compile (~10 s) is paid once per install, never per run; `make` warms it. Loading numba's target
context still costs ~0.7 s per process, so small jobs take the numpy path (dedup.pipeline). Without
numba the numpy path runs (same results, ~3x slower); `TAOMI_KERNEL=numpy` forces it and
`TAOMI_KERNEL=numba` forces the kernel for any job size.
"""

from __future__ import annotations

import os

import numpy as np

FORCED = os.environ.get("TAOMI_KERNEL", "").lower() == "numba"  # compiled whatever the job size
try:  # numba is a dependency; the numpy path is the reference and the fallback
    if os.environ.get("TAOMI_KERNEL", "").lower() == "numpy":
        raise ImportError("TAOMI_KERNEL=numpy")
    from numba import njit
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised by TAOMI_KERNEL=numpy in tests
    AVAILABLE = False

    def njit(*args, **kwargs):
        return lambda f: f

from dedup.shingle import _NGRAM_MULT

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_CHAIN = np.uint64(0xFF51AFD7ED558CCD)
_MASK32 = np.uint64(0xFFFFFFFF)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S16, _S13 = np.uint64(16), np.uint64(13)
_M1, _M2 = np.uint64(0x85EBCA6B), np.uint64(0xC2B2AE35)
_EIGHT, _S56 = np.uint64(8), np.uint64(56)
_BYTES = np.array([0] + [(1 << (8 * m)) - 1 for m in range(1, 9)], dtype=np.uint64)  # low m bytes
_SPACE = np.uint8(32)
_MULT = _NGRAM_MULT.copy()


@njit(cache=True, inline="always")
def _splitmix(x):
    x = x ^ (x >> _S30)
    x = x * _C1
    x = x ^ (x >> _S27)
    x = x * _C2
    return x ^ (x >> _S31)


@njit(cache=True, inline="always")
def _fmix32(h):
    h = h & _MASK32
    h = h ^ (h >> _S16)
    h = (h * _M1) & _MASK32
    h = h ^ (h >> _S13)
    h = (h * _M2) & _MASK32
    return h ^ (h >> _S16)


@njit(cache=True, inline="always")
def _load8(f8, p):
    """The 8 bytes at byte offset p of the uint64 array f8, little-endian (an unaligned load)."""
    q = p >> 3
    r = np.uint64((p & 7) * 8)
    return (f8[q] >> r) | ((f8[q + 1] << (_S56 - r)) << _EIGHT)


@njit(cache=True)
def _doc_shingles(buf, s, e, lut, n, out, f8, bnd, toks, longs):
    """Write the 64-bit shingle hashes of buf[s:e] into `out` and return how many. Scratch: f8
    (uint64, >= (e - s) // 8 + 4), bnd (int64, >= e - s + 2), toks and longs (>= (e - s) // 2 + 2).

    Tight loops, most without a branch: fold the bytes into f8 while recording word boundaries;
    load each word's first 8 bytes (masked unaligned loads) and hash them all at once, then chain
    the rest of the few longer words; then the n-gram windows as n multiply-adds over all
    positions (vectorised by LLVM)."""
    fb = f8.view(np.uint8)
    src = buf[s:e]  # indexing a slice from 0 spares numba's negative-index checks (2x here)
    size = len(src)
    k = 0
    prev = False
    for i in range(size):  # boundaries alternate: word start, word end, ...
        c = lut[src[i]]
        fb[i] = c
        cur = c != _SPACE
        bnd[k] = i
        k += cur != prev
        prev = cur
    for i in range(size, size + 16):
        fb[i] = _SPACE
    bnd[k] = size
    k += prev
    words = k >> 1
    n_long = 0
    for w in range(words):  # first 8-byte chunk of every word; words over 8 bytes listed apart
        st = bnd[2 * w]
        size = bnd[2 * w + 1] - st
        toks[w] = (_load8(f8, st) & _BYTES[min(size, 8)]) ^ _GOLDEN
        longs[n_long] = w
        n_long += size > 8
    for w in range(words):  # no loads or branches: vectorised
        toks[w] = _splitmix(toks[w])
    for j in range(n_long):  # words over 8 bytes: chain the next chunks
        w = longs[j]
        st, en = bnd[2 * w], bnd[2 * w + 1]
        h = toks[w]
        p = st + 8
        while p < en:
            h = _splitmix(h * _CHAIN + (_load8(f8, p) & _BYTES[min(en - p, 8)]))
            p += 8
        toks[w] = h
    for w in range(words):
        toks[w] = _splitmix(toks[w] ^ np.uint64(bnd[2 * w + 1] - bnd[2 * w]))
    if words >= n:
        m = words - n + 1
        for j in range(m):
            out[j] = toks[j] * _MULT[0]
        for q in range(1, n):
            mult = _MULT[q]
            for j in range(m):
                out[j] += toks[j + q] * mult
        width = np.uint64(n)
        for j in range(m):
            out[j] = _splitmix(out[j] ^ width)
        return m
    if words > 0:  # fewer words than n: one shingle of all of them
        acc = np.uint64(0)
        for q in range(words):
            acc += toks[q] * _MULT[q]
        out[0] = _splitmix(acc ^ np.uint64(words))
        return 1
    return 0


@njit(cache=True, nogil=True)
def sign_docs(buf, starts, ends, rows, lut, n, a, b, sigs, n_sh):
    """Signatures of documents buf[starts[i]:ends[i]] into sigs[rows[i]] (uint32, all-max when a
    document has no shingles) and their shingle counts into n_sh[rows[i]]."""
    longest = 0
    for i in range(len(starts)):
        longest = max(longest, ends[i] - starts[i])
    scratch = np.empty(longest // 2 + 2, dtype=np.uint64)
    toks = np.empty(longest // 2 + 2, dtype=np.uint64)
    hv = np.empty(longest // 2 + 2, dtype=np.uint32)
    f8 = np.empty(longest // 8 + 4, dtype=np.uint64)
    bnd = np.empty(longest + 2, dtype=np.int64)
    longs = np.empty(longest // 2 + 2, dtype=np.int64)
    num_perm = len(a)
    for i in range(len(starts)):
        ns = _doc_shingles(buf, starts[i], ends[i], lut, n, scratch, f8, bnd, toks, longs)
        for k in range(ns):
            hv[k] = np.uint32(_fmix32(scratch[k]))
        r = rows[i]
        n_sh[r] = ns
        for p in range(num_perm):
            ap = a[p]
            bp = b[p]
            m = np.uint32(0xFFFFFFFF)
            for k in range(ns):
                v = np.uint32(ap * hv[k] + bp)
                m = min(m, v)
            sigs[r, p] = m


@njit(cache=True, nogil=True)
def shingle_docs(buf, starts, ends, lut, n):
    """(hashes, offsets): the 64-bit shingle hashes of each document, concatenated."""
    total = 0
    for i in range(len(starts)):
        total += (ends[i] - starts[i]) // 2 + 2
    out = np.empty(total, dtype=np.uint64)
    longest = 0
    for i in range(len(starts)):
        longest = max(longest, ends[i] - starts[i])
    toks = np.empty(longest // 2 + 2, dtype=np.uint64)
    f8 = np.empty(longest // 8 + 4, dtype=np.uint64)
    bnd = np.empty(longest + 2, dtype=np.int64)
    longs = np.empty(longest // 2 + 2, dtype=np.int64)
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    pos = 0
    for i in range(len(starts)):
        ns = _doc_shingles(buf, starts[i], ends[i], lut, n, out[pos:], f8, bnd, toks, longs)
        pos += ns
        offsets[i + 1] = pos
    return out[:pos], offsets


@njit(cache=True, nogil=True)
def non_ascii(buf, starts, ends):
    """Which documents hold a byte >= 0x80 (they need Unicode normalisation first)."""
    flags = np.zeros(len(starts), dtype=np.bool_)
    for i in range(len(starts)):
        acc = np.uint8(0)
        for x in buf[starts[i]:ends[i]]:  # no early exit and no signed index: the OR vectorises
            acc |= x
        flags[i] = acc >= 128
    return flags


@njit(cache=True, inline="always")
def _decode(buf, j, c):
    """(code point, bytes) of the UTF-8 sequence at buf[j] whose lead byte c is >= 0x80."""
    if c >= 0xF0:
        cp = ((c & 7) << 18) | ((np.int64(buf[j + 1]) & 63) << 12) | ((np.int64(buf[j + 2]) & 63) << 6) \
            | (np.int64(buf[j + 3]) & 63)
        return cp, 4
    if c >= 0xE0:
        return ((c & 15) << 12) | ((np.int64(buf[j + 1]) & 63) << 6) | (np.int64(buf[j + 2]) & 63), 3
    return ((c & 31) << 6) | (np.int64(buf[j + 1]) & 63), 2


@njit(cache=True, inline="always")
def _layout(sizes):
    """(start of each document's span, the buffer) of a new buffer holding spans of these sizes."""
    new_starts = np.zeros(len(sizes), dtype=np.int64)
    pos = 0
    for i in range(len(sizes)):
        new_starts[i] = pos
        pos += sizes[i]
    return new_starts, np.empty(max(pos, 1), dtype=np.uint8)


@njit(cache=True, nogil=True)
def fold_docs(buf, starts, ends, t_off, t_len, pool):
    """Unicode folding per code point (dedup.unifold) of documents buf[starts[i]:ends[i]]:
    (folded bytes, starts, ends, ok, same). ok[i] False: a code point without a table entry (the
    document needs the Python reference). same[i] True: every code point folds to itself (é, 数,
    most emoji), so the document is its own folded form and is not copied. Either way its span in
    the folded bytes is empty."""
    n = len(starts)
    limit = len(t_len)
    ok = np.ones(n, dtype=np.bool_)
    same = np.ones(n, dtype=np.bool_)
    sizes = np.zeros(n, dtype=np.int64)
    for i in range(n):
        j = starts[i]
        size = 0
        while j < ends[i]:
            c = np.int64(buf[j])
            if c < 0x80:
                size += 1
                j += 1
                continue
            cp, k = _decode(buf, j, c)
            if cp >= limit or t_len[cp] < 0:
                ok[i] = False
                break
            if same[i]:
                if t_len[cp] != k:
                    same[i] = False
                else:
                    for q in range(k):
                        if pool[t_off[cp] + q] != buf[j + q]:
                            same[i] = False
            size += t_len[cp]
            j += k
        sizes[i] = size if ok[i] and not same[i] else 0
    new_starts, out = _layout(sizes)
    for i in range(n):
        if not ok[i] or same[i]:
            continue
        w = new_starts[i]
        j = starts[i]
        while j < ends[i]:
            c = np.int64(buf[j])
            if c < 0x80:
                out[w] = buf[j]
                w += 1
                j += 1
                continue
            cp, k = _decode(buf, j, c)
            o = t_off[cp]
            for q in range(t_len[cp]):
                out[w + q] = pool[o + q]
            w += t_len[cp]
            j += k
    return out, new_starts, new_starts + sizes, ok, same & ok


@njit(cache=True, nogil=True)
def spread_docs(buf, starts, ends, lut, unit):
    """`dedup.shingle.spread_units` over folded documents buf[starts[i]:ends[i]]: a document whose
    unit characters (unit[cp], cp < len(unit)) are at least half of its characters that are not
    spaces after the byte map `lut` is rewritten with a space after each such character.
    (bytes, starts, ends, spread): the others keep an empty span and spread[i] False."""
    n = len(starts)
    spread = np.zeros(n, dtype=np.bool_)
    sizes = np.zeros(n, dtype=np.int64)
    limit = len(unit)
    for i in range(n):
        units = 0
        others = 0
        size = 0
        j = starts[i]
        while j < ends[i]:
            c = np.int64(buf[j])
            if c < 0x80:
                if lut[c] != _SPACE:
                    others += 1
                    size += 2
                j += 1
                continue
            cp, k = _decode(buf, j, c)
            if cp < limit and unit[cp]:
                units += 1
            else:
                others += 1
            size += k + 1
            j += k
        if units > 0 and 2 * units >= units + others:
            spread[i] = True
            sizes[i] = size
    new_starts, out = _layout(sizes)
    for i in range(n):
        if not spread[i]:
            continue
        w = new_starts[i]
        j = starts[i]
        while j < ends[i]:
            c = np.int64(buf[j])
            if c < 0x80:
                if lut[c] != _SPACE:
                    out[w] = lut[c]
                    out[w + 1] = _SPACE
                    w += 2
                j += 1
                continue
            k = 4 if c >= 0xF0 else (3 if c >= 0xE0 else 2)
            for q in range(k):
                out[w + q] = buf[j + q]
            out[w + k] = _SPACE
            w += k + 1
            j += k
    return out, new_starts, new_starts + sizes, spread


# ---- batch wrappers: texts or an Arrow string column in, arrays out --------------------------

def _ro(buf: np.ndarray) -> np.ndarray:
    """A read-only view: one array type reaches the kernels, so one compiled variant is cached."""
    view = buf.view()
    view.flags.writeable = False
    return view


def _lut(cfg) -> np.ndarray:
    from dedup.shingle import _TABLES

    return np.frombuffer(_TABLES[(cfg.casefold, cfg.fold_punctuation)], dtype=np.uint8)


def _encode(texts: list[str], cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One byte buffer and (start, end) per text, non-ASCII texts folded (`_fold_wide`)."""
    parts = [t.encode("utf-8") for t in texts]
    lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    ends = np.cumsum(lens)
    buf = np.frombuffer(b"".join(parts) or b"\0", dtype=np.uint8)
    return _fold_wide(buf, ends - lens, ends, cfg, lambda idx: [texts[i] for i in idx.tolist()])


def _normalized(texts: list[str], cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Python reference normalisation (dedup.shingle) of texts, as one buffer with spans."""
    from dedup.shingle import _normalize_unicode

    parts = [_normalize_unicode(t or "", cfg).encode("utf-8") for t in texts]
    lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    ends = np.cumsum(lens)
    return np.frombuffer(b"".join(parts) or b"\0", dtype=np.uint8), ends - lens, ends


def _segments(buf, starts, ends, cfg, texts_of) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(buffer, starts, ends, document indices) pieces that together cover every document, folded:
    ASCII documents (and those whose code points all fold to themselves) in place, other non-ASCII
    ones folded by the compiled table (dedup.unifold) where every code point has an entry, the
    rest by the Python reference (`texts_of(indices)` gives their texts). No piece copies the
    input buffer."""
    everyone = np.arange(len(starts), dtype=np.int64)
    if not (cfg.nfkc or cfg.casefold or cfg.fold_punctuation or cfg.script_units or cfg.to_simplified):
        return [(buf, starts, ends, everyone)]
    wide_mask = non_ascii(_ro(buf), starts, ends)
    if not wide_mask.any():
        return [(buf, starts, ends, everyone)]
    from dedup.unifold import table

    wide = np.flatnonzero(wide_mask)
    if cfg.to_simplified:  # phrase conversion is not per code point: the Python reference folds them
        plain = np.flatnonzero(~wide_mask)
        return [(buf, starts[plain], ends[plain], plain), *_spread(*_normalized(texts_of(wide), cfg), wide, cfg)]
    t_off, t_len, pool = table(cfg.nfkc, cfg.casefold, cfg.fold_punctuation, cfg.script_units)
    fbuf, fs, fe, ok, same = fold_docs(_ro(buf), starts[wide], ends[wide], t_off, t_len, pool)
    wide_mask[wide[same]] = False  # folding leaves these as they are: signed in place like ASCII
    plain = np.flatnonzero(~wide_mask)
    out = [(buf, starts[plain], ends[plain], plain)]
    folded = ok & ~same
    out.extend(_spread(fbuf, fs[folded], fe[folded], wide[folded], cfg))
    slow = wide[~ok]
    if len(slow):
        out.extend(_spread(*_normalized(texts_of(slow), cfg), slow, cfg))
    return out


def _spread(fbuf, fs, fe, idx, cfg) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The folded piece (fbuf, fs, fe) of documents idx, with those mostly in scripts without spaces
    cut into characters (`spread_docs`) as a piece of their own."""
    if not cfg.script_units or not len(idx):
        return [(fbuf, fs, fe, idx)]
    from dedup.shingle import unit_table

    sbuf, ss, se, spread = spread_docs(_ro(fbuf), fs, fe, _lut(cfg), unit_table())
    if not spread.any():
        return [(fbuf, fs, fe, idx)]
    keep = ~spread
    return [(fbuf, fs[keep], fe[keep], idx[keep]), (sbuf, ss[spread], se[spread], idx[spread])]


def _fold_wide(buf, starts, ends, cfg, texts_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `_segments` joined into one buffer with spans in document order (for shingling)."""
    parts = _segments(buf, starts, ends, cfg, texts_of)
    if len(parts) == 1:
        return parts[0][:3]
    new_starts, new_ends = np.empty_like(starts), np.empty_like(ends)
    base = 0
    for pbuf, ps, pe, idx in parts:
        new_starts[idx], new_ends[idx] = ps + base, pe + base
        base += len(pbuf)
    return np.concatenate([p[0] for p in parts]), new_starts, new_ends


def _sign_into(buf, starts, ends, rows, cfg, sigs, n_sh) -> None:
    from dedup.minhash import permutations

    a, b = permutations(cfg.num_perm, cfg.seed)
    sign_docs(_ro(buf), starts, ends, rows, _lut(cfg), cfg.ngram, a, b, sigs, n_sh)


def sign_texts(texts: list[str], cfg) -> tuple[np.ndarray, np.ndarray]:
    """(n_shingles int64, signatures (n, num_perm) uint32) of word-n-gram shingles."""
    n = len(texts)
    sigs = np.empty((n, cfg.num_perm), dtype=np.uint32)
    n_sh = np.zeros(n, dtype=np.int64)
    if n:
        buf, starts, ends = _encode(texts, cfg)
        _sign_into(buf, starts, ends, np.arange(n, dtype=np.int64), cfg, sigs, n_sh)
    return n_sh, sigs


def _arrow_spans(chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, starts, ends) of an Arrow string/large_string array, nulls as empty."""
    import pyarrow as pa

    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        chunk = chunk.cast(pa.large_string())  # string_view and friends
    wide = pa.types.is_large_string(chunk.type)
    _validity, offs, data = chunk.buffers()[:3]
    offsets = np.frombuffer(offs, dtype=np.int64 if wide else np.int32, count=len(chunk) + 1,
                            offset=chunk.offset * (8 if wide else 4)).astype(np.int64)
    starts, ends = offsets[:-1].copy(), offsets[1:].copy()
    if chunk.null_count:
        nulls = np.asarray(chunk.is_null().to_numpy(zero_copy_only=False))
        ends[nulls] = starts[nulls]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    return buf, starts, ends


def _indices(idx: np.ndarray):
    """Row indices as an Arrow array for `take` (not `pa.array`, whose first call imports pandas)."""
    import pyarrow as pa

    idx = np.ascontiguousarray(idx, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(idx), [None, pa.py_buffer(idx)])


def _spans(texts, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buffer, starts, ends) of a list of texts or an Arrow string column (Array or
    ChunkedArray): ASCII documents of a column are used in place, from its own buffer."""
    import pyarrow as pa

    if isinstance(texts, list):
        return _encode(texts, cfg)
    chunk = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    buf, starts, ends = _arrow_spans(chunk)
    return _fold_wide(buf, starts, ends, cfg, lambda idx: chunk.take(_indices(idx)).to_pylist())


def sign_arrow(column, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Like `sign_texts`, straight from an Arrow string column: ASCII documents are signed in the
    column's own buffer, and only documents the folding table cannot handle become Python strings."""
    import pyarrow as pa

    n = len(column)
    sigs = np.empty((n, cfg.num_perm), dtype=np.uint32)
    n_sh = np.zeros(n, dtype=np.int64)
    if n:
        chunk = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        buf, starts, ends = _arrow_spans(chunk)
        for pbuf, ps, pe, idx in _segments(buf, starts, ends, cfg,
                                           lambda i: chunk.take(_indices(i)).to_pylist()):
            _sign_into(pbuf, ps, pe, idx, cfg, sigs, n_sh)
    return n_sh, sigs


def shingle_texts(texts, cfg) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit shingle hashes, offsets) of word-n-gram shingles, as `shingle_batch` gives them,
    of a list of texts or an Arrow string column."""
    if len(texts) == 0:
        return np.empty(0, dtype=np.uint64), np.zeros(1, dtype=np.int64)
    buf, starts, ends = _spans(texts, cfg)
    return shingle_docs(_ro(buf), starts, ends, _lut(cfg), cfg.ngram)


@njit(cache=True, nogil=True)
def _unique_per_doc(hashes, offsets):
    out = np.empty(len(hashes), dtype=np.uint64)
    new_off = np.zeros(len(offsets), dtype=np.int64)
    pos = 0
    for d in range(len(offsets) - 1):
        seg = np.sort(hashes[offsets[d]:offsets[d + 1]])
        for k in range(len(seg)):
            if k == 0 or seg[k] != seg[k - 1]:
                out[pos] = seg[k]
                pos += 1
        new_off[d + 1] = pos
    return out[:pos].copy(), new_off


@njit(cache=True, inline="always")
def _pair_spans(offsets, a, b):
    """(a0, a1, b0, b1): where segments a and b lie in a flat array with `offsets`."""
    return offsets[a], offsets[a + 1], offsets[b], offsets[b + 1]


@njit(cache=True, nogil=True)
def _jaccard_rows(hashes, offsets, ra, rb):
    """Exact Jaccard of sorted unique segments ra[i] and rb[i] (an empty set: 0)."""
    out = np.zeros(len(ra), dtype=np.float64)
    for i in range(len(ra)):
        a0, a1, b0, b1 = _pair_spans(offsets, ra[i], rb[i])
        if a1 == a0 or b1 == b0:
            continue
        inter = 0
        while a0 < a1 and b0 < b1:
            x, y = hashes[a0], hashes[b0]
            if x == y:
                inter += 1
                a0 += 1
                b0 += 1
            elif x < y:
                a0 += 1
            else:
                b0 += 1
        na = offsets[ra[i] + 1] - offsets[ra[i]]
        nb = offsets[rb[i] + 1] - offsets[rb[i]]
        out[i] = inter / (na + nb - inter)
    return out


@njit(cache=True, nogil=True)
def _band_keys(sigs, bands, rows, row_mult):
    """`dedup.bands.band_keys`, compiled: (n, bands) uint64, one splitmix chain per band."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    for i in range(n):
        row = sigs[i]
        for b in range(bands):
            acc = np.uint64(b)
            base = b * rows
            for r in range(rows):
                acc = _splitmix(acc ^ (np.uint64(row[base + r]) * row_mult[r]))
            keys[i, b] = acc
    return keys


@njit(cache=True, inline="always")
def _pow2(n):
    """The smallest power of two >= n (hash table sizes)."""
    cap = 1
    while cap < n:
        cap *= 2
    return cap


@njit(cache=True, nogil=True)
def _bucket_pairs(keys, max_all_pairs):
    """(i, j) row pairs, i < j, that share a key in some column of `keys`, by the rule of
    `dedup.bands._pairs_in_runs`: every pair in a bucket of up to `max_all_pairs` members, else
    neighbours in row order plus the first member with each. Rows are grouped per column in an
    open-addressing hash table (members chained in row order) instead of an argsort; pairs may
    repeat across columns. (Plain loops, no slice assignments: they cost seconds of compile.)"""
    n, n_cols = keys.shape
    cap = _pow2(2 * n)
    mask = cap - 1
    slot_key = np.empty(cap, dtype=np.uint64)
    slot_head = np.empty(cap, dtype=np.int64)
    slot_tail = np.empty(cap, dtype=np.int64)
    slot_size = np.empty(cap, dtype=np.int64)
    nxt = np.empty(n, dtype=np.int64)
    slot_of = np.empty(n, dtype=np.int64)
    members = np.empty(n, dtype=np.int64)
    first = np.empty(max(n, 16), dtype=np.int64)
    second = np.empty(max(n, 16), dtype=np.int64)
    found = 0
    for c in range(n_cols):
        for s in range(cap):
            slot_head[s] = -1
        for i in range(n):
            k = keys[i, c]
            s = np.int64(k & np.uint64(mask))
            while slot_head[s] >= 0 and slot_key[s] != k:
                s = (s + 1) & mask
            if slot_head[s] < 0:
                slot_key[s] = k
                slot_head[s] = i
                slot_size[s] = 1
            else:
                nxt[slot_tail[s]] = i
                slot_size[s] += 1
            slot_tail[s] = i
            nxt[i] = -1
            slot_of[i] = s
        for i in range(n):
            s = slot_of[i]
            size = slot_size[s]
            if size < 2 or slot_head[s] != i:
                continue
            m = 0
            j = i
            while j >= 0:
                members[m] = j
                m += 1
                j = nxt[j]
            more = size * (size - 1) // 2 if size <= max_all_pairs else 2 * size - 3
            if found + more > len(first):
                grown = max(2 * len(first), found + more)
                first2 = np.empty(grown, dtype=np.int64)
                second2 = np.empty(grown, dtype=np.int64)
                for q in range(found):
                    first2[q] = first[q]
                    second2[q] = second[q]
                first, second = first2, second2
            if size <= max_all_pairs:
                for a in range(size - 1):
                    for b in range(a + 1, size):
                        first[found] = members[a]
                        second[found] = members[b]
                        found += 1
            else:
                for a in range(size - 1):
                    first[found] = members[a]
                    second[found] = members[a + 1]
                    found += 1
                for b in range(2, size):
                    first[found] = members[0]
                    second[found] = members[b]
                    found += 1
    out = np.empty((found, 2), dtype=np.int64)
    for q in range(found):
        out[q, 0] = first[q]
        out[q, 1] = second[q]
    return out


@njit(cache=True, nogil=True)
def _jaccard_pairs(hashes, offsets, ra, rb):
    """Exact Jaccard of the shingle sets of segments ra[i] and rb[i] of `hashes`, which need be
    neither sorted nor unique: one small open-addressing set per pair (slots tagged 1 = in A,
    2 = only in B, 3 = in both), cleared through the list of slots it touched. The same integers,
    hence the same floats, as `_jaccard_rows` on sorted unique sets (an empty set: 0)."""
    longest = 0
    for d in range(len(offsets) - 1):
        longest = max(longest, offsets[d + 1] - offsets[d])
    cap = _pow2(max(16, 4 * longest))  # two documents' distinct hashes fill at most half
    mask = cap - 1
    keys = np.empty(cap, dtype=np.uint64)
    tag = np.zeros(cap, dtype=np.uint8)
    touched = np.empty(2 * longest + 1, dtype=np.int64)
    new = np.zeros(3, dtype=np.int64)
    out = np.zeros(len(ra), dtype=np.float64)
    for i in range(len(ra)):
        a0, a1, b0, b1 = _pair_spans(offsets, ra[i], rb[i])
        if min(a1 - a0, b1 - b0) == 0:  # an empty set: 0
            continue
        n_touched = 0
        new[1] = new[2] = 0  # distinct hashes first seen in A (1), in B only (2)
        inter = 0
        for q in range(a0, a1 + b1 - b0):
            side = 1 if q < a1 else 2
            h = hashes[q] if q < a1 else hashes[b0 + q - a1]
            s = np.int64(h & np.uint64(mask))
            while tag[s] != 0 and keys[s] != h:
                s = (s + 1) & mask
            if tag[s] == 0:
                tag[s] = side
                keys[s] = h
                touched[n_touched] = s
                n_touched += 1
                new[side] += 1
            elif side == 2 and tag[s] == 1:
                tag[s] = 3
                inter += 1
        out[i] = inter / (new[1] + new[2])
        for t in range(n_touched):
            tag[touched[t]] = 0
    return out


def jaccard_pairs(hashes: np.ndarray, offsets: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Exact Jaccard per pair of segment rows of raw (unsorted, repeated) shingle hashes: the
    values `jaccard_rows` gives on the sorted unique sets, without sorting each document."""
    return _jaccard_pairs(hashes, offsets, ra.astype(np.int64), rb.astype(np.int64))


def loaded() -> bool:
    """Whether this process has the compiled code loaded already (numba's first call in a process
    costs ~0.7 s to set up its target context, cached machine code or not)."""
    return AVAILABLE and any(f.overloads for f in (sign_docs, shingle_docs, _unique_per_doc, _jaccard_rows,
                                                   _bucket_pairs))


def unique_per_doc(hashes: np.ndarray, offsets: np.ndarray, jit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique hashes per document segment, concatenated, with new offsets."""
    if AVAILABLE and jit:
        return _unique_per_doc(hashes, offsets)
    segs = [np.unique(hashes[offsets[d]:offsets[d + 1]]) for d in range(len(offsets) - 1)]
    new_off = np.zeros(len(segs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in segs], out=new_off[1:])
    return (np.concatenate(segs) if segs else np.empty(0, np.uint64)), new_off


def jaccard_rows(hashes: np.ndarray, offsets: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Exact Jaccard per pair of segment rows of sorted unique hash segments (compiled; the
    reference is `dedup.verify.jaccard`, which `dedup.verify.verify_flat` uses without numba)."""
    return _jaccard_rows(hashes, offsets, ra.astype(np.int64), rb.astype(np.int64))


def warm() -> None:
    """Compile (or load from the cache) every kernel once: `make` runs this after installing."""
    from dedup.config import DedupConfig

    cfg = DedupConfig()
    sign_texts(["warm up the kernel cache", "naïve café"], cfg)
    h, o = shingle_texts(["warm up the kernel cache now please"], cfg)
    uh, uo = unique_per_doc(h, o)
    jaccard_rows(uh, uo, np.zeros(1, np.int64), np.zeros(1, np.int64))
    jaccard_pairs(h, o, np.zeros(1, np.int64), np.zeros(1, np.int64))
    sigs = sign_texts(["warm up the kernel cache"] * 2, cfg)[1]
    _bucket_pairs(_band_keys(sigs, 16, 8, np.ones(8, dtype=np.uint64)), 64)
    import pyarrow as pa

    sign_arrow(pa.array(["warm up", "naïve"]), cfg)
    sign_arrow(pa.array(["warm up", None], type=pa.large_string()), cfg)

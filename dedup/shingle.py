"""normalize -> tokenize -> shingle -> 64-bit shingle hashes, over a batch of texts.

A batch is one byte buffer: folding, word boundaries and 64-bit word hashes are numpy passes
over it (measured: 1.7x faster than a dict of word ids); n-gram hashes combine the word hashes
of a window with odd multipliers and a splitmix64 finaliser. Texts with
fewer words than n yield one shingle of all their words; empty texts yield none.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from dedup.config import SHINGLE_VERSION, DedupConfig  # noqa: F401  (SHINGLE_VERSION re-exported)

U64 = np.uint64


def _splitmix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) % (1 << 64)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % (1 << 64)
    return x ^ (x >> 31)


# One pseudo-random odd multiplier per window position. (Version 1 used c*(2k+1): the n-gram hash
# then depended only on each word's summed position weights, so reorderings of a few words, e.g.
# digit runs "0 1 2 0 2 1 ..." or a small alphabet's character n-grams, collided.)
_NGRAM_MULT = np.array([_splitmix_int(k + 1) | 1 for k in range(32)], dtype=U64)

# ASCII punctuation -> space (punctuation folding). Common non-ASCII punctuation NFKC keeps:
_ASCII_PUNCT = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"})
_UNICODE_PUNCT = re.compile(r"[\u2010-\u2027\u2030-\u205e\u3001-\u3003\u3008-\u3011\u00a1\u00ab\u00b7\u00bb\u00bf]")


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> U64(30))
    x = x * U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> U64(27))
    x = x * U64(0x94D049BB133111EB)
    return x ^ (x >> U64(31))


# Byte map applied to the whole batch: ASCII upper -> lower (casefold), ASCII punctuation ->
# space (punctuation folding), ASCII whitespace -> space. UTF-8 multibyte bytes (>= 0x80) pass.
def _byte_map(casefold: bool, fold_punctuation: bool) -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    for c in b"\t\n\r\x0b\x0c\x00":
        lut[c] = 32
    if fold_punctuation:
        for c in b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
            lut[c] = 32
    if casefold:
        lut[65:91] += 32
    return lut


_TABLES = {(c, p): _byte_map(c, p).tobytes() for c in (False, True) for p in (False, True)}
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=U64)


def _word_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hash of each word buf[s:e]: its bytes read 8 at a time as little-endian words
    (unaligned strided view, one gather per 8 bytes), chained through splitmix64, with the
    length mixed in. Every byte takes part, so equal hashes mean equal words up to 2^-64."""
    lengths = ends - starts
    u64 = np.ndarray(shape=(len(buf) - 8,), dtype="<u8", buffer=buf, offset=0, strides=(1,))
    h = _splitmix((u64[starts] & _LOW_BYTES[np.minimum(lengths, 8)]) ^ U64(0x9E3779B97F4A7C15))
    j = 1
    while True:
        sel = np.flatnonzero(lengths > 8 * j)
        if len(sel) == 0:
            break
        rem = lengths[sel] - 8 * j
        chunk = u64[starts[sel] + 8 * j] & _LOW_BYTES[np.minimum(rem, 8)]
        h[sel] = _splitmix(h[sel] * U64(0xFF51AFD7ED558CCD) + chunk)
        j += 1
    return _splitmix(h ^ lengths.astype(U64))


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")

# Scripts written without spaces between words: there a whitespace "word" is a whole clause, so
# each character is a unit. Han (with its extensions, compatibility forms, radicals and the
# iteration marks), Hiragana, Katakana (and its phonetic extensions), Hangul (syllables and jamo),
# Thai, Lao, Khmer, Myanmar. Applied after NFKC (half-width katakana are full-width by then).
UNIT_SCRIPTS = ("\u0e00-\u0eff"           # Thai, Lao
                "\u1000-\u109f"           # Myanmar
                "\u1100-\u11ff"           # Hangul jamo
                "\u1780-\u17ff\u19e0-\u19ff"  # Khmer, Khmer symbols
                "\u2e80-\u2fdf"           # CJK radicals, Kangxi radicals
                "\u3005-\u3007\u3021-\u3029\u3038-\u303b"  # iteration marks, Hangzhou numerals
                "\u3040-\u30ff"           # Hiragana, Katakana
                "\u3130-\u318f"           # Hangul compatibility jamo
                "\u31f0-\u31ff"           # Katakana phonetic extensions
                "\u3400-\u4dbf\u4e00-\u9fff"  # CJK ideographs, extension A
                "\ua960-\ua97f\ua9e0-\ua9ff\uaa60-\uaa7f"  # Hangul jamo ext. A, Myanmar ext. B, A
                "\uac00-\ud7ff"           # Hangul syllables, jamo ext. B
                "\uf900-\ufaff"           # CJK compatibility ideographs
                "\U00020000-\U0003134f")  # CJK extensions B-G, compatibility supplement
_UNIT = re.compile(f"[{UNIT_SCRIPTS}]")
# One word of the text-units layer as an RE2 pattern (DuckDB's regexp functions): a character of a
# script written without spaces, or a run of other characters between whitespace: the words of
# `split_units(text).split()` (Python splits on \v, \x1c-\x1f and \x85 too, RE2's \s does not).
WORD_RE2 = f"[{UNIT_SCRIPTS}]|[^\\s\\x{{0B}}\\x{{1C}}-\\x{{1F}}\\x{{85}}\\p{{Z}}{UNIT_SCRIPTS}]+"


def is_unit(ch: str) -> bool:
    """Is this one character of a script written without spaces (a unit of its own)?"""
    return len(ch) == 1 and _UNIT.match(ch) is not None


def split_units(text: str) -> str:
    """Each character of a script written without spaces becomes a word of its own: spaces
    around it, so `数据` and `数 据` give the same units."""
    return _UNIT.sub(" \\g<0> ", text)


_UNIT_TABLE: list[np.ndarray] = []


def unit_table() -> np.ndarray:
    """unit[cp]: is code point cp of a script written without spaces (`UNIT_SCRIPTS`); code points
    past the table are not (its last entry is False)."""
    if not _UNIT_TABLE:
        unit = np.zeros(0x31351, dtype=np.bool_)
        i = 0
        while i < len(UNIT_SCRIPTS):  # the character class: single characters and a-b ranges
            lo = hi = ord(UNIT_SCRIPTS[i])
            if i + 2 < len(UNIT_SCRIPTS) and UNIT_SCRIPTS[i + 1] == "-":
                hi = ord(UNIT_SCRIPTS[i + 2])
                i += 2
            unit[lo:hi + 1] = True
            i += 1
        _UNIT_TABLE.append(unit)
    return _UNIT_TABLE[0]


def spread_units(text: str, cfg: DedupConfig) -> str:
    """A folded text (`_normalize_unicode`) whose characters are mostly of scripts without spaces
    (units at least half of the characters that are not spaces after the byte map) takes every
    character as a unit: Latin words, digits and symbols inside a Chinese, Japanese, Korean or
    Thai document are cut into characters too, so one edit weighs the same wherever it falls.
    Other texts are returned as they are (their unit characters are units already). Dedup
    shingling only; the compiled kernel does the same (`dedup.kernel.spread_docs`)."""
    if not cfg.script_units or text.isascii():
        return text
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = unit_table()
    units = int(np.count_nonzero(table[np.minimum(cps, len(table) - 1)]))
    if not units:
        return text
    space = np.frombuffer(_TABLES[(cfg.casefold, cfg.fold_punctuation)], dtype=np.uint8)[np.minimum(cps, 127)] == 32
    space &= cps < 128
    kept = cps[~space]
    if 2 * units < len(kept):
        return text
    out = np.full(2 * len(kept), 32, dtype=np.uint32)
    out[0::2] = kept
    return out[:-1].tobytes().decode("utf-32-le")


def _fold_run(m: re.Match, casefold: bool, punct: bool) -> str:
    run = m.group()
    if casefold:
        run = run.casefold()
    return _UNICODE_PUNCT.sub(" ", run) if punct else run


_T2S = []


def to_simplified(text: str) -> str:
    """Traditional Chinese characters and phrases as simplified ones (OpenCC's t2s tables)."""
    if not _T2S:
        import opencc

        _T2S.append(opencc.OpenCC("t2s"))
    return _T2S[0].convert(text)


def _normalize_unicode(text: str, cfg: DedupConfig) -> str:
    """NFKC, then casefold and Unicode punctuation folding applied to the non-ASCII runs only
    (ASCII is folded on bytes later): one regex scan instead of two full-string passes; then the
    characters of scripts without spaces become units (`split_units`)."""
    if cfg.nfkc:
        text = unicodedata.normalize("NFKC", text)
    if cfg.to_simplified:
        text = to_simplified(text)
    if cfg.casefold or cfg.fold_punctuation:
        text = _NON_ASCII_RUN.sub(lambda m: _fold_run(m, cfg.casefold, cfg.fold_punctuation), text)
    if cfg.script_units:
        text = split_units(text)
    return text


def normalize(text: str, cfg: DedupConfig) -> str:
    """NFKC, casefold, punctuation folding (all configurable); whitespace splits later."""
    if not text.isascii():
        text = _normalize_unicode(text, cfg)
    elif cfg.casefold:
        text = text.lower()
    if cfg.fold_punctuation:
        text = text.translate(_ASCII_PUNCT)
    return text


def _ngram_hashes(tok: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-gram hashes per document from the flat token-hash array; (hashes, per-doc offsets)."""
    n_docs = len(counts)
    tok_start = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=tok_start[1:])
    n_sh = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(n_sh, out=offsets[1:])
    total_tok = len(tok)
    # Full windows over the flat array (contiguous slices, no gathers), then keep those that
    # start inside a document with >= n tokens and do not cross its end.
    m = max(total_tok - n + 1, 0)
    acc = np.zeros(m, dtype=U64)
    for k in range(n):
        acc += tok[k:k + m] * _NGRAM_MULT[k]
    acc ^= U64(n)
    full = _splitmix(acc)
    doc_of_tok = np.repeat(np.arange(n_docs), counts)
    valid = np.zeros(m, dtype=bool)
    if m:
        pos = np.arange(m)
        valid = pos + n <= tok_start[doc_of_tok[:m] + 1]
    out = np.empty(int(offsets[-1]), dtype=U64)
    long_docs = counts >= n
    # windows of long documents, in order
    out_mask = np.repeat(long_docs, n_sh)
    out[out_mask] = full[valid]
    short = np.flatnonzero((counts > 0) & ~long_docs)
    for d in short:  # fewer words than n: one shingle of all of them
        w = int(counts[d])
        s = tok_start[d]
        h = np.sum(tok[s:s + w] * _NGRAM_MULT[:w], dtype=U64) ^ U64(w)
        out[offsets[d]] = _splitmix(np.array([h], dtype=U64))[0]
    return out, offsets


def shingle_batch(texts: list[str], cfg: DedupConfig, *, spread: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """64-bit shingle hashes of a batch: (hashes uint64, offsets int64 of length len(texts)+1).

    `spread`: documents mostly in scripts without spaces are cut into characters whole
    (`spread_units`), as dedup wants; contamination and the curriculum scorers pass False, so
    their units are those of `words` (a Latin word stays a word wherever it stands).

    The batch is joined into one byte buffer; case and punctuation folding, word boundaries and
    word hashes are numpy passes over it. Only non-ASCII texts get per-document Python work
    (NFKC, casefold, Unicode punctuation).
    """
    if cfg.char_ngrams:
        return _char_shingles([normalize(t, cfg) for t in texts], cfg)
    parts = [t.encode() if t.isascii() else (spread_units(_normalize_unicode(t, cfg), cfg) if spread
                                             else _normalize_unicode(t, cfg)).encode("utf-8") for t in texts]
    lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    doc_start = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lens + 1, out=doc_start[1:])
    blob = (b" ".join(parts) + b" " * 17).translate(_TABLES[(cfg.casefold, cfg.fold_punctuation)])
    buf = np.frombuffer(blob, dtype=np.uint8)
    space = buf == 32
    if len(buf) and not space[0]:  # a leading word: make the first edge a start
        space = np.concatenate(([True], space))
        edges = np.flatnonzero(space[:-1] != space[1:])
    else:
        edges = np.flatnonzero(space[:-1] != space[1:]) + 1
    starts, ends = edges[0::2], edges[1::2]  # the buffer ends in spaces: edges pair up
    tok = _word_hashes(buf, starts, ends)
    counts = np.diff(np.searchsorted(starts, doc_start))
    return _ngram_hashes(tok, counts, cfg.ngram)


def _char_shingles(norm: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """Character n-grams over code points, whitespace removed (CJK and short texts)."""
    squeezed = ["".join(s.split()) for s in norm]
    cps = np.frombuffer("".join(squeezed).encode("utf-32-le"), dtype=np.uint32)
    counts = np.fromiter((len(s) for s in squeezed), dtype=np.int64, count=len(squeezed))
    tok = _splitmix(cps.astype(U64) + U64(0x51ED27))
    return _ngram_hashes(tok, counts, cfg.ngram)


def shingle_sets(texts: list[str], cfg: DedupConfig) -> list[np.ndarray]:
    """Sorted unique shingle hashes per text (for exact Jaccard)."""
    hashes, offsets = shingle_batch(texts, cfg)
    return [np.unique(hashes[offsets[i]:offsets[i + 1]]) for i in range(len(texts))]


def words(text: str, cfg: DedupConfig) -> list[str]:
    """The folded words `shingle_batch(..., spread=False)` hashes (contamination and the curriculum
    units), for showing which n-grams matched."""
    raw = text.encode() if text.isascii() else _normalize_unicode(text, cfg).encode("utf-8")
    folded = raw.translate(_TABLES[(cfg.casefold, cfg.fold_punctuation)])
    return [w.decode("utf-8", "replace") for w in folded.split()]

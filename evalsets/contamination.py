"""Decontamination: n-gram overlap (13-grams after normalisation, as GPT-3 did: Brown et al.
2020, app. C) and near-duplicate matches of eval items against a training corpus.

Normalisation (both sides): words joined across a hyphenated line break ("contami-\nnation"), an
inner hyphen or apostrophe ("well-known", "don't", "don’t") or a soft hyphen are one word; then
the dedup folding (NFKC, casefold, punctuation and whitespace to spaces). So a copy is found
whatever its casing, punctuation, spacing or line breaks, inside a longer document or in part
(any 13 words in a row).

Low-information n-grams (digit runs, hex tables, bit strings, single letters) are not evidence:
an n-gram counts only with MIN_INFORMATIVE distinct informative words (see `evidence`).

Pure: training text arrives as an iterator of (doc_ids, texts) batches; the item index
(`item_ngrams`) and a batch scan (`scan_documents`) are separate so the warehouse can keep the
index of registered eval sets and the hits of each scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dedup.config import DedupConfig
from dedup.shingle import UNIT_SCRIPTS, is_unit, shingle_batch
from dedup.shingle import words as _folded_words

# A hyphen (with any line break after it), an apostrophe or a soft hyphen before a word character;
# removed when a word character (\w: alphanumeric or "_") comes before it too. The look-behind is
# checked in Python: a pattern that starts with one makes `re` try every position (2.4x slower).
_JOINER = re.compile(r"(?:[-\u2010\u2011]\s*|['\u2019\u00ad])(?=\w)")
_JOIN_CHARS = re.compile(r"[-\u2010\u2011'\u2019\u00ad]")
# A word spaced out letter by letter (PDF extraction's artefact, "p o s t m a s t e r 命 令", "d p k g -
# s o u r c e"): three or more letters or digits of spaced scripts, and the hyphens and apostrophes
# between them, each alone between single spaces, are one word again (then joined as above).
# Characters of scripts without spaces are units whether spaced or not, so they are left alone.
# The pattern starts with a space, a literal `re` finds fast (a run right after a line break or a
# bracket is left: a \b start scanned 3x slower, +35% on a whole contamination scan).
_SPACED = re.compile(rf" [^\W_{UNIT_SCRIPTS}](?:(?: [-\u2010\u2011'\u2019])? [^\W_{UNIT_SCRIPTS}]\b){{2,}}")


def join_words(text: str) -> str:
    """Remove word-inner hyphens (and the line break after one), apostrophes and soft hyphens;
    join a word spaced out letter by letter."""
    text = _SPACED.sub(lambda m: " " + m.group().replace(" ", ""), " " + text)[1:]
    if not _JOIN_CHARS.search(text):
        return text

    def join(m: re.Match) -> str:
        i = m.start()
        before = text[i - 1] if i else ""
        return "" if before.isalnum() or before == "_" else m.group()

    return _JOINER.sub(join, text)


N_GRAM = 13  # GPT-3's n (Brown et al. 2020, app. C)
# An item mostly in a script without spaces needs a match of as much text as GPT-3's 13 English words:
# 13 x the units its script takes per English word, measured on the 234k+ messages of Debian's
# translated catalogues (bench/parallel_units.py: Han 1.62, Kana 2.64, Hangul 2.14, Thai 4.68,
# Myanmar 5.36, Khmer 5.80 units per word; Latin 1.02). Lao has no catalogue here: Thai's, its
# sister script. 13 characters of Chinese are about 8 English words, 13 kana about 5: a stock
# phrase or one technical term (コマンドラインインターフェイス), which flagged 0.07-0.40 of clean items.
RUN_BY_SCRIPT = {"Han": 21, "Kana": 34, "Hangul": 28, "Thai": 61, "Lao": 61, "Myanmar": 70, "Khmer": 75}
MIN_INFORMATIVE = 4  # distinct informative words an n-gram needs to count as evidence
_HEXISH = re.compile(r"^(?:0x)?[0-9a-f]+$")


def informative_word(w: str) -> bool:
    """A word that says something: two or more characters with a letter, and not a hex number
    (`0x1f`, `3e8a`; `face` and `added` are words), or one character of a script written without
    spaces (a Han character, a kana, a Hangul syllable: the units there). Digits, single Latin
    letters and hex digits are how tables, bit strings and enumerations look in any text."""
    if is_unit(w):
        return True
    return len(w) >= 2 and any(c.isalpha() for c in w) and not (_HEXISH.match(w) and any(c.isdigit() for c in w))


def evidence(words: list[str], min_informative: int = MIN_INFORMATIVE) -> bool:
    """Is this n-gram evidence of a copy? Only with at least `min_informative` distinct informative
    words: `0 1 2 3 4 5 6 7 8 9 a b c` or `0 1 1 0 0 0 0 1 1 1 1 0 1` occur in unrelated code and
    data everywhere (two false positives of the issue's real-corpus run)."""
    return len({w for w in words if informative_word(w)}) >= min_informative


@dataclass(frozen=True)
class ItemNgrams:
    """The n-gram index of a set of eval items: hashes with their item and word position, and
    per item a status: checkable, too_short (< n words) or low_information (no window is
    evidence)."""

    h: np.ndarray      # uint64
    item: np.ndarray   # int32, index into the items
    pos: np.ndarray    # int32, window start (word index) in the item
    status: list[str]
    windows: int       # all windows of the checkable items, before the low-information rule
    n: int


def required_run(text: str, n: int = N_GRAM) -> int:
    """Units an item's match must cover in a row: n, or its dominant script's RUN_BY_SCRIPT (Japanese
    text, kana with Han, is 'Kana')."""
    from curation.languages import dominant_script

    return max(n, RUN_BY_SCRIPT.get(dominant_script(text), n))


RULE_TAG = "runs-" + "-".join(f"{k}{v}" for k, v in RUN_BY_SCRIPT.items()) + "-spaced"  # stored rules name it


def keep_runs(pairs: pd.DataFrame, need: np.ndarray, n: int, item_cols: tuple[str, ...] = ("item",)) -> pd.DataFrame:
    """The (item, doc) window pairs that lie in a run of consecutive windows, aligned in the item
    and the document, covering at least need[row] units (a run of k windows covers k + n - 1)."""
    need = np.asarray(need, dtype=np.int64)
    if not len(pairs) or (need <= n).all():
        return pairs
    df = pairs.assign(_need=need, _diag=pairs["doc_pos"].astype(np.int64) - pairs["item_pos"].astype(np.int64))
    df = df.sort_values([*item_cols, "doc_id", "_diag", "item_pos"])
    ip = df["item_pos"].to_numpy(np.int64)
    new = np.ones(len(df), dtype=bool)
    same = np.ones(len(df) - 1, dtype=bool)
    for c in (*item_cols, "doc_id", "_diag"):
        v = df[c].to_numpy()
        same &= v[1:] == v[:-1]
    new[1:] = ~(same & (ip[1:] == ip[:-1] + 1))
    run = np.cumsum(new) - 1
    windows = np.bincount(run)[run]
    keep = windows + n - 1 >= df["_need"].to_numpy()
    return df[keep].drop(columns=["_need", "_diag"]).sort_index()


def item_ngrams(items: list[str], n: int = N_GRAM, low_information_rule: bool = True,
                need: list[int] | None = None) -> ItemNgrams:
    """`need`: units in a row a match of each item must cover (`required_run`); an item with fewer
    units is too short. Default: n for every item."""
    cfg = DedupConfig(ngram=n)
    joined = [join_words(t) for t in items]
    ih, ioff = shingle_batch(joined, cfg, spread=False)
    hs, its, ps, status, windows = [], [], [], [], 0
    for i, text in enumerate(joined):
        words = _folded_words(text, cfg)
        if len(words) < max(n, need[i] if need is not None else n):
            status.append("too_short")
            continue
        seg = ih[ioff[i]:ioff[i + 1]]
        windows += len(seg)
        keep = np.array([evidence(words[p:p + n]) for p in range(len(seg))], dtype=bool) if low_information_rule \
            else np.ones(len(seg), dtype=bool)
        status.append("checkable" if keep.any() else "low_information")
        idx = np.flatnonzero(keep)
        hs.append(seg[idx])
        its.append(np.full(len(idx), i, dtype=np.int32))
        ps.append(idx.astype(np.int32))
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    return ItemNgrams(cat(hs, np.uint64), cat(its, np.int32), cat(ps, np.int32), status, windows, n)


def scan_documents(keys: np.ndarray, doc_ids: np.ndarray, texts: list[str], n: int = N_GRAM
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of training documents whose n-gram hash is one of `keys` (sorted, unique):
    (doc_id, hash, word position in the document). A document longer than PIECE_CHARS is
    scanned piece by piece (`_scan_long`): the shingles of a 100 MB text took ~2 GB."""
    from dedup.pipeline import PIECE_CHARS

    long = [i for i, t in enumerate(texts) if len(t) > PIECE_CHARS]
    short = [i for i, t in enumerate(texts) if len(t) <= PIECE_CHARS] if long else None
    doc_ids = np.asarray(doc_ids, dtype=np.int64)
    parts = [_scan(keys, doc_ids if short is None else doc_ids[short],
                   texts if short is None else [texts[i] for i in short], n)]
    parts += [_scan_long(keys, int(doc_ids[i]), texts[i], n) for i in long]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _scan(keys: np.ndarray, doc_ids: np.ndarray, texts: list[str], n: int) -> tuple[np.ndarray, ...]:
    h, off = shingle_batch([join_words(t) for t in texts], DedupConfig(ngram=n), spread=False)
    hit = np.flatnonzero(np.isin(h, keys)) if len(keys) else np.zeros(0, dtype=np.int64)
    doc = np.searchsorted(off, hit, side="right") - 1
    return doc_ids[doc], h[hit], (hit - off[doc]).astype(np.int32)


def _scan_long(keys: np.ndarray, doc_id: int, text: str, n: int) -> tuple[np.ndarray, ...]:
    """`_scan` of one long text, piece by piece (dedup.pipeline.piece_bounds: cut at whitespace,
    overlapping). A piece's windows that lie wholly in its overlap with the previous piece were
    found there and are skipped; positions count the units of the pieces before it, less the
    overlap's, so they are the whole document's word positions."""
    from dedup.pipeline import piece_bounds

    bounds = _clean_bounds(text, piece_bounds(text))
    if bounds is None:  # a joined word longer than the search window: join the whole text once
        text = join_words(text)
        bounds = piece_bounds(text)
    cfg = DedupConfig(ngram=n)
    ds, hs, ps = [], [], []
    offset, prev = 0, None  # (start, end, units) of the previous piece
    for a, b in bounds:
        h, _ = shingle_batch([join_words(text[a:b])], cfg, spread=False)
        skip = 0
        if prev is not None:
            shared = len(_folded_words(join_words(text[a:prev[1]]), cfg))
            offset += prev[2] - shared
            skip = max(0, shared - n + 1)
        hit = np.flatnonzero(np.isin(h[skip:], keys)) + skip if len(keys) else np.zeros(0, dtype=np.int64)
        ds.append(np.full(len(hit), doc_id, dtype=np.int64))
        hs.append(h[hit])
        ps.append((hit + offset).astype(np.int32))
        prev = (a, b, len(h) + n - 1 if len(h) else len(_folded_words(join_words(text[a:b]), cfg)))
    return np.concatenate(ds), np.concatenate(hs), np.concatenate(ps)


# A word the joins make of parts with whitespace between them ("contami-\nnation", "well-\nknown-
# ness"): a piece cut at that whitespace would count other units than the whole text does.
_CHAIN = re.compile(r"\w+(?:(?:[-\u2010\u2011]\s*|['\u2019\u00ad])\w+)+")
_NEAR = 1_024  # characters searched on each side of a cut


def _clean_cut(text: str, pos: int) -> int | None:
    """The cut `pos`, or an earlier one, that splits no word the joins make (`_SPACED` runs and
    `_CHAIN`s); None when such a word runs past the search window."""
    for _ in range(16):
        lo = max(0, pos - _NEAR)
        window = text[lo:pos + _NEAR]
        inside = [lo + m.start() for pat in (_SPACED, _CHAIN) for m in pat.finditer(window)
                  if lo + m.start() < pos < lo + m.end()]
        if not inside:
            return pos
        if min(inside) <= lo and lo > 0:
            return None
        pos = min(inside)
    return None


def _clean_bounds(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Piece bounds moved off the words the joins make, so each piece's units are the whole
    text's; None when a cut cannot be moved within the search window."""
    out = []
    for a, b in bounds:
        a2 = _clean_cut(text, a) if a else 0
        b2 = _clean_cut(text, b) if b < len(text) else b
        if a2 is None or b2 is None or b2 <= a2:
            return None
        out.append((a2, b2))
    return out


def join_hits(index: ItemNgrams, doc_id: np.ndarray, h: np.ndarray, doc_pos: np.ndarray) -> pd.DataFrame:
    """Document windows joined to the item windows with the same hash: item, doc_id, item_pos,
    doc_pos (one row per pair)."""
    left = pd.DataFrame({"h": index.h, "item": index.item, "item_pos": index.pos})
    right = pd.DataFrame({"h": h, "doc_id": doc_id, "doc_pos": doc_pos})
    return left.merge(right, on="h")[["item", "doc_id", "item_pos", "doc_pos"]]


def text_units(text: str, n: int = N_GRAM) -> list[str]:
    """The folded units (words; characters of scripts without spaces) whose windows the n-grams
    hash, after the word joins: what span positions index."""
    return _folded_words(join_words(text), DedupConfig(ngram=n))


def item_results(items: list[str], status: list[str], pairs: pd.DataFrame, n: int = N_GRAM,
                 max_docs: int = 5) -> list[dict]:
    """Per item: status (contaminated, clean, too_short, low_information), the matching training
    doc ids (most shared n-grams first, up to max_docs), matched word spans of the item and the
    share of its words they cover."""
    by_item = {i: g for i, g in pairs.groupby("item")} if len(pairs) else {}
    out = []
    for i, text in enumerate(items):
        w = text_units(text, n)
        g = by_item.get(i)
        if g is None:
            out.append({"status": status[i] if status[i] != "checkable" else "clean", "matched_docs": [],
                        "matched_ngrams": 0, "coverage": 0.0, "spans": []})
            continue
        positions = sorted(set(g["item_pos"].tolist()))
        spans = _merge([(p, p + n) for p in positions])
        per_doc = g.groupby("doc_id")["item_pos"].nunique().reset_index()
        per_doc = per_doc.sort_values(["item_pos", "doc_id"], ascending=[False, True])
        out.append({"status": "contaminated", "matched_docs": per_doc["doc_id"].astype(int).tolist()[:max_docs],
                    "matched_ngrams": len(positions),
                    "coverage": round(sum(b - a for a, b in spans) / len(w), 4) if w else 0.0,
                    "spans": [{"words": [a, b], "text": " ".join(w[a:b])} for a, b in spans]})
    return out


def ngram_overlap(items: list[str], batches: Iterable[tuple[np.ndarray, list[str]]], n: int = N_GRAM,
                  max_docs: int = 5, low_information_rule: bool = True, per_script: bool = True) -> list[dict]:
    """Per item: contaminated?, matching training doc ids (up to max_docs), matched word spans.

    Items with fewer than n words (their script's RUN_BY_SCRIPT units, with `per_script`) cannot
    be checked this way and say so ("too_short"); items none of whose n-grams is evidence say
    "low_information"."""
    need = [required_run(t, n) if per_script else n for t in items]
    index = item_ngrams(items, n, low_information_rule, need)
    keys = np.unique(index.h)
    found = []
    for doc_ids, texts in batches:
        if len(keys) == 0:
            break
        d, h, p = scan_documents(keys, doc_ids, texts, n)
        if len(d):
            found.append(join_hits(index, d, h, p))
    pairs = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["item", "doc_id", "item_pos",
                                                                                   "doc_pos"])
    if len(pairs):
        pairs = keep_runs(pairs, np.asarray(need)[pairs["item"].to_numpy(np.int64)], n)
    return item_results(items, index.status, pairs, n, max_docs)


def doc_spans(doc_pos: list[int], n: int = N_GRAM) -> list[tuple[int, int]]:
    """Merged word spans [a, b) of a training document covered by matched windows."""
    return _merge([(p, p + n) for p in doc_pos])


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]

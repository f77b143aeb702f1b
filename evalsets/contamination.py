"""Decontamination: n-gram overlap (13-grams after normalisation, as GPT-3 did: Brown et al.
2020, app. C) and near-duplicate matches of eval items against a training corpus.

Normalisation (both sides): words joined across a hyphenated line break ("contami-\nnation"), an
inner hyphen or apostrophe ("well-known", "don't", "don’t") or a soft hyphen are one word; then
the dedup folding (NFKC, casefold, punctuation and whitespace to spaces). So a copy is found
whatever its casing, punctuation, spacing or line breaks, inside a longer document or in part
(any 13 words in a row).

Pure: training text arrives as an iterator of (doc_ids, texts) batches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from dedup.config import DedupConfig
from dedup.shingle import shingle_batch
from dedup.shingle import words as _folded_words

# A hyphen (with any line break after it), an apostrophe or a soft hyphen before a word character;
# removed when a word character (\w: alphanumeric or "_") comes before it too. The look-behind is
# checked in Python: a pattern that starts with one makes `re` try every position (2.4x slower).
_JOINER = re.compile(r"(?:[-\u2010\u2011]\s*|['\u2019\u00ad])(?=\w)")
_JOIN_CHARS = re.compile(r"[-\u2010\u2011'\u2019\u00ad]")


def join_words(text: str) -> str:
    """Remove word-inner hyphens (and the line break after one), apostrophes and soft hyphens."""
    if not _JOIN_CHARS.search(text):
        return text

    def join(m: re.Match) -> str:
        i = m.start()
        before = text[i - 1] if i else ""
        return "" if before.isalnum() or before == "_" else m.group()

    return _JOINER.sub(join, text)


def ngram_overlap(items: list[str], batches: Iterable[tuple[np.ndarray, list[str]]], n: int = 13,
                  max_docs: int = 5) -> list[dict]:
    """Per item: contaminated?, matching training doc ids (up to max_docs), matched word spans.

    Items with fewer than n words cannot be checked this way and say so ("too_short")."""
    cfg = DedupConfig(ngram=n)
    items = [join_words(t) for t in items]
    ih, ioff = shingle_batch(items, cfg)
    where: dict[int, list[tuple[int, int]]] = defaultdict(list)  # hash -> [(item, word position)]
    too_short = np.zeros(len(items), dtype=bool)
    for i in range(len(items)):
        seg = ih[ioff[i]:ioff[i + 1]]
        if len(_folded_words(items[i], cfg)) < n:
            too_short[i] = True
            continue
        for pos, h in enumerate(seg.tolist()):
            where[h].append((i, pos))
    keys = np.array(sorted(where), dtype=np.uint64)
    docs: list[dict[int, set[int]]] = [defaultdict(set) for _ in items]  # item -> doc -> positions
    for doc_ids, texts in batches:
        if len(keys) == 0:
            break
        h, off = shingle_batch([join_words(t) for t in texts], cfg)
        hit = np.flatnonzero(np.isin(h, keys))
        if len(hit) == 0:
            continue
        doc_idx = np.searchsorted(off, hit, side="right") - 1
        for hv, d in zip(h[hit].tolist(), doc_idx.tolist()):
            for i, pos in where[hv]:
                docs[i][int(doc_ids[d])].add(pos)
    out = []
    for i, text in enumerate(items):
        w = _folded_words(text, cfg)
        positions = sorted(set().union(*docs[i].values())) if docs[i] else []
        spans = _merge([(p, p + n) for p in positions])
        top = sorted(docs[i].items(), key=lambda kv: (-len(kv[1]), kv[0]))[:max_docs]
        out.append({
            "status": "too_short" if too_short[i] else ("contaminated" if docs[i] else "clean"),
            "matched_docs": [d for d, _ in top], "matched_ngrams": len(positions),
            "coverage": round(sum(b - a for a, b in spans) / len(w), 4) if w else 0.0,
            "spans": [{"words": [a, b], "text": " ".join(w[a:b])} for a, b in spans],
        })
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]

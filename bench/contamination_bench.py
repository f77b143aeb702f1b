"""Contamination on real text, planted copies of each kind and clean near-misses (issue 15, item 4).

Eval items: networkx, sympy and dask docstrings (40-120 words), chosen so that no two share a 13-gram with each
other or with the training corpus. Training corpus: the docstrings of six other libraries
(bench/realtext.py), each planted copy inserted into the middle of one of them. Kinds:

  verbatim      the item as its own training document
  embedded      the item inside a longer training document
  partial       13-20 words of the item, inside a longer document
  case          upper-cased or word-by-word random case
  punctuation   apostrophes and hyphens dropped, commas to semicolons, full stops dropped, curly quotes
  whitespace    runs of spaces, tabs, non-breaking spaces and newlines between words
  line-split    hard-wrapped at 50 columns, some words broken with a hyphen at the line end
  partial+reformat  13-16 words of the item, then one of the four reformattings above, words
                broken at every line end: one missed join loses the only 13-gram

Clean: items never planted, and near-misses (a copy with every 10th word replaced: no 13 words
in a row survive). Side by side in the same run: exact substring search, and GPT-3-style
13-grams on lower-cased whitespace tokens without our normalisation.

    python bench/contamination_bench.py [--per-kind 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realtext

from evalsets.contamination import ngram_overlap

ITEM_LIBRARIES = (("networkx", "networkx"), ("sympy", "sympy"), ("dask", "dask"))
KINDS = ("verbatim", "embedded", "partial", "case", "punctuation", "whitespace", "line-split", "partial+reformat")
N = 13


def _words(text: str) -> list[str]:
    """Independent reference words (the definition, written apart from Taomi's code): runs of
    letters and digits, casefolded, with inner apostrophes and hyphens joined."""
    t = re.sub(r"(?<=\w)(?:[-\u2010\u2011]\s*|['\u2019\u00ad])(?=\w)", "", text.casefold())
    return re.findall(r"[^\W_]+", t)


def _grams(text: str) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i:i + N]) for i in range(len(w) - N + 1)}


def choose_items(pool: list[str], training: list[str], k: int) -> list[str]:
    seen = set().union(*(_grams(t) for t in training))
    out = []
    for text in pool:
        g = _grams(text)
        if len(g) >= 20 and not g & seen:
            out.append(text)
            seen |= g
            if len(out) == k:
                break
    return out


def _embed(host: str, part: str, rng: random.Random) -> str:
    w = host.split(" ")
    cut = rng.randrange(1, max(len(w), 2))
    return " ".join(w[:cut]) + " " + part + " " + " ".join(w[cut:])


def plant(kind: str, item: str, rng: random.Random, vocab: list[str]) -> str:
    w = item.split()
    if kind == "partial+reformat":
        part = plant("partial", item, rng, vocab)
        while len(_words(part)) > 16:
            part = part.rsplit(None, 1)[0]
        how = rng.choice(["case", "punctuation", "whitespace", "line-split"])
        return plant(how, part, rng, vocab) if how != "line-split" else _wrap(part.split(), 20, 1.0, rng)
    if kind in ("verbatim", "embedded"):
        return item
    if kind == "partial":  # a run of whitespace tokens holding 13-20 words of the definition
        want = rng.randint(N, 20)
        start = rng.randrange(0, len(w) // 2)
        end = start + 1
        while end < len(w) and len(_words(" ".join(w[start:end]))) < want:
            end += 1
        return " ".join(w[start:end])
    if kind == "case":
        return item.upper() if rng.random() < 0.5 else " ".join(
            x.upper() if rng.random() < 0.5 else x.capitalize() for x in w)
    if kind == "punctuation":
        t = re.sub(r"(?<=\w)['’-](?=\w)", "", item).replace(",", ";")
        t = re.sub(r"\.(\s|$)", r"\1", t)  # sentence stops dropped ("sympy.use" stays two words)
        return re.sub(r'"([^"]*)"', "“\\1”", t).replace("(", "[").replace(")", "]")
    if kind == "whitespace":
        return "".join(x + rng.choice(["  ", "\t", "\u00a0", "\n", " \n\n ", "   "]) for x in w)
    if kind == "line-split":
        return _wrap(w, 50, 0.4, rng)
    if kind == "near-miss":  # every 10th word replaced: at most 9 words in a row survive
        return " ".join(rng.choice([v for v in vocab if v.lower() != x]) if i % 10 == 9 else x
                        for i, x in enumerate(_words(item)))
    raise ValueError(kind)


def _wrap(w: list[str], width: int, p_break: float, rng: random.Random) -> str:
    """Hard-wrap at `width` columns; a long word at a line end is broken ("contami-\nnation")."""
    lines, line = [], ""
    for x in w:
        if len(line) + len(x) > width:
            if len(x) > 5 and x[len(x) // 2 - 1].isalpha() and x[len(x) // 2].isalpha() and rng.random() < p_break:
                cut = len(x) // 2
                lines.append(f"{line} {x[:cut]}-".strip())
                line = x[cut:]
                continue
            lines.append(line)
            line = x
        else:
            line = f"{line} {x}".strip()
    return "\n".join([*lines, line])


def whitespace_ngrams(items: list[str], training: list[str]) -> np.ndarray:
    grams = set()
    for t in training:
        w = t.lower().split()
        grams.update(tuple(w[i:i + N]) for i in range(len(w) - N + 1))
    return np.array([any(tuple(w[i:i + N]) in grams for i in range(len(w) - N + 1))
                     for w in (x.lower().split() for x in items)])


GROUPS = (*KINDS, "near-miss", "unplanted")


def build(per_kind: int, seed: int, item_libraries=ITEM_LIBRARIES, hosts_per_class: int = 340):
    """(items, their group, training documents with the planted copies)."""
    rng = random.Random(seed)
    hosts = [r["text"] for r in realtext.docstring_corpus(per_class=hosts_per_class)]
    pool = [r["text"] for r in realtext.docstring_corpus(
        per_class=10_000, seed=seed, min_words=40, max_words=120, libraries=item_libraries)]
    rng.shuffle(pool)
    groups = GROUPS
    items = choose_items(pool, hosts, per_kind * len(groups))
    per = len(items) // len(groups)
    kind_of = [g for g in groups for _ in range(per)]
    items = items[:len(kind_of)]
    vocab = sorted({x for t in hosts[:200] for x in t.split() if x.isalpha() and len(x) > 3})
    training = list(hosts)
    free_hosts = rng.sample(range(len(hosts)), len(hosts))  # one copy per host: none cuts another
    for item, kind in zip(items, kind_of):
        if kind == "unplanted":
            continue
        copy = plant(kind, item, rng, vocab)
        if kind == "verbatim":
            training.append(copy)
        else:
            host = free_hosts.pop()
            training[host] = _embed(training[host], copy, rng)
    return items, kind_of, training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-kind", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    items, kind_of, training = build(a.per_kind, a.seed)
    groups = GROUPS
    per = len(items) // len(groups)
    print(f"{len(items)} real eval items ({per} per group), {len(training)} real training documents "
          f"({sum(map(len, training)) / 1e6:.1f} MB)")

    t = time.perf_counter()
    ids = np.arange(len(training))
    found = ngram_overlap(items, [(ids[i:i + 500], training[i:i + 500]) for i in range(0, len(training), 500)])
    taomi_s = time.perf_counter() - t
    taomi = np.array([f["status"] == "contaminated" for f in found])
    blob = "\n".join(training)
    substring = np.array([x in blob for x in items])
    ws = whitespace_ngrams(items, training)
    kinds = np.array(kind_of)
    print(f"{'group':<12} {'n':>4} {'taomi':>7} {'substring':>10} {'ws 13-gram':>11}")
    for g in groups:
        m = kinds == g
        label = "FP rate" if g in ("near-miss", "unplanted") else "recall"
        print(f"{g:<12} {m.sum():>4} {taomi[m].mean():>7.3f} {substring[m].mean():>10.3f} {ws[m].mean():>11.3f}"
              f"   {label}")
    pos = ~np.isin(kinds, ["near-miss", "unplanted"])
    print(f"{'all planted':<12} {pos.sum():>4} {taomi[pos].mean():>7.3f} {substring[pos].mean():>10.3f} "
          f"{ws[pos].mean():>11.3f}   recall")
    print(f"{'all clean':<12} {(~pos).sum():>4} {taomi[~pos].mean():>7.3f} {substring[~pos].mean():>10.3f} "
          f"{ws[~pos].mean():>11.3f}   FP rate")
    ref_grams = set().union(*(_grams(t) for t in training))
    reference = np.array([bool(_grams(x) & ref_grams) for x in items])
    print(f"agrees with an independent reference of the definition on {(reference == taomi).sum()}/{len(items)} items")
    worst = min(taomi[kinds == g].mean() for g in KINDS)
    print(f"taomi: lowest per-kind recall {worst:.3f} (target >= 0.95), FP rate {taomi[~pos].mean():.3f} "
          f"(target <= 0.01), {taomi_s:.2f} s")
    missed = [(k, x, r) for k, x, hit, r in zip(kind_of, items, taomi, reference) if k in KINDS and not hit]
    for k, x, r in missed[:5]:
        why = "the reference finds a 13-gram" if r else "the edit left no 13 words in a row: the reference misses it too"
        print(f"  missed {k} ({why}): {x[:80]!r}")
    for k, f, it in zip(kind_of, found, items):
        if k in ("near-miss", "unplanted") and f["status"] == "contaminated":
            print(f"  flagged {k}: {f['spans'][0]['text'][:100]!r} (training docs {f['matched_docs']})")


if __name__ == "__main__":
    main()

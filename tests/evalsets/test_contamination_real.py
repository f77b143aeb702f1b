"""Contamination on real text (issue 15, item 4): copies planted verbatim, inside longer documents,
in part, re-cased, re-punctuated, re-spaced and hard-wrapped with broken words are all found;
near-misses (every 10th word changed) and unplanted items are not; the naive substring search
beside it misses most reformatted copies."""

from __future__ import annotations

import numpy as np
import pytest

from evalsets.contamination import join_words, ngram_overlap

pytest.importorskip("statsmodels")  # one of the host libraries (test extra)


def test_every_kind_found_near_misses_not_on_real_text(bench_module):
    cb = bench_module("contamination_bench")
    items, kind_of, training = cb.build(per_kind=12, seed=5, item_libraries=(("networkx", "networkx"),),
                                        hosts_per_class=120)
    ids = np.arange(len(training))
    found = ngram_overlap(items, [(ids, training)])
    hit = np.array([f["status"] == "contaminated" for f in found])
    kinds = np.array(kind_of)
    for k in cb.KINDS:
        assert hit[kinds == k].all(), (k, [x[:80] for x, h in zip(np.array(items)[kinds == k], hit[kinds == k])
                                           if not h])
    assert not hit[np.isin(kinds, ["near-miss", "unplanted"])].any()
    blob = "\n".join(training)
    substring = np.array([x in blob for x in items])
    assert substring[np.isin(kinds, ["case", "punctuation", "whitespace", "line-split"])].mean() < 0.2
    # Spans name the copied words, and a whole-item copy covers the item.
    verbatim = [f for f, k in zip(found, kind_of) if k == "verbatim"]
    assert all(f["coverage"] == 1.0 and len(f["spans"]) == 1 for f in verbatim)
    partial = [f for f, k in zip(found, kind_of) if k == "partial"]
    assert all(0 < f["coverage"] < 1 for f in partial)


def test_word_joins():
    assert join_words("contami-\n  nation, don't, don’t, well-known") == "contamination, dont, dont, wellknown"
    assert join_words("a - b, x -1") == "a - b, x -1"  # spaced dashes and signs stay apart
    item = "the quick brown fox jumps over the lazy dog while the cat sleeps soundly today"
    train = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG WHILE THE CAT SLEEPS SOUND-\nLY TODAY"
    out = ngram_overlap([item], [(np.array([7]), [train])])[0]
    assert out["status"] == "contaminated" and out["matched_docs"] == [7]

"""Near-dedup at any document length (issue 28, item 1): a document longer than PIECE_CHARS is
signed piece by piece (cut at whitespace, overlapping) and its signature is the element-wise
minimum, equal bit for bit to the whole document's; signing batches are bounded in characters."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

import dedup.pipeline as pl
from dedup.config import DedupConfig
from flows.dedup_task import _reads


def texts(seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    return {"english": " ".join(rng.choice(words) for _ in range(40_000)),
            "chinese": "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(90_000)),
            "mixed": "\n".join(" ".join(rng.choice(words) for _ in range(30)) + "。" +
                               "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(60)) for _ in range(800))}


@pytest.mark.parametrize("char_ngrams", [False, True])
@pytest.mark.parametrize("kind", ["english", "chinese", "mixed"])
def test_a_long_document_signed_in_pieces_equals_the_whole(monkeypatch, kind, char_ngrams):
    text = texts()[kind]
    cfg = DedupConfig(char_ngrams=char_ngrams)
    n_whole, whole = pl.signatures_for([text], cfg)
    monkeypatch.setattr(pl, "PIECE_CHARS", 20_000)
    assert len(pl.pieces(text)) > 5 and all(len(p) <= 20_000 for p in pl.pieces(text))
    n_list, by_list = pl.signatures_for(["a short one", text], cfg)
    n_arrow, by_arrow = pl.signatures_arrow(pa.array(["a short one", text]), cfg)
    assert (by_list[1] == whole[0]).all() and (by_arrow[1] == whole[0]).all()
    assert (by_list[0] == pl.signatures_for(["a short one"], cfg)[1][0]).all()
    # the shingle count is the pieces' sum: the overlaps count twice, nothing is missed
    assert n_whole[0] <= n_list[1] == n_arrow[1] <= n_whole[0] * 1.5


def test_pieces_overlap_and_cover_the_text(monkeypatch):
    text = texts(1)["english"]
    parts = pl.pieces(text, size=10_000, overlap=500)
    assert "".join(parts).replace(" ", "") != text.replace(" ", "")  # they overlap
    pos = 0
    for p in parts:  # each piece starts inside the previous one and they reach the end
        at = text.find(p[:200], max(0, pos - 20_000))
        assert at <= pos and at + len(p) > pos
        pos = at + len(p)
    assert pos == len(text)


def test_signing_batches_are_bounded_in_characters():
    ids = np.arange(1, 101)
    chars = np.full(100, 1_000)
    chars[50] = 10_000_000  # one long document: a batch of its own
    reads = _reads(ids, ids, 40, chars, 15_000)
    spans = [(a, b) for a, b, _ in reads]
    assert spans[0] == (1, 15) and (51, 51) in spans
    assert sum(b - a + 1 for a, b in spans) == 100
    assert all(chars[a - 1:b].sum() <= 15_000 or a == b for a, b in spans)


@pytest.mark.parametrize("char_ngrams", [False, True])
def test_verification_in_groups_equals_one_pass(monkeypatch, char_ngrams):
    rng = random.Random(9)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 7))) for _ in range(400)]
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(30, 300))) for _ in range(40)]
    docs = base + [b.replace(b.split()[3], "changed", 1) for b in base]  # near copies
    ids = np.arange(100, 100 + len(docs), dtype=np.int64)
    text_of = dict(zip(ids.tolist(), docs))
    cand = np.unique(np.array([(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if rng.random() < 0.15]
                              + [(ids[i], ids[i + 40]) for i in range(40)], dtype=np.int64), axis=0)  # unique pairs
    cand = cand[rng.sample(range(len(cand)), len(cand))]  # an order that is not sorted
    fetch = lambda d: [text_of[int(x)] for x in d]
    cfg = DedupConfig(char_ngrams=char_ngrams, threshold=0.5)
    one_e, one_s = pl.verify(cand, fetch, cfg)
    monkeypatch.setattr(pl, "VERIFY_SHINGLES", 600 if char_ngrams else 150)
    sizes = lambda d: np.array([len(text_of[int(x)]) for x in d])
    est = sizes(np.unique(cand)) // (1 if char_ngrams else 4) + 1
    assert est.sum() > 5 * pl.VERIFY_SHINGLES  # many groups
    got_e, got_s = pl.verify(cand, fetch, cfg, chars=sizes)
    assert len(one_e) >= 40 and (got_e == one_e).all() and (got_s == one_s).all()

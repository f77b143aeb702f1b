"""The MinHash kernel is datasketch bit for bit; shingling, bands and clustering properties."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from dedup.bands import candidate_pairs, choose_bands, collision_probability
from dedup.cluster import decide
from dedup.config import DedupConfig
from dedup.exact import exact_duplicates
from dedup.minhash import sign, to_datasketch
from dedup.shingle import shingle_batch, shingle_sets
from dedup.verify import jaccard


def _texts(sample, n=400):
    out = []
    for line in Path(sample["corpus"]).read_bytes().split(b"\n"):
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("text"), str):
            out.append(rec["text"])
    return out[:n] + ["", "one", "数据 模型 训练 语言 東京 研究", "naïve café ÉCOLE straße", "a b c d"]


@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7), (256, 42)])
def test_signatures_bit_identical_to_datasketch(sample, num_perm, seed):
    texts = _texts(sample)
    cfg = DedupConfig(num_perm=num_perm, seed=seed)
    hashes, offsets = shingle_batch(texts, cfg)
    sigs = sign(hashes, offsets, num_perm, seed)
    for i in range(len(texts)):
        m = MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda v: v)
        m.update_batch([int(x) for x in hashes[offsets[i]:offsets[i + 1]] & np.uint64(0xFFFFFFFF)])
        assert np.array_equal(m.hashvalues, sigs[i]), f"document {i} differs"


def test_datasketch_tools_work_on_our_signatures(sample):
    texts = _texts(sample, 50)
    cfg = DedupConfig()
    h, o = shingle_batch(texts, cfg)
    sigs = sign(h, o)
    lean = [to_datasketch(s) for s in sigs]
    assert isinstance(lean[0], LeanMinHash)
    assert lean[0].jaccard(lean[0]) == 1.0
    restored = pickle.loads(pickle.dumps(lean[3]))
    assert restored == lean[3]
    buf = bytearray(lean[3].bytesize())
    lean[3].serialize(buf)
    assert np.array_equal(LeanMinHash.deserialize(buf).hashvalues, sigs[3])
    lsh = MinHashLSH(threshold=0.8, num_perm=128, params=choose_bands(0.8, 128))
    for i, m in enumerate(lean):
        lsh.insert(i, m)
    assert 7 in lsh.query(lean[7])


_UNIT_NAMES = ("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO",
               "KHMER", "MYANMAR")


def _unit(c: str) -> bool:
    """A character of a script written without spaces, by its Unicode name (independent of the
    code-point ranges dedup.shingle uses)."""
    import unicodedata

    return not c.isascii() and unicodedata.name(c, "").startswith(_UNIT_NAMES)


def _ref_shingles(text: str, n: int = 5) -> set[str]:
    """Independent reference: lower case, ASCII punctuation to space, each character of a script
    without spaces a word of its own, word n-grams as strings."""
    text = "".join(f" {c} " if _unit(c) else c for c in text)
    words = re.sub(r"[!-/:-@\[-`{-~]", " ", text.lower()).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_shingle_jaccard_matches_reference(sample):
    texts = _texts(sample, 120)
    sets = shingle_sets(texts, DedupConfig())
    for i in range(0, 100, 3):
        j = i + 1
        ra, rb = _ref_shingles(texts[i]), _ref_shingles(texts[j])
        ref = len(ra & rb) / len(ra | rb)
        assert jaccard(sets[i], sets[j]) == pytest.approx(ref)
        assert len(sets[i]) == len(ra)


def test_short_and_empty_texts():
    cfg = DedupConfig(ngram=5)
    _h, o = shingle_batch(["", "   ", "one", "two words here", "a b c d e f"], cfg)
    assert list(np.diff(o)) == [0, 0, 1, 1, 2]
    sets = shingle_sets(["two words here", "Two, words  here!"], cfg)
    assert jaccard(*sets) == 1.0
    assert jaccard(np.array([], np.uint64), np.array([], np.uint64)) == 0.0


def test_char_ngrams_for_cjk():
    cfg = DedupConfig(char_ngrams=True, ngram=3)
    a, b, c = shingle_sets(["机器学习是人工智能的一个分支", "机器学习是人工智能的一个分支。", "今天天气很好我们去公园"], cfg)
    assert jaccard(a, b) == 1.0 and jaccard(a, c) == 0.0
    texts = ["机器学习是人工智能的一个分支", "机器学习是人工智能的一个分支呀", "机 器 学 习 是 人 工 智 能 的 一 个 分 支"]
    units = shingle_sets(texts, DedupConfig())  # the default: each Han character is a unit
    assert jaccard(units[0], units[1]) == pytest.approx(10 / 11) and jaccard(units[0], units[2]) == 1.0
    words = shingle_sets(texts, DedupConfig(script_units=False))  # whitespace words: the whole clause is one
    assert jaccard(words[0], words[1]) == 0.0 and jaccard(words[0], words[2]) == 0.0


def test_nfkc_and_casefold_normalisation():
    a, b = shingle_sets(["Ｆｕｌｌｗｉｄｔｈ ＴＥＸＴ is here now ok", "fullwidth text is here now ok"], DedupConfig())
    assert jaccard(a, b) == 1.0


def test_band_choice_is_recall_heavy():
    b, r = choose_bands(0.8, 128)
    assert b * r <= 128
    assert collision_probability(0.8, b, r) >= 0.995
    assert collision_probability(0.8, 9, 13) < 0.5  # datasketch's default choice


def test_candidates_exclude_empty_docs_and_find_identical():
    sigs = np.full((4, 128), 0xFFFFFFFF, np.uint32)
    rng = np.random.default_rng(0)
    sigs[2] = sigs[3] = rng.integers(0, 2**32, 128, dtype=np.uint32)
    pairs = candidate_pairs(sigs, 16, 8, mask=np.array([False, False, True, True]))
    assert pairs.tolist() == [[2, 3]]


def test_chain_does_not_remove_unmatched_documents():
    # A~B (0.9), B~C (0.85), A !~ C: A kept, B dropped matching A, C kept (no kept match)
    edges = np.array([[1, 2], [2, 3]])
    d = decide(edges, np.array([0.9, 0.85]), {1: 1, 2: 2, 3: 3})
    got = dict(zip(d.doc_id.tolist(), zip(d.keep.tolist(), d.matched_doc.tolist())))
    assert got == {1: (True, -1), 2: (False, 1), 3: (True, -1)}


def test_exact_groups_keep_one_by_rank():
    ids = np.array([10, 11, 12, 13])
    hashes = np.array([5, 5, 7, 5], dtype=np.uint64)
    dropped, kept = exact_duplicates(ids, hashes, np.array([3.0, 1.0, 0.0, 2.0]))
    assert sorted(zip(dropped.tolist(), kept.tolist())) == [(10, 11), (13, 11)]


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"threshold": 1.2}, {"num_perm": 8}, {"ngram": 0},
                                    {"policy": "random"}, {"bands": 20, "rows": 10}])
def test_bad_config_is_a_clear_error(kwargs):
    with pytest.raises(ValueError):
        DedupConfig(**kwargs)


@pytest.mark.parametrize("cfg", [DedupConfig(ngram=13), DedupConfig(ngram=5), DedupConfig(char_ngrams=True, ngram=5)])
def test_reordered_windows_of_a_small_vocabulary_never_collide(cfg):
    # Digit runs, tables, DNA-like strings: few distinct tokens, many orders. Distinct windows
    # must hash apart (a position-weighted sum of word hashes made reorderings collide).
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 3, 6000).astype(str).tolist()
    text = ("".join(seq) if cfg.char_ngrams else " ".join(seq))
    h, _ = shingle_batch([text], cfg)
    toks = list(text) if cfg.char_ngrams else seq
    windows = {tuple(toks[i:i + cfg.ngram]) for i in range(len(toks) - cfg.ngram + 1)}
    assert len(np.unique(h)) == len(windows)

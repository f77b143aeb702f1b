"""The compiled kernel (numba) against the numpy reference and datasketch, on real text.

Real text: Python's own standard-library sources (code, prose, punctuation, long tokens) and
dateparser's translation tables (207 languages, many scripts: NFKC, casefold and Unicode
punctuation all matter), cut into documents of 1 to ~400 words, plus hand-made edge cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from dedup import kernel
from dedup.config import DedupConfig
from dedup.minhash import sign
from dedup.pipeline import shingle_sets_flat, signatures_arrow, signatures_for
from dedup.shingle import shingle_batch, shingle_sets
from dedup.verify import jaccard

pytestmark = pytest.mark.skipif(not kernel.AVAILABLE, reason="numba not installed (the numpy path runs)")

EDGE = ["", " ", "\t\n", "one", "two words", "a b c d", "a b c d e", "\x00null\x00bytes here and there ok",
        "exactlyeightchars " * 7, "sixteen-byte-words sixteen-byte-word " * 9, "x" * 70 + " tail words are here",
        "UPPER lower MiXeD, punct!!! (brackets) [and] {braces} <tags> 'quotes' \"dq\"",
        "naïve café ÉCOLE straße İstanbul ΣΊΣΥΦΟΣ ﬁnance Ｆｕｌｌｗｉｄｔｈ ① ㎏ — «guillemets» ¿qué? ¡sí!",
        "机器学习是人工智能的一个分支 数据 模型 训练", "emoji 🙂 text 🙂 with 👍🏽 modifiers and zero\u200bwidth",
        "tabs\tand\x0bvertical\x0cfeeds\rcarriage\nnewlines",
        # mostly a script without spaces: every character a unit (dedup.shingle.spread_units), at
        # and around the half-way line, which punctuation folding and NFKC move
        "使用 ls -l 命令 列出 FILE.txt 文件", "ab数据", "abc数据", "数据!!!", "数据 ... 处理 ???", "𠀀𠀁 x1 ５６",
        "ﾃｽﾄ ABC テスト", "数据\u3000处理 ＡＢＣＤＥ", "한국어 ABCDEF 123"]


def _chunks(text: str, rng: np.random.Generator) -> list[str]:
    words = text.split(" ")
    out, i = [], 0
    while i < len(words):
        n = int(rng.integers(1, 400))
        out.append(" ".join(words[i:i + n]))
        i += n
    return out


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    rng = np.random.default_rng(0)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[:60]
    try:
        import dateparser

        files += sorted((Path(dateparser.__file__).parent / "data" / "date_translation_data").glob("*.py"))[::3]
    except ImportError:  # pragma: no cover - dateparser comes with prefect
        pass
    texts = []
    for f in files:
        texts += _chunks(f.read_text(encoding="utf-8", errors="replace"), rng)
    assert len(texts) > 2000 and sum(not t.isascii() for t in texts) > 200
    return texts + EDGE


CONFIGS = [DedupConfig(), DedupConfig(ngram=1, num_perm=64, seed=7), DedupConfig(ngram=3, num_perm=256, seed=42),
           DedupConfig(ngram=13), DedupConfig(ngram=32, num_perm=16),
           DedupConfig(casefold=False, fold_punctuation=False, nfkc=False)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"n{c.ngram}-p{c.num_perm}-{int(c.casefold)}")
def test_kernel_bit_identical_to_numpy_reference(real_texts, cfg):
    h_ref, o_ref = shingle_batch(real_texts, cfg)
    h, o = kernel.shingle_texts(real_texts, cfg)
    assert np.array_equal(o, o_ref) and np.array_equal(h, h_ref)
    n_sh, sigs = kernel.sign_texts(real_texts, cfg)
    assert np.array_equal(n_sh, np.diff(o_ref))
    ref = np.concatenate([sign(*shingle_batch(real_texts[lo:lo + 500], cfg), cfg.num_perm, cfg.seed)
                          for lo in range(0, len(real_texts), 500)])
    assert np.array_equal(sigs, ref)


def test_kernel_equals_datasketch(real_texts):
    cfg = DedupConfig()
    texts = real_texts[::25]
    h, o = kernel.shingle_texts(texts, cfg)
    _, sigs = kernel.sign_texts(texts, cfg)
    for i in range(len(texts)):
        m = MinHash(num_perm=128, seed=1, hashfunc=lambda v: v)
        m.update_batch([int(x) for x in h[o[i]:o[i + 1]] & np.uint64(0xFFFFFFFF)])
        assert np.array_equal(m.hashvalues, sigs[i]), f"document {i} differs"


def test_arrow_column_signed_in_place_equals_texts(real_texts):
    cfg = DedupConfig()
    texts = real_texts[:1500] + EDGE
    n_ref, ref = kernel.sign_texts(texts, cfg)
    for col in (pa.array(texts), pa.array(texts, type=pa.large_string()), pa.array(texts).slice(0),
                pa.chunked_array([pa.array(texts[:700]), pa.array(texts[700:])])):
        n_sh, sigs = kernel.sign_arrow(col, cfg)
        assert np.array_equal(sigs, ref) and np.array_equal(n_sh, n_ref)
    # a slice that starts inside the buffer, and nulls (signed as empty documents)
    part = pa.array(texts).slice(100, 300)
    assert np.array_equal(kernel.sign_arrow(part, cfg)[1], ref[100:400])
    with_null = pa.array(["alpha beta gamma delta epsilon", None, "naïve café text here ok"])
    n_sh, sigs = kernel.sign_arrow(with_null, cfg)
    _n2, s2 = kernel.sign_texts(["alpha beta gamma delta epsilon", "", "naïve café text here ok"], cfg)
    assert np.array_equal(sigs, s2) and n_sh[1] == 0 and (sigs[1] == 0xFFFFFFFF).all()
    h, o = kernel.shingle_texts(pa.array(texts), cfg)
    h2, o2 = shingle_batch(texts, cfg)
    assert np.array_equal(h, h2) and np.array_equal(o, o2)


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_workers_give_the_same_rows(real_texts, workers):
    col = pa.array(real_texts)
    one = signatures_arrow(col, DedupConfig(), 1)
    many = signatures_arrow(col, DedupConfig(), workers)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_char_ngrams_fall_back_to_numpy():
    cfg = DedupConfig(char_ngrams=True, ngram=3)
    texts = ["机器学习是人工智能的一个分支", "abcdefgh"]
    h, o = shingle_batch(texts, cfg)
    n_sh, sigs = signatures_for(texts, cfg)
    assert np.array_equal(sigs, sign(h, o, 128, 1)) and np.array_equal(n_sh, np.diff(o))


def test_flat_sets_and_jaccard_match_reference(real_texts):
    cfg = DedupConfig()
    texts = real_texts[:400]
    flat, offs = shingle_sets_flat(texts, cfg)
    sets = shingle_sets(texts, cfg)
    for i in range(len(texts)):
        assert np.array_equal(flat[offs[i]:offs[i + 1]], sets[i])
    rng = np.random.default_rng(1)
    ra, rb = rng.integers(0, len(texts), 500), rng.integers(0, len(texts), 500)
    got = kernel.jaccard_rows(flat, offs, ra, rb)
    want = [jaccard(sets[a], sets[b]) for a, b in zip(ra, rb)]
    assert np.allclose(got, want, rtol=0, atol=0)
    # raw shingle lists (unsorted, repeats, empty documents), one hash set per pair: the same floats
    raw, raw_offs = kernel.shingle_texts(texts + ["a b c d e f a b c d e f a b c d e f", "", "x"], cfg)
    ra = np.concatenate((ra, [len(texts), len(texts), len(texts) + 1, len(texts) + 2]))
    rb = np.concatenate((rb, [len(texts), 0, 3, len(texts) + 2]))
    sets = sets + shingle_sets(["a b c d e f a b c d e f a b c d e f", "", "x"], cfg)
    by_pair = kernel.jaccard_pairs(raw, raw_offs, ra, rb)
    assert np.array_equal(by_pair, [jaccard(sets[a], sets[b]) for a, b in zip(ra, rb)])
    assert by_pair[-4] == 1.0 and by_pair[-2] == 0.0 and by_pair[-1] == 1.0


def test_numpy_fallback_gives_the_same_signatures(real_texts, tmp_path):
    """TAOMI_KERNEL=numpy (what runs without numba) in a fresh process: the same bits."""
    texts = real_texts[:300] + EDGE
    np.save(tmp_path / "texts.npy", np.array(texts, dtype=object), allow_pickle=True)
    code = ("import sys, numpy as np; from dedup import kernel; from dedup.config import DedupConfig;"
            "from dedup.pipeline import signatures_for; assert not kernel.AVAILABLE;"
            f"t = list(np.load({str(tmp_path / 'texts.npy')!r}, allow_pickle=True));"
            f"n, s = signatures_for(t, DedupConfig()); np.save({str(tmp_path / 'sigs.npy')!r}, s)")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "TAOMI_KERNEL": "numpy"})
    assert np.array_equal(np.load(tmp_path / "sigs.npy"), kernel.sign_texts(texts, DedupConfig())[1])


def test_compiled_code_is_cached_not_rebuilt_per_run():
    """A fresh process loads the machine code from numba's cache: no compile per run."""
    kernel.warm()
    code = ("from dedup import kernel; kernel.warm();"
            "import sys; d = kernel.sign_docs; print(sum(d.stats.cache_hits.values()), "
            "sum(d.stats.cache_misses.values()))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=root, capture_output=True, text=True)
    hits, misses = map(int, out.stdout.split())
    assert hits >= 1 and misses == 0


@pytest.mark.parametrize("num_perm,seed", [(16, 0), (128, 1), (256, 42), (1024, 2**31 - 1)])
def test_permutations_are_datasketchs(num_perm, seed):
    """Drawn without importing datasketch (0.4 s per process), equal to datasketch's own."""
    from dedup.minhash import permutations

    a, b = permutations(num_perm, seed)
    ref = MinHash(num_perm=num_perm, seed=seed).permutations
    assert np.array_equal(a, ref[0]) and np.array_equal(b, ref[1]) and a.dtype == ref[0].dtype == np.uint32


def _fold_cases() -> list[str]:
    """Every code point of planes 0-1 that has a table entry or not, in contexts where NFKC could
    compose or reorder across it, plus hand-picked hard cases."""
    out = ["e\u0301 cafe\u0301 caf\u00e9", "\u1100\u1161\u11a8 \uac00\u11a8 \u1100 \u1161",  # Hangul L+V+T
           "\u0b47\u0b3e \u0bc6\u0bbe \u0cbf\u0cd5",  # Indic vowel signs that compose (ccc 0 seconds)
           "\u212a Kelvin \u00df STRASSE \u1e9e \u0130stanbul \u03a3\u0399\u03a3\u03a5\u03a6\u039f\u03a3 \u03c2",
           "nbsp\u00a0here \ufb01ne \ufdfa \u2460 \u338f \uff21\uff42\uff43 \u3000ideographic",
           "emoji \U0001f642 \U0001f44d\U0001f3fd \U0001d400\U0001d401 math \U00020000 cjk-b \U000e0001 tag",
           "\u0344 \u0f73 \u0f75 \u0958 \u2126 \u00c5\u030a \u1e0b\u0323 \u0071\u0307\u0323",
           "\u00ad soft\u00adhyphen \u200b zero\u200bwidth \u2028 line \u0085 nel"]
    for lo in range(0x80, 0x20000, 0x400):
        out.append(" ".join(f"a{chr(cp)}b e{chr(cp)} {chr(cp)}\u0301" for cp in range(lo, lo + 0x400)
                            if not 0xD800 <= cp < 0xE000))
    return out


@pytest.mark.parametrize("cfg", [DedupConfig(ngram=1), DedupConfig(ngram=2, casefold=False),
                                 DedupConfig(ngram=1, fold_punctuation=False), DedupConfig(ngram=1, nfkc=False)],
                         ids=["default", "no-casefold", "no-punct", "no-nfkc"])
def test_unicode_folding_table_matches_the_reference(cfg):
    texts = _fold_cases()
    h, o = kernel.shingle_texts(texts, cfg)
    h2, o2 = shingle_batch(texts, cfg)
    assert np.array_equal(o, o2) and np.array_equal(h, h2)


def test_most_real_non_ascii_text_is_folded_without_python(real_texts):
    """The fast path is taken: most non-ASCII documents of 207 languages need no Python."""
    from dedup.unifold import table

    cfg = DedupConfig()
    wide = [t for t in real_texts if not t.isascii()]
    parts = [t.encode() for t in wide]
    ends = np.cumsum([len(p) for p in parts])
    starts = ends - np.array([len(p) for p in parts])
    buf = np.frombuffer(b"".join(parts), dtype=np.uint8)
    *_, ok, same = kernel.fold_docs(buf, starts, ends, *table(cfg.nfkc, cfg.casefold, cfg.fold_punctuation))
    assert ok.mean() > 0.5, ok.mean()
    # "same" (signed in place, no copy) only where Python's folding really changes nothing
    from dedup.shingle import _normalize_unicode

    assert same.any() and not same.all()
    for t, s in zip(wide, same):
        if s:
            assert _normalize_unicode(t, cfg) == t


@pytest.mark.parametrize("bands,rows", [(21, 6), (9, 13), (128, 1)])
def test_compiled_banding_gives_the_reference_keys_and_pairs(real_texts, bands, rows):
    """Band keys and candidate pairs by the compiled hash grouping equal the argsort reference:
    real signatures, edited copies (shared bands), exact copies, and a bucket over the all-pairs
    cap (MAX_BUCKET_ALL_PAIRS: neighbours and the first member only), ids not starting at 0."""
    from dedup.bands import MAX_BUCKET_ALL_PAIRS, band_keys, candidate_pairs_from_keys

    rng = np.random.default_rng(3)
    base = real_texts[:1500]
    edited = []
    for t in base[::4]:
        words = t.split(" ")
        for _ in range(max(1, len(words) // 30)):
            words[int(rng.integers(len(words)))] = "edit"
        edited.append(" ".join(words))
    texts = base + edited + [base[7]] * (MAX_BUCKET_ALL_PAIRS + 9)
    sigs = kernel.sign_texts(texts, DedupConfig())[1]
    ids = np.sort(rng.choice(10 * len(texts), len(texts), replace=False)) + 1000
    keys = band_keys(sigs, bands, rows)
    assert np.array_equal(band_keys(sigs, bands, rows, jit=True), keys)
    want = candidate_pairs_from_keys(keys, ids)
    got = candidate_pairs_from_keys(keys, ids, jit=True)
    assert len(want) > 2 * MAX_BUCKET_ALL_PAIRS and np.array_equal(got, want)
    assert np.array_equal(candidate_pairs_from_keys(keys[:1], ids[:1], jit=True), np.empty((0, 2), np.int64))


@pytest.mark.parametrize("workers", [2, 3])
def test_verify_on_threads_and_by_pair_gives_the_same_pairs(real_texts, workers, monkeypatch):
    """Exact verification with shingle sets built on `workers` threads, by sorted sets or by a hash
    set per pair (few candidates per document): the same verified pairs and similarities as one
    thread on sorted sets (candidates: edited copies, neighbours, and the non-ASCII/edge texts)."""
    import dedup.pipeline
    from dedup.pipeline import verify

    monkeypatch.setattr(kernel, "FORCED", True)  # the compiled path (threads) at any job size
    calls = {"sorted": 0, "raw": 0}
    real_sets, real_raw = dedup.pipeline.shingle_sets_flat, dedup.pipeline.shingles
    monkeypatch.setattr(dedup.pipeline, "shingle_sets_flat",
                        lambda *a: calls.__setitem__("sorted", calls["sorted"] + 1) or real_sets(*a))
    monkeypatch.setattr(dedup.pipeline, "shingles", lambda *a: calls.__setitem__("raw", calls["raw"] + 1) or real_raw(*a))

    texts = real_texts[:300] + [t.replace(" the ", " a ", 1) for t in real_texts[:300]] + real_texts[-60:]
    ids = np.arange(len(texts), dtype=np.int64) * 3 + 5
    col = pa.array(texts)
    by_id = dict(zip(ids.tolist(), range(len(texts))))
    fetch = lambda d: col.take(pa.array([by_id[x] for x in d.tolist()]))
    cand = np.concatenate((np.stack((ids[:300], ids[300:600]), axis=1), np.stack((ids[:299], ids[1:300]), axis=1),
                           np.stack((ids[600:-1], ids[601:]), axis=1)))
    cfg = DedupConfig(batch_docs=250)
    results = {}
    for per_doc, how in ((0, "sorted"), (10**6, "raw")):
        monkeypatch.setattr(dedup.pipeline, "HASHED_PAIRS_PER_DOC", per_doc)
        before = dict(calls)
        results[how, 1] = verify(cand, fetch, cfg, 1)
        results[how, workers] = verify(cand, fetch, cfg, workers)
        # 3 batches of involved docs: each whole on one thread, then one slice per thread
        assert calls[how] - before[how] == 3 + 3 * workers
        assert how == "sorted" or calls["sorted"] == before["sorted"]  # (sorted sets shingle through `shingles`)
    want = results["sorted", 1]
    assert len(want[0]) >= 250 and 0 < np.min(want[1])
    for got in results.values():
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])

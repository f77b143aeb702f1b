"""Scripts written without spaces (issue 24, item 1): each character is a unit, so near-duplicates
of real Chinese, Japanese, Korean and Thai paragraphs are found with the default settings, and
space-delimited languages give exactly what they gave before. Real text: Debian's translated
manual pages and Thai message catalogs (bench/multilingual_bench.py builds the pairs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import kernel
from dedup.config import DedupConfig
from dedup.pipeline import signatures_for
from dedup.shingle import _normalize_unicode, shingle_sets, split_units, spread_units, words


def test_units_do_not_depend_on_spacing_and_folding_applies_to_every_character():
    cfg = DedupConfig()
    assert words("数据处理。数 据", cfg) == ["数", "据", "处", "理", "数", "据"]
    assert words("ﾃｽﾄ テスト", cfg) == ["テ", "ス", "ト"] * 2  # half-width katakana: NFKC, then units
    assert words("Ｄａｔａ 한국어 ภาษา", cfg) == ["data", "한", "국", "어", "ภ", "า", "ษ", "า"]
    assert split_units("abc") == "abc"  # space-delimited text is untouched
    a, b = shingle_sets(["机器学习是人工智能的一个分支，", "机 器 学 习 是 人 工 智 能 的 一 个 分 支。"], cfg)
    assert len(a) and set(a) == set(b)


@pytest.mark.parametrize("lang", ["zh_CN", "ja", "ko", "th"])
def test_real_near_duplicates_are_found_with_the_defaults(lang, bench_module):
    mb = bench_module("multilingual_bench")
    texts, _ = mb.build(lang, 100, 3)
    if len(texts) < 40:
        pytest.skip(f"no real {lang} text on this machine")
    grams = [mb.truth_grams(t) for t in texts]
    truth = {(i, j): mb.jaccard(grams[i], grams[j]) for i in range(len(texts)) for j in range(i + 1, len(texts))}
    truth = {k: v for k, v in truth.items() if v >= 0.5}
    units = mb.taomi_pairs(texts, True)
    old = mb.taomi_pairs(texts, False)
    p_units, r_units, n_pos = mb.score(units, truth, 0.8)
    _, r_old, _ = mb.score(old, truth, 0.8)
    assert n_pos >= 10
    # the targets, from the threshold itself (J 0.80-0.85 was 0.81-0.94 while the Latin
    # words inside these paragraphs stayed word units)
    assert r_units >= 0.95 and p_units >= 0.98, (lang, r_units, p_units)
    assert r_old < 0.6  # whitespace words: a clause is one word (the 1-30%)


def _shared(a: str, b: str, cfg: DedupConfig) -> float:
    x, y = shingle_sets([a, b], cfg)
    return len(np.intersect1d(x, y)) / len(np.union1d(x, y))


def test_a_document_mostly_without_spaces_takes_every_character_as_a_unit():
    """In a Chinese paragraph with commands and file names, one changed Latin letter costs what one
    changed Chinese character costs (both are characters of the truth); in an English paragraph
    with a Chinese word, Latin words stay words."""
    cfg = DedupConfig()
    zh = "使用 ls -l 命令列出当前目录中的文件，然后用 grep 过滤 README.txt 里的内容并保存结果。"
    latin_edit = zh.replace("README", "READNE")
    han_edit = zh.replace("命令", "命合")
    assert spread_units(_normalize_unicode(zh, cfg), cfg).split()[:6] == ["使", "用", "l", "s", "l", "命"]
    j_latin, j_han = _shared(zh, latin_edit, cfg), _shared(zh, han_edit, cfg)
    assert abs(j_latin - j_han) < 0.05, (j_latin, j_han)
    assert words(zh, cfg)[2] == "ls"  # contamination's units (evalsets) are not spread
    en = "The configuration file lists every option and its 默认 value in the order they are read."
    assert spread_units(_normalize_unicode(en, cfg), cfg) == _normalize_unicode(en, cfg)
    # at least half of the characters that are not spaces after folding
    assert spread_units("ab数据", cfg) == "a b 数 据"
    assert spread_units("abc数据", cfg) == "abc数据"
    assert spread_units(" 数  据 !!!", cfg) == "数 据"  # folded punctuation is space, not a character
    assert spread_units(" 数  据 !!!", DedupConfig(fold_punctuation=False)) == " 数  据 !!!"  # 2 of 5
    assert spread_units("ab数据", DedupConfig(script_units=False)) == "ab数据"


_PIECES = ["数", "据", "处理", "テスト", "ﾃｽﾄ", "한국어", "ภาษา", "𠀀", "ab", "README", "x1", "５６", "Ｆｕｌｌ",
           " ", "  ", "\t", "\u3000", "!", "。", "，", "-", "é", "e\u0301", "ß", "🙂", "\x00"]


@pytest.mark.skipif(not kernel.AVAILABLE, reason="numba not installed")
@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join), min_size=1, max_size=12),
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans()), ngram=st.sampled_from([1, 3, 5]))
def test_spread_documents_are_the_same_in_the_kernel_and_the_reference(docs, flags, ngram):
    """Mixes of unit and non-unit characters around the half-way line, under every folding
    switch: the compiled kernel's spread (dedup.kernel.spread_docs) equals the reference's."""
    from dedup.shingle import shingle_batch

    nfkc, casefold, punct = flags
    cfg = DedupConfig(nfkc=nfkc, casefold=casefold, fold_punctuation=punct, ngram=ngram)
    h_ref, o_ref = shingle_batch(docs, cfg)
    h, o = kernel.shingle_texts(docs, cfg)
    assert np.array_equal(o, o_ref) and np.array_equal(h, h_ref)


def test_space_delimited_languages_are_unchanged(bench_module):
    mb = bench_module("multilingual_bench")
    for lang in ("en", "de", "ru"):
        texts, _ = mb.build(lang, 40, 1)
        if len(texts) < 20:
            continue
        a = signatures_for(texts, DedupConfig())
        b = signatures_for(texts, DedupConfig(script_units=False))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), lang


def test_compiled_kernel_equals_the_reference_on_real_cjk_and_thai(bench_module):
    if not kernel.AVAILABLE:
        pytest.skip("numba not installed")
    mb = bench_module("multilingual_bench")
    texts = []
    for lang in ("zh_CN", "zh_TW", "ja", "ko", "th"):
        texts += mb.build(lang, 30, 2)[0]
    cfg = DedupConfig()
    n_k, s_k = kernel.sign_texts(texts, cfg)
    from dedup.minhash import sign
    from dedup.shingle import shingle_batch

    h, off = shingle_batch(texts, cfg)
    n_ref = np.diff(off)
    s_ref = sign(h, off, cfg.num_perm, cfg.seed)
    assert np.array_equal(n_k, n_ref) and np.array_equal(s_k, s_ref)


def test_curriculum_length_is_in_tokens_or_units_never_clauses(tmp_path, ingest_files):
    """A Chinese paragraph's length is its characters (units) without token counts, its tokens
    with them; before, each clause was one word."""
    import json

    from curation.curriculum import CurriculumConfig
    from flows.curriculum_task import build_curriculum
    from flows.tokens_task import count_tokens
    from warehouse.db import session

    zh = "机器学习是人工智能的一个分支，它使计算机能够从数据中学习而无需明确编程。深度学习是机器学习的一个子领域。"
    en = "Machine learning is a branch of artificial intelligence that lets computers learn from data."
    src = tmp_path / "mix.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate([zh, en, zh[:20], en[:40]])))
    db = str(tmp_path / "m.duckdb")
    ingest_files(db, [src], "mix")

    def lengths():
        build_curriculum(db, "mix", CurriculumConfig())
        with session(db) as con:
            rows = con.execute("""SELECT d.ext_id, c.scores::VARCHAR FROM curriculum c JOIN documents d
                                  ON d.doc_id = c.doc_id WHERE c.corpus = 'mix'""").fetchall()
        return {e: json.loads(s)["length"] for e, s in rows}

    units = lengths()
    assert units["0"] == len([c for c in zh if c not in "，。"]) and units["1"] == 14
    count_tokens(db, "mix", "cl100k_base")
    tokens = lengths()
    from curation.tokens import Tokenizer

    tk = Tokenizer("cl100k_base")
    assert tokens["0"] == tk.count([zh])[0] and tokens["1"] == tk.count([en])[0]


@pytest.mark.parametrize("lang", ["zh_CN", "ja"])
def test_contamination_checks_and_finds_real_cjk_items(lang, bench_module):
    """Before, a Chinese item had fewer than 13 whitespace "words" and most could not be checked;
    now each character is a unit: copies (embedded, spaced, re-punctuated) are found, clean items
    are not flagged."""
    from evalsets.contamination import ngram_overlap

    mb = bench_module("multilingual_bench")
    paras = mb.paragraphs(lang)
    if len(paras) < 60:
        pytest.skip(f"no real {lang} text on this machine")
    chosen, seen = [], set()  # paragraphs that share no 13 characters in a row with each other (manuals repeat)
    for p in paras:
        g = mb.truth_grams(p, 13)
        if len(g) >= 5 and not g & seen:
            chosen.append(p)
            seen |= g
        if len(chosen) == 60:
            break
    if len(chosen) < 60:
        pytest.skip(f"not enough distinct real {lang} paragraphs")
    items, hosts = chosen[:30], chosen[30:60]
    training = []
    for k, (item, host) in enumerate(zip(items[:20], hosts)):
        copy = [item, " ".join(c for c in item if not c.isspace()), item.translate(mb._WIDE)][k % 3]
        training.append(host[: len(host) // 2] + copy + host[len(host) // 2:])
    found = ngram_overlap(items, [(np.arange(len(training)), training)])
    status = [f["status"] for f in found]
    assert status[:20] == ["contaminated"] * 20
    assert all(s == "clean" for s in status[20:]), status[20:]


def test_to_simplified_matches_real_simplified_and_traditional_twins(bench_module):
    """The zh_CN and zh_TW translations of the same Debian messages: near-duplicates once both are
    simplified (OpenCC t2s), almost never found without the option."""
    mb = bench_module("multilingual_bench")
    pairs = mb.zh_twins()
    if len(pairs) < 200:
        pytest.skip("no zh_CN/zh_TW message catalogs on this machine")
    import random

    random.Random(0).shuffle(pairs)
    pairs = pairs[:600]
    texts = [a for a, _ in pairs] + [b for _, b in pairs]
    n = len(pairs)
    pos = {(i, i + n) for i, (a, b) in enumerate(pairs) if mb.jaccard(mb.truth_t2s(a), mb.truth_t2s(b)) >= 0.85}
    assert len(pos) >= 30

    def found(cfg):
        from dedup.pipeline import near_duplicates

        n_sh, sigs = signatures_for(texts, cfg)
        res = near_duplicates(np.arange(len(texts), dtype=np.int64), n_sh, sigs, {i: float(i) for i in range(len(texts))},
                              lambda d: [texts[i] for i in d], cfg)
        return {(int(min(a, b)), int(max(a, b))) for a, b in res.edges}

    plain, simplified = found(DedupConfig()), found(DedupConfig(to_simplified=True))
    assert len(simplified & pos) / len(pos) >= 0.85 and len(plain & pos) / len(pos) < 0.2
    a, b = shingle_sets(["軟體與資料庫的機器學習", "软体与资料库的机器学习"], DedupConfig(to_simplified=True))
    assert set(a) == set(b)
    if kernel.AVAILABLE:  # the compiled path sends these documents to the reference: same signatures
        cfg = DedupConfig(to_simplified=True)
        k = kernel.sign_texts(texts[:100], cfg)
        from dedup.minhash import sign
        from dedup.shingle import shingle_batch

        h, off = shingle_batch(texts[:100], cfg)
        assert np.array_equal(k[1], sign(h, off, cfg.num_perm, cfg.seed))


def test_a_few_very_long_documents_take_the_compiled_path():
    """One 20M-character CJK document is ~15M units: the numpy reference's token arrays held
    1.56 GB for it. A batch of KERNEL_MIN_CHARS characters counts as a large job."""
    from dedup import pipeline

    long_batch = ["数" * pipeline.KERNEL_MIN_CHARS]
    assert pipeline._job(long_batch, None) >= pipeline.KERNEL_MIN_DOCS
    assert pipeline._job(["数" * 1000] * 3, None) == 3


def test_contamination_and_curriculum_units_are_not_spread():
    """Only dedup cuts a mostly-CJK document into characters whole. A Chinese item with commands
    in it, copied into an English page, is found with spans that index `text_units`; a curriculum
    unit of that item is a Latin word, not a letter."""
    from curation.curriculum import _word_ids
    from evalsets.contamination import ngram_overlap, text_units

    item = "使用 ls -l 命令列出当前目录中的文件，然后用 grep 过滤 README.txt 里的内容并保存结果。"
    page = ("The following paragraph was copied from a translated manual page of the coreutils package: "
            + item + " It is followed by the English original and by notes on the options.")
    res = ngram_overlap([item], [(np.array([7]), [page])])[0]
    assert res["status"] == "contaminated" and res["matched_docs"] == [7]
    units = text_units(item)
    assert res["spans"] == [{"words": [0, len(units)], "text": " ".join(units)}] and "grep" in units
    _uni, _bi, off = _word_ids([item])
    assert off[-1] == len(units)


def test_items_in_scripts_without_spaces_need_as_much_text_as_13_english_words(bench_module):
    """An item mostly in a script without spaces needs a run of its script's units (13 English words'
    worth, bench/parallel_units.py): a clean item that shares only a katakana term or a stock
    sentence (a clause of 13-20 Han units) is not flagged, copies are still found, and the run rule
    over the 13-gram index gives what a plain 21-gram index gives on real Chinese text."""
    from evalsets.contamination import RUN_BY_SCRIPT, keep_runs, ngram_overlap, required_run

    item = "このオプションを指定すると、コマンドラインインターフェイスの設定ファイルを読み込まずに起動します。"
    term = "詳しくはコマンドラインインターフェイスの説明を参照してください。"  # 15 shared units
    assert required_run(item) == RUN_BY_SCRIPT["Kana"] == 34 and required_run("机器学习是人工智能的一个分支。") == 21
    assert required_run("The configuration file lists every option in order.") == 13
    assert required_run("ตัวเลือกนี้จะแสดงรายการไฟล์ทั้งหมด") == 61 and required_run("이 옵션은 모든 파일을 보여 줍니다") == 28
    docs = [(np.array([1, 2]), [term, "前文。" + item + "後文。"])]
    assert ngram_overlap([item], docs)[0]["matched_docs"] == [2]
    assert ngram_overlap([item], [(np.array([1]), [term])])[0]["status"] == "clean"
    assert ngram_overlap([item], [(np.array([1]), [term])], per_script=False)[0]["status"] == "contaminated"
    assert ngram_overlap(["コマンドラインインターフェイス"], docs)[0]["status"] == "too_short"  # 15 < 34 units

    zh = "退出状态：返回最后执行的命令的状态。如果没有给出参数，则使用默认的配置文件并在后台运行。"
    stock = "说明。退出状态：返回最后执行的命令的状态。另见手册。"  # 16 shared units: a stock sentence
    assert ngram_overlap([zh], [(np.array([1]), [stock])])[0]["status"] == "clean"
    assert ngram_overlap([zh], [(np.array([1]), [stock])], per_script=False)[0]["status"] == "contaminated"
    assert ngram_overlap([zh], [(np.array([1]), ["前文" + zh[:24] + "后文"])])[0]["status"] == "contaminated"

    cb = bench_module("contamination_cjk_bench")
    items, _kinds, training, _ = cb.build("zh_CN", 12, 0)
    if len(items) < 50:
        pytest.skip("no real Chinese text on this machine")
    batches = [(np.arange(len(training)), training)]
    rule = [f["status"] for f in ngram_overlap(items, batches)]
    plain = [f["status"] for f in ngram_overlap(items, batches, n=21, per_script=False)]
    han = [required_run(t) == 21 for t in items]
    assert sum(han) > len(items) * 0.8
    assert [r for r, k in zip(rule, han) if k] == [p for p, k in zip(plain, han) if k]
    assert "contaminated" in rule and "clean" in rule
    # runs are taken per (item, doc) along one diagonal: two 13-unit matches apart do not add up
    import pandas as pd

    pairs = pd.DataFrame({"item": [0, 0, 0], "doc_id": [5, 5, 5], "item_pos": [0, 1, 10], "doc_pos": [3, 4, 40]})
    assert keep_runs(pairs, np.array([14, 14, 14]), 13)["item_pos"].tolist() == [0, 1]
    assert keep_runs(pairs, np.array([15, 15, 15]), 13).empty


def test_a_word_spaced_out_letter_by_letter_is_one_word_again(bench_module):
    """PDF extraction spaces every character: a Latin identifier inside a CJK copy comes apart
    letter by letter and broke the run (0.83-0.93 of real spaced copies found). Three or more
    single letters or digits between single spaces are joined, in items and documents alike; two
    letters, words and characters of scripts without spaces are left as they are."""
    from evalsets.contamination import join_words, ngram_overlap

    assert join_words("使 用 p o s t m a s t e r 命 令") == "使 用 postmaster 命 令"
    assert join_words("п р и в е т, u t f 8 and a b") == "привет, utf8 and a b"
    assert join_words("数 据 库 is a database") == "数 据 库 is a database"
    assert join_words("Options a, b and c.") == "Options a, b and c." and join_words("x - y") == "x - y"
    assert join_words("d p k g - s o u r c e 命 令") == "dpkgsource 命 令"

    cb = bench_module("contamination_cjk_bench")
    for lang in ("zh_CN", "ja"):
        items, kinds, training, _ = cb.build(lang, 15, 0)
        if len(items) < 50:
            pytest.skip(f"no real {lang} text on this machine")
        spaced = [i for i, k in enumerate(kinds) if k == "spaced"]
        assert any(any(c.isascii() and c.isalpha() for c in items[i]) for i in spaced)
        found = ngram_overlap([items[i] for i in spaced], [(np.arange(len(training)), training)])
        assert [f["status"] for f in found] == ["contaminated"] * len(spaced), lang

"""`taomi stats`' mean_words counts words as the text-units layer does (ARCHITECTURE: one layer
for every stage): a character of Chinese, Japanese, Korean or Thai is a word, other words lie
between whitespace of any kind. Splitting on ' ' (the old count) made a Chinese document of 80
characters one word, an English text broken over lines one word per paragraph, and every extra
space of an indented source file a word of its own."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.shingle import WORD_RE2, split_units
from warehouse.readers import lit

_PIECES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "a", "Bc", "é",
           "数", "据", "ภาษา", "カナ", "한글", "𠀀", "🙂", "x" * 7, ",", "-", "'", "\\", "\x00"]


def _sql_counts(texts: list[str]) -> list[int]:
    con = duckdb.connect()
    con.register("t", pa.table({"text": pa.array(texts, pa.string())}))
    return [r[0] for r in con.execute(f"SELECT len(regexp_extract_all(text, {lit(WORD_RE2)})) FROM t").fetchall()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join), min_size=1, max_size=20))
def test_the_sql_word_count_is_the_text_units_layers(texts):
    assert _sql_counts(texts) == [len(split_units(t).split()) for t in texts]


def test_mean_words_of_chinese_english_and_code(tmp_path, taomi_cli):
    docs = ["数据清洗是训练语言模型的第一步" * 4,  # 60 characters, no space: 60 words
            "one two\nthree four\nfive",  # 5 words over 3 lines
            "def f():\n        return 1\n"]  # 4 words, however deep the indent
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", "none", "--quiet").code == 0
    stats = json.loads(taomi_cli("--db", db, "stats", "c", "--json").out)
    assert stats["mean_words"] == round((60 + 5 + 4) / 3, 1) and stats["mean_words_documents"] == 3


def test_a_large_corpus_is_counted_on_a_seeded_sample(tmp_path, monkeypatch, taomi_cli):
    from warehouse import corpora

    monkeypatch.setattr(corpora, "WORDS_SAMPLE", 50)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": "w " * (i % 9 + 1)}) + "\n" for i in range(400)), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", "none", "--quiet").code == 0
    runs = [json.loads(taomi_cli("--db", db, "stats", "c", "--json").out) for _ in range(2)]
    assert runs[0]["mean_words_documents"] == 50 and runs[0]["mean_words"] == runs[1]["mean_words"]  # repeatable
    assert 3.5 <= runs[0]["mean_words"] <= 6.5  # the corpus's mean is 5.0

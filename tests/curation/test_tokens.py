"""Token counts with a real tokenizer (issue 23, item 4): a shipped byte-level BPE (cl100k_base,
o200k_base, offline) or any Hugging Face tokenizer.json; counts stored per document and
tokenizer at ingest, recomputed only for documents without one, reported by `stats` (in all, kept
after dedup, per source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def hf_tokenizer(path: Path, texts: list[str]) -> Path:
    """A real tokenizer.json: a byte-level BPE trained by the tokenizers library on `texts`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, show_progress=False))
    tok.save(str(path))
    return path


def test_builtin_and_file_tokenizers_count_like_their_libraries(tmp_path):
    import bpe_openai
    from tokenizers import Tokenizer as HF

    from curation.tokens import PIECE_CHARS, Tokenizer

    texts = ["hello world", "数据处理 and tokens", "  spaced\n\nlines\t", "x" * 50, ""]
    enc = bpe_openai.get_encoding("cl100k_base")
    assert list(Tokenizer("cl100k_base").count(texts)) == [len(enc.encode_ordinary(t)) for t in texts]
    assert list(Tokenizer("cl100k_base").count(["hello world"])) == [2]
    path = hf_tokenizer(tmp_path / "tokenizer.json", texts * 20)
    hf = HF.from_file(str(path))
    assert list(Tokenizer(str(path)).count(texts)) == [len(hf.encode(t, add_special_tokens=False).ids) for t in texts]
    long = ("line of text number %d\n" * 10_000) % tuple(range(10_000))
    assert len(long) > PIECE_CHARS  # counted in pieces cut after newlines: the same count
    assert Tokenizer("cl100k_base").count([long])[0] == sum(len(enc.encode_ordinary(x)) for x in long.splitlines(True))
    with pytest.raises(ValueError, match="tokenizer.json"):
        Tokenizer("gpt-17")
    key = Tokenizer(str(path)).key
    path.write_text(path.read_text().replace('"vocab"', '"vocab" ', 1))
    assert Tokenizer(str(path)).key != key  # an edited file is another tokenizer


def test_counts_are_stored_once_per_tokenizer_and_reach_stats(tmp_path, taomi_cli):
    rows = [{"id": f"d{i}", "text": f"document {i} " + "word " * i, "metadata": {"source": ["a", "b"][i % 2]}}
            for i in range(40)]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", src, "--json")
    assert r.code == 0, r.output
    first = json.loads(r.out)["tokens"]
    from curation.tokens import Tokenizer

    want = int(Tokenizer("cl100k_base").count([x["text"] for x in rows]).sum())
    assert first == {"tokenizer": "cl100k_base", "documents_counted": 40, "tokens": want, "tokens_kept": want,
                     "counted_now": 40, "reused": 0}
    again = json.loads(taomi_cli("--db", db, "tokens", "c", "--json").out)
    assert again["counted_now"] == 0 and again["tokens"] == want  # stored: nothing recounted
    path = hf_tokenizer(tmp_path / "tok.json", [x["text"] for x in rows])
    other = json.loads(taomi_cli("--db", db, "tokens", "c", "--tokenizer", path, "--json").out)
    assert other["counted_now"] == 40 and other["tokenizer"].startswith("tok.json:")
    stats = json.loads(taomi_cli("--db", db, "stats", "c", "--json").out)
    assert stats["tokens"]["tokenizer"] == other["tokenizer"]  # the latest count is the corpus's
    by = json.loads(taomi_cli("--db", db, "stats", "c", "--by", "source", "--json").out)
    assert sum(r["tokens"] for r in by) == other["tokens"]
    none = tmp_path / "n.duckdb"
    r = taomi_cli("--db", none, "ingest", "-c", "c", src, "--tokenizer", "none", "--json")
    assert r.code == 0 and json.loads(r.out)["tokens"] is None
    r = taomi_cli("--db", tmp_path / "x.duckdb", "ingest", "-c", "c", src, "--tokenizer", "gpt-17")
    assert r.code == 2 and "tokenizer.json" in r.err and not (tmp_path / "x.duckdb").exists()


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _real_texts() -> list[str]:
    """Real text in many scripts: standard-library sources and dateparser's translation tables."""
    import sysconfig

    import dateparser

    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:40]
    files += sorted((Path(dateparser.__file__).parent / "data" / "date_translation_data").glob("*.py"))[::4]
    out = []
    for f in files:
        t = f.read_text(encoding="utf-8", errors="replace")
        out += [t[i:i + 3000] for i in range(0, min(len(t), 30_000), 3000)]
    # strings where a chain of splits and one regex could part: digits of every kind, kana
    # punctuation inside the CJK class, marks, controls and format characters between matches
    import random

    rng = random.Random(0)
    alphabet = [*"abcXYZ 12\n\r\t.,!?-_'\"()[]{}#@", *"中文字一龥〇々あいうゝゞ゛゜゙゚゠アイウ・ーヿ", "\u3000", "\u00a0",
                "\u2028", "\u0301", "\u200d", "\u200d\u200d", "\u200d\u200d", "\x00", "\x7f", "٣", "①", "Ⅻ", "²", "é", "ß", "я",
                "😀", "\ue000", "ｱ", "１",
                "。", "「", "가", "ก", "\u0e31"]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    return out + ["", " ", "\n\n\t", "Ｆｕｌｌ ｗｉｄｔｈ ﬁ ① ㎏", "数据" * 2000, "a" * 5000, "x<|endoftext|>y"]


# DeepSeek's pre-tokenizer (its tokenizer.json, as the litellm wheel ships it): three isolating splits
DEEPSEEK_SPLITS = [r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+",
                   (r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"""
                    r""" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")]


def _sentencepiece_shaped(path: Path, texts: list[str], legacy: bool) -> Path:
    """A BPE in the shape transformers gives a SentencePiece model (Llama 2, Mistral): characters as
    symbols, a space as "▁", byte fallback to `<0xNN>`; trained on words cut at "▁" (as
    SentencePiece's are), then saved with the whole text as one word: Prepend + Replace
    normalizers and no pre-tokenizer (legacy), or Metaspace without splitting."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
    tok.train_from_iterator([t.replace(" ", "▁") for t in texts],
                            trainers.BpeTrainer(vocab_size=3000, show_progress=False, special_tokens=specials))
    spec = json.loads(tok.to_str())
    if legacy:
        spec["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        spec["pre_tokenizer"] = None
    else:
        spec["normalizer"] = None
        spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


def _trained(path: Path, texts: list[str], shape: str) -> Path:
    """A byte-level BPE trained by the tokenizers library in the shape of a published one: GPT-2
    (ByteLevel with its regex), Llama 3 / Qwen 2 (a Split regex, then ByteLevel without one), DeepSeek
    (three Splits, then ByteLevel), NFKC before GPT-2's (Anthropic's file in the litellm wheel), or
    shapes tiktoken cannot run."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    if shape.startswith("spm_"):
        return _sentencepiece_shaped(path, texts, shape == "spm_legacy")
    tok = Tokenizer(models.BPE(byte_fallback=shape == "byte_fallback"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=shape == "prefix_space")
    if shape in ("llama3", "gaps", "deepseek", "chain_word_first"):  # gaps: leaves punctuation between matches
        splits = {"llama3": [LLAMA3_SPLIT], "gaps": [r"\p{L}+|\p{N}+|\s+"], "deepseek": DEEPSEEK_SPLITS,
                  "chain_word_first": [r"\w+", *DEEPSEEK_SPLITS[1:]]}[shape]
        tok.pre_tokenizer = pre_tokenizers.Sequence([*(pre_tokenizers.Split(Regex(p), "isolated") for p in splits),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if shape == "nfkc":
        tok.normalizer = normalizers.NFKC()
    if shape == "lowercase":
        tok.normalizer = normalizers.Lowercase()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=3000, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       special_tokens=["<|endoftext|>"]))
    tok.save(str(path))
    return path


@pytest.mark.parametrize("shape", ["gpt2", "llama3", "deepseek", "nfkc", "spm_legacy", "spm_metaspace", "lowercase",
                                   "prefix_space", "byte_fallback", "gaps", "chain_word_first"])
def test_a_tokenizer_json_is_counted_exactly_whichever_engine_runs_it(tmp_path, shape):
    """tiktoken runs the byte-level BPE shapes it computes exactly (3-5x the library per core) and
    the library the others; either way every count equals the library's, on real text in many
    scripts, an added token inside a text, and a 10k-character run without spaces."""
    from tokenizers import Tokenizer as HF

    from curation.tokens import Tokenizer, _fast_bpe

    texts = _real_texts()
    path = _trained(tmp_path / "tokenizer.json", texts[::2], shape)
    texts = texts + ["𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀 and ᚠᚢᚦ", "x ꙮꙮ y 𓀀"]  # characters no training text holds: byte fallback
    fast = _fast_bpe(str(path))
    assert (fast is not None) == (shape in ("gpt2", "llama3", "deepseek", "nfkc", "spm_legacy", "spm_metaspace"))
    hf = HF.from_file(str(path))
    want = [len(e.ids) for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert Tokenizer(str(path)).count(texts).tolist() == want
    if fast is not None:  # tiktoken itself, not the library's recount after a failed sample check
        enc, added, prepare = fast
        plain = [i for i, t in enumerate(texts) if not (added and added.search(t))]
        assert len(plain) > len(texts) * 0.9
        assert [len(enc.encode_ordinary(prepare(texts[i]))) for i in plain] == [want[i] for i in plain]


def test_a_wrong_fast_count_is_caught_and_the_library_counts(tmp_path, monkeypatch):
    """The sample check: an engine that counts differently from the library (here, one built with
    half the merges) is caught in the first batch, the batch is recounted by the library, and the
    file is not given to tiktoken again."""
    import tiktoken

    from curation import tokens

    texts = _real_texts()
    path = str(_trained(tmp_path / "tokenizer.json", texts[::2], "gpt2"))
    enc, added, prepare = tokens._fast_bpe(path)
    half = dict(list(enc._mergeable_ranks.items())[:1500])
    wrong = tiktoken.Encoding("half", pat_str=tokens.GPT2_PATTERN, mergeable_ranks=half, special_tokens={})
    monkeypatch.setitem(tokens._FAST, path, (wrong, added, prepare))
    right = tokens._count_hf(path, texts)
    assert tokens.Tokenizer(path).count(texts).tolist() == right.tolist()
    assert tokens._FAST[path] is None


def test_a_split_regex_with_gaps_stays_with_the_library(tmp_path):
    """tiktoken drops the text between a pattern's matches, the library keeps it as a piece: run
    by tiktoken, a regex without catch-all alternatives would count every punctuation mark as
    nothing. Such a file is counted by the library (the shape test above checks the counts)."""
    import tiktoken

    from curation import tokens

    texts = _real_texts()
    path = str(_trained(tmp_path / "tokenizer.json", texts[::2], "gaps"))
    assert tokens._fast_bpe(path) is None
    enc, _, _ = tokens._fast_bpe(str(_trained(tmp_path / "g.json", texts[::2], "gpt2")))
    gaps = tiktoken.Encoding("gaps", pat_str=r"\p{L}+|\p{N}+|\s+", mergeable_ranks=enc._mergeable_ranks,
                             special_tokens={})
    assert len(gaps.encode_ordinary("a, b!")) < tokens.Tokenizer(path).count(["a, b!"])[0]


def test_a_tokenizer_file_the_library_cannot_read_is_one_line_before_anything_is_written(tmp_path, taomi_cli):
    """A tokenizer.json the library cannot load (here: a BPE without merges) was a traceback after
    the documents were written; now `ingest`, `tokens` and a pipeline config refuse it in one line
    naming the file and the library's reason, and no database file is created."""
    from flows.config import ConfigError, load_config

    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"model": {"type": "BPE", "byte_fallback": True, "vocab": {}}}))
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"text": "hello world"}) + "\n")
    db = tmp_path / "w.duckdb"
    r = taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", bad)
    assert r.code == 2 and "broken.json" in r.err and "cannot" not in r.err and "Missing vocab/merges" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1 and not db.exists()
    assert taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", "none").code == 0
    r = taomi_cli("--db", db, "tokens", "c", "--tokenizer", bad)
    assert r.code == 2 and "broken.json" in r.err and "Traceback" not in r.err
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'db = "p.duckdb"\n[[corpus]]\nname = "c"\npaths = ["{src}"]\ntokenizer = "{bad}"\n')
    with pytest.raises(ConfigError, match="corpus\\[0\\].tokenizer .*Missing vocab/merges"):
        load_config(cfg)

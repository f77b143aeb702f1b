"""Token counts with a real tokenizer (budgets and lengths are in tokens, never `str.split`).

A tokenizer is named by the user: a built-in byte-level BPE that ships inside an installed
package (`cl100k_base`, `o200k_base`: the `bpe-openai` wheel carries their vocabularies, so
nothing is downloaded at run time) or the path of any Hugging Face `tokenizer.json` (read by the
`tokenizers` library, batch-encoded on its own threads). Its `key` names the counts it produced:
a file's key includes its sha256, so an edited file is a different tokenizer.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_TOKENIZER = "cl100k_base"
BUILTIN = ("cl100k_base", "o200k_base")
# bpe-openai refuses one call that yields more than 200,000 tokens, and a character can be up to
# 4 tokens (one per UTF-8 byte): longer texts are counted in pieces of at most 45,000 characters,
# cut after a newline where there is one (where the pre-tokenizer already splits).
PIECE_CHARS = 45_000


@dataclass(frozen=True)
class Tokenizer:
    """A named tokenizer; `count(texts)` gives each text's number of tokens (no special tokens)."""

    spec: str

    def __post_init__(self) -> None:
        if self.spec in BUILTIN:
            return
        if not Path(self.spec).is_file():
            raise ValueError(f"tokenizer {self.spec!r}: give {' or '.join(BUILTIN)}, or the path of a Hugging Face "
                             "tokenizer.json file")
        try:  # read now, before any document is written: a file the library cannot read is one line
            _hf(self.spec)
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises plain Exception
            detail = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"tokenizer {self.spec!r}: not a tokenizer.json the tokenizers library reads "
                             f"({detail})") from None

    @property
    def key(self) -> str:
        if self.spec in BUILTIN:
            return self.spec
        digest = hashlib.sha256(Path(self.spec).read_bytes()).hexdigest()[:16]
        return f"{Path(self.spec).name}:{digest}"

    def count(self, texts: list[str]) -> np.ndarray:
        if self.spec in BUILTIN:
            return _count_builtin(self.spec, texts)
        return _count_file(self.spec, texts)


_LOADED: dict[str, object] = {}


def _count_builtin(name: str, texts: list[str]) -> np.ndarray:
    import bpe_openai

    enc = _LOADED.get(name) or _LOADED.setdefault(name, bpe_openai.get_encoding(name))
    out = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):  # one call per text: faster here than its batch call (6.9 vs 4.1 M tokens/s)
        out[i] = (len(enc.encode_ordinary(t)) if len(t) <= PIECE_CHARS
                  else sum(len(enc.encode_ordinary(p)) for p in _pieces(t)))
    return out


def _pieces(text: str):
    """The pieces one at a time (a list of them was a second copy of a 100 MB text)."""
    start = 0
    while start < len(text):
        cut = text.rfind("\n", start, start + PIECE_CHARS)
        end = cut + 1 if cut > start else min(start + PIECE_CHARS, len(text))
        yield text[start:end]
        start = end


def _count_file(path: str, texts: list[str]) -> np.ndarray:
    """Counts by the tokenizers library, or by tiktoken where the file is a byte-level BPE that
    tiktoken computes exactly (`_fast_bpe`; 3-5x faster per core). Each call checks the tiktoken
    counts of a sample of its texts against the tokenizers library; one difference and the call
    is recounted by the library, and the file is not given to tiktoken again in this process."""
    fast = _fast_bpe(path)
    if fast is None:
        return _count_hf(path, texts)
    enc, added, prepare = fast
    out = np.empty(len(texts), dtype=np.int64)
    slow = []
    for i, t in enumerate(texts):
        if added is not None and added.search(t):  # the library matches added tokens inside text
            slow.append(i)
        else:
            out[i] = len(enc.encode_ordinary(prepare(t)))
    sample = sorted(set(range(0, len(texts), CHECK_EVERY)) - set(slow))
    if sample and not np.array_equal(out[sample], _count_hf(path, [texts[i] for i in sample])):
        _FAST[path] = None
        return _count_hf(path, texts)
    if slow:
        out[slow] = _count_hf(path, [texts[i] for i in slow])
    return out


CHECK_EVERY = 64  # one text in 64 is also counted by the tokenizers library (about 7% more time)


def _hf(path: str):
    """The tokenizers library's tokenizer of a file, loaded once per process."""
    if path not in _LOADED:
        from tokenizers import Tokenizer as HFTokenizer

        _LOADED[path] = HFTokenizer.from_file(path)
    return _LOADED[path]


def _count_hf(path: str, texts: list[str]) -> np.ndarray:
    tok = _hf(path)
    # encode_batch_fast: the batch encoder without character offsets, which a count never reads
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return np.fromiter((len(e.ids) for e in encode(texts, add_special_tokens=False)), dtype=np.int64,
                       count=len(texts))


# GPT-2's pre-tokenizer, which tokenizers' ByteLevel(use_regex=True) applies
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_FAST: dict[str, object] = {}


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode map, inverted: the printable character that stands for each byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _normal_form(norm: dict | None) -> str | None | bool:
    """The normal form of a normalizer that is one (NFC, NFKC, NFD, NFKD), None for none (or an empty
    sequence), False for any other normalizer."""
    if not norm or (norm.get("type") == "Sequence" and not norm.get("normalizers")):
        return None
    return norm["type"] if norm.get("type") in ("NFC", "NFKC", "NFD", "NFKD") else False


def _split_pattern(pre: dict | None) -> str | None:
    """The regex of a byte-level pre-tokenizer tiktoken can run: ByteLevel with GPT-2's regex, a
    Split(regex, isolated) then ByteLevel without one (Llama 3, Qwen 2), or a chain of such splits
    made one (`_chain`: DeepSeek's); no prefix space."""
    if not pre:
        return None
    if pre.get("type") == "ByteLevel":
        return GPT2_PATTERN if pre.get("use_regex", True) and not pre.get("add_prefix_space") else None
    steps = pre.get("pretokenizers") or []
    if pre.get("type") != "Sequence" or len(steps) < 2:
        return None
    *splits, level = steps
    if not (level.get("type") == "ByteLevel" and not level.get("use_regex", True) and not level.get("add_prefix_space")
            and all(s.get("type") == "Split" and s.get("behavior") == "Isolated" and not s.get("invert")
                    and "Regex" in (s.get("pattern") or {}) for s in splits)):
        return None
    if len(splits) == 1:
        pattern = splits[0]["pattern"]["Regex"]
        return pattern if _covers_everything(pattern) else None
    return _chain([s["pattern"]["Regex"] for s in splits])


# A split that isolates runs of one character class: `\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`
_RUN = re.compile(r"^(\\p\{\w+\}|\[(?:[^\[\]\\]|\\.)+\])(\{\d+(?:,\d*)?\}|\+)$")


def _chain(patterns: list[str]) -> str | None:
    """One regex for a chain of isolating splits (DeepSeek's: digits in threes, then CJK runs, then a
    GPT-style regex inside what is left), or None. Each split but the last must isolate runs of one
    character class; their classes K are taken first, and the last regex runs with K taken out of
    every class it has (`[X--[K]]`, `[^X K]`, `\\S` as `[^\\s K]`), so none of its matches, nor
    a look-ahead, reaches into a run the earlier splits cut off, as the chain's pieces end there.
    What the last regex leaves, the library keeps as pieces of their own: here runs of control and
    format characters, else one character at a time. The runs of the earlier classes are taken
    whole, where the library also runs the last regex inside them (DeepSeek's parts `ー゛` into a
    letter and a symbol): the counts still agree, as no merge of a vocabulary trained on those pieces
    joins across such a cut; the sample check catches a file where one does."""
    classes = []
    for p in patterns[:-1]:
        m = _RUN.match(p)
        if m is None:
            return None
        cls = m.group(1)
        classes.append(cls if cls.startswith("\\p") else cls[1:-1])
    if any(c.startswith("^") for c in classes):
        return None
    k = "".join(classes)
    last, out, i = patterns[-1], [], 0
    while i < len(last):
        c = last[i]
        if c == "\\":
            esc = last[i:i + 2]
            if esc[1:] in ("p", "P", "w", "W", "d", "D"):  # a class outside brackets: not taken apart here
                return None
            out.append(f"[^\\s{k}]" if esc == "\\S" else esc)
            i += 2
        elif c == "[":
            j, body = i + 1, []
            while j < len(last) and last[j] != "]":
                if last[j] == "[":
                    return None
                step = 2 if last[j] == "\\" else 1
                body.append(last[j:j + step])
                j += step
            if j >= len(last) or not body:
                return None
            inner = "".join(body)
            out.append(f"[{inner}{k}]" if inner.startswith("^") else f"[{inner}--[{k}]]")
            i = j + 1
        elif c == ".":
            return None
        else:
            out.append(c)
            i += 1
    # what the last regex leaves: runs of other characters (controls, format characters), short of
    # one that a letter follows (a GPT-style regex takes it as the optional prefix of a word)
    gap = f"(?:[\\p{{C}}--[\\s{k}]](?![\\p{{L}}\\p{{M}}--[{k}]]))+"
    return "|".join([*patterns[:-1], "".join(out), gap, "(?s:.)"])


# Alternatives that together match any character: letters, numbers, whitespace, and everything
# else (a class that excludes only whitespace, letters and numbers).
_CATCH_ALLS = (r"\p{L}+", r"\p{N}", r"\s+", r"[^\s\p{L}\p{N}]+")


def _covers_everything(pattern: str) -> bool:
    """Does a Split regex match every character (as GPT-2's, Llama 3's and Qwen 2's do)? tiktoken
    drops the text between matches, where the library keeps it as a piece of its own: a regex
    without these catch-all alternatives is left to the library."""
    return all(alt in pattern for alt in _CATCH_ALLS)


def _fast_bpe(path: str):
    """(tiktoken Encoding, regex of the added tokens or None, the text as that Encoding reads it)
    for a tokenizer.json tiktoken counts exactly, else None: a plain byte-level BPE (no normalizer
    but NFC/NFKC, no dropout, prefixes or byte fallback; every byte in the vocabulary), or a
    SentencePiece-shaped BPE (`_spm_bpe`). Ranks are the merges' order after the 256 bytes, as
    tiktoken builds GPT-2's from its merges file; tiktoken applies the lowest-ranked merge first, as
    the library does."""
    if path in _FAST:
        return _FAST[path]
    _FAST[path] = None
    try:
        import json

        import tiktoken

        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        model = spec.get("model") or {}
        added = [t["content"] for t in spec.get("added_tokens") or [] if t.get("content")]
        found = re.compile("|".join(map(re.escape, sorted(added, key=len, reverse=True)))) if added else None
        if (model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix")
                or model.get("end_of_word_suffix")):
            return None
        if model.get("byte_fallback"):
            spm = _spm_bpe(spec)
            if spm is not None:
                _FAST[path] = (tiktoken.Encoding(f"taomi-{Path(path).name}", pat_str=spm[0], mergeable_ranks=spm[1],
                                                 special_tokens={}), found, spm[2])
            return _FAST[path]
        pattern = _split_pattern(spec.get("pre_tokenizer"))
        form = _normal_form(spec.get("normalizer"))
        if pattern is None or form is False:
            return None
        decode = _byte_decoder()
        vocab = model.get("vocab") or {}
        if not all(ch in vocab for ch in decode):
            return None
        ranks = {bytes([b]): b for b in range(256)}
        for m in model.get("merges") or []:
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            ranks.setdefault(bytes(decode[c] for c in a) + bytes(decode[c] for c in b), len(ranks))
        enc = tiktoken.Encoding(f"taomi-{Path(path).name}", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        _FAST[path] = (enc, found, functools.partial(_normalized, form))
    except (ImportError, KeyError, ValueError, TypeError, OSError):  # not one tiktoken can run: the library counts
        _FAST[path] = None
    return _FAST[path]


def _normalized(form: str | None, text: str) -> str:
    return unicodedata.normalize(form, text) if form and not text.isascii() else text


SPACE = "\u2581"  # "▁", SentencePiece's stand-in for a space


def _spm_bpe(spec: dict):
    """(pattern, ranks, the text as tiktoken reads it) for a SentencePiece BPE converted to a
    tokenizer.json (Llama 2, Mistral: characters as the symbols, a space as "▁", byte fallback), or
    None. The library runs BPE over the whole text; tiktoken runs it over the byte form:
    - every byte prefix of a character in the vocabulary is a merge ranked before the file's own,
      so a character is whole before any of them applies;
    - a character outside the vocabulary is one token per UTF-8 byte (`<0xNN>`) that no merge
      joins: it is read as that many copies of a byte no token holds;
    - pieces start at each run of "▁" (`▁+[^▁]*`): no token of the file has a "▁" after another
      character, so no merge crosses there, and tiktoken never runs one merge loop over a whole
      document.
    The file's shape must be exactly one of: normalizer Prepend("▁") then Replace(" ", "▁") and no
    pre-tokenizer (Llama 2 as converted by transformers with legacy=True); no normalizer and
    Metaspace("▁", split=False) (legacy=False); or Replace(" ", "▁") alone (no prefix)."""
    model = spec["model"]
    vocab = model.get("vocab") or {}
    if not all(f"<0x{b:02X}>" in vocab for b in range(256)) or any(SPACE in t.lstrip(SPACE) for t in vocab):
        return None
    norm, pre = spec.get("normalizer"), spec.get("pre_tokenizer")
    steps = (norm or {}).get("normalizers") if (norm or {}).get("type") == "Sequence" else ([norm] if norm else [])
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}
    if pre is None and steps == [{"type": "Prepend", "prepend": SPACE}, replace]:
        prefix = "always"
    elif pre is None and steps == [replace]:
        prefix = "never"
    elif (not steps and (pre or {}).get("type") == "Metaspace" and pre.get("replacement") == SPACE
          and not pre.get("split", True) and pre.get("prepend_scheme") in ("first", "always", "never")):
        prefix = "unless-there" if pre["prepend_scheme"] != "never" else "never"
    else:
        return None
    chars = sorted(t for t in vocab if len(t) == 1)
    held = set().union(*(t.encode("utf-8") for t in vocab if not (t.startswith("<0x") and len(t) == 6)))
    filler = next((bytes([b]) for b in (*range(1, 32), 127, 0) if b not in held), None)
    if filler is None:
        return None
    ranks = {bytes([b]): b for b in range(256)}
    for ch in chars:
        raw = ch.encode("utf-8")
        for k in range(2, len(raw) + 1):
            ranks.setdefault(raw[:k], len(ranks))
    for m in model.get("merges") or []:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        ranks.setdefault((a + b).encode("utf-8"), len(ranks))
    outside = re.compile("[^" + "".join(re.escape(c) for c in chars) + "]+")
    fill = filler.decode("ascii")
    return (f"{SPACE}+[^{SPACE}]*|[^{SPACE}]+", ranks,
            functools.partial(_metaspace, prefix, outside, fill))


def _metaspace(prefix: str, outside: re.Pattern, fill: str, text: str) -> str:
    """The text as the SentencePiece-shaped file's normalizer makes it, characters outside the
    vocabulary as one filler byte per UTF-8 byte."""
    if not text:
        return text
    text = text.replace(" ", SPACE)
    if prefix == "always" or (prefix == "unless-there" and not text.startswith(SPACE)):
        text = SPACE + text
    return outside.sub(lambda m: fill * len(m.group().encode("utf-8")), text)

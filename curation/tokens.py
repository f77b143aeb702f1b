"""Token counts with a real tokenizer (budgets and lengths are in tokens, never `str.split`).

A tokenizer is named by the user: a built-in byte-level BPE that ships inside an installed
package (`cl100k_base`, `o200k_base`: the `bpe-openai` wheel carries their vocabularies, so
nothing is downloaded at run time) or the path of any Hugging Face `tokenizer.json` (read by the
`tokenizers` library, batch-encoded on its own threads). Its `key` names the counts it produced:
a file's key includes its sha256, so an edited file is a different tokenizer.
"""

from __future__ import annotations

import hashlib
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
        if self.spec not in BUILTIN and not Path(self.spec).is_file():
            raise ValueError(f"tokenizer {self.spec!r}: give {' or '.join(BUILTIN)}, or the path of a Hugging Face "
                             "tokenizer.json file")

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
    from tokenizers import Tokenizer as HFTokenizer

    tok = _LOADED.get(path) or _LOADED.setdefault(path, HFTokenizer.from_file(path))
    # encode_batch_fast: the batch encoder without character offsets, which a count never reads
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return np.fromiter((len(e.ids) for e in encode(texts, add_special_tokens=False)), dtype=np.int64,
                       count=len(texts))

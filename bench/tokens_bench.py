"""Token counting speed on real text (issue 23: >= 1M tokens/s per core), beside the libraries
called document by document, in the same run.

    .venv/bin/python bench/tokens_bench.py [--docs 3000]

Texts: files that ship in this venv's site-packages (sources, READMEs, docs). Tokenizers: the
shipped cl100k_base (bpe-openai) as Taomi counts it and as its own batch call; a byte-level BPE
tokenizer.json (32k vocabulary, trained here on other files of the same kind) as Taomi counts it
(tiktoken where the file is a byte-level BPE it computes exactly, the tokenizers library's batch
encoder otherwise) beside the library's batch encoder and document by document; `--tokenizer-json`
adds real files (e.g. the DeepSeek and Anthropic tokenizer.json files the litellm wheel ships). One
core: run under `taskset -c 0` for the per-core figure.

SentencePiece-shaped files (Llama 2, Mistral) from the models the mistral-common wheel ships, in a
scratch venv (`uv pip install mistral-common sentencepiece protobuf "transformers==4.46.3"`; later
transformers fail on these models):

    from transformers import LlamaTokenizer
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer
    convert_slow_tokenizer(LlamaTokenizer(vocab_file=".../mistral_common/data/tokenizer.model.v1",
                                          legacy=True)).save("mistral_v1_tokenizer.json")
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.tokens import Tokenizer


def texts(n: int, seed: int) -> list[str]:
    site = Path(sysconfig.get_paths()["purelib"])
    files = [p for p in site.rglob("*") if p.suffix in {".py", ".md", ".rst", ".txt"} and p.is_file()
             and 40 < p.stat().st_size < 2_000_000]
    random.Random(seed).shuffle(files)
    return [f.read_text(encoding="utf-8", errors="replace") for f in files[:n]]


def rate(fn, docs: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    n = int(fn(docs))
    return n / (time.perf_counter() - t), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--tokenizer-json", nargs="*", default=[],
                    help="real tokenizer.json files to time as well (e.g. those the litellm wheel ships)")
    args = ap.parse_args()
    import bpe_openai
    from tokenizers import Tokenizer as HF
    from tokenizers import models, pre_tokenizers, trainers

    docs, train = texts(args.docs, 0), texts(2000, 1)
    print(f"{len(docs):,} real documents, {sum(map(len, docs)) / 1e6:.1f} M characters")
    enc = bpe_openai.get_encoding("cl100k_base")
    ours = Tokenizer("cl100k_base")
    for name, fn in [("taomi cl100k_base", lambda d: ours.count(d).sum()),
                     ("bpe-openai encode_ordinary_batch", lambda d: sum(map(len, enc.encode_ordinary_batch(
                         [x for x in d if len(x) < 45_000])))),
                     ]:
        r, n = rate(fn, docs)
        print(f"{name}: {n:,} tokens, {r / 1e6:.2f} M tokens/s")
    with tempfile.TemporaryDirectory() as tmp:
        hf = HF(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.train_from_iterator(train, trainers.BpeTrainer(vocab_size=32_000, show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        path = Path(tmp) / "tokenizer.json"
        hf.save(str(path))
        for p in [str(path), *args.tokenizer_json]:
            file_rows(p, docs)


def file_rows(path: str, docs: list[str]) -> None:
    """Taomi's count of a tokenizer.json (tiktoken where it computes the file exactly, checked on a
    sample; else the library) beside the tokenizers library's batch encoder and one call a text."""
    from tokenizers import Tokenizer as HF

    from curation.tokens import _fast_bpe

    hf = HF.from_file(path)
    ours = Tokenizer(path)
    print(f"{Path(path).name}: {'tiktoken path' if _fast_bpe(path) else 'the library only'}")
    counts = {}
    for name, fn in [("  taomi", lambda d: ours.count(d).sum()),
                     ("  tokenizers encode_batch_fast", lambda d: sum(
                         len(e.ids) for e in hf.encode_batch_fast(d, add_special_tokens=False))),
                     ("  tokenizers, one document at a time", lambda d: sum(
                         len(hf.encode(x, add_special_tokens=False).ids) for x in d))]:
        r, n = rate(fn, docs)
        counts[name] = n
        print(f"{name}: {n:,} tokens, {r / 1e6:.2f} M tokens/s")
    print(f"  counts equal: {len(set(counts.values())) == 1}")


if __name__ == "__main__":
    main()

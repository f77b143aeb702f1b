"""Candidate pairs by datatrove's MinHash stage-1 code with its per-language word tokenizer, for
bench/multilingual_bench.py. Runs under an interpreter that has datatrove (and spacy, jieba,
sudachipy, kiwipiepy, pythainlp) installed, not Taomi's venv:

    echo '["text", ...]' | /path/to/datatrove-venv/bin/python bench/datatrove_pairs.py zh

Shingles and signatures are datatrove's own (`MinhashDedupSignature.get_shingles` /
`get_signature`, default `MinhashConfig`: word 5-grams, 14 buckets x 8 hashes). Two documents
are a pair when one bucket's signature is equal, which is what its bucket stage matches (it has
no verification step). Korean: datatrove's `KiwiTokenizer` asks for kiwipiepy's "sbg" model,
which kiwipiepy no longer ships (0.22+), so its "cong" model is passed instead.
"""

import json
import sys
import time

from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.word_tokenizers import KiwiTokenizer


def main() -> None:
    code = sys.argv[1]
    texts = json.load(sys.stdin)
    t = time.perf_counter()
    language = KiwiTokenizer(model_type="cong") if code == "ko" else code
    stage = MinhashDedupSignature("/tmp/datatrove-unused", MinhashConfig(), language=language)
    buckets: dict = {}
    for i, text in enumerate(texts):
        shingles = stage.get_shingles(text)
        if shingles.size == 0:
            continue
        for b, sig in enumerate(stage.get_signature(shingles)):
            buckets.setdefault((b, tuple(sig)), []).append(i)
    pairs = sorted({(m[a], m[c]) for m in buckets.values() for a in range(len(m)) for c in range(a + 1, len(m))})
    print(json.dumps({"pairs": pairs, "seconds": time.perf_counter() - t}))


if __name__ == "__main__":
    main()

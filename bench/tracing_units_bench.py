"""Failure-tracing features on the text-units layer against the `\\w+` words they replaced, on the
same real texts in the same run (bench/RESULTS.md, "Text units in stats, eval metrics and failure
tracing").

    .venv/bin/python bench/tracing_units_bench.py [--files 4000]

Texts: site-packages files (sources, READMEs, docs) and every Debian zh/ja/ko/th catalogue and
manual page (one document each, as bench/ingest_real_bench.py builds them), each cut to the view
the tracing index reads. Timed: `hashed_features` as Taomi computes it, and the same vectorizer
with scikit-learn's `(?u)\\b\\w+\\b` words; best of 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4000)
    args = ap.parse_args()
    from ingest_real_bench import build, cjk_corpus
    from sklearn.feature_extraction.text import HashingVectorizer

    import evalsets.tracing as tr

    head, tail = tr.VIEW

    def view(t: str) -> str:
        return t if len(t) <= head + tail else t[:head] + t[-tail:]

    with tempfile.TemporaryDirectory() as d:
        jsonl, _, _ = build(Path(d), args.files, 1)
        en = [view(json.loads(line)["text"]) for line in jsonl.open(encoding="utf-8")]
        cjk_corpus(Path(d) / "cjk.jsonl", 1)
        zh = [view(json.loads(line)["text"]) for line in (Path(d) / "cjk.jsonl").open(encoding="utf-8")]
    old = HashingVectorizer(ngram_range=(1, 2), n_features=tr.N_FEATURES, alternate_sign=False, norm=None,
                            token_pattern=r"(?u)\b\w+\b")
    units = tr._HASHER
    for name, texts in (("package files", en), ("zh/ja/ko/th catalogues and manual pages", zh)):
        mb = sum(len(t.encode()) for t in texts) / 1e6
        print(f"{name}: {len(texts):,} documents, {mb:.1f} MB")
        for label, hasher in (("text units (Taomi)", units), ("\\w+ words (before)", old)):
            tr._HASHER = hasher  # the same weighting and normalisation around either vectorizer
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                x = tr.hashed_features(texts)
                best = min(best, time.perf_counter() - t)
            print(f"  {label}: {best:.2f} s, {x.nnz:,} nonzero features")
    tr._HASHER = units


if __name__ == "__main__":
    main()

"""Suspect labels on real Chinese and Japanese text, Taomi beside cleanlab in the same run
(issues 24 and 28: the label check must stay right on scripts without spaces).

Data: the translated messages (msgstr) of the Debian packages' zh_CN and ja message catalogues
(/usr/share/locale/LANG/LC_MESSAGES/*.mo), each labelled with its package (git, apt, dpkg, gnupg2,
coreutils, ...): real translated prose about overlapping subjects, no spaces between words. The
10 largest catalogues, messages of at least 12 characters, exact repeats dropped, 300 a class;
seeded uniform flips.

- Taomi: `suspect_labels`, the function `taomi labels` runs.
- cleanlab: `find_label_issues` (default rule) on 5-fold out-of-fold probabilities of TF-IDF
  character 1-3-grams + LogisticRegression(C=10) (word n-grams see one "word" per clause here).

    .venv/bin/python bench/labels_cjk_bench.py [--lang zh_CN ja] [--flips 0.05 0.10]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtext import catalogue

SKIP = ("iso_", "glib", "gtk", "gstreamer", "gdk", "gsettings", "at-spi")  # code lists and toolkit strings


def catalogue_corpus(lang: str, classes: int = 10, per_class: int = 300, min_chars: int = 12,
                     seed: int = 0) -> list[dict]:
    folder = Path("/usr/share/locale") / lang / "LC_MESSAGES"
    by, seen = {}, set()
    for f in sorted(folder.glob("*.mo")):
        if f.stem.startswith(SKIP):
            continue
        cat = catalogue(f)
        msgs = []
        for k, v in cat.items():
            if not k or not isinstance(v, str):
                continue
            t = " ".join(v.split())
            if len(t) >= min_chars and t not in seen:
                seen.add(t)
                msgs.append(t)
        by[f.stem] = msgs
    top = sorted(by, key=lambda k: -len(by[k]))[:classes]
    rng = random.Random(seed)
    rows = []
    for label in top:
        for t in rng.sample(by[label], min(per_class, len(by[label]))):
            rows.append({"text": t, "label": label})
    return rows


def score(found: set, planted: set) -> tuple[float, float, float]:
    tp = len(found & planted)
    p, r = tp / max(len(found), 1), tp / max(len(planted), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def cleanlab_chars(texts, y) -> set:
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True).fit_transform(texts)
    probs = cross_val_predict(LogisticRegression(C=10, max_iter=1000), x, y, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=0))
    return set(np.flatnonzero(find_label_issues(y, probs)).tolist())


def taomi(texts, y, k) -> set:
    from curation.suspects import suspect_labels

    return set(np.flatnonzero(suspect_labels(texts, y, k)["suspect"]).tolist())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", nargs="+", default=["zh_CN", "ja"])
    ap.add_argument("--flips", type=float, nargs="+", default=[0.05, 0.10])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--methods", nargs="+", default=["cleanlab-char", "taomi"])
    args = ap.parse_args()
    for lang in args.lang:
        rows = catalogue_corpus(lang, seed=args.seed)
        classes = sorted({r["label"] for r in rows})
        print(f"{lang}: {len(rows)} messages, {len(classes)} packages ({', '.join(classes)})")
        print(" flips method      flagged precision recall    F1  time s")
        for rate in args.flips:
            rng = random.Random(args.seed + int(rate * 1000))
            planted = set(rng.sample(range(len(rows)), round(rate * len(rows))))
            given = [rng.choice([c for c in classes if c != r["label"]]) if i in planted else r["label"]
                     for i, r in enumerate(rows)]
            y = np.array([classes.index(g) for g in given])
            texts = [r["text"] for r in rows]
            for name in args.methods:
                t = time.perf_counter()
                found = cleanlab_chars(texts, y) if name == "cleanlab-char" else taomi(texts, y, len(classes))
                p, r, f1 = score(found, planted)
                print(f"{rate:5.0%} {name:13s} {len(found):7d} {p:9.3f} {r:6.3f} {f1:5.3f} {time.perf_counter() - t:7.1f}")


if __name__ == "__main__":
    main()

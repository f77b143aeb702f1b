"""Per-item metrics (pluggable): exact match, accuracy, token F1 (SQuAD, Rajpurkar et al. 2016).

Answers in every script: punctuation is every Unicode punctuation character, not only ASCII's,
and the tokens of F1 are the text-units layer's words (dedup.shingle.split_units): a character of
Chinese, Japanese, Korean or Thai is a token, as MLQA's evaluation (Lewis et al. 2020) segments
Chinese and KorQuAD's scores Korean by character. On whitespace tokens a Chinese answer was one
token, so F1 was exact match there.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable

from dedup.shingle import split_units

_ARTICLES = re.compile(r"\b(a|an|the)\b")


@functools.cache
def _punctuation() -> dict[int, None]:
    """ASCII punctuation and every character of a Unicode punctuation category (MLQA's set)."""
    marks = {ord(c) for c in string.punctuation}
    marks.update(i for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P"))
    return dict.fromkeys(marks)


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_punctuation())).split())


def exact_match(pred: str, target: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(target))


def accuracy(pred: str, target: str) -> float:
    return float(pred.strip() == target.strip())


def token_f1(pred: str, target: str) -> float:
    p, t = split_units(normalize_answer(pred)).split(), split_units(normalize_answer(target)).split()
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


METRICS: dict[str, Callable[[str, str], float]] = {"exact_match": exact_match, "accuracy": accuracy,
                                                   "token_f1": token_f1}


def get_metric(name: str) -> Callable[[str, str], float]:
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}'; known: {', '.join(METRICS)}")
    return METRICS[name]

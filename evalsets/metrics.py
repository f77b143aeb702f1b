"""Per-item metrics (pluggable): exact match, accuracy, token F1 (SQuAD, Rajpurkar et al. 2016)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCT)).split())


def exact_match(pred: str, target: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(target))


def accuracy(pred: str, target: str) -> float:
    return float(pred.strip() == target.strip())


def token_f1(pred: str, target: str) -> float:
    p, t = normalize_answer(pred).split(), normalize_answer(target).split()
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

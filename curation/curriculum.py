"""Curriculum ordering: difficulty scorers -> combined percentile -> pacing -> order.

Easy-and-common first, hard-and-key later. Scorers are columns (higher = harder); the combined
score is a weighted mean of per-scorer percentile ranks. Pacing functions give the fraction of
the difficulty-sorted data available at step t (competence); the order samples each step's
documents uniformly from what is available and not yet used, deterministically for a seed.
The baseline ("random") uses the same pacing over a random difficulty order.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
PACINGS = ("linear", "sqrt", "step", "exponential")
DEFAULT_WEIGHTS = {"length": 1.0, "rarity": 1.0, "compression": 1.0, "diversity": 0.5, "perplexity": 1.0,
                   "label_doubt": 0.5, "commonness": 0.5}


@dataclass(frozen=True)
class CurriculumConfig:
    pacing: str = "sqrt"
    c0: float = 0.1           # initial competence (Platanios et al. 2019)
    steps: int = 100          # pacing steps T over one pass of the data
    step_fraction: float = 0.2  # step pacing: grow by this fraction each phase (Hacohen & Weinshall 2019)
    exp_base: float = 2.0       # exponential pacing: data grows by this factor each phase
    order: str = "curriculum"   # or "random": same pacing, random difficulty (the baseline)
    seed: int = 0
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())

    def __post_init__(self) -> None:
        if self.pacing not in PACINGS:
            raise ValueError(f"unknown pacing '{self.pacing}'; choose one of {', '.join(PACINGS)}")
        if self.order not in ("curriculum", "random"):
            raise ValueError("order must be 'curriculum' or 'random'")
        if not 0 < self.c0 <= 1:
            raise ValueError("c0 must be in (0, 1]")
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if not 0 < self.step_fraction <= 1 or self.exp_base <= 1:
            raise ValueError("step_fraction must be in (0, 1] and exp_base > 1")
        unknown = {k for k, _ in self.weights} - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown scorer weights {sorted(unknown)}; scorers: {', '.join(DEFAULT_WEIGHTS)}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["weights"] = dict(self.weights)
        return d


# ---- scorers ------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass
class BigramLM:
    """Interpolated bigram LM with add-one unigrams, trained on the corpus itself."""

    unigrams: Counter = field(default_factory=Counter)
    bigrams: Counter = field(default_factory=Counter)
    total: int = 0
    lam: float = 0.7

    def fit(self, docs: list[list[str]]) -> BigramLM:
        for w in docs:
            self.unigrams.update(w)
            self.bigrams.update(itertools.pairwise(w))
        self.total = sum(self.unigrams.values())
        return self

    def perplexity(self, w: list[str]) -> float:
        if not w:
            return 0.0
        v = len(self.unigrams) + 1
        lp = 0.0
        prev = None
        for tok in w:
            pu = (self.unigrams.get(tok, 0) + 1) / (self.total + v)
            if prev is None:
                p = pu
            else:
                c_prev = self.unigrams.get(prev, 0)
                pb = self.bigrams.get((prev, tok), 0) / c_prev if c_prev else 0.0
                p = self.lam * pb + (1 - self.lam) * pu
            lp += math.log(p)
            prev = tok
        return math.exp(-lp / len(w))


def score_texts(texts: list[str]) -> dict[str, np.ndarray]:
    """Difficulty columns (higher = harder) for each text."""
    words = [_words(t) for t in texts]
    uni = Counter()
    for w in words:
        uni.update(w)
    total = sum(uni.values()) or 1
    surprisal = {w: -math.log(c / total) for w, c in uni.items()}
    lm = BigramLM().fit(words)
    out = {
        "length": np.array([len(w) for w in words], dtype=float),
        "rarity": np.array([np.mean([surprisal[x] for x in w]) if w else 0.0 for w in words]),
        # compressed / raw size: repetitive, formulaic text compresses well (easy)
        "compression": np.array([len(zlib.compress(t.encode())) / max(len(t.encode()), 1) for t in texts]),
        # root type-token ratio (Guiraud): robust to length
        "diversity": np.array([len(set(w)) / math.sqrt(len(w)) if w else 0.0 for w in words]),
        "perplexity": np.array([math.log(max(lm.perplexity(w), 1.0)) for w in words]),
    }
    return out


def percentile_rank(x: np.ndarray) -> np.ndarray:
    """Average-rank percentiles in [0, 1] (ties share a rank)."""
    from scipy.stats import rankdata

    if len(x) <= 1:
        return np.zeros(len(x))
    return (rankdata(x, method="average") - 1) / (len(x) - 1)


def combine(scores: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of per-scorer percentile ranks (scorers missing from `scores` are skipped)."""
    used = {k: w for k, w in weights.items() if k in scores and w > 0}
    if not used:
        raise ValueError("no scorer with a positive weight")
    total = sum(used.values())
    return sum(w * percentile_rank(scores[k]) for k, w in used.items()) / total


# ---- pacing -------------------------------------------------------------------------------

def competence(t: np.ndarray | float, cfg: CurriculumConfig) -> np.ndarray:
    """Fraction of the (difficulty-sorted) data available at step t in [0, T]."""
    t = np.asarray(t, dtype=float)
    T, c0 = cfg.steps, cfg.c0
    if cfg.pacing == "linear":  # Platanios et al. 2019, eq. 5
        c = t * (1 - c0) / T + c0
    elif cfg.pacing == "sqrt":  # Platanios et al. 2019: c(t) = min(1, sqrt(t (1 - c0^2) / T + c0^2))
        c = np.sqrt(t * (1 - c0 ** 2) / T + c0 ** 2)
    elif cfg.pacing == "step":  # Hacohen & Weinshall 2019: fixed increments every phase
        phases = math.ceil((1 - c0) / cfg.step_fraction)
        c = c0 + cfg.step_fraction * np.floor(t / T * (phases + 1))
    else:  # fixed exponential pacing (Hacohen & Weinshall 2019)
        phases = max(1, math.ceil(math.log(1 / c0, cfg.exp_base)))
        c = c0 * cfg.exp_base ** np.floor(t / T * (phases + 1))
    return np.minimum(1.0, c)


def order_documents(difficulty: np.ndarray, cfg: CurriculumConfig) -> tuple[np.ndarray, np.ndarray]:
    """(indices in training order, pacing step of each position). Each document appears once."""
    n = len(difficulty)
    rng = np.random.default_rng(cfg.seed)
    key = difficulty if cfg.order == "curriculum" else rng.random(n)
    by_difficulty = np.argsort(key, kind="stable")
    per_step = max(1, math.ceil(n / cfg.steps))
    order, steps = [], []
    available_upto = 0
    pool: list[int] = []
    for t in range(cfg.steps + 1):
        if len(order) >= n:
            break
        upto = min(n, max(math.ceil(float(competence(t, cfg)) * n), len(order) + per_step))
        if upto > available_upto:
            pool.extend(by_difficulty[available_upto:upto].tolist())
            available_upto = upto
        take = min(per_step, n - len(order), len(pool))
        picks = rng.choice(len(pool), size=take, replace=False)
        for p in sorted(picks.tolist(), reverse=True):
            doc = pool.pop(p)
            order.append(doc)
            steps.append(t)
    return np.array(order, dtype=np.int64), np.array(steps, dtype=np.int64)

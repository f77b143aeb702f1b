"""Curriculum ordering: difficulty scorers -> combined percentile -> pacing -> order.

Easy-and-common first, hard-and-key later. Scorers are columns (higher = harder); the combined
score is a weighted mean of per-scorer percentile ranks. Pacing functions give the fraction of
the difficulty-sorted data available at step t (competence); the order samples each step's
documents uniformly from what is available and not yet used, deterministically for a seed.
The baseline ("random") uses the same pacing over a random difficulty order.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

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
# Streaming and hashed so a corpus of any size fits: pass 1 (`NgramCounts.update`) counts word
# unigrams and bigrams into 2^22 hashed buckets per order over batches; pass 2 (`score_batch`)
# scores each batch against those counts. Word hashing reuses the dedup shingler (same folding).

BUCKETS = 1 << 22
# Bounded at any document length (issue 28): a document longer than VIEW_HEAD + VIEW_TAIL
# characters is scored on its first VIEW_HEAD and last VIEW_TAIL (rarity, perplexity,
# compression and diversity are per-unit rates, well estimated from 250,000 characters), and its
# unit `length` is scaled by full / viewed characters (`scale_length`). Token counts, when stored,
# are exact whatever the view. Batches hold at most BATCH_CHARS characters of views: the scorers
# keep ~15 arrays of 8 bytes per unit, so a batch is bounded at ~0.5 GB (a 20,000-document batch
# of real 15 KB files peaked at 5.7 GB).
VIEW_HEAD = 200_000
VIEW_TAIL = 50_000
BATCH_CHARS = 16_000_000


def scale_length(length: np.ndarray, chars: np.ndarray, head: int = VIEW_HEAD, tail: int = VIEW_TAIL) -> np.ndarray:
    """Unit counts of bounded views scaled to the whole documents (`chars`: their full length)."""
    viewed = np.minimum(chars, head + tail)
    return np.where(chars > head + tail, length * chars / np.maximum(viewed, 1), length)


def _word_ids(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unigram buckets, bigram buckets aligned to each word's successor, per-doc word offsets)."""
    from dedup.config import DedupConfig
    from dedup.shingle import shingle_batch

    h, off = shingle_batch(texts, DedupConfig(ngram=1), spread=False)
    counts = np.diff(off)
    # a doc's bigram k pairs word k and k+1: hash the pair from the two word hashes
    nxt = np.empty_like(h)
    nxt[:-1] = h[1:]
    nxt[-1:] = 0
    pair = (h * np.uint64(0x9E3779B97F4A7C15)) ^ nxt
    last = np.zeros(len(h), dtype=bool)
    last[off[1:][counts > 0] - 1] = True  # no bigram across documents
    return (h % np.uint64(BUCKETS)).astype(np.int64), np.where(last, -1, (pair % np.uint64(BUCKETS)).astype(np.int64)), off


@dataclass
class NgramCounts:
    """Hashed unigram/bigram counts of a corpus (pass 1 of the scorers)."""

    uni: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, dtype=np.int64))
    bi: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, dtype=np.int64))
    total: int = 0

    def update(self, texts: list[str]) -> NgramCounts:
        u, b, _ = _word_ids(texts)
        self.uni += np.bincount(u, minlength=BUCKETS)
        self.bi += np.bincount(b[b >= 0], minlength=BUCKETS)
        self.total += len(u)
        return self


def score_batch(texts: list[str], counts: NgramCounts, lam: float = 0.7) -> dict[str, np.ndarray]:
    """Difficulty columns (higher = harder) for a batch, against whole-corpus counts."""
    u, b, off = _word_ids(texts)
    n = np.diff(off)
    docs = np.repeat(np.arange(len(texts)), n)
    total = max(counts.total, 1)
    vocab = int(np.count_nonzero(counts.uni)) + 1
    cu = counts.uni[u].astype(float)

    def per_doc(x: np.ndarray) -> np.ndarray:
        s = np.bincount(docs, weights=x, minlength=len(texts))
        return np.divide(s, n, out=np.zeros(len(texts)), where=n > 0)

    surprisal = -np.log(np.maximum(cu, 1) / total)
    # interpolated bigram LM trained on the corpus itself: p(w_k | w_k-1) for k >= 1
    p_uni = (cu + 1) / (total + vocab)
    p = p_uni.copy()
    has_prev = np.ones(len(u), dtype=bool)
    has_prev[off[:-1][n > 0]] = False
    prev_bucket = np.roll(b, 1)  # bigram (k-1, k) sits at position k-1
    prev_uni = np.roll(cu, 1)
    ok = has_prev & (prev_bucket >= 0)
    pb = np.where(ok, counts.bi[np.where(ok, prev_bucket, 0)] / np.maximum(prev_uni, 1), 0.0)
    p = np.where(ok, lam * pb + (1 - lam) * p_uni, p_uni)
    order = np.lexsort((u, docs))
    first = np.ones(len(u), dtype=bool)
    first[1:] = (docs[order][1:] != docs[order][:-1]) | (u[order][1:] != u[order][:-1])
    distinct = np.bincount(docs[order], weights=first.astype(float), minlength=len(texts))
    return {
        "length": n.astype(float),
        "rarity": per_doc(surprisal),  # mean unigram surprisal
        # compressed / raw size: repetitive, formulaic text compresses well (easy)
        "compression": np.array([len(zlib.compress(t.encode())) / len(t.encode()) if t else 0.0 for t in texts]),
        # root type-token ratio (Guiraud): robust to length
        "diversity": np.divide(distinct, np.sqrt(n), out=np.zeros(len(texts)), where=n > 0),
        "perplexity": per_doc(-np.log(p)),  # log perplexity = mean negative log-likelihood
    }


def score_texts(texts: list[str]) -> dict[str, np.ndarray]:
    """Both passes over one in-memory list (small corpora, tests)."""
    return score_batch(texts, NgramCounts().update(texts))


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


def random_order(n: int, cfg: CurriculumConfig) -> tuple[np.ndarray, np.ndarray]:
    """(indices, pacing step of each position) of an unscored random order: a seeded uniform
    shuffle, `ceil(n / steps)` documents per step. With random difficulty the paced order of
    `order_documents` is a uniformly random permutation too, so this is the same baseline in
    distribution, at the cost of one shuffle instead of scoring every document."""
    order = np.random.default_rng(cfg.seed).permutation(n).astype(np.int64)
    per_step = max(1, math.ceil(n / cfg.steps))
    return order, np.arange(n, dtype=np.int64) // per_step

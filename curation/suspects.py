"""Suspect labels by confident learning (Northcutt et al. 2021) on out-of-fold probabilities of a
small text classifier: hashed word uni+bigram counts (sublinear tf, L2-normalised), multinomial
logistic regression with L2 (scipy L-BFGS), K-fold out-of-fold predictions.

An item is suspect when its confident label (the most probable class among those clearing their
class's average self-confidence threshold, Northcutt et al. eq. 2; the argmax when none does)
differs from its given label; the ranking score is the self-confidence p(given label | text):
lower is more suspect.
"""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

_TOKEN = re.compile(r"\w+", re.UNICODE)


def hashed_features(texts: list[str], n_features: int = 1 << 16) -> sparse.csr_matrix:
    """Word unigrams and bigrams hashed (crc32, stable across runs) into n_features columns."""
    rows, cols = [], []
    for i, t in enumerate(texts):
        w = _TOKEN.findall(t.lower())
        grams = w + [a + " " + b for a, b in itertools.pairwise(w)]
        rows.extend([i] * len(grams))
        cols.extend(zlib.crc32(g.encode()) % n_features for g in grams)
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), n_features))
    x.sum_duplicates()
    x.data = 1 + np.log(x.data)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.diags(1 / np.maximum(norms, 1e-12)) @ x


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logreg(x: sparse.csr_matrix, y: np.ndarray, k: int, l2: float = 1e-3, max_iter: int = 200) -> np.ndarray:
    """Multinomial logistic regression weights (d + 1, k), mean cross-entropy + l2/2 |W|^2."""
    n, d = x.shape
    onehot = np.eye(k)[y]

    def fun(w):
        W = w.reshape(d + 1, k)
        p = _softmax(x @ W[:-1] + W[-1])
        loss = -np.sum(onehot * np.log(p + 1e-12)) / n + 0.5 * l2 * np.sum(W[:-1] ** 2)
        g = p - onehot
        grad = np.vstack([x.T @ g / n + l2 * W[:-1], g.sum(axis=0) / n])
        return loss, grad.ravel()

    r = minimize(fun, np.zeros((d + 1) * k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return r.x.reshape(d + 1, k)


def out_of_fold_probabilities(x: sparse.csr_matrix, y: np.ndarray, k: int, folds: int = 5, seed: int = 0
                              ) -> np.ndarray:
    n = x.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    probs = np.zeros((n, k))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        W = fit_logreg(x[train], y[train], k)
        probs[test] = _softmax(x[test] @ W[:-1] + W[-1])
    return probs


def find_suspects(probs: np.ndarray, given: np.ndarray) -> dict[str, np.ndarray]:
    """Confident-learning suspects: (mask, suggested label, self-confidence score)."""
    n, k = probs.shape
    thresholds = np.array([probs[given == j, j].mean() if np.any(given == j) else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :]
    masked = np.where(above, probs, -1.0)
    # Nothing clears its threshold (a well-separated classifier sets them high): fall back to the
    # argmax, i.e. cleanlab's "predicted != given" rule for those items.
    confident = np.where(above.any(axis=1), masked.argmax(axis=1), probs.argmax(axis=1))
    suspect = confident != given
    self_conf = probs[np.arange(n), given]
    return {"suspect": suspect, "suggested": confident, "score": self_conf, "thresholds": thresholds}

"""Consensus labels: majority vote, and Dawid-Skene EM that weighs annotators by estimated accuracy.

Dawid & Skene 1979: latent true class per item, a confusion matrix per annotator; EM from the
majority-vote posterior. Ratings: items x annotators of category codes, -1 where missing.
"""

from __future__ import annotations

import numpy as np


def majority_vote(ratings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, confidence = winning share, tie flag); -1 for items nobody rated. Ties go to the
    lowest code, deterministically, and are flagged."""
    counts = np.zeros((len(ratings), k))
    for j in range(ratings.shape[1]):
        r = ratings[:, j]
        ok = r >= 0
        np.add.at(counts, (np.flatnonzero(ok), r[ok]), 1)
    total = counts.sum(axis=1)
    label = np.where(total > 0, counts.argmax(axis=1), -1)
    top = counts.max(axis=1)
    tie = (counts == top[:, None]).sum(axis=1) > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(total > 0, top / total, 0.0)
    return label, conf, tie & (total > 0)


def dawid_skene(ratings: np.ndarray, k: int, max_iter: int = 100, tol: float = 1e-8, smoothing: float = 0.01
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, posterior confidence, per-annotator accuracy estimates)."""
    n, m = ratings.shape
    counts = np.zeros((n, k))
    for j in range(m):
        ok = ratings[:, j] >= 0
        np.add.at(counts, (np.flatnonzero(ok), ratings[ok, j]), 1)
    rated = counts.sum(axis=1) > 0
    T = np.where(rated[:, None], counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), 1.0 / k)
    prev = None
    for _ in range(max_iter):
        prior = (T.sum(axis=0) + smoothing) / (n + k * smoothing)
        conf = np.full((m, k, k), smoothing)
        for j in range(m):
            ok = ratings[:, j] >= 0
            for c in range(k):
                sel = ok & (ratings[:, j] == c)
                conf[j][:, c] += T[sel].sum(axis=0)
        conf /= conf.sum(axis=2, keepdims=True)
        log_t = np.tile(np.log(prior), (n, 1))
        for j in range(m):
            ok = ratings[:, j] >= 0
            log_t[ok] += np.log(conf[j][:, ratings[ok, j]]).T
        log_t -= log_t.max(axis=1, keepdims=True)
        T = np.exp(log_t)
        T /= T.sum(axis=1, keepdims=True)
        if prev is not None and np.abs(T - prev).max() < tol:
            break
        prev = T
    accuracy = np.array([float(np.sum(np.diag(conf[j]) * prior)) for j in range(m)])
    label = np.where(rated, T.argmax(axis=1), -1)
    return label, np.where(rated, T.max(axis=1), 0.0), accuracy

"""Suspect labels: confident learning (Northcutt et al. 2021, JAIR 70) on out-of-fold
probabilities of two text classifiers, with the libraries made for each part.

- scikit-learn: TF-IDF features, the classifiers and the K-fold out-of-fold probabilities.
  Two views averaged: logistic regression on word 1-2-grams (C=10, the usual cleanlab text
  baseline) and a calibrated linear SVM on word + character 2-5-grams, which catches what the
  word view misses (identifiers, morphology, markup).
- cleanlab: the confident joint and its pruning (`filter_by="both"`: an item is flagged only when
  both the per-class and the noise-rate rules agree, the precision-leaning choice), and the
  self-confidence score that ranks the list.

Measured on real text (bench/labels_bench.py: 2,040 docstrings of six libraries, 5/8/15% flips),
this ensemble + "both" has precision 0.79-0.81 where cleanlab's default on the single word model
has 0.63-0.74, at equal or higher F1.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class SuspectConfig:
    folds: int = 5
    seed: int = 0
    workers: int = 0  # processes for the folds; 0 = one per core, at most `folds`
    filter_by: str = "both"  # cleanlab's pruning rule

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if self.filter_by not in ("both", "prune_by_noise_rate", "prune_by_class", "confident_learning",
                                  "predicted_neq_given"):
            raise ValueError(f"filter_by {self.filter_by!r} is not one of cleanlab's rules")


def _features(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    min_df = 2 if len(texts) >= 100 else 1
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                            min_df=min_df).fit_transform(texts)
    return words, sparse.hstack([words, chars]).tocsr()


def out_of_fold_probabilities(texts: list[str], y: np.ndarray, k: int, cfg: SuspectConfig = SuspectConfig()
                              ) -> np.ndarray:
    """(n, k) probabilities, each row from models that never saw that item."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.svm import LinearSVC

    counts = np.bincount(y, minlength=k)
    folds = int(min(cfg.folds, counts.min()))
    if folds < 2:
        raise ValueError("every class needs at least 2 items for out-of-fold probabilities")
    cv = StratifiedKFold(folds, shuffle=True, random_state=cfg.seed)
    jobs = cfg.workers or min(folds, os.cpu_count() or 1)
    words, both = _features(texts)
    # newton-cg: the same convex optimum as lbfgs (probabilities within 0.003), 4x faster on wide
    # TF-IDF here (scipy 1.17's L-BFGS-B update dominated: 4.0 vs 1.0 s per fold, 180k features)
    lr = LogisticRegression(C=10, max_iter=1000, solver="newton-cg")
    probs = cross_val_predict(lr, words, y, cv=cv, method="predict_proba", n_jobs=jobs)
    # The SVM's calibration splits each training fold in 3: it needs a few items per class.
    if counts.min() >= 10:
        svm = CalibratedClassifierCV(LinearSVC(C=0.5), cv=3)
        probs = (probs + cross_val_predict(svm, both, y, cv=cv, method="predict_proba", n_jobs=jobs)) / 2
    return probs


def find_suspects(probs: np.ndarray, given: np.ndarray, filter_by: str = "both") -> dict[str, np.ndarray]:
    """Confident-learning suspects: mask, suggested label (the most probable other class) and
    score (self-confidence p(given | text): lower is more suspect)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():  # cleanlab warns, per class, when a class is never predicted
        warnings.simplefilter("ignore", UserWarning)
        suspect = find_label_issues(given, probs, filter_by=filter_by, n_jobs=1)
    score = get_label_quality_scores(given, probs, method="self_confidence")
    other = probs.copy()
    other[np.arange(len(given)), given] = -1.0
    return {"suspect": suspect, "suggested": other.argmax(axis=1), "score": score}


def suspect_labels(texts: list[str], y: np.ndarray, k: int, cfg: SuspectConfig = SuspectConfig()
                   ) -> dict[str, np.ndarray]:
    """Suspects among `texts` with given label codes `y` (0..k-1), plus the probabilities."""
    probs = out_of_fold_probabilities(texts, y, k, cfg)
    return find_suspects(probs, y, cfg.filter_by) | {"probs": probs}

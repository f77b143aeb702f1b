"""Inter-annotator agreement: Cohen's kappa per pair (with SE and CI), Fleiss' kappa, Krippendorff's
alpha (nominal, missing ratings allowed, bootstrap CI), per-class agreement, agreement with consensus.

Input is a ratings matrix: items x annotators of category codes (int), -1 where missing.
How to read alpha (Krippendorff 2004, sec. 11.3): >= 0.8 reliable; 0.667-0.8 tentative conclusions
only; below 0.667, not reliable.
"""

from __future__ import annotations

import itertools

import numpy as np

READING = ("Krippendorff's alpha >= 0.8: reliable; 0.667-0.8: tentative conclusions only; "
           "< 0.667: not reliable (Krippendorff 2004). Kappa reads the same way on its own scale.")


def cohen_kappa(a: np.ndarray, b: np.ndarray, k: int, level: float = 0.95) -> dict:
    """Cohen 1960 on the items both raters labelled; SE by Cohen's large-sample approximation
    sqrt(po (1 - po) / (n (1 - pe)^2))."""
    mask = (a >= 0) & (b >= 0)
    a, b = a[mask], b[mask]
    n = len(a)
    if n == 0:
        return {"kappa": None, "n": 0, "se": None, "ci": None}
    po = float(np.mean(a == b))
    pa = np.bincount(a, minlength=k) / n
    pb = np.bincount(b, minlength=k) / n
    pe = float(pa @ pb)
    if pe >= 1:
        return {"kappa": 1.0 if po == 1 else 0.0, "n": n, "se": 0.0, "ci": [1.0, 1.0]}
    kappa = (po - pe) / (1 - pe)
    se = float(np.sqrt(po * (1 - po) / (n * (1 - pe) ** 2)))
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    return {"kappa": float(kappa), "n": n, "se": se, "ci": [kappa - z * se, kappa + z * se]}


def fleiss_kappa(ratings: np.ndarray, k: int) -> float | None:
    """Fleiss 1971; needs the same number of ratings on every item (else None)."""
    per_item = (ratings >= 0).sum(axis=1)
    if len(per_item) == 0 or per_item.min() != per_item.max() or per_item[0] < 2:
        return None
    m = int(per_item[0])
    counts = np.zeros((len(ratings), k))
    for j in range(ratings.shape[1]):
        r = ratings[:, j]
        ok = r >= 0
        np.add.at(counts, (np.flatnonzero(ok), r[ok]), 1)
    p_i = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / counts.sum()
    pe = float((p_j ** 2).sum())
    return float((p_bar - pe) / (1 - pe)) if pe < 1 else 1.0


def _counts(ratings: np.ndarray, k: int) -> np.ndarray:
    counts = np.zeros((len(ratings), k))
    for j in range(ratings.shape[1]):
        r = ratings[:, j]
        ok = r >= 0
        np.add.at(counts, (np.flatnonzero(ok), r[ok]), 1)
    return counts


def _coincidence(ratings: np.ndarray, k: int) -> np.ndarray:
    """Krippendorff's coincidence matrix over pairable items (>= 2 ratings):
    o = sum_i (c_i c_i^T - diag(c_i)) / (m_i - 1), vectorised over items."""
    c = _counts(ratings, k)
    m = c.sum(axis=1)
    w = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return (c * w[:, None]).T @ c - np.diag((c * w[:, None]).sum(axis=0))


def krippendorff_alpha(ratings: np.ndarray, k: int) -> float | None:
    """Nominal alpha = 1 - D_o / D_e from the coincidence matrix (Krippendorff 2011)."""
    o = _coincidence(ratings, k)
    n = o.sum()
    if n <= 1:
        return None
    n_c = o.sum(axis=1)
    d_o = (n - np.trace(o)) / n
    d_e = (n * n - (n_c ** 2).sum()) / (n * (n - 1))
    return float(1 - d_o / d_e) if d_e > 0 else 1.0


def alpha_bootstrap_ci(ratings: np.ndarray, k: int, n_boot: int = 500, seed: int = 0,
                       level: float = 0.95) -> list[float] | None:
    """Percentile CI of alpha from resampling items with replacement."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(ratings), len(ratings))
        a = krippendorff_alpha(ratings[idx], k)
        if a is not None:
            vals.append(a)
    if not vals:
        return None
    return [float(np.percentile(vals, (1 - level) / 2 * 100)), float(np.percentile(vals, (1 + level) / 2 * 100))]


def per_class_agreement(ratings: np.ndarray, k: int) -> np.ndarray:
    """Specific agreement per class: 2 x agreeing pairs on c / pairs involving c (Fleiss 1971)."""
    o = _coincidence(ratings, k)
    tot = o.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, np.diag(o) / tot, np.nan)


def agreement_report(ratings: np.ndarray, annotators: list[str], classes: list[str], consensus: np.ndarray,
                     n_boot: int = 500, seed: int = 0) -> dict:
    """Every agreement figure, ready to store and print."""
    k = len(classes)
    pairs = []
    for i, j in itertools.combinations(range(len(annotators)), 2):
        r = cohen_kappa(ratings[:, i], ratings[:, j], k)
        if r["n"]:
            pairs.append({"a": annotators[i], "b": annotators[j], **r})
    with_consensus = []
    for j, name in enumerate(annotators):
        mask = (ratings[:, j] >= 0) & (consensus >= 0)
        if mask.any():
            with_consensus.append({"annotator": name, "n": int(mask.sum()),
                                   "agreement": float(np.mean(ratings[mask, j] == consensus[mask])),
                                   "kappa": cohen_kappa(ratings[:, j], consensus, k)["kappa"]})
    alpha = krippendorff_alpha(ratings, k)
    return {
        "items": len(ratings), "annotators": annotators, "classes": classes,
        "krippendorff_alpha": alpha,
        "krippendorff_alpha_ci": alpha_bootstrap_ci(ratings, k, n_boot, seed) if alpha is not None else None,
        "fleiss_kappa": fleiss_kappa(ratings, k),
        "cohen_kappa": pairs,
        "per_class": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, per_class_agreement(ratings, k))},
        "annotator_vs_consensus": with_consensus,
        "how_to_read": READING,
    }

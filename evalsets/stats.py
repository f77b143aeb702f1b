"""Per-slice figures with uncertainty, and paired comparison with a previous run."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(x: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap CI of the mean (vectorised: one (n_boot, n) index draw)."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    return [float(np.percentile(means, (1 - level) / 2 * 100)), float(np.percentile(means, (1 + level) / 2 * 100))]


def summarize(x: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """n, mean, standard error (sample std / sqrt(n)), 95% bootstrap CI."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    se = float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "metric": float(x.mean()) if n else float("nan"), "se": se, "ci": bootstrap_ci(x, n_boot, seed=seed)}


def paired(current: np.ndarray, previous: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Difference current - previous on the same items: paired bootstrap CI, and a two-sided
    p-value for "no change". Pass/fail scores (every score 0 or 1) get McNemar's exact test: a
    binomial test of the items that flipped one way against those that flipped the other
    (McNemar 1947; the exact form for small counts, Fagerland et al. 2013), from scipy. Other
    scores get the paired bootstrap's p-value (twice the share of resampled mean differences on
    the far side of 0, Efron & Tibshirani 1993, ch. 16)."""
    cur, prev = np.asarray(current, dtype=float), np.asarray(previous, dtype=float)
    d = cur - prev
    if len(d) == 0:
        return {"n": 0, "diff": float("nan"), "ci": [float("nan"), float("nan")], "p_value": None, "test": None}
    out = {"n": len(d), "diff": float(d.mean()), "ci": bootstrap_ci(d, n_boot, seed=seed)}
    if np.isin(cur, (0.0, 1.0)).all() and np.isin(prev, (0.0, 1.0)).all():
        from scipy.stats import binomtest  # lazy: scipy.stats costs ~0.5 s to import, every eval would pay it

        worse, better = int(((prev == 1) & (cur == 0)).sum()), int(((prev == 0) & (cur == 1)).sum())
        p = binomtest(worse, worse + better, 0.5).pvalue if worse + better else 1.0
        out.update(p_value=float(p), test="McNemar exact", flips={"worse": worse, "better": better})
    else:
        rng = np.random.default_rng(seed)
        means = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
        tail = min((means <= 0).mean(), (means >= 0).mean()) if d.any() else 0.5
        out.update(p_value=float(min(1.0, 2 * tail)), test="paired bootstrap")
    return out

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
    """Difference current - previous on the same items, with a paired bootstrap CI."""
    d = np.asarray(current, dtype=float) - np.asarray(previous, dtype=float)
    if len(d) == 0:
        return {"n": 0, "diff": float("nan"), "ci": [float("nan"), float("nan")]}
    return {"n": len(d), "diff": float(d.mean()), "ci": bootstrap_ci(d, n_boot, seed=seed)}

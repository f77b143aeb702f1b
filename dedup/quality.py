"""A cheap heuristic quality score for the `quality` keep policy (higher is better).

Gopher-style signals (Rae et al. 2021, app. A): share of alphabetic words, mean word length in a
natural range, few repeated lines, enough words. Not a learned classifier; say so when used.
"""

from __future__ import annotations

import numpy as np


def quality_score(text: str) -> float:
    words = text.split()
    if not words:
        return 0.0
    alpha = sum(any(c.isalpha() for c in w) for w in words) / len(words)
    mean_len = sum(map(len, words)) / len(words)
    len_ok = 1.0 if 3 <= mean_len <= 10 else 0.5
    lines = [ln for ln in text.splitlines() if ln.strip()]
    dup_lines = 1 - len(set(lines)) / len(lines) if lines else 0.0
    size = min(1.0, np.log1p(len(words)) / np.log1p(200))
    return float(alpha * len_ok * (1 - dup_lines) * (0.5 + 0.5 * size))

"""Curriculum plot (rendered to PNG bytes; writing it is the caller's business)."""

from __future__ import annotations

import io

import numpy as np

from curation.curriculum import CurriculumConfig, competence


def plot_curriculum(difficulty: np.ndarray, cfg: CurriculumConfig) -> bytes:
    """PNG: the difficulty histogram and the pacing curves (the chosen one drawn thick)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.hist(difficulty, bins=40, color="C0")
    a.set(xlabel="combined difficulty (mean percentile rank)", ylabel="documents", title="difficulty distribution")
    t = np.linspace(0, cfg.steps, 200)
    for p in ("linear", "sqrt", "step", "exponential"):
        c = CurriculumConfig(**{**cfg.as_dict(), "pacing": p, "weights": cfg.weights})
        b.plot(t, competence(t, c), label=p, lw=2.5 if p == cfg.pacing else 1)
    b.set(xlabel="training step", ylabel="competence (fraction of data available)", title="pacing")
    b.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

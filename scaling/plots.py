"""PNG plots of a fit: observations against the law, residuals, isoFLOP profiles with the optimum."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scaling.laws import ChinchillaLaw
from scaling.observations import Observations


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def plot_fit(obs: Observations, law) -> dict[str, bytes]:
    """fit.png, residuals.png and (Chinchilla form) isoflop.png, as PNG bytes by file name."""
    pngs: dict[str, bytes] = {}
    C = 6 * obs.N * obs.D  # C = 6 N D (Kaplan et al. 2020, sec. 2.1)
    sizes = np.unique(obs.N)
    cmap = plt.get_cmap("viridis")
    norm = matplotlib.colors.LogNorm(vmin=sizes.min(), vmax=sizes.max()) if len(sizes) > 1 else None

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sc = ax.scatter(C, obs.loss, c=obs.N, cmap=cmap, norm=norm, s=14, label="observed")
    for n in sizes[:: max(1, len(sizes) // 8)]:
        d = np.geomspace(obs.D.min(), obs.D.max() * 2, 100)
        ax.plot(6 * n * d, law.predict_loss(np.full_like(d, n), d), color=cmap(norm(n)) if norm else "C0", lw=1)
    ax.set(xscale="log", xlabel="training compute C = 6ND (FLOP)", ylabel="loss", title=f"{law.name}: fit vs data")
    fig.colorbar(sc, ax=ax, label="parameters N")
    fig.tight_layout()
    pngs["fit.png"] = _png(fig)

    pred = law.predict_loss(obs.N, obs.D, obs.U) if obs.U is not None and law.kind == "data-constrained" \
        else law.predict_loss(obs.N, obs.D)
    residuals = np.log(pred) - np.log(obs.loss)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.scatter(C, residuals, c=obs.N, cmap=cmap, norm=norm, s=12)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="C (FLOP)", ylabel="log(predicted) - log(observed)", title="residuals")
    fig.tight_layout()
    pngs["residuals.png"] = _png(fig)

    if isinstance(law, ChinchillaLaw):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for c in np.geomspace(C.min(), C.max(), 5):
            n_opt = law.G * (c / 6) ** law.a_exponent  # Hoffmann et al. 2022, eq. 4
            n = n_opt * np.geomspace(1 / 30, 30, 200)
            ax.plot(n, law.predict_loss(n, c / (6 * n)), label=f"C = {c:.1e}")
            ax.scatter([n_opt], [law.predict_loss(n_opt, c / (6 * n_opt))], color="k", zorder=3, s=18)
        ax.set(xscale="log", xlabel="parameters N", ylabel="loss", title="isoFLOP profiles (dots: fitted optimum)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        pngs["isoflop.png"] = _png(fig)
    return pngs

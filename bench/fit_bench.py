"""Scaling-law fit speed: the plain scipy loop vs Taomi's fitter, same data, same process.

    python bench/fit_bench.py [--data ../shared/data/chinchilla_svg_extracted.csv] [--boot 1000]

Baseline: scipy L-BFGS-B from every one of Hoffmann's 4,500 starts with numeric gradients (what
the published notebooks do). Targets (issue 5): the full grid fit >= 20x faster; 1000 bootstrap
refits in under 10 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scaling.fit import ChinchillaFitter, FitConfig, hoffmann_grid, huber
from scaling.observations import from_frame


def plain_loop(x, y, logl, delta=1e-3):
    def obj(t):
        a, b, e, al, be = t
        lse = np.logaddexp(np.logaddexp(a - al * x, b - be * y), e)
        return huber(lse - logl, delta).sum()

    best = (np.inf, None)
    for s in hoffmann_grid():
        r = minimize(obj, s, method="L-BFGS-B")
        if r.fun < best[0]:
            best = (r.fun, r.x)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/chinchilla_svg_extracted.csv"))
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    df = pd.read_csv(args.data)
    obs = from_frame(df[["Model Size", "Training FLOP", "loss"]])
    keep = np.sort(np.argsort(obs.loss)[: len(obs) - 5])
    o = obs.subset(keep)

    t = time.perf_counter()
    f_plain, theta_plain = plain_loop(np.log(o.N), np.log(o.D), np.log(o.loss))
    t_plain = time.perf_counter() - t

    t = time.perf_counter()
    fitter = ChinchillaFitter(FitConfig(drop_outliers=5)).fit(obs)
    t_ours = time.perf_counter() - t

    t = time.perf_counter()
    fitter.bootstrap(obs, n=args.boot, seed=0)
    t_boot = time.perf_counter() - t

    a, b, e, al, be = theta_plain
    print(f"data: {args.data} ({len(o)} points after dropping 5 highest-loss)")
    print(f"plain scipy loop, 4,500 starts, numeric gradients: {t_plain:7.2f} s  objective {f_plain:.8e}  "
          f"A={np.exp(a):.1f} B={np.exp(b):.0f} E={np.exp(e):.4f} alpha={al:.4f} beta={be:.4f}")
    p = fitter.params_
    print(f"taomi grid fit (broadcast grid + 40 analytic polishes): {t_ours:7.3f} s  objective {fitter.objective_:.8e}  "
          f"A={p['A']:.1f} B={p['B']:.0f} E={p['E']:.4f} alpha={p['alpha']:.4f} beta={p['beta']:.4f}")
    print(f"speed-up: {t_plain / t_ours:.1f}x (target >= 20x)")
    print(f"{args.boot} bootstrap refits: {t_boot:.2f} s (target < 10 s)")
    print("95% CIs: " + ", ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in fitter.ci_.items()))


if __name__ == "__main__":
    main()

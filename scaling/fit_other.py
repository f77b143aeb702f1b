"""Fits of the Kaplan joint form and the data-constrained form (same Huber-on-log-loss objective).

These have fewer published fitting conventions, so: a small multi-start grid in log space,
L-BFGS-B with numeric gradients, best objective wins. The Chinchilla form has the fast,
analytic path in scaling/fit.py.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from scaling.fit import ChinchillaFitter, FitConfig, huber
from scaling.laws import ChinchillaLaw, DataConstrainedLaw, KaplanLaw
from scaling.observations import Observations


def _multistart(fun, starts: np.ndarray) -> tuple[np.ndarray, float, int]:
    results = []
    for s in starts:
        r = minimize(fun, s, method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 5000})
        results.append((float(r.fun), r.x))
    results.sort(key=lambda q: q[0])
    best_f, best_x = results[0]
    n_at = sum(1 for f, _ in results if f - best_f <= max(abs(best_f) * 1e-6, 1e-15))
    return best_x, best_f, n_at


def _set_fitted(est, objective: float, n_at: int, n_starts: int, obs: Observations, residuals: np.ndarray):
    """The estimator attributes every fitter sets (scikit-learn convention), after `law_`."""
    est.params_ = est.law_.params()
    est.objective_ = objective
    est.n_at_best_ = n_at
    est.n_starts_ = n_starts
    est.converged_ = n_at >= 2
    est.n_points_ = len(obs)
    est.residuals_ = residuals
    return est


class KaplanFitter:
    """Fits log N_c, log D_c, alpha_N, alpha_D (and L_inf if `irreducible`)."""

    def __init__(self, delta: float = 1e-3, irreducible: bool = False):
        self.delta = delta
        self.irreducible = irreducible

    def fit(self, obs: Observations) -> KaplanFitter:
        x, y, logl = np.log(obs.N), np.log(obs.D), np.log(obs.loss)
        w = obs.weight if obs.weight is not None else np.ones(len(obs))

        def unpack(z):
            ln_nc, ln_dc, an, ad = z[:4]
            linf = np.exp(z[4]) if self.irreducible else 0.0
            return ln_nc, ln_dc, an, ad, linf

        def fun(z):
            ln_nc, ln_dc, an, ad, linf = unpack(z)
            if an <= 0 or ad <= 0:
                return 1e6
            t1 = (an / ad) * (ln_nc - x)
            t2 = ln_dc - y
            inner = np.logaddexp(t1, t2)
            pred = np.exp(ad * inner) + linf
            r = np.log(pred) - logl
            return float((w * huber(r, self.delta)).sum())

        grid = [np.log([1e12, 1e13, 1e14]), np.log([1e12, 1e13, 1e14]), [0.05, 0.1, 0.3], [0.05, 0.1, 0.3]]
        if self.irreducible:
            grid.append(np.log([0.5, 1.5]))
        starts = np.array(list(itertools.product(*grid)), dtype=float)
        z, f, n_at = _multistart(fun, starts)
        ln_nc, ln_dc, an, ad, linf = unpack(z)
        self.law_ = KaplanLaw(N_c=float(np.exp(ln_nc)), D_c=float(np.exp(ln_dc)), alpha_N=float(an),
                              alpha_D=float(ad), L_inf=float(linf), name="fit-kaplan")
        return _set_fitted(self, f, n_at, len(starts), obs, np.log(self.law_.predict_loss(obs.N, obs.D)) - logl)


class DataConstrainedFitter:
    """Fits the base Chinchilla law on the points without repetition (U >= D) with the fast
    fitter, then R_D* and R_N* on all points with the base law held fixed (Muennighoff et al.
    2023 fit the decay constants the same way, on top of a base law)."""

    def __init__(self, delta: float = 1e-3):
        self.delta = delta

    def fit(self, obs: Observations) -> DataConstrainedFitter:
        if obs.U is None:
            raise ValueError("the data-constrained law needs a unique-tokens column U")
        fresh = obs.U >= obs.D
        if fresh.sum() < 6:
            raise ValueError(f"need >= 6 points trained without repetition (U >= D) to fit the base law; "
                             f"got {int(fresh.sum())}")
        base_fit = ChinchillaFitter(FitConfig(delta=self.delta)).fit(obs.subset(np.flatnonzero(fresh)))
        base: ChinchillaLaw = base_fit.law_
        logl = np.log(obs.loss)
        w = obs.weight if obs.weight is not None else np.ones(len(obs))

        def fun(z):
            law = DataConstrainedLaw(base=base, R_D_star=float(np.exp(z[0])), R_N_star=float(np.exp(z[1])))
            r = np.log(law.predict_loss(obs.N, obs.D, obs.U)) - logl
            return float((w * huber(r, self.delta)).sum())

        starts = np.log(np.array(list(itertools.product([2, 15, 60], [1, 5, 30])), dtype=float))
        z, f, n_at = _multistart(fun, starts)
        self.law_ = DataConstrainedLaw(base=base, R_D_star=float(np.exp(z[0])), R_N_star=float(np.exp(z[1])),
                                       name="fit-data-constrained")
        return _set_fitted(self, f, n_at, len(starts), obs,
                           np.log(self.law_.predict_loss(obs.N, obs.D, obs.U)) - logl)

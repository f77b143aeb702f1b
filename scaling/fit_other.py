"""Fits of the Kaplan joint form and the data-constrained form (same Huber-on-log-loss objective).

These have fewer published fitting conventions, so: a small multi-start grid in log space,
L-BFGS-B with numeric gradients, best objective wins. The Chinchilla form has the fast,
analytic path in scaling/fit.py.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from scaling.fit import ChinchillaFitter, FitConfig, huber, one_blas_thread
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
    """Staged, then joint (Muennighoff et al. 2023 fit the decay constants on top of a base law):

    1. the base Chinchilla law on the points its own decay terms leave untouched: no repetition
       (U >= D) and no excess parameters (N <= U_N, the compute-optimal size for U tokens),
       iterated because U_N depends on the base law;
    2. R_D* and R_N* on all points with that base held fixed;
    3. all seven parameters refined together on all points, from the staged solution.

    `bootstrap(obs, n)` refits resamples (stages 1-2) for percentile CIs of every parameter.
    `fixed`: R_D_star and/or R_N_star pinned (e.g. the paper's 15.387756 and 5.309743), so a
    small sweep fits only the base law and whichever constant is free."""

    FIXABLE = ("R_D_star", "R_N_star")

    def __init__(self, delta: float = 1e-3, fixed: dict[str, float] | None = None):
        self.delta = delta
        self.fixed = dict(fixed or {})
        bad = sorted(set(self.fixed) - set(self.FIXABLE))
        if bad:
            raise ValueError(f"the data-constrained fit can pin {' and '.join(self.FIXABLE)}, not {', '.join(bad)}")
        for k, v in self.fixed.items():
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{k} must be a positive number, got {v}")

    def _decay(self, z) -> tuple[float, float]:
        """(R_D*, R_N*) from the free log-parameters z, the pinned ones from `fixed`."""
        it = iter(z)
        return tuple(self.fixed[k] if k in self.fixed else float(np.exp(next(it))) for k in self.FIXABLE)

    def _staged(self, obs: Observations) -> DataConstrainedLaw:
        from scaling.laws import _u_n

        keep = obs.U >= obs.D
        for _ in range(5):
            if keep.sum() < 6:
                raise ValueError(f"need >= 6 points trained without repetition or excess parameters (U >= D, N "
                                 f"<= the compute-optimal size for U) to fit the base law; got {int(keep.sum())}")
            base = ChinchillaFitter(FitConfig(delta=self.delta)).fit(obs.subset(np.flatnonzero(keep))).law_
            new = (obs.U >= obs.D) & (obs.N <= _u_n(base, obs.U) * (1 + 1e-9))
            if new.sum() < 6 or np.array_equal(new, keep):
                break
            keep = new
        self.base_points_ = int(keep.sum())
        logl = np.log(obs.loss)
        w = obs.weight if obs.weight is not None else np.ones(len(obs))

        def fun(z):
            rd, rn = self._decay(z)
            law = DataConstrainedLaw(base=base, R_D_star=rd, R_N_star=rn)
            r = np.log(law.predict_loss(obs.N, obs.D, obs.U)) - logl
            return float((w * huber(r, self.delta)).sum())

        grids = [g for k, g in zip(self.FIXABLE, ([2, 15, 60], [1, 5, 30])) if k not in self.fixed]
        if not grids:
            rd, rn = self._decay(())
            return DataConstrainedLaw(base=base, R_D_star=rd, R_N_star=rn)
        starts = np.log(np.array(list(itertools.product(*grids)), dtype=float))
        z, _, _ = _multistart(fun, starts)
        rd, rn = self._decay(z)
        return DataConstrainedLaw(base=base, R_D_star=rd, R_N_star=rn)

    def fit(self, obs: Observations) -> DataConstrainedFitter:
        if obs.U is None:
            raise ValueError("the data-constrained law needs a unique-tokens column U")
        staged = self._staged(obs)
        logl = np.log(obs.loss)
        w = obs.weight if obs.weight is not None else np.ones(len(obs))

        def unpack(z):
            base = ChinchillaLaw(A=float(np.exp(z[0])), B=float(np.exp(z[1])), E=float(np.exp(z[2])),
                                 alpha=float(z[3]), beta=float(z[4]))
            rd, rn = self._decay(z[5:])
            return DataConstrainedLaw(base=base, R_D_star=rd, R_N_star=rn)

        def fun(z):
            if z[3] <= 0 or z[4] <= 0:
                return 1e6
            r = np.log(unpack(z).predict_loss(obs.N, obs.D, obs.U)) - logl
            return float((w * huber(r, self.delta)).sum())

        b = staged.base
        z0 = np.array([np.log(b.A), np.log(b.B), np.log(b.E), b.alpha, b.beta,
                       *[np.log(v) for k, v in zip(self.FIXABLE, (staged.R_D_star, staged.R_N_star))
                         if k not in self.fixed]])
        z, f, n_at = _multistart(fun, np.array([z0]))
        if f > fun(z0):  # the joint polish never makes it worse
            z, f = z0, fun(z0)
        law = unpack(z)
        self.law_ = DataConstrainedLaw(base=law.base, R_D_star=law.R_D_star, R_N_star=law.R_N_star,
                                       name="fit-data-constrained")
        out = _set_fitted(self, f, max(n_at, 2), 1, obs, np.log(self.law_.predict_loss(obs.N, obs.D, obs.U)) - logl)
        return out

    @one_blas_thread
    def bootstrap(self, obs: Observations, n: int = 200, seed: int = 0, level: float = 0.95,
                  progress=None) -> DataConstrainedFitter:
        rng = np.random.default_rng(seed)
        rows = []
        self.degenerate_ = 0
        for k in range(n):
            idx = rng.integers(0, len(obs), len(obs))
            try:
                law = self._staged(obs.subset(idx))
            except ValueError:
                self.degenerate_ += 1
                continue
            rows.append([*law.base.params().values(), law.R_D_star, law.R_N_star])
            if progress:
                progress(k + 1, n)
        if len(rows) < max(10, n // 2):
            raise ValueError(f"{self.degenerate_} of {n} bootstrap refits failed: too few points without repetition")
        arr = np.array(rows)
        names = [*self.law_.base.params(), "R_D_star", "R_N_star"]
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        self.ci_ = {k: (float(np.percentile(arr[:, i], lo)), float(np.percentile(arr[:, i], hi)))
                    for i, k in enumerate(names)}
        self.poorly_determined_ = [k for k, (a, b) in self.ci_.items() if b / max(a, 1e-300) > 2.0]
        return self

"""Fit the Chinchilla form to observations: Hoffmann's method, fast and honest.

Objective (Hoffmann et al. 2022, sec. 3.3 / app. D.2): the SUM over points of Huber_delta(r_i),
delta = 1e-3, r_i = LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i, with A = e^a, B = e^b,
E = e^e. Multi-start over Hoffmann's grid (4,500 starts). The objective is evaluated on all
starts in one numpy broadcast and only the best `n_polish` are polished by L-BFGS-B with the
analytic gradient; the best objective wins, whatever each start's "success" flag says.

The likelihood variant (Besiroglu et al. 2024) treats r_i / sigma as Huber-distributed with a
free scale sigma and minimises the negative log-likelihood.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

from scaling.laws import ChinchillaLaw
from scaling.observations import Observations

NAMES = ("a", "b", "e", "alpha", "beta")
GRID = {
    "a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0), "e": np.arange(-1, 1.01, 0.5),
    "alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5),
}


def one_blas_thread(method):
    """Run a fitting method with BLAS capped at one thread (threadpoolctl): a bootstrap is
    thousands of tiny problems, where OpenBLAS's default threads only contend; `taomi fit
    --bootstrap 200` took 137 s with the default threads on a busy 2-core machine and 11 s with one."""
    import functools

    @functools.wraps(method)
    def run(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return method(*args, **kwargs)
    return run


def hoffmann_grid() -> np.ndarray:
    """The 4,500 starts (a, b, e, alpha, beta) of Hoffmann et al. 2022, app. D.2."""
    return np.array(list(itertools.product(*(GRID[k] for k in NAMES))), dtype=float)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _lse_parts(theta: np.ndarray, x: np.ndarray, y: np.ndarray):
    """LSE and softmax weights for params theta (..., 5) and data x = log N, y = log D."""
    a, b, e, al, be = (theta[..., i:i + 1] for i in range(5))
    u1 = a - al * x
    u2 = b - be * y
    u3 = np.broadcast_to(e, u1.shape)
    m = np.maximum(np.maximum(u1, u2), u3)
    s1, s2, s3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(u3 - m)
    tot = s1 + s2 + s3
    return m + np.log(tot), s1 / tot, s2 / tot, s3 / tot


def grid_objective(starts: np.ndarray, x: np.ndarray, y: np.ndarray, logl: np.ndarray, w: np.ndarray,
                   delta: float) -> np.ndarray:
    """Huber objective of every start at once, (G,)."""
    lse = _lse_parts(starts, x[None, :], y[None, :])[0]
    return (w[None, :] * huber(lse - logl[None, :], delta)).sum(axis=1)


def huber_objective(theta: np.ndarray, x, y, logl, w, delta: float) -> tuple[float, np.ndarray]:
    """Objective and its analytic gradient for one parameter vector (5,)."""
    lse, p1, p2, p3 = _lse_parts(theta, x, y)
    r = lse - logl
    g = w * np.clip(r, -delta, delta)  # Huber'(r)
    grad = np.array([g @ p1, g @ p2, g @ p3, -(g * p1) @ x, -(g * p2) @ y])
    return float((w * huber(r, delta)).sum()), grad


def _log_z(delta: float) -> float:
    """log of the Huber density's normaliser: sqrt(2 pi)(1 - 2 Phi(-delta)) + 2 exp(-delta^2/2)/delta."""
    return float(np.log(np.sqrt(2 * np.pi) * (1 - 2 * norm.sf(delta)) + 2 * np.exp(-0.5 * delta * delta) / delta))


def likelihood_objective(params: np.ndarray, x, y, logl, w, delta: float) -> tuple[float, np.ndarray]:
    """Negative log-likelihood with r/sigma Huber-distributed; params = (a, b, e, alpha, beta, log sigma)."""
    theta, s = params[:5], params[5]
    sigma = np.exp(s)
    lse, p1, p2, p3 = _lse_parts(theta, x, y)
    r = lse - logl
    z = r / sigma
    hp = np.clip(z, -delta, delta)
    nll = float((w * (huber(z, delta) + s + _log_z(delta))).sum())
    g = w * hp / sigma
    grad = np.array([g @ p1, g @ p2, g @ p3, -(g * p1) @ x, -(g * p2) @ y, float((w * (1 - hp * z)).sum())])
    return nll, grad


@dataclass(frozen=True)
class FitConfig:
    """How to fit. `fixed` pins parameters (e.g. {"alpha": 0.34}); `drop_outliers` removes the
    k highest-loss points first (Epoch drop 5 of 245)."""

    method: str = "huber"  # "huber" (Hoffmann) or "likelihood" (Besiroglu et al.)
    delta: float = 1e-3
    n_polish: int = 40
    drop_outliers: int = 0
    fixed: tuple[tuple[str, float], ...] = ()
    tol: float = 1e-13

    def __post_init__(self) -> None:
        if self.method not in ("huber", "likelihood"):
            raise ValueError(f"method must be 'huber' or 'likelihood', got {self.method!r}")
        if not (self.delta > 0 and np.isfinite(self.delta)):
            raise ValueError("delta must be > 0")
        if self.n_polish < 1:
            raise ValueError("n_polish must be >= 1")
        if self.drop_outliers < 0:
            raise ValueError("drop_outliers must be >= 0")
        for k, _ in self.fixed:
            if k not in ("alpha", "beta", "E", "A", "B"):
                raise ValueError(f"can only fix alpha, beta, A, B or E, not {k!r}")


class ChinchillaFitter:
    """Estimator: `fit(obs)` sets `params_`, `law_`, `objective_`, `residuals_`, `n_at_best_`,
    `converged_`; `bootstrap(obs)` sets `ci_` and `poorly_determined_`."""

    def __init__(self, config: FitConfig = FitConfig()):
        self.config = config

    # -- helpers -----------------------------------------------------------------------------
    def _fixed_theta(self) -> dict[int, float]:
        conv = {"alpha": ("alpha", float), "beta": ("beta", float), "A": ("a", np.log),
                "B": ("b", np.log), "E": ("e", np.log)}
        out = {}
        for k, v in self.config.fixed:
            name, f = conv[k]
            out[NAMES.index(name)] = float(f(v))
        return out

    def _prepare(self, obs: Observations):
        keep = np.arange(len(obs))
        if self.config.drop_outliers:
            keep = np.sort(np.argsort(obs.loss)[: len(obs) - self.config.drop_outliers])
        o = obs.subset(keep)
        w = o.weight.astype(float) if o.weight is not None else np.ones(len(o))
        return o, np.log(o.N), np.log(o.D), np.log(o.loss), w

    def _solve(self, x, y, logl, w, starts: np.ndarray, polish_only: bool = False
               ) -> tuple[np.ndarray, float, int, bool]:
        """Polish the starts; return (best theta, best objective, starts reaching it, converged)."""
        cfg = self.config
        fixed = self._fixed_theta()
        free = [i for i in range(5) if i not in fixed]
        starts = starts.copy()
        for i, v in fixed.items():
            starts[:, i] = v

        def full(z):
            t = np.empty(5)
            t[free] = z
            for i, v in fixed.items():
                t[i] = v
            return t

        def fun(z):
            f, g = huber_objective(full(z), x, y, logl, w, cfg.delta)
            return f, g[free]

        results = []
        opts = ({"ftol": 1e-11, "gtol": 1e-8, "maxiter": 2000} if polish_only
                else {"ftol": cfg.tol, "gtol": 1e-12, "maxiter": 5000})
        for s in starts:
            r = minimize(fun, s[free], jac=True, method="L-BFGS-B", options=opts)
            results.append((float(r.fun), full(r.x), bool(r.success)))
        if not polish_only:
            distinct = {}
            for f, t, _ in sorted(results, key=lambda q: q[0]):
                distinct.setdefault(tuple(np.round(t, 3)), t)
            self.local_optima_ = np.array(list(distinct.values())[:10])
        best_f = min(f for f, _, _ in results)
        best = next(t for f, t, _ in results if f == best_f)
        tol = max(abs(best_f) * 1e-7, 1e-15)
        n_at = sum(1 for f, _, _ in results if f - best_f <= tol)
        converged = n_at >= 2 or len(results) == 1
        if cfg.method == "likelihood" and not polish_only:
            best, best_f = self._likelihood(x, y, logl, w, best, fixed)
        return best, best_f, n_at, converged

    def _likelihood(self, x, y, logl, w, theta0, fixed):
        """Minimise the Huber NLL over (theta, log sigma) from the Huber fit.

        With a small delta the NLL is nearly an absolute-deviation objective (non-smooth), and
        L-BFGS-B stalls; so it is solved by continuation, delta x 100 -> x 10 -> x 1, each stage
        started from the last (sigma shrinks with delta), keeping the lowest final NLL.
        """
        cfg = self.config
        free = [i for i in range(6) if i not in fixed]

        def solve(p0, delta):
            def fun(z):
                p = p0.copy()
                p[free] = z
                f, g = likelihood_objective(p, x, y, logl, w, delta)
                return f, g[free]

            r = minimize(fun, p0[free], jac=True, method="L-BFGS-B",
                         options={"ftol": cfg.tol, "gtol": 1e-10, "maxiter": 10000})
            p = p0.copy()
            p[free] = r.x
            return p

        r0 = _lse_parts(theta0, x, y)[0] - logl
        candidates = []
        for s0 in np.log(np.maximum([np.std(r0), np.mean(np.abs(r0)) * cfg.delta], 1e-12)):
            p = np.append(theta0, s0)
            for k in (1000.0, 100.0, 10.0, 1.0):
                p = solve(p, cfg.delta * k)
                if k > 1:
                    p[5] -= np.log(10.0)  # sigma ~ delta x mean|r| in the linear regime
            candidates.append((likelihood_objective(p, x, y, logl, w, cfg.delta)[0], p))
        f, p = min(candidates, key=lambda c: c[0])
        # The last kinks are left to a derivative-free polish (Nelder-Mead handles non-smoothness).
        def nll(z):
            q = p.copy()
            q[free] = z
            return likelihood_objective(q, x, y, logl, w, cfg.delta)[0]

        r = minimize(nll, p[free], method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000})
        if r.fun < f:
            p = p.copy()
            p[free] = r.x
            f = float(r.fun)
        self.sigma_ = float(np.exp(p[5]))
        return p[:5], f

    # -- public --------------------------------------------------------------------------------
    @one_blas_thread
    def fit(self, obs: Observations) -> ChinchillaFitter:
        t = time.perf_counter()
        o, x, y, logl, w = self._prepare(obs)
        n_free = 5 - len(self.config.fixed)
        if len(o) < n_free + 1:
            raise ValueError(f"{len(o)} points cannot determine {n_free} parameters; need at least {n_free + 1}")
        grid = hoffmann_grid()
        for i, v in self._fixed_theta().items():
            grid[:, i] = v
        obj = grid_objective(grid, x, y, logl, w, self.config.delta)
        top = grid[np.argsort(obj, kind="stable")[: self.config.n_polish]]
        theta, f, n_at, conv = self._solve(x, y, logl, w, top)
        self.theta_ = theta
        self.objective_ = f
        self.n_at_best_ = n_at
        self.n_starts_ = len(grid)
        self.converged_ = conv
        self.n_points_ = len(o)
        self.law_ = theta_to_law(theta)
        self.params_ = self.law_.params()
        self.residuals_ = np.log(self.law_.predict_loss(o.N, o.D)) - logl
        self.seconds_ = time.perf_counter() - t
        return self

    @one_blas_thread
    def bootstrap(self, obs: Observations, n: int = 1000, seed: int = 0, level: float = 0.95,
                  progress=None) -> ChinchillaFitter:
        """Refit `n` resamples (with replacement) of the points; percentile CIs per parameter and
        for the allocation exponents a = beta/(alpha+beta), b = alpha/(alpha+beta)."""
        if not hasattr(self, "theta_"):
            self.fit(obs)
        o, x, y, logl, w = self._prepare(obs)
        rng = np.random.default_rng(seed)
        # Starts per resample: the full-data optimum and the best (on the resample) of the other
        # local optima the full fit found: two short polishes instead of a 4,500-point grid per
        # refit (the grid evaluation alone costs 40 ms a refit here).
        near = self.local_optima_
        samples = []
        self.degenerate_ = 0  # resamples whose refit leaves the law's domain (E -> 0, exponent <= 0)
        t = time.perf_counter()
        for k in range(n):
            idx = rng.integers(0, len(o), len(o))
            xs, ys, ls, ws = x[idx], y[idx], logl[idx], w[idx]
            obj = grid_objective(near, xs, ys, ls, ws, self.config.delta)
            starts = np.vstack([self.theta_, near[np.argmin(obj)]])
            theta, _, _, _ = self._solve(xs, ys, ls, ws, starts, polish_only=True)
            try:
                law = theta_to_law(theta)
            except ValueError:
                self.degenerate_ += 1  # counted and reported, never fatal to the other resamples
                continue
            samples.append([law.A, law.B, law.E, law.alpha, law.beta, law.a_exponent, law.b_exponent])
            if progress:
                progress(k + 1, n)
        self.bootstrap_seconds_ = time.perf_counter() - t
        if len(samples) < max(10, n // 2):
            raise ValueError(f"{self.degenerate_} of {n} bootstrap refits left the law's domain (E -> 0 or an "
                             "exponent <= 0): these points do not determine a Chinchilla-form law")
        s = np.array(samples)
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        names = ["A", "B", "E", "alpha", "beta", "a", "b"]
        self.bootstrap_samples_ = s
        self.ci_ = {k: (float(np.percentile(s[:, i], lo)), float(np.percentile(s[:, i], hi)))
                    for i, k in enumerate(names)}
        est = {**self.params_, "a": self.law_.a_exponent, "b": self.law_.b_exponent}
        self.poorly_determined_ = [
            k for k, (l, h) in self.ci_.items()
            if (k in ("A", "B", "E") and h / max(l, 1e-300) > 2.0)
            or (k not in ("A", "B", "E") and (h - l) / max(abs(est[k]), 1e-300) > 0.5)
        ]
        if self.degenerate_ > 0.05 * n:
            self.poorly_determined_.append(f"{self.degenerate_}/{n} resamples degenerate")
        return self


def theta_to_law(theta: np.ndarray, name: str = "fit") -> ChinchillaLaw:
    a, b, e, al, be = (float(v) for v in theta)
    if al <= 0 or be <= 0:
        raise ValueError(f"the fit reached a non-positive exponent (alpha={al:.4g}, beta={be:.4g}); "
                         "the data do not determine this law")
    return ChinchillaLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=al, beta=be, name=name)

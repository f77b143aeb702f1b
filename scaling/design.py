"""A sweep designer: which runs to do next to narrow the allocation exponent's interval fastest
per FLOP, given the runs already done and the law fitted to them.

The fit minimises squared (Huber) residuals of log loss, so near its optimum the parameters
theta = (log A, log B, log E, alpha, beta) have covariance ~ sigma² (JᵀJ)⁻¹, J the Jacobian of
log L(N, D) over the runs, sigma the residual spread (floored at SIGMA_FLOOR: a near-perfect fit
to few points does not know its noise). The allocation exponent a = beta / (alpha + beta)
(N_opt ~ C^a) has variance gᵀ Cov g. Candidates are runs on isoFLOP lines (a budget C, sizes
around the fitted N_opt(C)); the design adds, one at a time, the candidate that lowers Var(a)
most per FLOP it costs (6·N·D), until the budget is spent (a greedy sequential design; Fedorov
1972 for the rank-one update). The expected interval afterwards is simulated, not linearised:
losses drawn from the current law with the fit's noise at the old and new points, refitted
`simulations` times, the 2.5-97.5% range of a, for now and after.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.fit import ChinchillaFitter, FitConfig, one_blas_thread
from scaling.laws import ChinchillaLaw
from scaling.observations import Observations

SIGMA_FLOOR = 0.005  # log-loss noise assumed at least: ~0.5%, two seeds of a small run differ by about that
SIZE_FACTORS = tuple(np.geomspace(1 / 4, 4, 7))  # sizes around N_opt(C) on each isoFLOP line
BUDGET_FACTORS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # candidate isoFLOP budgets x the largest run's compute


def _jacobian(law: ChinchillaLaw, N, D) -> np.ndarray:
    N, D = np.asarray(N, float), np.asarray(D, float)
    tn, td = law.A * N ** -law.alpha, law.B * D ** -law.beta
    L = law.E + tn + td
    return np.column_stack([tn, td, np.full_like(N, law.E), -tn * np.log(N), -td * np.log(D)]) / L[:, None]


def _grad_a(law: ChinchillaLaw) -> np.ndarray:
    s = law.alpha + law.beta
    return np.array([0, 0, 0, -law.beta / s ** 2, law.alpha / s ** 2])


def _var_a(info: np.ndarray, g: np.ndarray) -> float:
    cov = np.linalg.pinv(info + 1e-12 * np.eye(len(info)))
    return float(g @ cov @ g)


def candidates(law: ChinchillaLaw, largest_flops: float, budget: float) -> list[dict]:
    out = []
    for f in BUDGET_FACTORS:
        c = largest_flops * f
        if c > budget:
            continue
        n0 = law.G * (c / 6) ** law.a_exponent
        for k in SIZE_FACTORS:
            n = n0 * k
            out.append({"flops": c, "params": n, "tokens": c / (6 * n)})
    return out


def design(law: ChinchillaLaw, obs: Observations, budget: float, sigma: float | None = None,
           max_runs: int = 40) -> dict:
    """The runs to add (greedy, most Var(a) reduction per FLOP), and Var(a) before and after."""
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive number of FLOPs, got {budget!r}")
    logl = np.log(obs.loss)
    resid = np.log(law.predict_loss(obs.N, obs.D)) - logl
    sigma = max(float(np.std(resid)) if sigma is None else sigma, SIGMA_FLOOR)
    J = _jacobian(law, obs.N, obs.D)
    info = J.T @ J / sigma ** 2
    g = _grad_a(law)
    largest = float((6 * obs.N * obs.D).max())
    cands = candidates(law, largest, budget)
    if not cands:
        raise ValueError(f"a budget of {budget:.3g} FLOPs buys no run on the candidate isoFLOP lines (the smallest "
                         f"is {0.3 * largest:.3g} = 0.3 x the largest run so far)")
    rows = _jacobian(law, [c["params"] for c in cands], [c["tokens"] for c in cands])
    var0 = _var_a(info, g)
    chosen, spent, var = [], 0.0, var0
    left = set(range(len(cands)))
    while left and len(chosen) < max_runs:
        best, best_score, best_var = None, 0.0, var
        for i in left:
            if spent + cands[i]["flops"] > budget:
                continue
            r = rows[i][:, None]
            v = _var_a(info + r @ r.T / sigma ** 2, g)
            score = (var - v) / cands[i]["flops"]
            if score > best_score:
                best, best_score, best_var = i, score, v
        if best is None:
            break
        r = rows[best][:, None]
        info = info + r @ r.T / sigma ** 2
        spent += cands[best]["flops"]
        var = best_var
        chosen.append({**cands[best], "sd_a_after": math.sqrt(best_var)})
        left.discard(best)
    return {"runs": chosen, "flops_used": spent, "budget": budget, "sigma": sigma, "sd_a_now": math.sqrt(var0),
            "sd_a_after": math.sqrt(var), "a": law.a_exponent}


@one_blas_thread
def simulate_interval(law: ChinchillaLaw, obs: Observations, runs: list[dict], sigma: float, simulations: int = 20,
                      seed: int = 0, level: float = 0.95) -> dict:
    """The interval of a from refits of simulated losses: the current law plus noise sigma at the
    existing points (now) and at existing + designed points (after)."""
    rng = np.random.default_rng(seed)
    new_n = np.array([r["params"] for r in runs], float)
    new_d = np.array([r["tokens"] for r in runs], float)
    out = {}
    for label, N, D in (("now", obs.N, obs.D), ("after", np.r_[obs.N, new_n], np.r_[obs.D, new_d])):
        mean = law.predict_loss(N, D)
        a = []
        for _ in range(simulations):
            y = mean * np.exp(rng.normal(0, sigma, len(N)))
            try:
                f = ChinchillaFitter(FitConfig(n_polish=8)).fit(Observations(N, D, y))
                a.append(f.law_.a_exponent)
            except ValueError:
                continue
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        out[label] = [float(np.percentile(a, lo)), float(np.percentile(a, hi))] if len(a) >= 5 else None
        out[f"{label}_refits"] = len(a)
    return out

"""Hoffmann et al. 2022's three ways to an allocation, side by side on the same runs, and a
held-out extrapolation check. N_opt ∝ C^a and D_opt ∝ C^b (b = 1 - a under C = 6ND).

- Approach 1 (sec. 3.1): the envelope of training curves. At each compute C, the run with the
  lowest loss (interpolated along its curve in log-log) gives N_opt(C).
- Approach 2 (sec. 3.2): isoFLOP profiles. Runs of equal compute, loss vs log N fitted with a
  parabola; its vertex is N_opt(C).
- Approach 3 (sec. 3.3): the parametric fit L = E + A/N^alpha + B/D^beta, a = beta/(alpha+beta).

CIs are percentile bootstraps: resampling runs (1), points within each isoFLOP group (2), points
(3). Pure: arrays in, dicts out.
"""

from __future__ import annotations

import numpy as np

from scaling.fit import ChinchillaFitter, FitConfig, one_blas_thread
from scaling.observations import Observations


def final_points(obs: Observations) -> Observations:
    """One point per run (its largest D) when runs are named; every point otherwise."""
    if obs.run is None:
        return obs
    keep = []
    for r in np.unique(obs.run):
        idx = np.flatnonzero(obs.run == r)
        keep.append(idx[np.argmax(obs.D[idx])])
    return obs.subset(np.sort(np.array(keep)))


def isoflop_groups(obs: Observations, rel_tol: float = 0.1) -> list[np.ndarray]:
    """Indices of the points of each isoFLOP budget, groups of >= 3 sizes: by the `budget` column
    when the runs name their planned budget (achieved 6ND often misses it by 20-30%, and chaining
    by compute then splits one budget into several), else points whose 6ND agrees within rel_tol."""
    if obs.budget is not None:
        groups = [np.flatnonzero(obs.budget == b) for b in np.unique(obs.budget)]
        return [g for g in groups if len(np.unique(obs.N[g])) >= 3]
    logc = np.log(6 * obs.N * obs.D)
    order = np.argsort(logc, kind="stable")
    groups, cur = [], [order[0]]
    for i in order[1:]:
        if logc[i] - logc[cur[0]] <= np.log1p(rel_tol):
            cur.append(i)
        else:
            groups.append(np.array(cur))
            cur = [i]
    groups.append(np.array(cur))
    return [g for g in groups if len(np.unique(obs.N[g])) >= 3]


def _power_fit(c: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(a, log k) of n = k c^a by least squares in log-log."""
    a, logk = np.polyfit(np.log(c), np.log(n), 1)
    return float(a), float(logk)


def _vertices(obs: Observations, groups: list[np.ndarray], idx_of=lambda g: g) -> list[tuple[float, float, float]]:
    """(C, N_opt, loss at N_opt) per isoFLOP group whose parabola opens upward with its vertex in range."""
    out = []
    for g in groups:
        ix = idx_of(g)
        x, y = np.log(obs.N[ix]), np.log(obs.loss[ix])
        if len(np.unique(x)) < 3:
            continue
        q2, q1, q0 = np.polyfit(x, y, 2)
        if q2 <= 0:
            continue
        xv = -q1 / (2 * q2)
        if not (x.min() <= xv <= x.max()):
            continue  # the minimum is outside the sizes run: this group does not bracket it
        out.append((float(np.exp(np.mean(np.log(6 * obs.N[ix] * obs.D[ix])))), float(np.exp(xv)),
                    float(np.exp(q2 * xv * xv + q1 * xv + q0))))
    return out


def approach2(obs: Observations, n_boot: int = 300, seed: int = 0, level: float = 0.95) -> dict:
    """IsoFLOP parabolas: N_opt per budget, then N_opt ∝ C^a."""
    pts = final_points(obs)
    groups = isoflop_groups(pts)
    v = _vertices(pts, groups)
    if len(v) < 2:
        raise ValueError(f"approach 2 needs >= 2 isoFLOP groups (runs of equal 6ND, >= 3 sizes each, bracketing "
                         f"the minimum); found {len(v)}")
    c, n, loss = (np.array(x) for x in zip(*v))
    a, logk = _power_fit(c, n)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        vb = _vertices(pts, groups, lambda g: rng.choice(g, len(g), replace=True))
        if len(vb) >= 2:
            boots.append(_power_fit(np.array([x[0] for x in vb]), np.array([x[1] for x in vb]))[0])
    return _result("isoFLOP parabolas (Hoffmann et al. 2022, approach 2)", a, logk, boots, level,
                   [{"flops": float(ci), "params_opt": float(ni), "tokens_opt": float(ci / (6 * ni)),
                     "loss_min": float(li)} for ci, ni, li in zip(c, n, loss)])


def _envelope(obs: Observations, runs: list[np.ndarray], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each compute in grid: N of the run with the lowest interpolated log loss there."""
    best_loss = np.full(len(grid), np.inf)
    best_n = np.full(len(grid), np.nan)
    lg = np.log(grid)
    for idx in runs:
        o = idx[np.argsort(obs.D[idx])]
        lc = np.log(6 * obs.N[o] * obs.D[o])
        inside = (lg >= lc[0]) & (lg <= lc[-1])
        if not inside.any():
            continue
        ll = np.interp(lg[inside], lc, np.log(obs.loss[o]))
        better = ll < best_loss[inside]
        pos = np.flatnonzero(inside)[better]
        best_loss[pos] = ll[better]
        best_n[pos] = obs.N[o[0]]
    ok = np.isfinite(best_n)
    return grid[ok], best_n[ok]


def approach1(obs: Observations, n_boot: int = 300, seed: int = 0, level: float = 0.95, points: int = 40) -> dict:
    """Envelope of training curves: needs a `run` column and several checkpoints per run."""
    if obs.run is None:
        raise ValueError("approach 1 needs training curves: a `run` column with several (D, loss) checkpoints per run")
    runs = [np.flatnonzero(obs.run == r) for r in np.unique(obs.run)]
    runs = [r for r in runs if len(r) >= 2]
    if len(runs) < 3 or len(np.unique([obs.N[r[0]] for r in runs])) < 3:
        raise ValueError("approach 1 needs >= 3 runs of different sizes with >= 2 checkpoints each")
    c_all = 6 * obs.N * obs.D
    grid = np.geomspace(c_all.min(), c_all.max(), points)

    def fit(rs):
        c, n = _envelope(obs, rs, grid)
        if len(np.unique(n)) < 2:
            return None
        return _power_fit(c, n)

    base = fit(runs)
    if base is None:
        raise ValueError("approach 1: one run is best at every compute; run larger models at the larger budgets")
    rng = np.random.default_rng(seed)
    boots = [b[0] for b in (fit([runs[i] for i in rng.integers(0, len(runs), len(runs))]) for _ in range(n_boot))
             if b is not None]
    c, n = _envelope(obs, runs, grid)
    return _result("envelope of training curves (Hoffmann et al. 2022, approach 1)", base[0], base[1], boots, level,
                   [{"flops": float(ci), "params_opt": float(ni)} for ci, ni in zip(c[:: max(1, len(c) // 8)],
                                                                                    n[:: max(1, len(n) // 8)])])


def approach3(obs: Observations, n_boot: int = 300, seed: int = 0, level: float = 0.95,
              cfg: FitConfig = FitConfig()) -> dict:
    """The parametric fit, a = beta / (alpha + beta)."""
    pts = final_points(obs)
    f = ChinchillaFitter(cfg).fit(pts)
    if n_boot:  # the point estimate alone (n_boot=0) is what a plan's disagreement check needs
        f.bootstrap(pts, n=n_boot, seed=seed, level=level)
    law = f.law_
    ci = getattr(f, "ci_", None)
    return {"method": "parametric L(N, D) fit (Hoffmann et al. 2022, approach 3)", "a": law.a_exponent,
            "b": law.b_exponent, "ci": {"a": list(ci["a"]), "b": list(ci["b"])} if ci else {"a": None, "b": None},
            "params_opt_at": lambda C: float(law.G * (C / 6) ** law.a_exponent), "law": law.params()}


def _result(method, a, logk, boots, level, points) -> dict:
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    ci = [float(np.percentile(boots, lo)), float(np.percentile(boots, hi))] if len(boots) >= 10 else None
    return {"method": method, "a": a, "b": 1 - a, "ci": {"a": ci, "b": [1 - ci[1], 1 - ci[0]] if ci else None},
            "params_opt_at": lambda C: float(np.exp(logk) * C ** a), "points": points,
            "bootstrap_ok": len(boots)}


@one_blas_thread
def compare(obs: Observations, reference_flops: float | None = None, n_boot: int = 300, seed: int = 0) -> dict:
    """Every approach the data allow, side by side, with their disagreement at a reference compute
    (default: 100x the largest run's compute)."""
    c_max = float((6 * obs.N * obs.D).max())
    ref = reference_flops or 100 * c_max
    out, skipped = {}, {}
    for name, fn in (("approach_1", approach1), ("approach_2", approach2), ("approach_3", approach3)):
        try:
            out[name] = fn(obs, n_boot=n_boot, seed=seed)
        except ValueError as exc:
            skipped[name] = str(exc)
    for r in out.values():
        r["params_opt_at_reference"] = r.pop("params_opt_at")(ref)
        ci = r["ci"].get("a")
        if ci and not (0 < ci[0] and ci[1] < 1):
            r["ci_flag"] = (f"the exponent's interval [{ci[0]:.3g}, {ci[1]:.3g}] leaves (0, 1): N_opt ~ C^a needs "
                            "0 < a < 1, so these points do not pin the exponent")
    rows = list(out.values())
    spread = None
    if len(rows) >= 2:
        ns = [r["params_opt_at_reference"] for r in rows]
        spread = {"a_range": [min(r["a"] for r in rows), max(r["a"] for r in rows)],
                  "params_opt_ratio": max(ns) / min(ns)}
    return {"reference_flops": ref, "approaches": out, "skipped": skipped, "disagreement": spread}


def holdout_check(obs: Observations, n_boot: int = 0) -> dict:
    """Fit approach 3 (and 2 where possible) on every budget but the largest; predict the largest.
    Returns the loss error at the held-out runs and the N_opt error there."""
    pts = final_points(obs)
    groups = isoflop_groups(pts)
    if len(groups) < 3:
        raise ValueError("the held-out check needs >= 3 isoFLOP budgets (it holds out the largest)")
    held = groups[-1]
    train = np.setdiff1d(np.arange(len(pts)), held)
    f = ChinchillaFitter(FitConfig()).fit(pts.subset(train))
    pred = f.law_.predict_loss(pts.N[held], pts.D[held])
    err = pred / pts.loss[held] - 1
    c_held = float(np.exp(np.mean(np.log(6 * pts.N[held] * pts.D[held]))))
    out = {"held_out_flops": c_held, "held_out_points": len(held), "train_points": len(train),
           "loss_error_mean_abs": float(np.mean(np.abs(err))), "loss_error_max_abs": float(np.max(np.abs(err)))}
    v = _vertices(pts, [held])
    if v:
        observed = v[0][1]
        out["params_opt_observed"] = observed
        out["params_opt_approach_3"] = float(f.law_.G * (c_held / 6) ** f.law_.a_exponent)
        try:
            a2 = approach2(pts.subset(train), n_boot=n_boot)
            out["params_opt_approach_2"] = a2["params_opt_at"](c_held)
        except ValueError:
            pass
    return out


def synthetic_sweep(law, budgets=(1e17, 3e17, 1e18, 3e18, 1e19), sizes: int = 7, span: float = 8.0,
                    checkpoints: int = 6, noise: float = 0.005, seed: int = 0) -> Observations:
    """IsoFLOP runs drawn from a known law: per budget, `sizes` models spread `span`x around the
    law's optimum, each with a training curve of `checkpoints` points up to its final D.
    Multiplicative log-normal noise. For checking that approaches recover the law's exponents."""
    rng = np.random.default_rng(seed)
    N, D, L, R = [], [], [], []
    for c in budgets:
        n0 = law.G * (c / 6) ** law.a_exponent
        for k, n in enumerate(np.geomspace(n0 / span, n0 * span, sizes)):
            d_final = c / (6 * n)
            for frac in np.geomspace(1 / 8, 1, checkpoints):
                N.append(n)
                D.append(d_final * frac)
                L.append(float(law.predict_loss(n, d_final * frac)) * float(np.exp(rng.normal(0, noise))))
                R.append(f"c{c:.0e}-n{k}")
    return Observations(np.array(N), np.array(D), np.array(L), run=np.array(R))

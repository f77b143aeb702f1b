"""Compute-optimal planning under C = 6·N·D: splits, inverse queries, isoFLOP profiles, repetition.

Pure functions of a law (scaling/laws.py). Chinchilla form: closed form (Hoffmann et al. 2022,
eq. 4); other forms: a bounded 1-D search over log N along the isoFLOP line.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.laws import ChinchillaLaw, DataConstrainedLaw, KaplanLaw, kaplan_frontier_params


def _check_flops(C: float) -> None:
    if not (isinstance(C, (int, float)) and math.isfinite(C) and 1e6 <= C <= 1e35):
        raise ValueError(f"flops must be a finite number in [1e6, 1e35], got {C!r}")


def optimal_split(law, C: float, U: float | None = None) -> tuple[float, float]:
    """(N_opt, D_opt) for compute C (FLOPs). U: unique tokens (data-constrained law only)."""
    _check_flops(C)
    if isinstance(law, ChinchillaLaw):
        # N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b (Hoffmann et al. 2022, eq. 4)
        return law.G * (C / 6) ** law.a_exponent, (C / 6) ** law.b_exponent / law.G
    if isinstance(law, KaplanLaw) and law.allocation == "frontier":
        n = float(min(kaplan_frontier_params(C), C / 6))
        return n, C / (6 * n)
    return _search_split(law, C, U)


def _search_splits(law, C, U: float | None = None, max_tokens: float = math.inf) -> np.ndarray:
    """argmin over N of the loss at (N, min(C/6N, max_tokens)), for every budget in C at once:
    one vectorised grid over 1 <= N <= C/6 (D >= 1) per budget, then grids zooming in on each
    budget's best point (each 1/32 of the last bracket, to ~1e-7 in ln N). (A scalar polish,
    scipy's bounded Brent, cost ~25 Python-level loss calls per budget; a data-limited plan with
    CIs searches ~2,000 budgets.)"""
    C = np.atleast_1d(np.asarray(C, dtype=float))[:, None]

    def losses(x):
        n = np.exp(x)
        d = np.minimum(C / (6 * n), max_tokens)
        return law.predict_loss(n, d, U) if isinstance(law, DataConstrainedLaw) else law.predict_loss(n, d)

    rows = np.arange(len(C))
    xs = np.linspace(0.0, 1.0, 240)[None, :] * np.log(C / 6)
    for _ in range(8):
        i = np.argmin(losses(xs), axis=1)
        lo, hi = xs[rows, np.maximum(i - 1, 0)], xs[rows, np.minimum(i + 1, xs.shape[1] - 1)]
        best = xs[rows, i]
        if np.all(hi - lo < 1e-7):
            break
        xs = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, 65)[None, :]
    return np.exp(best)


def _search_split(law, C: float, U: float | None = None, max_tokens: float = math.inf) -> tuple[float, float]:
    n = float(_search_splits(law, C, U, max_tokens)[0])
    return n, min(C / (6 * n), max_tokens)


def loss_at(law, N: float, D: float, U: float | None = None) -> float:
    if isinstance(law, DataConstrainedLaw):
        return float(law.predict_loss(N, D, U))
    return float(law.predict_loss(N, D))


def plan(law, C: float, samples: list | None = None, U: float | None = None, level: float = 0.95) -> dict:
    """The compute-optimal plan; with `samples` (bootstrap laws) each figure gets a CI."""
    n, d = optimal_split(law, C, U)
    out = {"flops": C, "params": n, "tokens": d, "tokens_per_param": d / n, "loss": loss_at(law, n, d, U)}
    if samples:
        rows = []
        for s in samples:
            sn, sd = optimal_split(s, C, U)
            rows.append((sn, sd, sd / sn, loss_at(s, sn, sd, U)))
        out["ci"] = percentile_ci(rows, ("params", "tokens", "tokens_per_param", "loss"), level)
    return out


def percentile_ci(rows, names, level: float = 0.95) -> dict:
    """Percentile intervals per column of `rows` (one row per bootstrap law)."""
    arr = np.asarray(rows, dtype=float)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {k: [float(np.percentile(arr[:, i], lo)), float(np.percentile(arr[:, i], hi))] for i, k in enumerate(names)}


def flops_for_loss(law, target: float, U: float | None = None) -> dict:
    """The least compute whose optimal plan reaches `target` loss (inverse query), for every law;
    with U unique tokens (data-constrained law) the epochs are capped as in `data_limited_plan`."""
    from scipy.optimize import brentq  # lazy: a closed-form plan needs no scipy
    floor = law.E if isinstance(law, ChinchillaLaw) else law.base.E if isinstance(law, DataConstrainedLaw) \
        else getattr(law, "L_inf", 0.0)
    if target <= floor:
        raise ValueError(f"target loss {target} is at or below the law's irreducible loss ({floor:.4g})")
    limited = isinstance(law, DataConstrainedLaw) and U

    def split(c: float) -> tuple[float, float]:
        return _limited_split(law, c, U) if limited else optimal_split(law, c, U)

    def g(logc: float) -> float:
        n, d = split(math.exp(logc))
        return loss_at(law, n, d, U) - target

    lo, hi = math.log(1.000001e6), math.log(0.999999e35)
    if g(lo) < 0:
        raise ValueError(f"target loss {target} is reached below 1e6 FLOPs; nothing to plan")
    if g(hi) > 0:
        what = f"with {U:.3g} unique tokens the loss levels off at {g(hi) + target:.4g}" if limited \
            else f"under this law (loss {g(hi) + target:.4g} there)"
        raise ValueError(f"target loss {target} is not reached with 1e35 FLOPs: {what}")
    c = math.exp(brentq(g, lo, hi, xtol=1e-12))
    n, d = split(c)
    return {"target_loss": target, "flops": c, "params": n, "tokens": d, "tokens_per_param": d / n}


def tokens_for_params(law: ChinchillaLaw, N: float) -> dict:
    """The compute-optimal token count for a fixed model size (and the compute it implies)."""
    # N = G (C/6)^a  =>  C/6 = (N/G)^(1/a); D = (C/6) / N
    c6 = (N / law.G) ** (1 / law.a_exponent)
    d = c6 / N
    return {"params": N, "tokens": d, "flops": 6 * c6, "tokens_per_param": d / N, "loss": loss_at(law, N, d)}


def params_for_tokens(law: ChinchillaLaw, D: float) -> dict:
    """The compute-optimal model size for a fixed token count."""
    c6 = (D * law.G) ** (1 / law.b_exponent)
    n = c6 / D
    return {"params": n, "tokens": D, "flops": 6 * c6, "tokens_per_param": D / n, "loss": loss_at(law, n, D)}


def isoflop_profile(law, C: float, factors=(0.25, 0.5, 1.0, 2.0, 4.0), U: float | None = None) -> list[dict]:
    """Loss when N is scaled by each factor around the optimum at fixed C (D = C / 6N)."""
    n0, _ = optimal_split(law, C, U)
    best = None
    rows = []
    for f in factors:
        n = n0 * f
        d = C / (6 * n)
        loss = loss_at(law, n, d, U)
        best = loss if f == 1.0 else best
        rows.append({"factor": f, "params": n, "tokens": d, "loss": loss})
    base = best if best is not None else min(r["loss"] for r in rows)
    for r in rows:
        r["loss_increase"] = r["loss"] - base
    return rows


def marginal_returns(law: ChinchillaLaw, N: float, D: float) -> dict:
    """dL/dln N at fixed D = -alpha A N^-alpha; dL/dln D at fixed N = -beta B D^-beta: the loss
    gained per e-fold of parameters vs of tokens (equal at the compute optimum)."""
    dn = -law.alpha * law.A * N ** -law.alpha
    dd = -law.beta * law.B * D ** -law.beta
    # balanced within 1e-6 relative: at the optimum they differ only by rounding (1e-17), which is no preference
    if abs(dn - dd) <= MARGINAL_TIE * max(abs(dn), abs(dd)):
        prefer = "either (balanced: the compute optimum)"
    else:
        prefer = "more parameters" if dn < dd else "more tokens"
    return {"dloss_dlog_params": dn, "dloss_dlog_tokens": dd, "prefer": prefer}


MARGINAL_TIE = 1e-6


def suggested_experiments(law, C: float, budgets: int = 3, sizes: int = 5, step: float = 10.0) -> list[dict]:
    """Chinchilla approach 2: isoFLOP runs at a few budgets below C, sizes spread around each optimum."""
    out = []
    for k in range(budgets, 0, -1):
        c = C / step ** (k + 1)
        if c < 1e15:
            continue
        n0, _ = optimal_split(law, c)
        for f in np.geomspace(0.25, 4, sizes):
            n = n0 * float(f)
            out.append({"flops": c, "params": n, "tokens": c / (6 * n)})
    return out


def repetition_plan(law: DataConstrainedLaw, C: float, U: float, value_floor: float = 0.5,
                    limited: dict | None = None) -> dict:
    """How many epochs over U unique tokens are worth it (Muennighoff et al. 2023, eq. 5).

    The marginal value of a repeated token after R repetitions is exp(-R / R_D*) of a fresh one;
    epochs are "worth it" while that value stays >= value_floor. The constrained plan never
    goes past that (data_limited_plan)."""
    if not (U > 0 and math.isfinite(U)):
        raise ValueError("unique tokens must be a positive finite number")
    n_free, d_free = optimal_split(law.base, C)
    lim = limited or data_limited_plan(law, C, U, value_floor=value_floor)  # a caller may have it already
    table = []
    for epochs in (1, 2, 4, 8, 16, 32, 64):
        dd = U * epochs
        r = epochs - 1
        table.append({"epochs": epochs, "tokens": dd, "effective_tokens": float(law.effective_tokens(dd, U)),
                      "value_of_last_repeat": math.exp(-r / law.R_D_star)})
    return {
        "flops": C, "unique_tokens": U,
        "unconstrained": {"params": n_free, "tokens": d_free, "epochs": d_free / U, "loss": loss_at(law.base, n_free, d_free)},
        "constrained": {"params": lim["params"], "tokens": lim["tokens"], "epochs": lim["epochs"], "loss": lim["loss"],
                        "flops": lim["flops"]},
        "epochs_worth_it": lim["epochs_rewarded"],
        "value_floor": value_floor,
        "flat": lim["flat"],
        "table": table,
    }


FLAT_SHARE = 0.5


def epochs_rewarded(law: DataConstrainedLaw, value_floor: float = 0.5) -> float:
    """Epochs over the unique tokens while a repeated token is still worth >= value_floor of a
    fresh one: exp(-R / R_D*) >= floor  =>  1 + R_D* ln(1/floor) (Muennighoff et al. 2023, eq. 5)."""
    return 1 + law.R_D_star * math.log(1 / value_floor)


def _limited_split(law: DataConstrainedLaw, C: float, U: float, value_floor: float = 0.5) -> tuple[float, float]:
    """Best (N, D) with 6ND <= C and D <= U x epochs_rewarded: no more epochs than the law rewards."""
    _check_flops(C)
    return _search_split(law, C, U, U * epochs_rewarded(law, value_floor))


def data_limited_plan(law: DataConstrainedLaw, C: float, U: float, tol: float = 1e-3,
                      value_floor: float = 0.5) -> dict:
    """The plan for C FLOPs with U unique tokens that never repeats data past what the law rewards.

    When the loss is flat (more compute buys less than `tol` nats), the answer is the least
    compute that reaches within `tol` of the best loss at C, and the rest of the budget is
    reported as waste."""
    if not (U > 0 and math.isfinite(U)):
        raise ValueError("unique tokens must be a positive finite number")
    n, d = _limited_split(law, C, U, value_floor)
    best = loss_at(law, n, d, U)
    used, flat = C, None

    # the least compute reaching best + tol (loss never rises with C): grids over ln C, each
    # 1/32 of the last bracket, every budget's split searched at once (to 0.1% of C)
    cap = U * epochs_rewarded(law, value_floor)

    def gaps(logc: np.ndarray) -> np.ndarray:
        c = np.minimum(np.exp(logc), C)  # exp(log C) can round past C (and past the 1e35 bound)
        n = _search_splits(law, c, U, cap)
        return np.asarray(law.predict_loss(n, np.minimum(c / (6 * n), cap), U)) - (best + tol)

    lo, hi = math.log(1.000001e6), math.log(FLAT_SHARE * C)
    # only a flat loss changes the plan: when half the budget still falls short, spend it all
    if gaps(np.array([lo]))[0] > 0 and gaps(np.array([hi]))[0] <= 0:
        for _ in range(6):
            xs = np.linspace(lo, hi, 33)
            g = gaps(xs)
            j = int(np.argmax(g <= 0)) if (g <= 0).any() else len(xs) - 1
            lo, hi = xs[max(j - 1, 0)], xs[j]
            if hi - lo < 1e-3:
                break
        used = min(math.exp(hi), C)
    if used < FLAT_SHARE * C:  # over half the budget buys < tol nats: flat, not the usual slow gain
        n, d = _limited_split(law, used, U, value_floor)
        flat = {"flops_needed": used, "flops_wasted": C - used, "waste_share": 1 - used / C, "tolerance": tol,
                "best_loss_at_budget": best}
    return {"flops": 6 * n * d, "budget_flops": C, "params": n, "tokens": d, "tokens_per_param": d / n,
            "loss": loss_at(law, n, d, U), "epochs": d / U, "epochs_rewarded": epochs_rewarded(law, value_floor),
            "flat": flat}


def inference_aware(law: ChinchillaLaw, target: float, inference_tokens: float) -> dict:
    """Sardana et al. 2023 ('Beyond Chinchilla-Optimal'): the (N, D) reaching `target` loss with the
    least training + inference compute, 6ND + 2N x inference_tokens. Expected heavy use moves
    the optimum to a smaller model trained on more tokens (8B on 15T is this trade)."""
    from scipy.optimize import minimize_scalar  # lazy: a closed-form plan needs no scipy
    if getattr(law, "kind", None) != "chinchilla":
        raise ValueError(f"inference-aware planning needs a Chinchilla-form law, not {law.kind}")
    if not (inference_tokens >= 0 and math.isfinite(inference_tokens)):
        raise ValueError("inference_tokens must be a finite number >= 0")
    if target <= law.E:
        raise ValueError(f"target loss {target} is at or below the law's irreducible loss ({law.E:.4g})")
    n_min = (law.A / (target - law.E)) ** (1 / law.alpha)  # below this N no amount of data reaches the target

    def tokens_for(n: float) -> float:  # L(N, D) = target  =>  D = (B / (target - E - A N^-alpha))^(1/beta)
        return (law.B / (target - law.E - law.A / n ** law.alpha)) ** (1 / law.beta)

    def total(x: float) -> float:
        n = math.exp(x)
        return math.log(6 * n * tokens_for(n) + 2 * n * inference_tokens)

    lo, hi = math.log(n_min) + 1e-9, math.log(n_min) + 25
    xs = np.linspace(lo + 1e-6, hi, 400)
    i = int(np.argmin([total(x) for x in xs]))
    r = minimize_scalar(total, bounds=(xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]), method="bounded",
                        options={"xatol": 1e-10})
    n = math.exp(r.x)
    d = tokens_for(n)
    ref = flops_for_loss(law, target)
    ref_total = ref["flops"] + 2 * ref["params"] * inference_tokens
    ours = 6 * n * d + 2 * n * inference_tokens
    return {"target_loss": target, "inference_tokens": inference_tokens, "params": n, "tokens": d,
            "tokens_per_param": d / n, "training_flops": 6 * n * d, "inference_flops": 2 * n * inference_tokens,
            "total_flops": ours,
            "compute_optimal": {"params": ref["params"], "tokens": ref["tokens"], "training_flops": ref["flops"],
                                "total_flops": ref_total},
            "saving": 1 - ours / ref_total}


def predict(law, N: float, D: float, U: float | None = None, samples=None, level: float = 0.95) -> dict:
    """Loss at any (N, D) with a CI from the bootstrap laws, and how far the run is from the
    compute-optimal split of the same compute (overtrained runs are planned on purpose)."""
    for name, v in (("params", N), ("tokens", D)):
        if not (0 < v < 1e30 and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive number below 1e30")
    C = 6 * N * D
    out = {"params": N, "tokens": D, "flops": C, "tokens_per_param": D / N, "loss": loss_at(law, N, D, U)}
    if samples:
        out["ci"] = {"loss": percentile_ci([[loss_at(s, N, D, U)] for s in samples], ("loss",), level)["loss"]}
    if 1e6 <= C <= 1e35:
        n_opt, d_opt = optimal_split(law, C, U)
        out["compute_optimal"] = {"params": n_opt, "tokens": d_opt, "tokens_per_param": d_opt / n_opt,
                                  "loss": loss_at(law, n_opt, d_opt, U)}
        out["overtraining"] = (D / N) / (d_opt / n_opt)
        out["loss_above_optimal"] = out["loss"] - out["compute_optimal"]["loss"]
    return out

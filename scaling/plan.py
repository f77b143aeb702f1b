"""Compute-optimal planning under C = 6·N·D: splits, inverse queries, isoFLOP profiles, repetition.

Pure functions of a law (scaling/laws.py). Chinchilla form: closed form (Hoffmann et al. 2022,
eq. 4); other forms: a bounded 1-D search over log N along the isoFLOP line.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from scaling.laws import ChinchillaLaw, DataConstrainedLaw


def _check_flops(C: float) -> None:
    if not (isinstance(C, (int, float)) and math.isfinite(C) and 1e6 <= C <= 1e35):
        raise ValueError(f"flops must be a finite number in [1e6, 1e35], got {C!r}")


def optimal_split(law, C: float, U: float | None = None) -> tuple[float, float]:
    """(N_opt, D_opt) for compute C (FLOPs). U: unique tokens (data-constrained law only)."""
    _check_flops(C)
    if isinstance(law, ChinchillaLaw):
        # N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b (Hoffmann et al. 2022, eq. 4)
        return law.G * (C / 6) ** law.a_exponent, (C / 6) ** law.b_exponent / law.G

    def f(x: float) -> float:
        n = math.exp(x)
        d = C / (6 * n)
        return float(law.predict_loss(n, d, U)) if isinstance(law, DataConstrainedLaw) else float(law.predict_loss(n, d))

    lo, hi = math.log(1e3), math.log(C / 6 / 1e3)
    xs = np.linspace(lo, hi, 200)
    i = int(np.argmin([f(x) for x in xs]))
    r = minimize_scalar(f, bounds=(xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]), method="bounded",
                        options={"xatol": 1e-10})
    n = math.exp(r.x)
    return n, C / (6 * n)


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
        arr = np.array(rows)
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        out["ci"] = {k: [float(np.percentile(arr[:, i], lo)), float(np.percentile(arr[:, i], hi))]
                     for i, k in enumerate(("params", "tokens", "tokens_per_param", "loss"))}
    return out


def flops_for_loss(law, target: float) -> dict:
    """The least compute whose optimal plan reaches `target` loss (inverse query)."""
    floor = law.E if isinstance(law, ChinchillaLaw) else getattr(law, "L_inf", 0.0)
    if target <= floor:
        raise ValueError(f"target loss {target} is at or below the law's irreducible loss ({floor:.4g})")

    def g(logc: float) -> float:
        c = math.exp(logc)
        n, d = optimal_split(law, c)
        return loss_at(law, n, d) - target

    lo, hi = math.log(1.000001e6), math.log(0.999999e35)
    if g(lo) < 0:
        raise ValueError(f"target loss {target} is reached below 1e6 FLOPs; nothing to plan")
    if g(hi) > 0:
        raise ValueError(f"target loss {target} needs more than 1e35 FLOPs under this law")
    c = math.exp(brentq(g, lo, hi, xtol=1e-12))
    n, d = optimal_split(law, c)
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
    return {"dloss_dlog_params": dn, "dloss_dlog_tokens": dd,
            "prefer": "more parameters" if dn < dd else "more tokens" if dd < dn else "either"}


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


def repetition_plan(law: DataConstrainedLaw, C: float, U: float, value_floor: float = 0.5) -> dict:
    """How many epochs over U unique tokens are worth it (Muennighoff et al. 2023, eq. 5).

    The marginal value of a repeated token after R repetitions is exp(-R / R_D*) of a fresh one;
    epochs are "worth it" while that value stays >= value_floor.
    """
    if not (U > 0 and math.isfinite(U)):
        raise ValueError("unique tokens must be a positive finite number")
    n_free, d_free = optimal_split(law.base, C)
    n, d = optimal_split(law, C, U)
    worth_r = law.R_D_star * math.log(1 / value_floor)
    table = []
    for epochs in (1, 2, 4, 8, 16, 32, 64):
        dd = U * epochs
        r = epochs - 1
        table.append({"epochs": epochs, "tokens": dd, "effective_tokens": float(law.effective_tokens(dd, U)),
                      "value_of_last_repeat": math.exp(-r / law.R_D_star)})
    return {
        "flops": C, "unique_tokens": U,
        "unconstrained": {"params": n_free, "tokens": d_free, "epochs": d_free / U, "loss": loss_at(law.base, n_free, d_free)},
        "constrained": {"params": n, "tokens": d, "epochs": d / U, "loss": loss_at(law, n, d, U)},
        "epochs_worth_it": 1 + worth_r,
        "value_floor": value_floor,
        "table": table,
    }

"""Budget planning: resolve the law (published or a stored fit), the budget and the MFU, then plan.

MFU precedence: the user's, else the latest calibration for the named GPU (when calibrations
exist in the warehouse), else DEFAULT_MFU, and the answer says which one it used.
"""

from __future__ import annotations

import math

from scaling import plan as P
from scaling.compute import OPTIMIZER_BYTES, train_time
from scaling.hardware import get_gpu
from scaling.laws import ChinchillaLaw, DataConstrainedLaw, KaplanLaw, get_law
from warehouse import scaling_store as store

DEFAULT_MFU = 0.40  # a well-tuned dense transformer on current GPUs; measure yours with `taomi calibrate`
SECONDS_PER_DAY = 86_400


def law_from_fit(row: dict):
    p = row["params"]
    if row["law"] == "chinchilla":
        law = ChinchillaLaw(**{k: p[k] for k in ("E", "A", "B", "alpha", "beta")}, name=row["name"])
    elif row["law"] == "kaplan":
        law = KaplanLaw(**{k: p[k] for k in ("N_c", "D_c", "alpha_N", "alpha_D", "L_inf")}, name=row["name"])
    else:
        base = ChinchillaLaw(**{k: p[k] for k in ("E", "A", "B", "alpha", "beta")})
        law = DataConstrainedLaw(base=base, R_D_star=p["R_D_star"], R_N_star=p["R_N_star"], name=row["name"])
    samples = None
    if row.get("samples") and row["law"] == "chinchilla":
        samples = [ChinchillaLaw(A=s[0], B=s[1], E=s[2], alpha=s[3], beta=s[4]) for s in row["samples"]
                   if s[3] > 0 and s[4] > 0]
    return law, samples


def resolve_law(con, law: str | None = None, fit: str | None = None):
    """(law, bootstrap sample laws or None, description)."""
    if fit:
        if con is None:
            raise LookupError("no database to read fits from")
        row = store.get_fit(con, fit)
        if row is None:
            raise LookupError(f"no stored fit named '{fit}' (see `taomi fits`)")
        lw, samples = law_from_fit(row)
        return lw, samples, f"fit '{fit}' ({row['law']}, {row['n_points']} points)"
    name = law or "chinchilla-2022"
    return get_law(name), None, f"published law '{name}'"


def latest_mfu(con, gpu: str) -> tuple[float, str] | None:
    """The latest calibration MFU for this GPU, when the warehouse has calibrations."""
    if con is None:
        return None
    has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'calibrations'").fetchall()
    if not has[0][0]:
        return None
    rows = con.execute("SELECT mfu, created_at FROM calibrations WHERE lower(gpu) = lower(?) AND mfu IS NOT NULL "
                       "ORDER BY created_at DESC LIMIT 1", [gpu]).fetchall()
    return (float(rows[0][0]), f"latest calibration ({rows[0][1]})") if rows else None


def budget(flops: float | None, gpus: int | None, gpu: str | None, days: float | None, mfu: float | None,
           peak_tflops: float | None = None, con=None) -> dict:
    """Resolve the compute budget from FLOPs or from GPUs x type x days x MFU."""
    if flops is not None:
        if any(v is not None for v in (gpus, days)):
            raise ValueError("give either flops, or gpus + gpu + days, not both")
        return {"flops": float(flops), "source": "given"}
    if gpus is None or days is None or (gpu is None and peak_tflops is None):
        raise ValueError("give flops, or gpus, gpu (or peak_tflops) and days")
    peak, peak_src, gpu_mem = _peak(gpu, peak_tflops)
    mfu_val, mfu_src = _mfu(mfu, gpu, con)
    c = gpus * peak * 1e12 * mfu_val * days * SECONDS_PER_DAY
    return {"flops": c, "source": "gpus x peak x mfu x days", "gpus": gpus, "gpu": gpu, "days": days,
            "peak_tflops": peak, "peak_source": peak_src, "mfu": mfu_val, "mfu_source": mfu_src,
            "gpu_memory_gb": gpu_mem}


def _peak(gpu: str | None, peak_tflops: float | None):
    if peak_tflops is not None:
        return float(peak_tflops), "given (--peak-tflops)", None
    g = get_gpu(gpu)
    return g.peak_tflops_bf16, g.source, g.memory_gb


def _mfu(mfu: float | None, gpu: str | None, con) -> tuple[float, str]:
    if mfu is not None:
        if not (0 < mfu <= 1):
            raise ValueError(f"mfu is a fraction of peak in (0, 1], got {mfu}")
        return float(mfu), "given"
    cal = latest_mfu(con, gpu) if gpu else None
    if cal:
        return cal
    return DEFAULT_MFU, f"default {DEFAULT_MFU} (no calibration for this GPU; run `taomi calibrate`)"


def make_plan(law, samples, law_desc: str, bud: dict, unique_tokens: float | None = None,
              optimizer: str = "adam") -> dict:
    """The plan a user came for: N*, D*, tokens/param, loss (+ CIs), GPU-days, training memory."""
    out = {"law": law_desc, **bud}
    out.update(P.plan(law, bud["flops"], samples, U=unique_tokens))
    n = out["params"]
    out["isoflop_profile"] = P.isoflop_profile(law, bud["flops"], U=unique_tokens)
    if isinstance(law, ChinchillaLaw):
        out["marginal"] = P.marginal_returns(law, n, out["tokens"])
    # Mixed-precision training state per parameter: bf16 weights + bf16 grads + optimizer states
    # (ZeRO paper, Rajbhandari et al. 2020, sec. 3.1: 2 + 2 + 12 = 16 bytes with Adam).
    state_bytes = n * (2 + 2 + OPTIMIZER_BYTES[optimizer])
    out["memory"] = {"optimizer": optimizer, "training_state_bytes": state_bytes,
                     "bytes_per_param": 4 + OPTIMIZER_BYTES[optimizer]}
    if bud.get("gpu_memory_gb"):
        out["memory"]["min_gpus_for_state_zero3"] = math.ceil(state_bytes / (bud["gpu_memory_gb"] * 1e9))
    peak, mfu = bud.get("peak_tflops"), bud.get("mfu")
    if peak and mfu:
        t = train_time(bud["flops"], bud["gpus"], peak, mfu)
        out.update(seconds=t["seconds"], days=t["days"], gpu_days=t["gpu_days"])
    if isinstance(law, DataConstrainedLaw) and unique_tokens:
        out["repetition"] = P.repetition_plan(law, bud["flops"], unique_tokens)
    return out


def inverse_for(law, params: float | None = None, tokens: float | None = None) -> dict:
    """The compute-optimal partner of a fixed model size (params) or token count (tokens)."""
    if law.kind != "chinchilla":
        raise ValueError("params/tokens need a Chinchilla-form law")
    if (params is None) == (tokens is None):
        raise ValueError("give params or tokens, not both")
    for name, v in (("params", params), ("tokens", tokens)):
        if v is not None and not (0 < v < 1e30):
            raise ValueError(f"{name} must be a positive number below 1e30")
    return P.tokens_for_params(law, params) if params is not None else P.params_for_tokens(law, tokens)


def with_repetition(law, desc: str, unique_tokens: float | None):
    """A Chinchilla law planned against limited unique tokens gets Muennighoff et al.'s decay."""
    if unique_tokens and law.kind == "chinchilla":
        return (DataConstrainedLaw(base=law, name=law.name + "+repetition"),
                desc + " with Muennighoff et al. 2023 repetition decay (R_D* 15.4)")
    return law, desc

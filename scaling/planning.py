"""A plan request and the pure parts of answering it: the compute budget from GPUs x days x MFU,
which MFU to use, training-state memory, and the plan itself. The warehouse reads (a stored fit,
calibrations) are done by `flows.plan_task.answer`, the one entry point the CLI, the HTTP service
and the Prefect flow all call.

MFU, chosen one documented way (`choose_mfu`): the user's value; else the latest calibration on
the same GPU whose model is of comparable size (within MFU_SIZE_FACTOR of the planned N); else
DEFAULT_MFU, and the answer says which. A 124M calibration never sets the MFU of a 70B plan.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

from scaling import plan as P
from scaling.compute import SECONDS_PER_DAY, train_time, training_state_bytes
from scaling.hardware import get_gpu
from scaling.laws import ChinchillaLaw, DataConstrainedLaw

DEFAULT_MFU = 0.40  # a well-tuned dense transformer on current GPUs; measure yours with `taomi calibrate`
MFU_SIZE_FACTOR = 10.0  # a calibration speaks for models within one decade of its own size
SAMPLES_DATA_LIMITED = 100  # bootstrap laws used for the CIs of a data-limited plan (each is a search)
MIN_CI_SAMPLES = 10  # fewer bootstrap plans than this give no interval


@dataclass(frozen=True)
class Effort:
    """How much work one answer may do. The CIs of a data-limited plan cost a search per
    bootstrap law (~10 ms each): at most `ci_samples` of them, and no more once this thread has
    spent `cpu_s` CPU seconds on them. The command line uses the defaults; the HTTP service a
    bounded effort, so one small request cannot cost seconds of CPU."""

    ci_samples: int = SAMPLES_DATA_LIMITED
    cpu_s: float | None = None
    started: float = field(default_factory=time.thread_time, compare=False)

    def __post_init__(self) -> None:
        if self.ci_samples < 0 or (self.cpu_s is not None and not self.cpu_s > 0):
            raise ValueError("ci_samples must be >= 0 and cpu_s > 0")

    def exhausted(self) -> bool:
        return self.cpu_s is not None and time.thread_time() - self.started > self.cpu_s


@dataclass(frozen=True)
class PlanRequest:
    """What a user asks: a budget (flops, or gpus x gpu x days), a law or a stored fit, and
    optionally an inverse query (target_loss, params or tokens) instead of a budget."""

    flops: float | None = None
    gpus: int | None = None
    gpu: str | None = None
    days: float | None = None
    mfu: float | None = None
    peak_tflops: float | None = None
    law: str | None = None
    fit: str | None = None
    unique_tokens: float | None = None
    corpus: str | None = None  # the unique tokens are this curated corpus's stored token count
    target_loss: float | None = None
    params: float | None = None
    tokens: float | None = None
    experiments: bool = False
    kaplan_allocation: str | None = None  # "frontier" (default for kaplan-2020) or "eq1.5"
    inference_tokens: float | None = None  # with target_loss: Sardana et al. 2023 training + inference

    def __post_init__(self) -> None:
        if self.law and self.fit:
            raise ValueError("give a law or a fit, not both")
        if self.inference_tokens is not None and (self.target_loss is None or not 0 <= self.inference_tokens < 1e30):
            raise ValueError("inference_tokens (>= 0) goes with target_loss: the plan that reaches that loss with the "
                             "least training + inference compute")
        if self.kaplan_allocation is not None and self.kaplan_allocation not in ("frontier", "eq1.5"):
            raise ValueError("kaplan_allocation must be 'frontier' or 'eq1.5'")
        if self.corpus is not None and self.unique_tokens is not None:
            raise ValueError("give corpus or unique_tokens, not both: a corpus's unique tokens are its stored count")
        if self.corpus is not None and not (isinstance(self.corpus, str) and self.corpus.strip()):
            raise ValueError("corpus must be a corpus name (see `taomi corpora`)")
        if self.unique_tokens is not None and not (0 < self.unique_tokens < 1e30):
            raise ValueError("unique_tokens must be a positive number below 1e30")
        if self.mfu is not None and not (0 < self.mfu <= 1):
            raise ValueError(f"mfu is a fraction of peak in (0, 1], got {self.mfu}")
        inverse = self.target_loss is not None or self.params is not None or self.tokens is not None
        if not inverse:
            if self.flops is not None and (self.gpus is not None or self.days is not None):
                raise ValueError("give either flops, or gpus + gpu + days, not both")
            if self.flops is None and (self.gpus is None or self.days is None
                                       or (self.gpu is None and self.peak_tflops is None)):
                raise ValueError("give flops, or gpus, gpu (or peak_tflops) and days")
        _ = self.kind  # a contradictory combination is an error now, not when answered

    @property
    def kind(self) -> str:
        if self.params is not None and self.tokens is not None:
            if self.target_loss is not None or self.flops is not None or self.gpus is not None:
                raise ValueError("params + tokens predicts a loss: give no budget or target with them")
            return "predict"
        if self.target_loss is not None:
            return "target_loss"
        if self.params is not None or self.tokens is not None:
            return "inverse"
        return "budget"

    @property
    def needs_calibration(self) -> bool:
        """Does the answer depend on stored calibrations (a GPU budget with no MFU given)?"""
        return self.kind == "budget" and self.flops is None and self.mfu is None and self.gpu is not None

    def as_dict(self) -> dict:
        return asdict(self)


def peak_of(gpu: str | None, peak_tflops: float | None) -> tuple[float, str, float | None]:
    """(peak bf16 TFLOP/s, its source, GPU memory in GB or None)."""
    if peak_tflops is not None:
        return float(peak_tflops), "given (--peak-tflops)", None
    g = get_gpu(gpu)
    return g.peak_tflops_bf16, g.source, g.memory_gb


def budget_flops(gpus: int, peak_tflops: float, mfu: float, days: float) -> float:
    """C = GPUs x peak FLOP/s x MFU x seconds (MFU as PaLM defines it: model FLOPs / peak)."""
    return gpus * peak_tflops * 1e12 * mfu * days * SECONDS_PER_DAY


def choose_mfu(given: float | None, calibrations: list[dict], planned_params: float | None) -> tuple[float, str]:
    """(MFU, where it came from); see the module docstring for the rule. `calibrations`: rows
    of this GPU with `mfu`, `params`, `size`, `created_at`, newest first."""
    if given is not None:
        return float(given), "given"
    for c in calibrations:
        p = c.get("params")
        if planned_params and p and 1 / MFU_SIZE_FACTOR <= planned_params / p <= MFU_SIZE_FACTOR:
            return float(c["mfu"]), f"calibration of a {p / 1e6:,.0f}M-parameter model ({c.get('created_at')})"
    if calibrations:
        sizes = ", ".join(f"{c['params'] / 1e6:,.0f}M" for c in calibrations[:3] if c.get("params"))
        return DEFAULT_MFU, (f"default {DEFAULT_MFU}: this GPU's calibrations ({sizes}) are not within "
                             f"{MFU_SIZE_FACTOR:g}x of the planned size; calibrate a comparable model")
    return DEFAULT_MFU, f"default {DEFAULT_MFU} (no calibration for this GPU; run `taomi calibrate`)"


def budget(req: PlanRequest, calibrations: list[dict], law=None) -> dict:
    """The compute budget of a request: given FLOPs, or GPUs x peak x MFU x days, with the MFU
    chosen against the size the plan lands on (one refinement: N* moves as C^~0.5)."""
    if req.flops is not None:
        return {"flops": float(req.flops), "source": "given"}
    peak, peak_src, gpu_mem = peak_of(req.gpu, req.peak_tflops)
    planned = None
    if req.mfu is None and calibrations and law is not None:
        planned = P.optimal_split(law, budget_flops(req.gpus, peak, DEFAULT_MFU, req.days))[0]
    mfu, src = choose_mfu(req.mfu, calibrations, planned)
    return {"flops": budget_flops(req.gpus, peak, mfu, req.days), "source": "gpus x peak x mfu x days",
            "gpus": req.gpus, "gpu": req.gpu, "days": req.days, "peak_tflops": peak, "peak_source": peak_src,
            "mfu": mfu, "mfu_source": src, "gpu_memory_gb": gpu_mem}


def training_state(params: float, optimizer: str = "adam", gpu_memory_gb: float | None = None) -> dict:
    """Mixed-precision (bf16) training state, and the GPUs needed just to hold it with ZeRO-3."""
    per = training_state_bytes(1, "bf16", optimizer)
    total = params * per
    out = {"optimizer": optimizer, "training_state_bytes": total, "bytes_per_param": per}
    if gpu_memory_gb:
        out["min_gpus_for_state_zero3"] = math.ceil(total / (gpu_memory_gb * 1e9))
    return out


def make_plan(law, samples, law_desc: str, bud: dict, unique_tokens: float | None = None,
              optimizer: str = "adam", effort: Effort | None = None) -> dict:
    """The plan a user came for: N*, D*, tokens/param, loss (+ CIs), GPU-days, training memory.
    With limited unique tokens the plan never repeats data past what the law rewards, and when
    the loss is flat it is the least compute reaching it (the rest of the budget is reported)."""
    out = {"law": law_desc, **bud}
    limited = isinstance(law, DataConstrainedLaw) and unique_tokens
    if limited:
        lim = P.data_limited_plan(law, bud["flops"], unique_tokens)
        out.update({k: lim[k] for k in ("params", "tokens", "tokens_per_param", "loss")})
        if samples:
            effort = effort or Effort()
            wanted = min(len(samples), effort.ci_samples)
            rows = []
            for s in samples[:wanted]:
                if effort.exhausted():
                    break
                r = P.data_limited_plan(s, bud["flops"], unique_tokens)
                rows.append([r[k] for k in ("params", "tokens", "tokens_per_param", "loss")])
            if len(rows) >= MIN_CI_SAMPLES:
                out["ci"] = P.percentile_ci(rows, ("params", "tokens", "tokens_per_param", "loss"))
            out["ci_samples"] = len(rows)
            full = min(len(samples), SAMPLES_DATA_LIMITED)  # what an unbounded answer uses
            if len(rows) < full:
                out["ci_note"] = (f"intervals from {len(rows)} of {full} bootstrap plans (this answer's effort "
                                  "bound)" if len(rows) >= MIN_CI_SAMPLES else
                                  f"no intervals: {len(rows)} of {full} bootstrap plans fit this answer's effort "
                                  "bound (the command line computes them)")
        out["repetition"] = P.repetition_plan(law, bud["flops"], unique_tokens, limited=lim)
        plan_flops = lim["flops"]
    else:
        out.update(P.plan(law, bud["flops"], samples, U=unique_tokens))
        plan_flops = bud["flops"]
    out["plan_flops"] = plan_flops
    n = out["params"]
    out["isoflop_profile"] = P.isoflop_profile(law, bud["flops"], U=unique_tokens) if not limited else []
    if isinstance(law, ChinchillaLaw):
        out["marginal"] = P.marginal_returns(law, n, out["tokens"])
    out["memory"] = training_state(n, optimizer, bud.get("gpu_memory_gb"))
    peak, mfu = bud.get("peak_tflops"), bud.get("mfu")
    if peak and mfu:
        t = train_time(plan_flops, bud["gpus"], peak, mfu)
        out.update(seconds=t["seconds"], days=t["days"], gpu_days=t["gpu_days"])
    return out


def inverse_for(law, params: float | None = None, tokens: float | None = None) -> dict:
    """The compute-optimal partner of a fixed model size (params) or token count (tokens)."""
    if law.kind != "chinchilla":
        raise ValueError(f"--params/--tokens need a Chinchilla-form law; '{law.name}' is {law.kind} "
                         "(use the default epoch-2024 or a fitted Chinchilla law)")
    if (params is None) == (tokens is None):
        raise ValueError("give params or tokens, not both")
    for name, v in (("params", params), ("tokens", tokens)):
        if v is not None and not (0 < v < 1e30):
            raise ValueError(f"{name} must be a positive number below 1e30")
    return P.tokens_for_params(law, params) if params is not None else P.params_for_tokens(law, tokens)


def with_repetition(law, desc: str, unique_tokens: float | None):
    """A Chinchilla law planned against limited unique tokens gets Muennighoff et al.'s decay.
    A law that cannot honour unique tokens (Kaplan's has no repetition term) is an error."""
    if not unique_tokens:
        return law, desc
    if law.kind == "chinchilla":
        return (DataConstrainedLaw(base=law, name=law.name + "+repetition"),
                desc + " with Muennighoff et al. 2023 repetition decay (R_D* 15.4, R_N* 5.3)")
    if law.kind == "data-constrained":
        return law, desc
    raise ValueError(f"unique_tokens needs a Chinchilla-form or data-constrained law; '{law.name}' ({law.kind}) "
                     "has no term for repeated data")


def with_allocation(law, allocation: str | None):
    if allocation is None:
        return law
    if law.kind != "kaplan":
        raise ValueError(f"kaplan_allocation applies to a Kaplan law, not '{law.name}' ({law.kind})")
    return replace(law, allocation=allocation)


def answer_with(req: PlanRequest, law, samples, desc: str, calibrations: list[dict], info: dict | None = None,
                effort: Effort | None = None) -> dict:
    """The whole answer to a request, given the law (and its bootstrap samples) and the GPU's
    calibrations; pure. `flows.plan_task.answer` reads those and calls this. Every answer names
    the law, its source and (for plans) tokens per parameter, and carries the law's warning."""
    law = with_allocation(law, req.kaplan_allocation)
    law, desc = with_repetition(law, desc, req.unique_tokens)
    if samples and isinstance(law, DataConstrainedLaw):  # bootstrap laws get the same decay
        samples = [s if isinstance(s, DataConstrainedLaw) else
                   DataConstrainedLaw(base=s, R_D_star=law.R_D_star, R_N_star=law.R_N_star) for s in samples]
    head = {"law": desc, "law_info": dict(info or {})}
    if getattr(law, "kind", "") == "kaplan":
        head["law_info"]["allocation"] = ("Kaplan's compute-efficient frontier, N = 1.3e9 (C/PF-day)^0.73 "
                                          "(non-embedding N)" if law.allocation == "frontier"
                                          else "minimum of eq. 1.5 along C = 6ND (not Kaplan's published allocation)")
    if req.kind == "predict":
        return {**head, **P.predict(law, req.params, req.tokens, req.unique_tokens, samples)}
    if req.kind == "target_loss" and req.inference_tokens is not None:
        return {**head, **P.inference_aware(law, req.target_loss, req.inference_tokens)}
    if req.kind == "target_loss":
        return {**head, **P.flops_for_loss(law, req.target_loss, req.unique_tokens)}
    if req.kind == "inverse":
        return {**head, **inverse_for(law, req.params, req.tokens)}
    bud = budget(req, calibrations, law)
    out = {**make_plan(law, samples, desc, bud, req.unique_tokens, effort=effort), "law_info": head["law_info"]}
    if req.experiments:
        out["experiments"] = P.suggested_experiments(law, bud["flops"])
    return out


def data_verdict(plan: dict, unique: float) -> dict:
    """How the plan's tokens compare with the corpus: epochs, and a line when the budget outruns it."""
    tokens = plan.get("tokens")
    if not tokens:
        return {}
    epochs = tokens / unique
    out = {"epochs": epochs}
    rep = plan.get("repetition") or {}
    if rep.get("flat"):
        out["verdict"] = (f"the budget outruns the data: {rep['flat']['waste_share']:.0%} of it buys nothing on "
                          f"{unique:.4g} unique tokens; find more unique data or plan a smaller budget")
    elif epochs > 1:
        out["verdict"] = (f"the plan repeats the corpus {epochs:.1f} times (within the ~{rep.get('epochs_worth_it', 0):.0f} "
                          "epochs the law rewards)")
    else:
        out["verdict"] = f"the plan uses {epochs:.1%} of the corpus's unique tokens once"
    return out

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
from scaling.accounting import REFERENCE_SEQ, REFERENCE_VOCAB, reference_shape
from scaling.allocation import in_law_accounting
from scaling.compute import RECOMPUTE, SECONDS_PER_DAY, recompute_ratio, run_time, training_state_bytes
from scaling.hardware import PRECISIONS, get_gpu
from scaling.laws import AllocationLaw, ChinchillaLaw, DataConstrainedLaw

DEFAULT_MFU = 0.40  # a well-tuned dense transformer on current GPUs; measure yours with `taomi calibrate`
MFU_SIZE_FACTOR = 10.0  # a calibration speaks for models within one decade of its own size
SAMPLES_DATA_LIMITED = 100  # bootstrap laws used for the CIs of a data-limited plan (each is a search)
MIN_CI_SAMPLES = 10  # fewer bootstrap plans than this give no interval
EXTRAPOLATION_WARN = 10.0  # a plan more than this factor past a law's fitted range says so
# Tokens per parameter of a compute-optimal plan outside this band: every published compute-optimal
# fit of the Chinchilla era lands in ~10-60 (Hoffmann et al. 2022 approaches 1-2 ~20, approach 3
# 45-59; Llama 3 at 3.8e25: 41; DeepSeek LLM 67B: 30); Kaplan's frontier lands below 1 at 1e24.
TOKENS_PER_PARAM_BAND = (2.0, 100.0)


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
    law_file: str | None = None  # a law file (TOML) instead of a published law or a fit
    hfu: float | None = None  # alternatives to mfu: hardware FLOPs utilisation ...
    achieved_tflops: float | None = None  # ... or hardware TFLOP/s per GPU as Megatron/BLOOM report it
    recompute: str = "none"  # none | selective | full: the HFU/MFU ratio
    hfu_ratio: float | None = None  # a published HFU/MFU ratio instead (PaLM: 1.25)
    goodput: float = 1.0  # the share of wall-clock time that trains
    precision: str = "bf16"  # the GPU peak used: bf16 or fp8
    seq: int | None = None  # shape used to convert between FLOP accountings (and for selective recompute)
    hidden: int | None = None
    vocab: int | None = None

    def __post_init__(self) -> None:
        if sum(x is not None and x != "" for x in (self.law, self.fit, self.law_file)) > 1:
            raise ValueError("give one of a law, a law file or a fit, not both")
        speeds = [k for k in ("mfu", "hfu", "achieved_tflops") if getattr(self, k) is not None]
        if len(speeds) > 1:
            raise ValueError(f"give one of mfu, hfu or achieved_tflops, not {' and '.join(speeds)}")
        if self.hfu is not None and not (0 < self.hfu <= 1):
            raise ValueError(f"hfu is a fraction of peak in (0, 1], got {self.hfu}")
        if self.achieved_tflops is not None and not (0 < self.achieved_tflops < 1e6):
            raise ValueError("achieved_tflops must be a positive TFLOP/s per GPU")
        if not (isinstance(self.goodput, (int, float)) and 0 < self.goodput <= 1):
            raise ValueError(f"goodput is the share of wall-clock time that trains, in (0, 1]; got {self.goodput}")
        if self.recompute not in RECOMPUTE:
            raise ValueError("recompute must be none, selective or full")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        for k in ("seq", "hidden", "vocab"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, int) and 0 < v <= 10_000_000):
                raise ValueError(f"{k} must be a positive integer up to 10,000,000")
        if self.hfu_ratio is not None:
            recompute_ratio(ratio=self.hfu_ratio)
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
                                       or (self.gpu is None and self.peak_tflops is None
                                           and self.achieved_tflops is None)):
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
        """Does the answer depend on stored calibrations (a GPU budget with no speed given)?"""
        return (self.kind == "budget" and self.flops is None and self.gpu is not None
                and self.mfu is None and self.hfu is None and self.achieved_tflops is None)

    @property
    def ratio(self) -> float:
        """Hardware / model FLOPs under this request's recomputation."""
        return recompute_ratio(self.recompute, self.seq, self.hidden, self.hfu_ratio)

    def as_dict(self) -> dict:
        return asdict(self)


def peak_of(gpu: str | None, peak_tflops: float | None, precision: str = "bf16",
            needed: bool = True) -> tuple[float | None, str | None, float | None]:
    """(dense peak TFLOP/s at the precision, its source, GPU memory in GB or None). With no GPU
    and no peak given, (None, None, None) when the speed needs no peak (`needed=False`: achieved
    TFLOP/s), else the unknown-GPU error."""
    if peak_tflops is not None:
        return float(peak_tflops), "given (--peak-tflops)", None
    if gpu is None and not needed:
        return None, None, None
    g = get_gpu(gpu or "")
    return g.peak(precision), f"{precision}: {g.source}", g.memory_gb


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
    ratio = req.ratio
    peak, peak_src, gpu_mem = peak_of(req.gpu, req.peak_tflops, req.precision, needed=req.achieved_tflops is None)
    if req.hfu is not None:
        mfu, src = req.hfu / ratio, f"HFU {req.hfu:g} given / {ratio:.4g} (hardware / model FLOPs)"
    elif req.achieved_tflops is not None:
        mfu = req.achieved_tflops / ratio / peak if peak else None
        src = f"{req.achieved_tflops:g} hardware TFLOP/s per GPU given / {ratio:.4g} (hardware / model FLOPs)"
    else:
        planned = None
        if req.mfu is None and calibrations and law is not None and law.kind != "allocation":
            planned = P.optimal_split(law, budget_flops(req.gpus, peak, DEFAULT_MFU, req.days))[0]
        mfu, src = choose_mfu(req.mfu, calibrations, planned)
    if mfu is not None and mfu * ratio > 1 + 1e-9:
        raise ValueError(f"MFU {mfu:.3g} with hardware / model FLOPs {ratio:.3g} means HFU {mfu * ratio:.2f} > 1: "
                         "the hardware cannot run that fast")
    model_tflops = req.achieved_tflops / ratio if req.achieved_tflops is not None else peak * mfu
    flops = req.gpus * model_tflops * 1e12 * req.days * SECONDS_PER_DAY * req.goodput
    return {"flops": flops, "source": "gpus x peak x mfu x days x goodput", "gpus": req.gpus, "gpu": req.gpu,
            "days": req.days, "peak_tflops": peak, "peak_source": peak_src, "precision": req.precision,
            "mfu": mfu, "mfu_source": src, "hfu": mfu * ratio if mfu is not None else None, "hfu_ratio": ratio,
            "recompute": req.recompute, "model_tflops_per_gpu": model_tflops, "goodput": req.goodput,
            "gpu_memory_gb": gpu_mem}


def training_state(params: float, optimizer: str = "adam", gpu_memory_gb: float | None = None) -> dict:
    """Mixed-precision (bf16) training state, and the GPUs needed just to hold it with ZeRO-3."""
    per = training_state_bytes(1, "bf16", optimizer)
    total = params * per
    out = {"optimizer": optimizer, "training_state_bytes": total, "bytes_per_param": per}
    if gpu_memory_gb:
        out["min_gpus_for_state_zero3"] = math.ceil(total / (gpu_memory_gb * 1e9))
    return out


def make_plan(law, samples, law_desc: str, bud: dict, unique_tokens: float | None = None,
              optimizer: str = "adam", effort: Effort | None = None, seq: int | None = None,
              vocab: int | None = None) -> dict:
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
    elif isinstance(law, AllocationLaw):
        conv = in_law_accounting(law, bud["flops"], seq, vocab)
        out.update(params=conv["params"], tokens=conv["tokens"], tokens_per_param=conv["tokens"] / conv["params"])
        if law.model_unit == "flops_per_token":
            out["flops_per_token"] = conv["law_model"]
        if "accounting" in conv:
            out["accounting"] = conv["accounting"]
        plan_flops = bud["flops"]
    elif law.accounting != "6nd":
        conv = in_law_accounting(law, bud["flops"], seq, vocab)
        inner = P.plan(law, conv["law_flops"], samples, U=unique_tokens)
        out.update(inner, flops=bud["flops"], params=conv["params"], params_non_embedding=inner["params"],
                   tokens_per_param=inner["tokens"] / conv["params"], accounting=conv["accounting"])
        out.pop("ci", None)  # the bootstrap intervals are in the law's own accounting
        plan_flops = bud["flops"]
    else:
        out.update(P.plan(law, bud["flops"], samples, U=unique_tokens))
        plan_flops = bud["flops"]
    out["plan_flops"] = plan_flops
    n = out["params"]
    out["isoflop_profile"] = (P.isoflop_profile(law, bud["flops"], U=unique_tokens)
                              if not limited and law.kind != "allocation" and law.accounting == "6nd" else [])
    if isinstance(law, ChinchillaLaw):
        out["marginal"] = P.marginal_returns(law, n, out["tokens"])
    out["memory"] = training_state(n, optimizer, bud.get("gpu_memory_gb"))
    rate = bud.get("model_tflops_per_gpu")
    if rate:
        t = run_time(plan_flops, bud["gpus"], None, achieved_tflops=rate, goodput=bud.get("goodput", 1.0))
        out.update(seconds=t["seconds"], days=t["days"], gpu_days=t["gpu_days"], gpu_hours=t["gpu_hours"],
                   compute_days=t["compute_days"])
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
        out = P.flops_for_loss(law, req.target_loss, req.unique_tokens)
        if law.accounting == "kaplan":  # the law's compute counts non-embedding N; the answer's counts all of N
            shape = reference_shape(non_embedding_params=out["params"], seq=req.seq or REFERENCE_SEQ,
                                    vocab=req.vocab if req.vocab is not None else REFERENCE_VOCAB)
            total = shape.params()
            out = {**out, "params_non_embedding": out["params"], "params": total, "flops": 6 * total * out["tokens"],
                   "accounting": {"law": "kaplan", "budget": "6nd", "law_flops": out["flops"],
                                  "note": f"'{law.name}' counts non-embedding parameters; the compute is 6·N·D with "
                                          f"all {total:.4g} parameters of a reference shape"}}
        return {**head, **out}
    if req.kind == "inverse":
        return {**head, **inverse_for(law, req.params, req.tokens)}
    bud = budget(req, calibrations, law)
    out = {**make_plan(law, samples, desc, bud, req.unique_tokens, effort=effort, seq=req.seq, vocab=req.vocab),
           "law_info": head["law_info"]}
    if req.experiments:
        if law.kind == "allocation":
            raise ValueError(f"--experiments needs a loss law; '{law.name}' is an allocation")
        out["experiments"] = P.suggested_experiments(law, bud["flops"])
    from scaling.hyperparams import hyperparams

    out["hyperparams"] = hyperparams(out["plan_flops"], "6nd", seq=req.seq)
    out["warnings"] = evidence_warnings(out, law, head["law_info"])
    return out


def evidence_warnings(plan: dict, law, info: dict) -> list[str]:
    """What a plan's evidence does not support: a budget, size or token count more than
    EXTRAPOLATION_WARN past the ranges the law was fitted on (`info["fitted"]`, from the law file
    or the stored fit's observations), tokens per parameter outside TOKENS_PER_PARAM_BAND, the
    fit's poorly determined parameters and the approaches' disagreement (`info["approaches"]`)."""
    out = []
    fitted = info.get("fitted") or {}
    for key, label in (("flops", "compute"), ("params", "parameters"), ("tokens", "tokens")):
        rng, v = fitted.get(key), plan.get("plan_flops" if key == "flops" else key)
        if key == "params" and plan.get("params_non_embedding"):
            v = plan["params_non_embedding"]  # Kaplan's ranges count non-embedding parameters
        if not rng or not v:
            continue
        lo, hi = rng
        if v > hi * EXTRAPOLATION_WARN:
            out.append(f"extrapolation: the plan's {label} ({v:.3g}) is {v / hi:,.0f}x the largest the law was fitted "
                       f"on ({hi:.3g}); its exponents are untested there")
        elif v < lo / EXTRAPOLATION_WARN:
            out.append(f"extrapolation: the plan's {label} ({v:.3g}) is {lo / v:,.0f}x below the smallest the law was "
                       f"fitted on ({lo:.3g})")
    tpp = plan.get("tokens_per_param")
    lo, hi = TOKENS_PER_PARAM_BAND
    if tpp and tpp < lo and not plan.get("repetition"):
        out.append(f"{tpp:.3g} tokens per parameter is below {lo:g}: every compute-optimal fit since Hoffmann et al. "
                   "2022 lands at ~10-60 (Kaplan's frontier is the exception it revised); a law fitted to data this "
                   "law's form does not describe gives such plans")
    elif tpp and tpp > hi and not plan.get("repetition"):
        out.append(f"{tpp:.3g} tokens per parameter is above {hi:g}: far past the ~10-60 of published compute-optimal "
                   "fits; right for a small model served a lot (see --inference-tokens), not as the compute optimum")
    for flag in info.get("poorly_determined") or []:
        out.append(f"the fit is poorly determined: {flag}")
    ap = info.get("approaches")
    if ap and ap.get("disagreement", 1) > 1.5:
        out.append(f"on the fit's own data approaches 2 and 3 put N_opt {ap['disagreement']:.2f}x apart at this budget "
                   "(`taomi approaches`): the plan's split is not pinned down by the data")
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

"""Calculators: training FLOPs, time, and memory (weights, optimizer, activations, KV cache), MoE.

Every formula cites its source in one line. Inputs are plain numbers; results are dicts of
numbers with units in the key names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}
# bytes per parameter of optimizer state, mixed precision (Rajbhandari et al. 2020, ZeRO, sec. 3.1:
# Adam keeps an fp32 master copy + momentum + variance = 12 bytes; Dettmers et al. 2022: 8-bit Adam
# keeps fp32 master + two 1-byte states = 6 bytes; SGD with momentum: master + momentum = 8).
OPTIMIZER_BYTES = {"adam": 12, "adamw": 12, "adam8bit": 6, "sgd-momentum": 8, "sgd": 4}


def _check(**kw) -> None:
    for k, v in kw.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{k} must be a positive finite number, got {v!r}")


def training_flops(params: float, tokens: float, recompute: str = "none") -> float:
    """6ND (Kaplan et al. 2020, sec. 2.1); 8ND with full activation recomputation (one extra forward)."""
    _check(params=params, tokens=tokens)
    if recompute not in ("none", "selective", "full"):
        raise ValueError("recompute must be none, selective or full")
    return (8.0 if recompute == "full" else 6.0) * params * tokens


def flops_per_token(params: float, layers: int, heads: int, head_dim: int, seq: int, causal_halved: bool = False) -> float:
    """6N + 12·L·H·Q·T (PaLM, Chowdhery et al. 2022, app. B; nanoGPT estimate_mfu); the attention
    term counts the full T x T score matrix unless `causal_halved` (then 6·L·H·Q·T)."""
    _check(params=params, layers=layers, heads=heads, head_dim=head_dim, seq=seq)
    return 6.0 * params + (6.0 if causal_halved else 12.0) * layers * heads * head_dim * seq


def train_time(flops: float, gpus: int, peak_tflops: float, mfu: float) -> dict:
    """time = FLOPs / (GPUs x peak x MFU)."""
    _check(flops=flops, gpus=gpus, peak_tflops=peak_tflops, mfu=mfu)
    if mfu > 1:
        raise ValueError(f"mfu is a fraction of peak, in (0, 1]; got {mfu}")
    seconds = flops / (gpus * peak_tflops * 1e12 * mfu)
    return {"flops": flops, "seconds": seconds, "days": seconds / SECONDS_PER_DAY,
            "gpu_days": seconds * gpus / SECONDS_PER_DAY}


@dataclass(frozen=True)
class MemoryQuery:
    layers: int
    hidden: int
    heads: int
    seq: int
    batch: int = 1
    kv_heads: int | None = None
    params: float | None = None  # default: 12·L·h² (+ embeddings if vocab given)
    vocab: int = 0
    precision: str = "bf16"
    optimizer: str = "adam"
    zero: int = 0
    dp: int = 1
    recompute: str = "none"
    tp: int = 1
    generate: int = 0
    prompt: int | None = None
    kv_precision: str | None = None
    paged_block: int = 0
    train: bool = True

    def __post_init__(self) -> None:
        _check(layers=self.layers, hidden=self.hidden, heads=self.heads, seq=self.seq, batch=self.batch,
               dp=self.dp, tp=self.tp)
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        kv = self.kv_heads or self.heads
        if kv < 1 or self.heads % kv:
            raise ValueError(f"kv_heads ({kv}) must divide heads ({self.heads})")
        if self.precision not in BYTES or (self.kv_precision or self.precision) not in BYTES:
            raise ValueError(f"precision must be one of {', '.join(BYTES)}")
        if self.optimizer not in OPTIMIZER_BYTES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_BYTES)}")
        if self.zero not in (0, 1, 2, 3):
            raise ValueError("zero must be 0, 1, 2 or 3")
        if self.recompute not in ("none", "selective", "full"):
            raise ValueError("recompute must be none, selective or full")
        if self.generate < 0 or self.paged_block < 0:
            raise ValueError("generate and paged_block must be >= 0")


def activation_bytes_per_layer(seq: int, batch: int, hidden: int, heads: int, recompute: str = "none",
                               tp: int = 1) -> float:
    """Korthikanti et al. 2022, eqs. 2-5 (16-bit activations): s·b·h·(34 + 5·a·s/h) without
    recomputation; s·b·h·34 with selective; 2·s·b·h with full; / t with tensor + sequence parallel."""
    sbh = seq * batch * hidden
    if recompute == "full":
        return 2.0 * sbh / tp
    if recompute == "selective":
        return 34.0 * sbh / tp
    return sbh * (34.0 + 5.0 * heads * seq / hidden) / tp


def kv_cache_bytes(batch: int, layers: int, kv_heads: int, head_dim: int, tokens: int, bytes_per_elem: float,
                   paged_block: int = 0) -> float:
    """2 (K and V) x bytes x b x layers x kv_heads x head_dim x tokens; paged KV rounds tokens up to
    whole blocks (vLLM, Kwon et al. 2023: 16 tokens)."""
    if paged_block:
        tokens = math.ceil(tokens / paged_block) * paged_block
    return 2.0 * bytes_per_elem * batch * layers * kv_heads * head_dim * tokens


def memory(q: MemoryQuery) -> dict:
    """Per-GPU memory for training (weights, grads, optimizer, activations) or inference (KV cache)."""
    head_dim = q.hidden // q.heads
    kv_heads = q.kv_heads or q.heads
    params = q.params if q.params is not None else 12.0 * q.layers * q.hidden ** 2 + q.vocab * q.hidden
    pbytes = BYTES[q.precision]
    shard_p = q.dp if q.zero >= 3 else 1
    shard_g = q.dp if q.zero >= 2 else 1
    shard_o = q.dp if q.zero >= 1 else 1
    weights = params * pbytes / q.tp / shard_p
    grads = params * pbytes / q.tp / shard_g if q.train else 0.0
    optim = params * OPTIMIZER_BYTES[q.optimizer] / q.tp / shard_o if q.train else 0.0
    act_layer = activation_bytes_per_layer(q.seq, q.batch, q.hidden, q.heads, q.recompute, q.tp) if q.train else 0.0
    tokens = (q.prompt if q.prompt is not None else q.seq) + q.generate
    kv = kv_cache_bytes(q.batch, q.layers, kv_heads, head_dim, tokens, BYTES[q.kv_precision or q.precision],
                        q.paged_block) / q.tp if (q.generate or not q.train) else 0.0
    total = weights + grads + optim + act_layer * q.layers + kv
    return {
        "params": params, "weights_bytes": weights, "gradient_bytes": grads, "optimizer_bytes": optim,
        "activation_bytes": act_layer * q.layers, "activation_bytes_per_layer": act_layer,
        "kv_cache_bytes": kv, "kv_cache_bytes_per_token": kv / tokens if kv else 0.0,
        "total_bytes": total, "total_gib": total / 2 ** 30,
    }


def moe_params(dense_params: float, expert_params: float, experts: int, top_k: int) -> dict:
    """Total vs active parameters of a mixture of experts: FLOPs follow the active count
    (6 x active x D), memory the total (Fedus et al. 2021; Switch/GShard accounting)."""
    _check(experts=experts, top_k=top_k, expert_params=expert_params)
    if top_k > experts:
        raise ValueError("top_k cannot exceed experts")
    return {"total_params": dense_params + experts * expert_params,
            "active_params": dense_params + top_k * expert_params}


def training_state_bytes(params: float, precision: str = "bf16", optimizer: str = "adam") -> float:
    """Weights and gradients in `precision` plus the optimizer's states, fp32 master weights
    included (ZeRO paper, Rajbhandari et al. 2020, sec. 3.1: 2 + 2 + 12 = 16 bytes/param for
    mixed-precision Adam). The one place this is computed (plans and the MoE estimate use it)."""
    if precision not in BYTES:
        raise ValueError(f"precision must be one of {', '.join(BYTES)}")
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_BYTES)}")
    return params * (2 * BYTES[precision] + OPTIMIZER_BYTES[optimizer])


def moe_estimate(dense_params: float, expert_params: float, experts: int, top_k: int, tokens: float,
                 precision: str = "bf16") -> dict:
    """Mixture of experts: training FLOPs follow the active parameters, memory the total."""
    p = moe_params(dense_params, expert_params, experts, top_k)
    return {**p, "experts": experts, "top_k": top_k, "tokens": tokens,
            "training_flops": training_flops(p["active_params"], tokens),
            "dense_equivalent_flops": training_flops(p["total_params"], tokens),
            "weights_bytes": p["total_params"] * BYTES[precision] if precision in BYTES else None,
            "training_state_bytes": training_state_bytes(p["total_params"], precision)}


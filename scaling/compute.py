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
FP32_MASTER_BYTES = 4  # the master copy exists only when the weights are kept in less than 32 bits
SWIGLU_MULTIPLE_OF = 256  # LLaMA rounds the SwiGLU width 8h/3 up to a multiple of 256


def _check(**kw) -> None:
    for k, v in kw.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{k} must be a positive finite number, got {v!r}")


def training_flops(params: float, tokens: float) -> float:
    """Model FLOPs 6ND (Kaplan et al. 2020, sec. 2.1): what MFU counts, whatever is recomputed."""
    _check(params=params, tokens=tokens)
    return 6.0 * params * tokens


def hardware_flops(params: float, tokens: float, recompute: str = "none") -> float:
    """FLOPs the hardware executes: 8ND with full activation recomputation (one extra forward),
    6ND otherwise (selective recomputation redoes only the attention core, left out here).
    HFU = hardware FLOPs / time / peak (Chowdhery et al. 2022, PaLM, app. B)."""
    if recompute not in ("none", "selective", "full"):
        raise ValueError("recompute must be none, selective or full")
    return training_flops(params, tokens) * (8.0 / 6.0 if recompute == "full" else 1.0)


def flops_per_token(params: float, layers: int, heads: int, head_dim: int, seq: int, causal_halved: bool = False) -> float:
    """6N + 12·L·H·Q·T (PaLM, Chowdhery et al. 2022, app. B; nanoGPT estimate_mfu); the attention
    term counts the full T x T score matrix unless `causal_halved` (then 6·L·H·Q·T)."""
    _check(params=params, layers=layers, heads=heads, head_dim=head_dim, seq=seq)
    return 6.0 * params + (6.0 if causal_halved else 12.0) * layers * heads * head_dim * seq


def train_time(flops: float, gpus: int, peak_tflops: float, mfu: float, hardware_ratio: float = 1.0) -> dict:
    """time = model FLOPs / (GPUs x peak x MFU), MFU as PaLM defines it (model FLOPs, recompute
    excluded). `hardware_ratio` = hardware / model FLOPs (4/3 with full recompute) gives the HFU."""
    _check(flops=flops, gpus=gpus, peak_tflops=peak_tflops, mfu=mfu, hardware_ratio=hardware_ratio)
    if mfu > 1:
        raise ValueError(f"mfu is a fraction of peak, in (0, 1]; got {mfu}")
    seconds = flops / (gpus * peak_tflops * 1e12 * mfu)
    hfu = mfu * hardware_ratio
    out = {"flops": flops, "seconds": seconds, "days": seconds / SECONDS_PER_DAY,
           "gpu_days": seconds * gpus / SECONDS_PER_DAY, "mfu": mfu, "hfu": hfu,
           "hardware_flops": flops * hardware_ratio}
    if hfu > 1:
        raise ValueError(f"MFU {mfu} with recompute means HFU {hfu:.2f} > 1: the hardware cannot run that fast")
    return out


def training_time(params: float, tokens: float, gpus: int, peak_tflops: float, mfu: float,
                  recompute: str = "none") -> dict:
    """Wall-clock time of training N params on D tokens at a given MFU, with the HFU that the
    recompute choice implies (GPT-3: 175B, 300B tokens, 1024 A100, MFU 0.45: ~25 days; the
    ~34 days often quoted is the same run at HFU 0.45 with full recompute, i.e. MFU 0.34)."""
    flops = training_flops(params, tokens)
    out = train_time(flops, gpus, peak_tflops, mfu, hardware_flops(params, tokens, recompute) / flops)
    return {**out, "recompute": recompute}


@dataclass(frozen=True)
class MemoryQuery:
    layers: int
    hidden: int
    heads: int
    seq: int
    batch: int = 1
    kv_heads: int | None = None
    params: float | None = None  # default: counted from the shape (GQA, SwiGLU, embeddings)
    vocab: int = 0
    ffn: int | None = None  # MLP width; default 4h (gelu) or 8h/3 rounded up to 256 (swiglu)
    mlp: str = "gelu"  # gelu (2 matrices) | swiglu (3)
    tied_embeddings: bool = True
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
        if self.mlp not in ("gelu", "swiglu"):
            raise ValueError("mlp must be gelu or swiglu")
        if self.ffn is not None and self.ffn < 1:
            raise ValueError("ffn must be >= 1")
        if self.vocab < 0:
            raise ValueError("vocab must be >= 0")


def activation_bytes_per_layer(seq: int, batch: int, hidden: int, heads: int, recompute: str = "none",
                               tp: int = 1, bytes_per_elem: float = 2) -> float:
    """Korthikanti et al. 2022, eqs. 2-5: s·b·h·(34 + 5·a·s/h) at 16 bits without recomputation;
    s·b·h·34 with selective; 2·s·b·h with full; / t with tensor + sequence parallel. Of the 34,
    32 are 16-bit values and 2 are 1-byte dropout masks (of the 5, 4 and 1), so at p bytes per
    value: s·b·h·(16p + 2) + a·s²·b·(2p + 1)."""
    sbh = seq * batch * hidden
    p = bytes_per_elem
    if recompute == "full":
        return p * sbh / tp  # each layer's input only
    if recompute == "selective":
        return (16 * p + 2) * sbh / tp
    return ((16 * p + 2) * sbh + (2 * p + 1) * heads * seq * seq * batch) / tp


def logits_bytes(seq: int, batch: int, vocab: int, tp: int = 1) -> float:
    """The output layer's logits kept for the loss's backward, in fp32: 4·s·b·V (Korthikanti et
    al. 2022, sec. 4.3 count the output layer apart; at V = 128K, s = 8K that is ~4 GB a sequence)."""
    return 4.0 * seq * batch * vocab / tp


def param_count(layers: int, hidden: int, heads: int, kv_heads: int | None = None, vocab: int = 0,
                ffn: int | None = None, mlp: str = "gelu", tied_embeddings: bool = True) -> float:
    """Parameters from the shape: attention Q, O (h·h each) and K, V (h·kv_heads·head_dim each),
    the MLP (2 matrices, or 3 for SwiGLU), two norms per layer, the final norm and the embeddings
    (twice when untied). Biases are left out (LLaMA has none). Checked: LLaMA-2-7B 6,738,415,616;
    Llama-3-8B (GQA 8) 8,030,261,248."""
    kv = kv_heads or heads
    head_dim = hidden // heads
    if ffn is None:
        ffn = 4 * hidden if mlp == "gelu" else -(-8 * hidden // 3 // SWIGLU_MULTIPLE_OF) * SWIGLU_MULTIPLE_OF
    attn = 2 * hidden * hidden + 2 * hidden * kv * head_dim
    mlp_p = (3 if mlp == "swiglu" else 2) * hidden * ffn
    emb = vocab * hidden * (1 if tied_embeddings else 2)
    return float(layers * (attn + mlp_p + 2 * hidden) + emb + (hidden if vocab else 0))


def optimizer_bytes_per_param(optimizer: str, precision: str) -> float:
    """Optimizer state per parameter; the fp32 master copy only when the weights are narrower."""
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_BYTES)}")
    if precision not in BYTES:
        raise ValueError(f"precision must be one of {', '.join(BYTES)}")
    return OPTIMIZER_BYTES[optimizer] - (FP32_MASTER_BYTES if BYTES[precision] >= 4 else 0)


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
    params = q.params if q.params is not None else param_count(
        q.layers, q.hidden, q.heads, q.kv_heads, q.vocab, q.ffn, q.mlp, q.tied_embeddings)
    pbytes = BYTES[q.precision]
    shard_p = q.dp if q.zero >= 3 else 1
    shard_g = q.dp if q.zero >= 2 else 1
    shard_o = q.dp if q.zero >= 1 else 1
    weights = params * pbytes / q.tp / shard_p
    grads = params * pbytes / q.tp / shard_g if q.train else 0.0
    optim = params * optimizer_bytes_per_param(q.optimizer, q.precision) / q.tp / shard_o if q.train else 0.0
    act_layer = activation_bytes_per_layer(q.seq, q.batch, q.hidden, q.heads, q.recompute, q.tp, pbytes) \
        if q.train else 0.0
    act = act_layer * q.layers
    if q.train and q.recompute == "full":  # during backward one layer is recomputed in full
        act += activation_bytes_per_layer(q.seq, q.batch, q.hidden, q.heads, "none", q.tp, pbytes)
    logits = logits_bytes(q.seq, q.batch, q.vocab, q.tp) if q.train else 0.0
    tokens = (q.prompt if q.prompt is not None else q.seq) + q.generate
    kv = kv_cache_bytes(q.batch, q.layers, kv_heads, head_dim, tokens, BYTES[q.kv_precision or q.precision],
                        q.paged_block) / q.tp if (q.generate or not q.train) else 0.0
    total = weights + grads + optim + act + logits + kv
    return {
        "params": params, "weights_bytes": weights, "gradient_bytes": grads, "optimizer_bytes": optim,
        "activation_bytes": act, "activation_bytes_per_layer": act_layer, "logits_bytes": logits,
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
    """Weights and gradients in `precision` plus the optimizer's states, an fp32 master copy only
    below 32 bits (ZeRO paper, Rajbhandari et al. 2020, sec. 3.1: 2 + 2 + 12 = 16 bytes/param for
    mixed-precision Adam; fp32 Adam: 4 + 4 + 8 = 16). The one place this is computed (plans and
    the MoE estimate use it)."""
    return params * (2 * BYTES[precision] + optimizer_bytes_per_param(optimizer, precision))


def moe_estimate(dense_params: float, expert_params: float, experts: int, top_k: int, tokens: float,
                 precision: str = "bf16") -> dict:
    """Mixture of experts: training FLOPs follow the active parameters, memory the total."""
    p = moe_params(dense_params, expert_params, experts, top_k)
    return {**p, "experts": experts, "top_k": top_k, "tokens": tokens,
            "training_flops": training_flops(p["active_params"], tokens),
            "dense_equivalent_flops": training_flops(p["total_params"], tokens),
            "weights_bytes": p["total_params"] * BYTES[precision] if precision in BYTES else None,
            "training_state_bytes": training_state_bytes(p["total_params"], precision)}


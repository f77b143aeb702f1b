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


RECOMPUTE = ("none", "selective", "full")
PALM_HFU_RATIO = 57.8 / 46.2  # PaLM 540B, Chowdhery et al. 2022, table 3: HFU 57.8% vs MFU 46.2% (~1.25)


def recompute_ratio(recompute: str = "none", seq: int | None = None, hidden: int | None = None,
                    ratio: float | None = None) -> float:
    """Hardware FLOPs / model FLOPs: what the chips run per FLOP that MFU counts.

    none: 1. full: 8/6 (every layer's forward runs again in the backward; Narayanan et al. 2021,
    eq. 3 counts 96·B·s·l·h² against 72). selective (Korthikanti et al. 2022, sec. 5): only the
    attention core (Q·K^T and scores·V, 4·s²·h a layer) runs again, against 72·s·h² + 12·s²·h a
    layer for the whole step: 1 + 4s / (72h + 12s), so it needs the sequence and hidden sizes.
    `ratio` overrides all three with a published figure (PaLM's rematerialisation: 1.25)."""
    if ratio is not None:
        if not (math.isfinite(ratio) and 1.0 <= ratio <= 4.0):
            raise ValueError(f"an HFU/MFU ratio is in [1, 4], got {ratio}")
        return float(ratio)
    if recompute not in RECOMPUTE:
        raise ValueError("recompute must be none, selective or full")
    if recompute == "full":
        return 8.0 / 6.0
    if recompute == "selective":
        if not seq or not hidden:
            raise ValueError("--recompute selective needs --seq and --hidden: its extra FLOPs, 4s/(72h + 12s) of "
                             "the model's, depend on them (or give the ratio itself with --hfu-ratio)")
        _check(seq=seq, hidden=hidden)
        return 1.0 + 4.0 * seq / (72.0 * hidden + 12.0 * seq)
    return 1.0


def hardware_flops(params: float, tokens: float, recompute: str = "none") -> float:
    """FLOPs the hardware executes: 8ND with full activation recomputation (one extra forward),
    6ND otherwise (see `recompute_ratio` for selective, which needs the shape).
    HFU = hardware FLOPs / time / peak (Chowdhery et al. 2022, PaLM, app. B)."""
    if recompute not in RECOMPUTE:
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
    return run_time(flops, gpus, peak_tflops, mfu=mfu, ratio=hardware_ratio)


def run_time(flops: float, gpus: int, peak_tflops: float | None, *, mfu: float | None = None,
             hfu: float | None = None, achieved_tflops: float | None = None, ratio: float = 1.0,
             goodput: float = 1.0) -> dict:
    """Wall-clock time of `flops` model FLOPs, from exactly one of three published ways to state speed:

    - mfu: model FLOPs / time / peak (PaLM's MFU; what `taomi calibrate` measures);
    - hfu: hardware FLOPs / time / peak (the seed's "GPU utilisation 0.45" for GPT-3 is HFU with full
      recompute); MFU = HFU / ratio;
    - achieved_tflops: hardware TFLOP/s per GPU as Megatron and BLOOM report them (Narayanan et al.
      2021 count 96·B·s·l·h² with recompute: 140 for GPT-3 175B; BLOOM 150), so MFU = achieved /
      ratio / peak; no peak is needed.

    `ratio`: hardware / model FLOPs (`recompute_ratio`). `goodput`: the share of wall-clock time
    that trains (Llama 3, Dubey et al. 2024, sec. 3.3.4: "higher than 90% effective training time";
    restarts, failures, checkpoints and slower stages are the rest): days = compute days / goodput."""
    _check(flops=flops, gpus=gpus, ratio=ratio, goodput=goodput)
    if goodput > 1:
        raise ValueError(f"goodput is the share of time spent training, in (0, 1]; got {goodput}")
    given = [k for k, v in (("mfu", mfu), ("hfu", hfu), ("achieved_tflops", achieved_tflops)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of mfu, hfu or achieved TFLOP/s per GPU" +
                         (f" (got {', '.join(given)})" if given else ""))
    for k in ("mfu", "hfu"):
        v = locals()[k]
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= 1):
            raise ValueError(f"{k} is a fraction of peak, in (0, 1]; got {v}")
    if achieved_tflops is not None:
        _check(achieved_tflops=achieved_tflops)
        model_rate = achieved_tflops * 1e12 / ratio  # model FLOP/s per GPU
        mfu = model_rate / (peak_tflops * 1e12) if peak_tflops else None
    else:
        _check(peak_tflops=peak_tflops)
        mfu = mfu if mfu is not None else hfu / ratio
        model_rate = peak_tflops * 1e12 * mfu
    hfu = mfu * ratio if mfu is not None else None
    if hfu is not None and hfu > 1 + 1e-9:
        raise ValueError(f"MFU {mfu:.3g} with an HFU/MFU ratio of {ratio:.3g} means HFU {hfu:.2f} > 1: the hardware "
                         "cannot run that fast")
    compute_s = flops / (gpus * model_rate)
    seconds = compute_s / goodput
    return {"flops": flops, "seconds": seconds, "days": seconds / SECONDS_PER_DAY,
            "gpu_days": seconds * gpus / SECONDS_PER_DAY, "gpu_hours": seconds * gpus / 3600,
            "compute_days": compute_s / SECONDS_PER_DAY, "goodput": goodput, "mfu": mfu, "hfu": hfu,
            "achieved_tflops": model_rate * ratio / 1e12, "hfu_ratio": ratio, "hardware_flops": flops * ratio}


def training_time(params: float, tokens: float, gpus: int, peak_tflops: float | None, mfu: float | None = None,
                  recompute: str = "none", *, hfu: float | None = None, achieved_tflops: float | None = None,
                  goodput: float = 1.0, seq: int | None = None, hidden: int | None = None,
                  hfu_ratio: float | None = None) -> dict:
    """Wall-clock time of training N params on D tokens (6ND model FLOPs) at a given MFU, HFU or
    achieved TFLOP/s (GPT-3: 175B, 300B tokens, 1024 A100: MFU 0.45 gives ~25 days; the ~34 days
    often quoted is HFU 0.45 with full recompute, and Megatron's 140 achieved TFLOP/s, the same)."""
    flops = training_flops(params, tokens)
    ratio = recompute_ratio(recompute, seq, hidden, hfu_ratio)
    out = run_time(flops, gpus, peak_tflops, mfu=mfu, hfu=hfu, achieved_tflops=achieved_tflops, ratio=ratio,
                   goodput=goodput)
    return {**out, "recompute": recompute if hfu_ratio is None else f"ratio {hfu_ratio:g}"}


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
    kv_lora_rank: int = 0  # MLA (DeepSeek-V2/V3): the KV cache holds one latent of this rank per token and layer
    rope_head_dim: int = 0  # MLA: plus the decoupled RoPE key, shared by all heads

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
        if self.kv_lora_rank < 0 or self.rope_head_dim < 0 or (self.rope_head_dim and not self.kv_lora_rank):
            raise ValueError("kv_lora_rank and rope_head_dim must be >= 0, and rope_head_dim goes with kv_lora_rank (MLA)")


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


def mla_kv_cache_bytes(batch: int, layers: int, kv_lora_rank: int, rope_head_dim: int, tokens: int,
                       bytes_per_elem: float, paged_block: int = 0) -> float:
    """Multi-head latent attention (DeepSeek-V2, Liu et al. 2024, sec. 2.1.2; V3 keeps it): per token
    and layer the cache holds the compressed KV latent (d_c = kv_lora_rank) and the decoupled RoPE key
    (d_h^R), not per-head K and V: (d_c + d_h^R) x bytes x layers x tokens. DeepSeek-V3 (61 layers,
    512 + 64, bf16): 70,272 bytes a token."""
    if paged_block:
        tokens = math.ceil(tokens / paged_block) * paged_block
    return float(bytes_per_elem * batch * layers * (kv_lora_rank + rope_head_dim) * tokens)


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
    kv_bytes = BYTES[q.kv_precision or q.precision]
    if q.kv_lora_rank:  # the latent is not split over tensor-parallel ranks: every rank keeps it whole
        kv = mla_kv_cache_bytes(q.batch, q.layers, q.kv_lora_rank, q.rope_head_dim, tokens, kv_bytes, q.paged_block)
    else:
        kv = kv_cache_bytes(q.batch, q.layers, kv_heads, head_dim, tokens, kv_bytes, q.paged_block) / q.tp
    kv = kv if (q.generate or not q.train) else 0.0
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


@dataclass(frozen=True)
class MoEShape:
    """A mixture-of-experts transformer by its shape (Mixtral, DeepSeek-V3): `first_dense` layers
    with a dense SwiGLU MLP of width `dense_ffn`, then MoE layers with `experts` routed experts
    (`top_k` per token) and `shared_experts` always-on ones, each a SwiGLU of width `expert_ffn`,
    and a router (experts x hidden). Attention is GQA (`heads`, `kv_heads`, `head_dim`) or, with
    `kv_lora_rank`, MLA (q_lora_rank, kv_lora_rank, rope_head_dim, nope_head_dim, v_head_dim)."""

    layers: int
    hidden: int
    vocab: int
    experts: int
    top_k: int
    expert_ffn: int
    heads: int
    kv_heads: int | None = None
    head_dim: int | None = None
    shared_experts: int = 0
    first_dense: int = 0
    dense_ffn: int | None = None
    tied_embeddings: bool = False
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_head_dim: int = 0
    nope_head_dim: int = 0
    v_head_dim: int = 0

    def __post_init__(self) -> None:
        _check(layers=self.layers, hidden=self.hidden, vocab=self.vocab, experts=self.experts, top_k=self.top_k,
               expert_ffn=self.expert_ffn, heads=self.heads)
        if self.top_k > self.experts:
            raise ValueError("top_k cannot exceed experts")
        if not 0 <= self.first_dense <= self.layers:
            raise ValueError("first_dense must be between 0 and layers")
        if self.first_dense and not self.dense_ffn:
            raise ValueError("first_dense layers need dense_ffn (their MLP width)")
        if self.shared_experts < 0:
            raise ValueError("shared_experts must be >= 0")
        if self.kv_lora_rank and not (self.nope_head_dim and self.v_head_dim):
            raise ValueError("MLA (kv_lora_rank) needs nope_head_dim and v_head_dim (and usually rope_head_dim)")


def moe_shape_params(s: MoEShape) -> dict:
    """Total and active parameters from a MoE shape, biases left out. Checked: Mixtral 8x7B 46.70B
    total / 12.88B active (Mistral AI: 46.7B / 12.9B); DeepSeek-V3 671.0B / 37.6B (DeepSeek-AI 2024:
    671B / 37B, the multi-token-prediction module apart). Active counts include the embeddings."""
    h = s.hidden
    if s.kv_lora_rank:  # MLA: low-rank Q (when q_lora_rank) and a shared KV latent with a decoupled RoPE key
        qk = s.nope_head_dim + s.rope_head_dim
        q = h * s.q_lora_rank + s.q_lora_rank + s.q_lora_rank * s.heads * qk if s.q_lora_rank else h * s.heads * qk
        attn = (q + h * (s.kv_lora_rank + s.rope_head_dim) + s.kv_lora_rank
                + s.kv_lora_rank * s.heads * (s.nope_head_dim + s.v_head_dim) + s.heads * s.v_head_dim * h)
    else:
        hd = s.head_dim or h // s.heads
        kv = s.kv_heads or s.heads
        attn = h * s.heads * hd * 2 + 2 * h * kv * hd
    per_expert = 3 * h * s.expert_ffn
    router = s.experts * h
    base = attn + 2 * h  # attention and two norms, every layer
    dense_layer = base + 3 * h * (s.dense_ffn or 0)
    moe_layers = s.layers - s.first_dense
    emb = s.vocab * h * (1 if s.tied_embeddings else 2) + h  # embeddings and the final norm
    total = s.first_dense * dense_layer + moe_layers * (base + router + (s.experts + s.shared_experts) * per_expert) + emb
    active = s.first_dense * dense_layer + moe_layers * (base + router + (s.top_k + s.shared_experts) * per_expert) + emb
    return {"total_params": float(total), "active_params": float(active), "embedding_params": float(emb),
            "expert_params": float(per_expert), "attention_params_per_layer": float(attn),
            "moe_layers": moe_layers, "dense_layers": s.first_dense}


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


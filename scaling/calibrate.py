"""Throughput calibration: a real micro-training step on the hardware at hand -> tokens/s, FLOP/s,
MFU; a length-extrapolation check (the micro scaling sweep is scaling/sweep.py).

The only module that imports torch (lazily: every other command works without it). MFU is
measured against the device's dense bf16 peak from scaling/hardware.py; an unknown device is never
guessed: a large matmul is timed and MFU is reported against that, labelled "measured".
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from scaling.hardware import GPUS

TORCH_HINT = ("torch is not installed: `pip install 'taomi[torch]'` (pins torch==2.13.0, the CPU wheel "
              "on this machine; on a GPU host install the CUDA build of that version first)")


def require_torch():
    try:
        import torch
    except ImportError as exc:
        raise RuntimeError(TORCH_HINT) from exc
    return torch


def byte_tokens(texts: list[str], limit_bytes: int = 8 << 20) -> np.ndarray:
    """Byte-level tokens of the corpus (no tokenizer download), up to limit_bytes."""
    buf = bytearray()
    for t in texts:
        buf += t.encode("utf-8") + b"\n"
        if len(buf) >= limit_bytes:
            break
    return np.frombuffer(bytes(buf[:limit_bytes]), dtype=np.uint8).copy()


def table_gpu(device_name: str, memory_gb: float | None = None) -> str | None:
    """Our GPU-table key for a CUDA device name, or None (then the peak is measured)."""
    n = device_name.lower()
    if "h100" in n:
        return "h100-nvl" if "nvl" in n else "h100-pcie" if "pcie" in n else "h100-sxm"
    if "h200" in n:
        return "h200"
    if "a100" in n:
        return "a100-40gb" if (memory_gb or 80) < 60 else "a100-80gb"
    for key in ("l40s", "l4", "a10", "mi300x"):
        if key in n.replace(" ", ""):
            return key
    return None


def measure_matmul_peak(device: str, dtype_name: str = "bf16", n: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of a large square matmul (2n^3 per product), best of `repeats`."""
    torch = require_torch()
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    n = n or (8192 if device == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def _batches(tokens, seq: int, batch: int, rng):
    torch = require_torch()
    data = torch.from_numpy(tokens.astype(np.int64))
    while True:
        ix = rng.integers(0, len(data) - seq - 1, batch)
        x = torch.stack([data[i:i + seq] for i in ix])
        y = torch.stack([data[i + 1:i + seq + 1] for i in ix])
        yield x, y


def calibrate(tokens: np.ndarray, size: str = "tiny", steps: int = 20, warmup: int = 3, batch: int = 8,
              device: str = "auto", compile_model: bool = False, seed: int = 0, lr: float = 3e-3) -> dict:
    """Train `steps` timed AdamW steps (after `warmup`) and report throughput and MFU."""
    torch = require_torch()
    from scaling.model import SIZES, TinyLM, flops_per_token

    if size not in SIZES:
        raise ValueError(f"unknown size '{size}'; choose one of {', '.join(SIZES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    cfg = SIZES[size]
    if cfg.vocab > 256:
        cfg = replace(cfg, vocab=256 if device == "cpu" and size in ("tiny", "small") else cfg.vocab)
    if len(tokens) < cfg.seq * 4:
        raise ValueError(f"need at least {cfg.seq * 4} tokens of text to calibrate, got {len(tokens)}")
    torch.manual_seed(seed)
    model = TinyLM(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, fused=device == "cuda")
    step_fn = torch.compile(model) if compile_model else model
    rng = np.random.default_rng(seed)
    it = _batches(tokens.astype(np.int64) % cfg.vocab, cfg.seq, batch, rng)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()
    losses = []

    def one_step():
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            _, loss = step_fn(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        losses.append(float(one_step().detach()))
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    timed = [one_step() for _ in range(steps)]
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    losses += [float(v.detach()) for v in timed]
    n_params = model.num_params()
    fpt = flops_per_token(cfg, n_params, cfg.seq)
    tokens_per_s = steps * batch * cfg.seq / elapsed
    achieved = tokens_per_s * fpt
    if device == "cuda":
        name = torch.cuda.get_device_name()
        mem = torch.cuda.get_device_properties(0).total_memory / 1e9
        key = table_gpu(name, mem)
        if key:
            peak, peak_source = GPUS[key].peak_tflops_bf16 * 1e12, f"table: {GPUS[key].source}"
        else:
            peak, peak_source = measure_matmul_peak("cuda"), "measured: bf16 8192^3 matmul (device not in the table)"
    else:
        import platform

        name, key = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)", "cpu"
        peak, peak_source = measure_matmul_peak("cpu", "fp32"), "measured: fp32 1024^3 matmul (CPU)"
    return {
        "device": device, "device_name": name, "gpu": key, "torch_version": torch.__version__, "size": size,
        "config": {**cfg.as_dict(), "batch": batch, "steps": steps, "warmup": warmup, "compile": compile_model,
                   "autocast": "bf16" if device == "cuda" else "fp32"},
        "params": n_params, "flops_per_token": fpt,
        "flops_formula": "6N + 12*L*H*Q*T per token (attention counted in full, not halved for causal masking)",
        "tokens_per_s": tokens_per_s, "flops_per_s": achieved, "peak_flops": peak, "peak_source": peak_source,
        "mfu": achieved / peak, "loss_first": losses[0], "loss_last": float(np.mean(losses[-3:])),
        "seconds": elapsed,
    }


def train_eval(tokens: np.ndarray, cfg, train_tokens: int, batch: int = 8, seed: int = 0, lr: float = 3e-3,
               eval_tokens: np.ndarray | None = None, eval_seqs: tuple[int, ...] = ()) -> dict:
    """Train a model of `cfg` on ~train_tokens tokens (CPU); held-out loss at its context and longer."""
    torch = require_torch()
    from scaling.model import TinyLM

    torch.manual_seed(seed)
    model = TinyLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    steps = max(1, train_tokens // (batch * cfg.seq))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    it = _batches(tokens, cfg.seq, batch, np.random.default_rng(seed))
    for _ in range(steps):
        x, y = next(it)
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    held = eval_tokens if eval_tokens is not None else tokens
    out = {"params": model.num_params(), "tokens": steps * batch * cfg.seq}
    model.eval()
    with torch.no_grad():
        for t in (cfg.seq, *eval_seqs):
            if len(held) <= t + 1:
                continue
            ev = _batches(held, t, 4, np.random.default_rng(seed + 1))
            out[f"loss@{t}"] = float(np.mean([float(model(*next(ev))[1]) for _ in range(4)]))
    out["loss"] = out[f"loss@{cfg.seq}"]
    return out


def length_extrapolation(tokens: np.ndarray, seq: int = 64, factors=(2, 4, 8), train_tokens: int = 400_000,
                         seed: int = 0) -> dict:
    """Train at `seq`, evaluate at factor x seq: does held-out loss degrade gracefully (< 10% worse
    at 2x)? RoPE models usually do not extrapolate far without scaling tricks; this says how far."""
    from scaling.model import ModelConfig

    split = int(len(tokens) * 0.9)
    cfg = ModelConfig(vocab=256, layers=2, hidden=64, heads=2, seq=seq)
    r = train_eval(tokens[:split], cfg, train_tokens, seed=seed, eval_tokens=tokens[split:],
                   eval_seqs=tuple(seq * f for f in factors))
    base = r[f"loss@{seq}"]
    table = [{"context": seq * f, "factor": f, "loss": r.get(f"loss@{seq * f}"),
              "ratio": (r[f"loss@{seq * f}"] / base) if f"loss@{seq * f}" in r else None} for f in (1, *factors)]
    ok2 = next((t["ratio"] for t in table if t["factor"] == 2), None)
    return {"train_context": seq, "table": table,
            "graceful": ok2 is not None and ok2 < 1.10,
            "verdict": ("degrades gracefully at 2x" if ok2 is not None and ok2 < 1.10 else
                        "breaks beyond the training context (loss at 2x is >= 10% worse)")}

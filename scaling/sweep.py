"""A micro scaling sweep that can yield a law: small models trained on the user's corpus at a
grid of (N, D), each with its own learning rate and a cosine schedule that ends at its own D
(Hoffmann et al. 2022's lesson: a schedule longer than the run overstates its loss), two seeds,
held-out loss on a fixed >= 64k-token slice. Then `judge` says whether the points can support a
law and, if not, what to run next.

Presets: "cpu" (1.6 decades of N, 8K-360K parameters, D 2e5-1.2e6 bytes: ~4.5 min on 2 cores) and
"gpu" (10M-100M parameters, D 2e7-6e8 tokens). Byte-level tokens: no tokenizer download.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from scaling.calibrate import require_torch


@dataclass(frozen=True)
class SweepPreset:
    sizes: tuple[tuple[int, int], ...]  # (layers, hidden)
    tokens: tuple[float, ...]  # training tokens D per run
    seq: int
    batch: int
    seeds: tuple[int, ...] = (0, 1)
    eval_tokens: int = 65_536
    base_lr: float = 8e-3  # at hidden 64; scaled by 64/hidden (wider models want smaller steps)
    max_lr: float = 1e-2
    warmup: float = 0.05  # share of the steps with a linear warm-up; cosine to 10% after it


PRESETS = {
    "cpu": SweepPreset(sizes=((1, 16), (1, 32), (2, 48), (2, 64), (3, 96)), tokens=(2e5, 5e5, 1.2e6), seq=64,
                       batch=8, base_lr=8e-3, max_lr=3e-2),
    # 10.6M, 25.7M, 49.6M, 85M parameters (counted as scaling.model builds them)
    "gpu": SweepPreset(sizes=((6, 384), (8, 512), (10, 640), (12, 768)), tokens=(2e7, 8e7, 3e8),
                       seq=512, batch=64, base_lr=3e-3, eval_tokens=1 << 20),
}


def lr_for(hidden: int, preset: SweepPreset) -> float:
    return min(preset.max_lr, preset.base_lr * 64 / hidden)


def _held_out_windows(held: np.ndarray, seq: int, eval_tokens: int) -> np.ndarray:
    """Fixed, evenly spaced windows covering eval_tokens predicted tokens (the same for every run)."""
    n = max(1, eval_tokens // seq)
    if len(held) < n * seq + 1:
        raise ValueError(f"the held-out slice has {len(held):,} tokens; the sweep needs {n * seq + 1:,} "
                         "(a larger corpus, or a smaller eval_tokens)")
    starts = np.linspace(0, len(held) - seq - 1, n).astype(np.int64)
    return starts


def train_run(train: np.ndarray, held: np.ndarray, layers: int, hidden: int, tokens: float, seed: int,
              preset: SweepPreset, device: str = "cpu") -> dict:
    """One run: held-out loss after `tokens` training tokens with its own LR and cosine schedule."""
    torch = require_torch()
    from scaling.model import ModelConfig, TinyLM

    cfg = ModelConfig(vocab=256, layers=layers, hidden=hidden, heads=max(1, hidden // 16), seq=preset.seq)
    torch.manual_seed(seed)
    model = TinyLM(cfg).to(device)
    lr = lr_for(hidden, preset)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    steps = max(1, int(tokens) // (preset.batch * preset.seq))
    warm = max(1, int(preset.warmup * steps))

    def factor(s: int) -> float:  # linear warm-up, then cosine from 1 to 0.1 at the run's last step
        if s < warm:
            return (s + 1) / warm
        p = (s - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    data = torch.from_numpy(train.astype(np.int64)).to(device)
    rng = np.random.default_rng(seed)
    offs = torch.arange(preset.seq + 1, device=device)
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        ix = torch.from_numpy(rng.integers(0, len(train) - preset.seq - 1, preset.batch)).to(device)
        chunk = data[ix[:, None] + offs]
        _, loss = model(chunk[:, :-1], chunk[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    train_s = time.perf_counter() - t0
    model.eval()
    hd = torch.from_numpy(held.astype(np.int64)).to(device)
    starts = torch.from_numpy(_held_out_windows(held, preset.seq, preset.eval_tokens)).to(device)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(starts), 256):
            chunk = hd[starts[i:i + 256, None] + offs]
            _, loss = model(chunk[:, :-1], chunk[:, 1:])
            total += float(loss) * len(chunk)
            count += len(chunk)
    return {"N": model.num_params(), "D": steps * preset.batch * preset.seq, "loss": total / count,
            "run": f"L{layers}-h{hidden}-D{int(tokens)}-s{seed}", "seed": seed, "lr": lr, "steps": steps,
            "eval_tokens": count * preset.seq, "train_seconds": train_s}


_WORKER: dict = {}


def _init_worker(train: np.ndarray, held: np.ndarray, preset: SweepPreset, device: str) -> None:
    torch = require_torch()
    torch.set_num_threads(1)  # tiny matrices: one thread per process beats two threads in one
    _WORKER.update(train=train, held=held, preset=preset, device=device)


def _run_in_worker(job: tuple[int, int, float, int]) -> dict:
    layers, hidden, d, s = job
    w = _WORKER
    return train_run(w["train"], w["held"], layers, hidden, d, s, w["preset"], w["device"])


def micro_sweep(tokens: np.ndarray, preset: str | SweepPreset = "cpu", device: str = "cpu", workers: int = 0,
                progress=None) -> dict:
    """Every (size, D, seed) of the preset, trained on the first 90% and evaluated on the last 10%.
    On the CPU the runs go to `workers` processes (0: one per core), biggest first; each run is
    seeded, so the result does not depend on the worker count."""
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    p = PRESETS[preset] if isinstance(preset, str) else preset
    split = int(len(tokens) * 0.9)
    train, held = tokens[:split], tokens[split:]
    _held_out_windows(held, p.seq, p.eval_tokens)  # fail before training if the corpus is too small
    if max(p.tokens) > len(train):
        raise ValueError(f"the largest run reads {max(p.tokens):,.0f} tokens but the training slice has "
                         f"{len(train):,}: it would repeat data (a larger corpus, or smaller D)")
    jobs = sorted(((layers, hidden, d, s) for s in p.seeds for layers, hidden in p.sizes for d in p.tokens),
                  key=lambda j: -j[1] ** 2 * j[0] * j[2])
    workers = workers or (os.cpu_count() or 1)
    t0 = time.perf_counter()
    rows = []
    if device != "cpu" or workers <= 1:
        for k, (layers, hidden, d, s) in enumerate(jobs):
            rows.append(train_run(train, held, layers, hidden, d, s, p, device))
            if progress:
                progress(k + 1, len(jobs))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(train, held, p, device)) as pool:
            for k, fut in enumerate(as_completed([pool.submit(_run_in_worker, j) for j in jobs])):
                rows.append(fut.result())
                if progress:
                    progress(k + 1, len(jobs))
    rows.sort(key=lambda r: (r["seed"], r["N"], r["D"]))
    return {"rows": rows, "seconds": time.perf_counter() - t0, "workers": workers if device == "cpu" else 1,
            "preset": preset if isinstance(preset, str) else "custom",
            "train_tokens_available": len(train), "held_out_tokens": len(held)}


def judge(rows: list[dict]) -> dict:
    """Does loss fall with N at each D and with D at each N (seed-averaged)? The verdict, and what
    to run next when a law is not supported."""
    n_vals = sorted({r["N"] for r in rows})
    d_vals = sorted({r["D"] for r in rows})
    mean = {(n, d): float(np.mean([r["loss"] for r in rows if r["N"] == n and r["D"] == d])) for n in n_vals for d in d_vals}
    seeds = len({r.get("seed", 0) for r in rows})
    spread = float(np.mean([np.std([r["loss"] for r in rows if r["N"] == n and r["D"] == d])
                            for n in n_vals for d in d_vals])) if seeds > 1 else None
    falls_n = {d: all(mean[(a, d)] > mean[(b, d)] for a, b in itertools.pairwise(n_vals)) for d in d_vals}
    falls_d = {n: all(mean[(n, a)] > mean[(n, b)] for a, b in itertools.pairwise(d_vals)) for n in n_vals}
    advice = []
    bad_d = [d for d, ok in falls_n.items() if not ok]
    bad_n = [n for n, ok in falls_d.items() if not ok]
    if bad_d:
        advice.append(f"loss does not fall with N at D = {', '.join(f'{d:,.0f}' for d in bad_d)}: the larger models "
                      "are undertrained there; drop those D or train longer (raise the smallest D)")
    if bad_n:
        advice.append(f"loss does not fall with D at N = {', '.join(f'{n:,.0f}' for n in bad_n)}: the model is "
                      "saturated or its learning rate is off; add larger models or lower its LR")
    decades_n = math.log10(n_vals[-1] / n_vals[0])
    if decades_n < 1.5:
        advice.append(f"N spans {decades_n:.2f} decades; a law needs >= 1.5: add smaller or larger models")
    return {"loss_falls_with_N": falls_n, "loss_falls_with_D": falls_d, "decades_of_N": decades_n,
            "decades_of_D": math.log10(d_vals[-1] / d_vals[0]), "seed_std": spread, "supports_a_law": not advice,
            "advice": advice}

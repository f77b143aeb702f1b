"""`taomi plan`, `taomi estimate time|memory`, `taomi serve`: budget planning from the shell."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.table import Table

from taomi.common import console, fail, state
from taomi.output import emit, print_json, styled

app = typer.Typer()  # joined to the main app by taomi.cli

estimate = typer.Typer(no_args_is_help=True, help="Calculators: training time and memory.")
app.add_typer(estimate, name="estimate")


def _g(x: float) -> str:
    if x is None:
        return ""
    if abs(x) >= 1e4 or (abs(x) < 1e-2 and x != 0):
        return f"{x:.3e}"
    return f"{x:,.4g}"


def _bytes(x: float) -> str:
    return f"{x / 2 ** 30:,.2f} GiB"


def _open_ro():
    """A read-only connection when a database exists (plans without one use published laws)."""
    from warehouse.db import db_path, open_read_only

    return open_read_only(state.db) if db_path(state.db).exists() else None


def _answer(**request) -> dict:
    """A PlanRequest answered by the one `flows.plan_task.answer` (the service calls it too); a
    database is opened read-only only when the request needs one. Bad input: one line, exit 2."""
    from flows.plan_task import answer, needs_database
    from scaling.planning import PlanRequest

    try:
        req = PlanRequest(**request)
    except ValueError as exc:
        fail(str(exc))
    con = _open_ro() if needs_database(req) else None
    try:
        return answer(req, con)
    except (KeyError, LookupError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    finally:
        if con is not None:
            con.close()


@app.command()
def plan(flops: float | None = typer.Option(None, "--flops", help="Compute budget in FLOPs, e.g. 5.76e23."),
         gpus: int | None = typer.Option(None, "--gpus", min=1),
         gpu: str | None = typer.Option(None, "--gpu", help="GPU type, e.g. h100-sxm (see `taomi gpus`)."),
         days: float | None = typer.Option(None, "--days"),
         mfu: float | None = typer.Option(None, "--mfu", help="Model FLOPs utilisation in (0, 1]."),
         peak_tflops: float | None = typer.Option(None, "--peak-tflops", help="Peak bf16 TFLOP/s of an unlisted GPU."),
         law: str | None = typer.Option(None, "--law", help="Published law (see `taomi laws`)."),
         fit: str | None = typer.Option(None, "--fit", help="A stored fit (see `taomi fits`)."),
         unique_tokens: float | None = typer.Option(None, "--unique-tokens", help="Unique tokens available (repetition)."),
         corpus: str | None = typer.Option(None, "--corpus", help="Plan with this curated corpus's unique tokens (its "
                                           "stored token counts, after dedup and decontamination)."),
         target_loss: float | None = typer.Option(None, "--target-loss", help="Inverse: least compute reaching this loss."),
         params: float | None = typer.Option(None, "--params", help="Inverse: compute-optimal tokens for this model size."),
         tokens: float | None = typer.Option(None, "--tokens", help="Inverse: compute-optimal model size for these tokens."),
         experiments: bool = typer.Option(False, "--experiments", help="Suggest isoFLOP runs to do next."),
         inference_tokens: float | None = typer.Option(
             None, "--inference-tokens", help="With --target-loss: tokens the model will serve; minimises "
             "training + inference FLOPs (Sardana et al. 2023)."),
         kaplan_allocation: str | None = typer.Option(
             None, "--kaplan-allocation", help="kaplan-2020 only: frontier (Kaplan's published N ~ C^0.73, the "
             "default) or eq1.5 (the minimum of eq. 1.5 along C = 6ND)."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Compute-optimal model size and tokens for a budget, with GPU-days and training memory."""
    out = _answer(flops=flops, gpus=gpus, gpu=gpu, days=days, mfu=mfu, peak_tflops=peak_tflops, law=law, fit=fit,
                  unique_tokens=unique_tokens, target_loss=target_loss, params=params, tokens=tokens,
                  experiments=experiments, kaplan_allocation=kaplan_allocation, inference_tokens=inference_tokens,
                  corpus=corpus)
    if as_json:
        print_json(out)
        return
    info = out.get("law_info") or {}
    console.print(f"law: {out['law']}" + (f" — {info['source']}" if info.get("source") else ""))
    if out.get("data"):
        d = out["data"]
        how = ", ".join(x for x in ("after dedup" if d["deduplicated"] else "not deduplicated",
                                    "decontaminated" if d["decontaminated"] else
                                    ("not decontaminated since it changed" if d["registered_eval_sets"] else "")) if x)
        console.print(f"data: corpus '{d['corpus']}' has {_g(d['unique_tokens'])} unique {d['tokenizer']} tokens "
                      f"({how}; runs: tokens {d['runs']['tokens']}, dedup {d['runs']['dedup']})")
        if d.get("by_source"):
            console.print("  per source: " + ", ".join(f"{k} {_g(v)}" for k, v in list(d["by_source"].items())[:8]))
        if d.get("verdict"):
            console.print(styled((d["verdict"], "yellow" if d["epochs"] > 1 else "")))
    if info.get("allocation"):
        console.print(f"allocation: {info['allocation']}")
    if info.get("warning"):
        console.print(f"warning: {info['warning']}", style="yellow")
    t = Table(title=f"compute-optimal plan ({out['law']})", show_header=True)
    for c in ("quantity", "value", "95% CI"):
        t.add_column(c)
    ci = out.get("ci", {})
    rows = [("compute (FLOPs)", "flops"), ("compute the plan uses", "plan_flops"), ("parameters N", "params"),
            ("tokens D", "tokens"),
            ("tokens per parameter", "tokens_per_param"), ("predicted loss", "loss"),
            ("wall-clock days", "days"), ("GPU-days", "gpu_days")]
    for label, k in rows:
        if k == "plan_flops" and out.get("plan_flops") == out.get("flops"):
            continue
        if k in out:
            c = ci.get(k)
            t.add_row(label, _g(out[k]), f"[{_g(c[0])}, {_g(c[1])}]" if c else "")
    if "mfu" in out:
        t.add_row("MFU used", f"{out['mfu']:.2f}", out["mfu_source"])
    if "memory" in out:
        m = out["memory"]
        t.add_row("training state (weights+grads+optimizer)", _bytes(m["training_state_bytes"]),
                  f"{m['bytes_per_param']} B/param, {m['optimizer']}")
        if "min_gpus_for_state_zero3" in m:
            t.add_row("GPUs needed just to hold it (ZeRO-3)", str(m["min_gpus_for_state_zero3"]), "")
    console.print(t)
    if "inference_tokens" in out:
        ref = out["compute_optimal"]
        console.print(f"to reach loss {out['target_loss']} and serve {_g(out['inference_tokens'])} tokens: training "
                      f"{_g(out['training_flops'])} + inference {_g(out['inference_flops'])} = "
                      f"{_g(out['total_flops'])} FLOPs, {out['saving']:.0%} less than the compute-optimal "
                      f"{_g(ref['params'])} params on {_g(ref['tokens'])} tokens ({_g(ref['total_flops'])} FLOPs "
                      "in all; Sardana et al. 2023)")
    if out.get("isoflop_profile"):
        emit([{"N x": r["factor"], "params": _g(r["params"]), "tokens": _g(r["tokens"]), "loss": f"{r['loss']:.4f}",
               "vs optimum": f"+{r['loss_increase']:.4f}"} for r in out["isoflop_profile"]], False,
             title="isoFLOP profile at this budget", console=console)
    if "marginal" in out:
        m = out["marginal"]
        console.print(f"marginal loss per e-fold: parameters {m['dloss_dlog_params']:.4f}, tokens "
                      f"{m['dloss_dlog_tokens']:.4f} (at the optimum they balance)")
    if "repetition" in out:
        r = out["repetition"]
        console.print(f"with {_g(r['unique_tokens'])} unique tokens: {_g(r['constrained']['params'])} params on "
                      f"{_g(r['constrained']['tokens'])} tokens = {r['constrained']['epochs']:.1f} epochs, never more "
                      f"than the ~{r['epochs_worth_it']:.1f} the law rewards (a repeated token still worth >= "
                      f"{r['value_floor']:.0%} of a fresh one)")
        if r.get("flat"):
            f = r["flat"]
            console.print(f"the loss is flat: {_g(f['flops_needed'])} FLOPs reach within {f['tolerance']} of "
                          f"the best loss at this budget ({f['best_loss_at_budget']:.4f}); the other "
                          f"{f['waste_share']:.1%} of the budget ({_g(f['flops_wasted'])} FLOPs) buys nothing: "
                          "find more unique data", style="yellow")
    if out.get("experiments"):
        emit([{"flops": _g(e["flops"]), "params": _g(e["params"]), "tokens": _g(e["tokens"])}
              for e in out["experiments"]], False, title="suggested isoFLOP experiments (Chinchilla approach 2)",
             console=console)


@app.command()
def predict(params: float = typer.Option(..., "--params", help="Model size N."),
            tokens: float = typer.Option(..., "--tokens", help="Training tokens D."),
            law: str | None = typer.Option(None, "--law", help="Published law (default epoch-2024)."),
            fit: str | None = typer.Option(None, "--fit", help="A stored fit (see `taomi fits`)."),
            unique_tokens: float | None = typer.Option(None, "--unique-tokens", help="Unique tokens (repetition)."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Predicted loss at any (N, D) with a 95% CI, against the compute-optimal split of the same compute."""
    out = _answer(params=params, tokens=tokens, law=law, fit=fit, unique_tokens=unique_tokens)
    if as_json:
        print_json(out)
        return
    ci = out.get("ci", {}).get("loss")
    console.print(f"law: {out['law']}")
    if out["law_info"].get("warning"):
        console.print(f"warning: {out['law_info']['warning']}", style="yellow")
    console.print(f"loss at N = {_g(params)}, D = {_g(tokens)} ({out['tokens_per_param']:.1f} tokens/param, "
                  f"{_g(out['flops'])} FLOPs): {out['loss']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
    opt = out.get("compute_optimal")
    if opt:
        console.print(f"compute-optimal for the same FLOPs: N = {_g(opt['params'])}, D = {_g(opt['tokens'])}, loss "
                      f"{opt['loss']:.4f}; this run is {out['overtraining']:.1f}x the optimal tokens per parameter "
                      f"and {out['loss_above_optimal']:+.4f} nats from the optimum (smaller models cost less to serve)")


@estimate.command("time")
def estimate_time(params: float = typer.Option(..., "--params"), tokens: float = typer.Option(..., "--tokens"),
                  gpus: int = typer.Option(..., "--gpus", min=1), gpu: str | None = typer.Option(None, "--gpu"),
                  mfu: float = typer.Option(..., "--mfu", help="Model FLOPs utilisation (6ND / time / peak)."),
                  recompute: str = typer.Option("none", "--recompute", help="none | selective | full (HFU shown)"),
                  peak_tflops: float | None = typer.Option(None, "--peak-tflops"),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Training time = 6ND / (GPUs x peak x MFU). MFU counts model FLOPs only (PaLM); with
    --recompute full the hardware also runs one extra forward (8ND), shown as HFU."""
    from scaling.compute import training_time
    from scaling.hardware import get_gpu

    try:
        peak = peak_tflops if peak_tflops is not None else get_gpu(gpu or "").peak_tflops_bf16
        out = training_time(params, tokens, gpus, peak, mfu, recompute)
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    out.update(params=params, tokens=tokens, gpus=gpus, gpu=gpu, peak_tflops=peak, mfu=mfu, recompute=recompute)
    if as_json:
        print_json(out)
        return
    emit({k: (_g(v) if isinstance(v, float) else v) for k, v in out.items()}, False, title="training time",
         console=console)


@estimate.command("memory")
def estimate_memory(layers: int = typer.Option(..., "--layers"), hidden: int = typer.Option(..., "--hidden"),
                    heads: int = typer.Option(..., "--heads"), kv_heads: int | None = typer.Option(None, "--kv-heads"),
                    seq: int = typer.Option(..., "--seq"), batch: int = typer.Option(1, "--batch"),
                    recompute: str = typer.Option("none", "--recompute", help="none | selective | full"),
                    tp: int = typer.Option(1, "--tp", help="Tensor (+ sequence) parallel degree."),
                    generate: int = typer.Option(0, "--generate", help="Tokens generated (KV cache)."),
                    prompt: int | None = typer.Option(None, "--prompt", help="Prompt tokens (default --seq)."),
                    params: float | None = typer.Option(None, "--params",
                                                        help="Parameter count (default: counted from the shape)."),
                    vocab: int = typer.Option(0, "--vocab", help="Vocabulary (embeddings and fp32 logits)."),
                    ffn: int | None = typer.Option(None, "--ffn", help="MLP width (default 4h, or 8h/3 for swiglu)."),
                    mlp: str = typer.Option("gelu", "--mlp", help="gelu | swiglu"),
                    untied: bool = typer.Option(False, "--untied-embeddings", help="Separate output embedding."),
                    precision: str = typer.Option("bf16", "--precision"),
                    kv_precision: str | None = typer.Option(None, "--kv-precision", help="e.g. int8 or fp8"),
                    optimizer: str = typer.Option("adam", "--optimizer", help="adam | adam8bit | sgd-momentum | sgd"),
                    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3."), dp: int = typer.Option(1, "--dp"),
                    paged: int = typer.Option(0, "--paged-block", help="Paged KV block size (vLLM: 16)."),
                    inference: bool = typer.Option(False, "--inference", help="Weights + KV cache only."),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Per-GPU memory: weights, gradients, optimizer state, activations, KV cache."""
    from scaling.compute import MemoryQuery, memory

    try:
        out = memory(MemoryQuery(layers=layers, hidden=hidden, heads=heads, seq=seq, batch=batch, kv_heads=kv_heads,
                                 params=params, vocab=vocab, precision=precision, optimizer=optimizer, zero=zero,
                                 dp=dp, recompute=recompute, tp=tp, generate=generate, prompt=prompt,
                                 kv_precision=kv_precision, paged_block=paged, train=not inference, ffn=ffn,
                                 mlp=mlp, tied_embeddings=not untied))
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(out)
        return
    t = Table(title="memory per GPU")
    t.add_column("part")
    t.add_column("bytes", justify="right")
    t.add_column("GiB", justify="right")
    for k in ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "logits_bytes",
              "kv_cache_bytes", "total_bytes"):
        t.add_row(k.replace("_bytes", ""), f"{out[k]:,.0f}", f"{out[k] / 2 ** 30:,.2f}")
    console.print(t)
    console.print(f"parameters {out['params']:.4g}; activations per layer {out['activation_bytes_per_layer']:,.0f} B")


@app.command()
def gpus(as_json: bool = typer.Option(False, "--json")) -> None:
    """The GPU peak table (dense bf16) used for time estimates."""
    from scaling.hardware import GPUS

    emit([{"gpu": g.name, "peak_tflops_bf16": g.peak_tflops_bf16, "memory_gb": g.memory_gb, "source": g.source}
          for g in GPUS.values()], as_json, title="GPUs")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
          port: int = typer.Option(8000, "--port", min=1, max=65535)) -> None:
    """Serve planning queries over HTTP (FastAPI; docs at /docs)."""
    import uvicorn

    from taomi.service import create_app

    uvicorn.run(create_app(state.db), host=host, port=port, log_level="warning")



@app.command()
def calibrate(size: str = typer.Option("tiny", "--size", help="tiny | small | 124m | 350m"),
              steps: int = typer.Option(20, "--steps", min=1), compile_model: bool = typer.Option(False, "--compile"),
              device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
              batch: int = typer.Option(8, "--batch", min=1),
              corpus: str | None = typer.Option(None, "--corpus", help="Train on this corpus (default: sample text)."),
              sweep: bool = typer.Option(False, "--sweep", help="Micro scaling sweep on the corpus, then fit it."),
              scale: str = typer.Option("cpu", "--scale", help="Sweep preset: cpu (minutes on 2 cores, 8K-360K "
                                        "params) | gpu (10M-100M params)."),
              workers: int = typer.Option(0, "--workers", min=0, help="Sweep processes on the CPU (0: one per core)."),
              extrapolate: bool = typer.Option(False, "--extrapolate", help="Length extrapolation check (2x-8x)."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Measure tokens/s and MFU with a real torch training step; plans use it for this GPU."""
    try:
        from scaling.calibrate import require_torch

        require_torch()
    except RuntimeError as exc:
        fail(str(exc))
    from flows.calibrate_task import run_calibration, run_extrapolation, run_sweep

    if scale not in ("cpu", "gpu"):
        fail(f"--scale must be cpu or gpu, not {scale!r}")

    try:
        if sweep:
            from taomi.output import make_progress

            sweep_device = "cpu" if scale == "cpu" else ("cuda" if device in ("auto", "cuda") else device)
            with make_progress(console, quiet=as_json, units="count") as progress:
                task = progress.add_task("sweep runs", total=None)
                out = run_sweep(state.db, corpus, scale=scale, device=sweep_device, workers=workers,
                                progress=lambda k, n: progress.update(task, completed=k, total=n))
        elif extrapolate:
            out = run_extrapolation(state.db, corpus)
        else:
            with console.status(f"calibrating {size} on {device}", spinner="dots") if not as_json else nullcontext():
                out = run_calibration(state.db, corpus, size, steps, device, compile_model, batch)
    except (ValueError, LookupError, RuntimeError) as exc:
        fail(str(exc))
    if as_json:
        print_json(out)
        return
    if sweep:
        emit([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
               if k in ("N", "D", "seed", "lr", "loss")} for r in out["observations"]], False,
             title=f"micro sweep: held-out loss on {out['held_out_tokens_evaluated']:,} tokens "
                   f"({out['seconds']:.0f} s, {out['workers']} workers)", console=console)
        f, v = out["fit"], out["verdict"]
        if "error" in f:
            console.print(styled(("fit:", "yellow"), f" {f['error']}"))
        else:
            p, ci = f["params"], f.get("ci") or {}
            cis = ", ".join(f"{k} [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" for k in ("alpha", "beta") if k in ci)
            console.print(f"fitted: L = {p['E']:.3f} + {p['A']:.3g}/N^{p['alpha']:.3f} + {p['B']:.3g}/D^{p['beta']:.3f}"
                          f" ({cis}; stored as fit '{f['name']}')")
        console.print(f"N spans {v['decades_of_N']:.2f} decades, D {v['decades_of_D']:.2f}; loss falls with N at "
                      f"{sum(v['loss_falls_with_N'].values())}/{len(v['loss_falls_with_N'])} D values and with D at "
                      f"{sum(v['loss_falls_with_D'].values())}/{len(v['loss_falls_with_D'])} sizes")
        if v["supports_a_law"]:
            console.print("these points support a law", style="green")
        for a in v["advice"]:
            console.print(styled(("next:", "yellow"), f" {a}"))
        return
    if extrapolate:
        emit(out["table"], False, title=f"held-out loss vs context (trained at {out['train_context']})", console=console)
        console.print(out["verdict"])
        return
    console.print(f"{out['device_name']} · torch {out['torch_version']} · {out['size']} ({out['params']:,} params)")
    console.print(f"{out['tokens_per_s']:,.0f} tokens/s, {out['flops_per_s'] / 1e12:.3f} TFLOP/s achieved "
                  f"({out['flops_formula']})")
    console.print(f"MFU {out['mfu']:.1%} of {out['peak_flops'] / 1e12:.1f} TFLOP/s ({out['peak_source']})")
    console.print(f"loss {out['loss_first']:.3f} -> {out['loss_last']:.3f}; stored: `taomi plan --gpu "
                  f"{out['gpu']}` now uses this MFU")


@estimate.command("moe")
def estimate_moe(dense_params: float = typer.Option(..., "--dense-params", help="Parameters outside the experts."),
                 expert_params: float = typer.Option(..., "--expert-params", help="Parameters of one expert."),
                 experts: int = typer.Option(..., "--experts", min=1), top_k: int = typer.Option(..., "--top-k", min=1),
                 tokens: float = typer.Option(..., "--tokens"), precision: str = typer.Option("bf16", "--precision"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Mixture of experts: FLOPs follow the active parameters, memory the total."""
    from scaling.compute import moe_estimate

    try:
        out = moe_estimate(dense_params, expert_params, experts, top_k, tokens, precision)
    except ValueError as exc:
        fail(str(exc))
    emit(out, as_json, title="mixture of experts", console=console)

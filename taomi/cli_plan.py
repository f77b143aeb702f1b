"""`taomi plan`, `taomi estimate time|memory`, `taomi serve`: budget planning from the shell."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.table import Table

from taomi.common import console, fail, state
from taomi.output import emit, error_text, print_json, styled

app = typer.Typer()  # joined to the main app by taomi.cli

estimate = typer.Typer(no_args_is_help=True, help="Calculators: training time and memory.")
app.add_typer(estimate, name="estimate")
sweep_app = typer.Typer(no_args_is_help=True, help="Scaling sweeps: design the next runs.")
app.add_typer(sweep_app, name="sweep")


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
        fail(error_text(exc))
    finally:
        if con is not None:
            con.close()


@app.command()
def plan(flops: float | None = typer.Option(None, "--flops", help="Compute budget in FLOPs, e.g. 5.76e23."),
         gpus: int | None = typer.Option(None, "--gpus", min=1),
         gpu: str | None = typer.Option(None, "--gpu", help="GPU type, e.g. h100-sxm (see `taomi gpus`)."),
         days: float | None = typer.Option(None, "--days"),
         mfu: float | None = typer.Option(None, "--mfu", help="Model FLOPs utilisation in (0, 1]."),
         peak_tflops: float | None = typer.Option(None, "--peak-tflops", help="Peak TFLOP/s of an unlisted GPU."),
         hfu: float | None = typer.Option(None, "--hfu", help="Hardware FLOPs utilisation, instead of --mfu."),
         achieved_tflops: float | None = typer.Option(
             None, "--achieved-tflops", help="Hardware TFLOP/s per GPU as Megatron/BLOOM report it, instead of --mfu."),
         recompute: str = typer.Option("none", "--recompute", help="none | selective | full: hardware vs model FLOPs."),
         hfu_ratio: float | None = typer.Option(None, "--hfu-ratio", help="A published HFU/MFU ratio (PaLM: 1.25)."),
         goodput: float = typer.Option(1.0, "--goodput", help="Share of wall-clock time that trains (Llama 3: >0.9)."),
         precision: str = typer.Option("bf16", "--precision", help="bf16 | fp8: which GPU peak."),
         seq: int | None = typer.Option(None, "--seq", help="Sequence length (accounting conversions, selective "
                                        "recompute, batch in sequences)."),
         hidden: int | None = typer.Option(None, "--hidden", help="Hidden size (selective recompute)."),
         vocab: int | None = typer.Option(None, "--vocab", help="Vocabulary (accounting conversions; default 100,000)."),
         law: str | None = typer.Option(None, "--law", help="Published law (see `taomi laws`)."),
         law_file: str | None = typer.Option(None, "--law-file", help="Your own law file (TOML; see `taomi laws`)."),
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
                  corpus=corpus, law_file=law_file, hfu=hfu, achieved_tflops=achieved_tflops, recompute=recompute,
                  hfu_ratio=hfu_ratio, goodput=goodput, precision=precision, seq=seq, hidden=hidden, vocab=vocab)
    if as_json:
        print_json(out)
        return
    info = out.get("law_info") or {}
    console.print(f"law: {out['law']}" + (f" — {info['source']}" if info.get("source") else ""))
    if out.get("accounting"):
        console.print(f"accounting: {out['accounting']['note']}", style="cyan")
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
    if "flops_per_token" in out:
        t.add_row("FLOPs per token M (the law's unit)", _g(out["flops_per_token"]), "")
    if "params_non_embedding" in out:
        t.add_row("non-embedding parameters (the law's N)", _g(out["params_non_embedding"]), "")
    if out.get("mfu") is not None:
        t.add_row("MFU used", f"{out['mfu']:.3f}", out["mfu_source"])
        if out.get("hfu_ratio", 1) != 1:
            t.add_row("HFU", f"{out['hfu']:.3f}", f"hardware / model FLOPs {out['hfu_ratio']:.4g} ({out['recompute']})")
    if out.get("goodput", 1) != 1 and "days" in out:
        t.add_row("compute days (at goodput 1)", _g(out["compute_days"]), f"goodput {out['goodput']:g}")
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
    hp = out.get("hyperparams")
    if hp:
        batch = f"{_g(hp['batch_tokens'])} tokens" + (f" ({hp['batch_sequences']:,.0f} x {hp['seq']})" if hp.get("seq") else "")
        lo, hi = hp["fitted_flops"]
        console.print(f"hyper-parameters ({hp['source']}): peak learning rate {hp['learning_rate']:.3g}, batch {batch}"
                      + (f" (extrapolated: fitted on {lo:.0e}-{hi:.0e} FLOPs)" if hp["warnings"] else ""))
    for w in out.get("warnings") or []:
        console.print(f"warning: {w}", style="yellow")
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
                  mfu: float | None = typer.Option(None, "--mfu", help="Model FLOPs utilisation (6ND / time / peak)."),
                  hfu: float | None = typer.Option(None, "--hfu", help="Hardware FLOPs utilisation (with recompute)."),
                  achieved_tflops: float | None = typer.Option(
                      None, "--achieved-tflops", help="Hardware TFLOP/s per GPU, as Megatron (140) and BLOOM (150) "
                      "report it."),
                  recompute: str = typer.Option("none", "--recompute", help="none | selective | full (HFU shown)"),
                  hfu_ratio: float | None = typer.Option(None, "--hfu-ratio", help="Published HFU/MFU (PaLM 1.25)."),
                  goodput: float = typer.Option(1.0, "--goodput", help="Share of wall-clock time that trains."),
                  precision: str = typer.Option("bf16", "--precision", help="bf16 | fp8"),
                  seq: int | None = typer.Option(None, "--seq"), hidden: int | None = typer.Option(None, "--hidden"),
                  peak_tflops: float | None = typer.Option(None, "--peak-tflops"),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Training time of 6ND model FLOPs from one of --mfu, --hfu or --achieved-tflops. MFU counts
    model FLOPs only (PaLM); recompute makes the hardware run more (full: 8ND), shown as HFU;
    --goodput stretches wall-clock and GPU-hours for restarts and failures."""
    from scaling.compute import training_time
    from scaling.planning import peak_of

    try:
        peak = peak_of(gpu, peak_tflops, precision, needed=achieved_tflops is None)[0]
        out = training_time(params, tokens, gpus, peak, mfu, recompute, hfu=hfu, achieved_tflops=achieved_tflops,
                            goodput=goodput, seq=seq, hidden=hidden, hfu_ratio=hfu_ratio)
    except (KeyError, ValueError) as exc:
        fail(error_text(exc))
    out.update(params=params, tokens=tokens, gpus=gpus, gpu=gpu, peak_tflops=peak, precision=precision)
    if as_json:
        print_json(out)
        return
    emit({k: (_g(v) if isinstance(v, float) else v) for k, v in out.items() if v is not None}, False,
         title="training time", console=console)


@estimate.command("flops")
def estimate_flops(layers: int = typer.Option(..., "--layers"), hidden: int = typer.Option(..., "--hidden"),
                   seq: int = typer.Option(..., "--seq"), vocab: int = typer.Option(0, "--vocab"),
                   heads: int | None = typer.Option(None, "--heads"),
                   key_size: int | None = typer.Option(None, "--key-size", help="Head dimension (default hidden/heads)."),
                   ffn: int | None = typer.Option(None, "--ffn", help="MLP width (default 4 x hidden)."),
                   tokens: float | None = typer.Option(None, "--tokens", help="Training tokens: totals too."),
                   params: float | None = typer.Option(None, "--params", help="Parameter count for 6ND (default: "
                                                       "counted from the shape)."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Training FLOPs of one model in every accounting: 6ND, Kaplan's non-embedding 6ND,
    Hoffmann et al.'s appendix F and DeepSeek's M·D, with each one's ratio to 6ND."""
    from scaling.accounting import ACCOUNTINGS, Shape, flops_per_token

    try:
        shape = Shape(layers=layers, hidden=hidden, seq=seq, vocab=vocab, heads=heads, key_size=key_size, ffn=ffn)
        base = flops_per_token("6nd", shape, params)
        rows = [{"accounting": a, "flops_per_token": (f := flops_per_token(a, shape, params if a == "6nd" else None)),
                 "vs_6nd": f / base, **({"flops": f * tokens} if tokens else {})} for a in ACCOUNTINGS]
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"shape": shape.as_dict(), "accountings": rows})
        return
    console.print(f"{shape.params():,.0f} parameters ({shape.non_embedding_params():,.0f} non-embedding) from the shape")
    emit([{k: (f"{v:.4f}" if k == "vs_6nd" else _g(v) if isinstance(v, float) else v) for k, v in r.items()}
          for r in rows], False, title="training FLOPs by accounting", console=console)


@app.command()
def hyperparams(flops: float | None = typer.Option(None, "--flops", help="Training compute (or give a shape)."),
                accounting: str = typer.Option("6nd", "--accounting", help="How --flops is counted: 6nd | deepseek."),
                layers: int | None = typer.Option(None, "--layers"), hidden: int | None = typer.Option(None, "--hidden"),
                seq: int | None = typer.Option(None, "--seq", help="Sequence length (batch in sequences)."),
                tokens: float | None = typer.Option(None, "--tokens", help="With --layers/--hidden/--seq: C = M·D "
                                                    "exactly, instead of --flops."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Peak learning rate and batch size for a compute budget, from DeepSeek LLM's eq. 1, with
    the range it was fitted on and a warning outside it."""
    from scaling.accounting import Shape
    from scaling.hyperparams import hyperparams as hp

    if accounting not in ("6nd", "deepseek"):
        fail("--accounting must be 6nd or deepseek")
    shape = None
    if layers or hidden or tokens:
        if not (layers and hidden and seq and tokens):
            fail("a shape needs --layers, --hidden, --seq and --tokens together")
        if flops is not None:
            fail("give --flops or a shape with --tokens, not both")
        shape = Shape(layers=layers, hidden=hidden, seq=seq)
    elif flops is None:
        fail("give --flops, or --layers, --hidden, --seq and --tokens")
    try:
        out = hp(flops, accounting, shape=shape, tokens=tokens, seq=seq)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(out)
        return
    console.print(f"{out['source']} at {out['law_flops']:.4g} FLOPs (C = M·D)")
    if out.get("conversion"):
        console.print(out["conversion"], style="cyan")
    batch = f"{_g(out['batch_tokens'])} tokens" + (f" = {out['batch_sequences']:,.0f} sequences of {out['seq']}"
                                                  if out.get("seq") else "")
    console.print(f"peak learning rate {out['learning_rate']:.3g}; batch {batch}")
    console.print(f"optimizer: {out['optimizer']}")
    for w in out["warnings"]:
        console.print(f"warning: {w}", style="yellow")


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
                    kv_lora_rank: int = typer.Option(0, "--kv-lora-rank", help="MLA latent rank (DeepSeek-V3: 512)."),
                    rope_head_dim: int = typer.Option(0, "--rope-head-dim", help="MLA decoupled RoPE key (V3: 64)."),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Per-GPU memory: weights, gradients, optimizer state, activations, KV cache (GQA or MLA)."""
    from scaling.compute import MemoryQuery, memory

    try:
        out = memory(MemoryQuery(layers=layers, hidden=hidden, heads=heads, seq=seq, batch=batch, kv_heads=kv_heads,
                                 params=params, vocab=vocab, precision=precision, optimizer=optimizer, zero=zero,
                                 dp=dp, recompute=recompute, tp=tp, generate=generate, prompt=prompt,
                                 kv_precision=kv_precision, paged_block=paged, train=not inference, ffn=ffn,
                                 mlp=mlp, tied_embeddings=not untied, kv_lora_rank=kv_lora_rank,
                                 rope_head_dim=rope_head_dim))
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
    if out["kv_cache_bytes"]:
        console.print(f"KV cache {out['kv_cache_bytes_per_token']:,.0f} B per token" +
                      (" (MLA latent + RoPE key)" if kv_lora_rank else ""))


@app.command()
def gpus(as_json: bool = typer.Option(False, "--json")) -> None:
    """The accelerator table (dense bf16 and fp8 peaks, memory, source per row) used for time estimates."""
    from scaling.hardware import GPUS

    emit([{"gpu": g.name, "peak_tflops_bf16": g.peak_tflops_bf16, "peak_tflops_fp8": g.peak_tflops_fp8,
           "memory_gb": g.memory_gb, "source": g.source} for g in GPUS.values()], as_json,
         title="accelerators (dense peaks)")


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
              quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
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
            with make_progress(console, quiet=quiet or as_json, units="count") as progress:
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
def estimate_moe(dense_params: float | None = typer.Option(None, "--dense-params", help="Parameters outside the "
                                                           "experts (or give the shape)."),
                 expert_params: float | None = typer.Option(None, "--expert-params", help="Parameters of one expert."),
                 experts: int = typer.Option(..., "--experts", min=1), top_k: int = typer.Option(..., "--top-k", min=1),
                 tokens: float = typer.Option(..., "--tokens"), precision: str = typer.Option("bf16", "--precision"),
                 layers: int | None = typer.Option(None, "--layers", help="Shape: layers."),
                 hidden: int | None = typer.Option(None, "--hidden"), heads: int | None = typer.Option(None, "--heads"),
                 kv_heads: int | None = typer.Option(None, "--kv-heads"),
                 head_dim: int | None = typer.Option(None, "--head-dim"),
                 vocab: int | None = typer.Option(None, "--vocab"),
                 expert_ffn: int | None = typer.Option(None, "--expert-ffn", help="One expert's SwiGLU width."),
                 shared_experts: int = typer.Option(0, "--shared-experts", min=0),
                 first_dense: int = typer.Option(0, "--first-dense", min=0, help="Leading dense layers."),
                 dense_ffn: int | None = typer.Option(None, "--dense-ffn", help="Their MLP width."),
                 tied: bool = typer.Option(False, "--tied-embeddings"),
                 q_lora_rank: int = typer.Option(0, "--q-lora-rank", help="MLA: query latent rank."),
                 kv_lora_rank: int = typer.Option(0, "--kv-lora-rank", help="MLA: KV latent rank."),
                 rope_head_dim: int = typer.Option(0, "--rope-head-dim"),
                 nope_head_dim: int = typer.Option(0, "--nope-head-dim"), v_head_dim: int = typer.Option(0, "--v-head-dim"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Mixture of experts: FLOPs follow the active parameters, memory the total. Give the split
    (--dense-params/--expert-params) or the shape (--layers, --hidden, --heads, --vocab,
    --expert-ffn; shared experts, leading dense layers and MLA as the model has them)."""
    from scaling.compute import MoEShape, moe_estimate, moe_shape_params

    shaped = layers is not None
    try:
        if shaped == (dense_params is not None or expert_params is not None):
            raise ValueError("give --dense-params and --expert-params, or the shape (--layers, --hidden, --heads, "
                             "--vocab, --expert-ffn), not both")
        if shaped:
            if not (hidden and heads and vocab and expert_ffn):
                raise ValueError("a shape needs --layers, --hidden, --heads, --vocab and --expert-ffn")
            counts = moe_shape_params(MoEShape(
                layers=layers, hidden=hidden, vocab=vocab, experts=experts, top_k=top_k, expert_ffn=expert_ffn,
                heads=heads, kv_heads=kv_heads, head_dim=head_dim, shared_experts=shared_experts,
                first_dense=first_dense, dense_ffn=dense_ffn, tied_embeddings=tied, q_lora_rank=q_lora_rank,
                kv_lora_rank=kv_lora_rank, rope_head_dim=rope_head_dim, nope_head_dim=nope_head_dim,
                v_head_dim=v_head_dim))
            # every routed expert counted as one block: dense = total - experts x expert
            dense_params = counts["total_params"] - experts * counts["moe_layers"] * counts["expert_params"]
            expert_params = counts["moe_layers"] * counts["expert_params"]
        elif dense_params is None or expert_params is None:
            raise ValueError("give both --dense-params and --expert-params")
        out = moe_estimate(dense_params, expert_params, experts, top_k, tokens, precision)
        if shaped:
            out["shape_counts"] = counts
    except ValueError as exc:
        fail(str(exc))
    emit(out, as_json, title="mixture of experts", console=console)


@sweep_app.command("design")
def sweep_design(fit: str = typer.Option(..., "--fit", help="A stored Chinchilla-form fit (see `taomi fits`)."),
                 budget: float = typer.Option(..., "--budget", help="FLOPs to spend on the next runs (6·N·D each)."),
                 simulations: int = typer.Option(20, "--simulations", min=0, max=500,
                                                 help="Refits of simulated losses for the expected interval."),
                 seq: int | None = typer.Option(None, "--seq", help="Sequence length (batch in sequences)."),
                 seed: int = typer.Option(0, "--seed"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """The next runs (N, D on isoFLOP lines, with learning rate and batch) that narrow the
    allocation exponent's interval most per FLOP, given the runs the fit was made from; with the
    interval now and after them, simulated from the current fit."""
    from flows.plan_task import design_next_runs

    con = _open_ro()
    if con is None:
        fail("no database: fit your runs first (`taomi fit RUNS.csv`)")
    try:
        out = design_next_runs(con, fit, budget, simulations, seq, seed)
    except (LookupError, ValueError) as exc:
        fail(error_text(exc))
    finally:
        con.close()
    if as_json:
        print_json(out)
        return
    emit([{"flops": _g(r["flops"]), "params N": _g(r["params"]), "tokens D": _g(r["tokens"]),
           "lr": f"{r['learning_rate']:.3g}", "batch tokens": _g(r["batch_tokens"]),
           "sd(a) after": f"{r['sd_a_after']:.4f}"} for r in out["runs"]], False,
         title=f"next runs for fit '{fit}' ({out['points']} points so far): {_g(out['flops_used'])} of "
               f"{_g(out['budget'])} FLOPs", console=console)
    console.print(f"allocation exponent a = {out['a']:.4f}: sd {out['sd_a_now']:.4f} now -> {out['sd_a_after']:.4f} "
                  f"after (linearised, noise {out['sigma']:.3g} in log loss)")
    iv = out.get("interval")
    if iv and iv.get("now") and iv.get("after"):
        console.print(f"95% interval of a, simulated ({simulations} refits each): [{iv['now'][0]:.3f}, "
                      f"{iv['now'][1]:.3f}] now -> [{iv['after'][0]:.3f}, {iv['after'][1]:.3f}] after these runs")
    console.print(f"learning rate and batch: {out['hyperparams_source']}")

"""The calibrate task: tokens from the curated corpus (or given texts), a timed micro-training
run, stored for planning; optionally a micro scaling sweep fitted with the fitter, and a
length-extrapolation check."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from warehouse.calibration_store import save_calibration
from warehouse.db import session
from warehouse.eval_store import training_batches
from warehouse.runlog import finish_run, stable_hash, start_run


def corpus_tokens(db, corpus: str | None, limit_bytes: int = 8 << 20):
    from scaling.calibrate import byte_tokens

    texts: list[str] = []
    if corpus:
        for _, batch in training_batches(db, corpus, 5000):
            texts.extend(batch)
            if sum(map(len, texts)) > limit_bytes:
                break
        if not texts:
            raise LookupError(f"corpus '{corpus}' has no documents to calibrate on")
    else:  # real English prose that ships with CPython: the Python documentation's topic pages
        from pydoc_data.topics import topics

        texts = list(topics.values())
    return byte_tokens(texts, limit_bytes)


def run_calibration(db, corpus: str | None = None, size: str = "tiny", steps: int = 20, device: str = "auto",
                    compile_model: bool = False, batch: int = 8) -> dict:
    from scaling.calibrate import calibrate

    r = calibrate(corpus_tokens(db, corpus), size=size, steps=steps, device=device, compile_model=compile_model,
                  batch=batch)
    with session(db) as con:
        run = start_run(con, "calibrate", stable_hash(r["device_name"], r["config"]), r["config"], corpus)
        save_calibration(con, r)
        finish_run(con, run, counts_out=steps, details={"tokens_per_s": r["tokens_per_s"], "mfu": r["mfu"]})
    return r


def run_sweep(db, corpus: str | None = None, name: str = "micro-sweep", progress=None, scale: str = "cpu",
              device: str = "cpu", workers: int = 0, bootstrap: int = 200) -> dict:
    """Train small models at a grid of (N, D) on the corpus (scaling.sweep), store the points as a
    fit with bootstrap CIs, and say whether they support a law and what to run next."""
    from flows.scaling_task import fit_file
    from scaling.sweep import judge, micro_sweep

    sw = micro_sweep(corpus_tokens(db, corpus), scale, device=device, workers=workers, progress=progress)
    rows = sw["rows"]
    verdict = judge(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.csv"
        pd.DataFrame(rows)[["N", "D", "loss", "run"]].to_csv(path, index=False)
        try:
            fit = fit_file(db, path, name=name, bootstrap=bootstrap)
        except ValueError as exc:  # the points may not determine a law: say so, with what to run next
            fit = {"error": str(exc)}
            verdict["supports_a_law"] = False
            verdict["advice"].append(f"the fit failed ({exc}); widen D (3x the largest) or add larger models")
    shaky = [k for k in ("alpha", "beta") if k in (fit.get("poorly_determined") or [])]
    if shaky:
        verdict["supports_a_law"] = False
        ci = fit["ci"]
        verdict["advice"].append(
            "the exponents are poorly determined (" + ", ".join(f"{k} [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" for k in shaky)
            + "): train 3x longer at every size (the smallest runs are still in their early transient), or run "
            "`taomi calibrate --sweep --scale gpu` on a GPU")
    next_runs = None
    if "error" not in fit:  # the designer: the runs that narrow the exponent fastest, for 10x this sweep's compute
        from flows.plan_task import design_next_runs

        budget = 10 * sum(6 * r["N"] * r["D"] for r in rows)
        with session(db) as con:
            try:
                next_runs = design_next_runs(con, name, budget, simulations=0)
            except ValueError as exc:
                next_runs = {"error": str(exc)}
        if next_runs.get("runs") and not verdict["supports_a_law"]:
            verdict["advice"].append(
                f"`taomi sweep design --fit {name} --budget {budget:.2g}` proposes {len(next_runs['runs'])} runs that "
                f"narrow sd(a) from {next_runs['sd_a_now']:.3f} to {next_runs['sd_a_after']:.3f}")
    return {"observations": rows, "seconds": sw["seconds"], "workers": sw["workers"], "preset": sw["preset"],
            "held_out_tokens_evaluated": rows[0]["eval_tokens"] if rows else 0, "verdict": verdict, "fit": fit,
            "next_runs": next_runs}


def run_extrapolation(db, corpus: str | None = None, **kw) -> dict:
    from scaling.calibrate import length_extrapolation

    return length_extrapolation(corpus_tokens(db, corpus), **kw)

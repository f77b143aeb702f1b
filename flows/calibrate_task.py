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
        with session(db) as con:
            for _, batch in training_batches(con, corpus, 5000):
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


def run_sweep(db, corpus: str | None = None, name: str = "micro-sweep", progress=None, **kw) -> dict:
    """Train tiny models at several (N, D), store the observations and fit them."""
    from flows.scaling_task import fit_file
    from scaling.calibrate import micro_sweep

    rows = micro_sweep(corpus_tokens(db, corpus), progress=progress, **kw)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        try:
            fit = fit_file(db, path, name=name, bootstrap=100)
        except ValueError as exc:  # a tiny noisy sweep may not determine a law: say so
            fit = {"error": str(exc)}
    return {"observations": rows, "fit": fit}


def run_extrapolation(db, corpus: str | None = None, **kw) -> dict:
    from scaling.calibrate import length_extrapolation

    return length_extrapolation(corpus_tokens(db, corpus), **kw)

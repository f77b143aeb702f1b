"""Curriculum and export tasks: score kept documents, order them with pacing, write shards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from curation.curriculum import (
    CurriculumConfig,
    NgramCounts,
    combine,
    competence,
    order_documents,
    score_batch,
)
from warehouse import curation_store as store
from warehouse.db import session
from warehouse.runlog import finish_run, stable_hash, start_run

BATCH = 20_000


def build_curriculum(db, corpus: str, cfg: CurriculumConfig, plot_path: str | Path | None = None) -> dict:
    with session(db) as con:
        dedup_cfg = store.latest_dedup_config(con, corpus)
        ids = store.kept_documents(con, corpus, dedup_cfg)
        if len(ids) == 0:
            raise LookupError(f"corpus '{corpus}' has no documents to order (see `taomi corpora`)")
        chash = stable_hash(cfg.as_dict(), dedup_cfg)
        run = start_run(con, "curriculum", stable_hash(ids.tolist()[:1000], len(ids), chash), cfg.as_dict(),
                        corpus, counts_in=len(ids))
        counts = NgramCounts()  # pass 1: corpus n-gram counts, batch by batch (bounded memory)
        for lo in range(0, len(ids), BATCH):
            counts.update(store.texts_by_doc_id(con, ids[lo:lo + BATCH])["text"].tolist())
        parts = [score_batch(store.texts_by_doc_id(con, ids[lo:lo + BATCH])["text"].tolist(), counts)
                 for lo in range(0, len(ids), BATCH)]  # pass 2: score each batch
        scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        notes = [] if dedup_cfg else ["dedup has not run: every document enters (run `taomi dedup` first)"]
        lq = store.label_scores(con, corpus)
        if len(lq):
            m = dict(zip(lq["doc_id"], lq["label_quality"]))
            scores["label_doubt"] = np.array([1 - m.get(int(d), 1.0) for d in ids])
        if dedup_cfg:
            cs = store.cluster_sizes(con, corpus, dedup_cfg)
            m = dict(zip(cs["doc_id"], cs["size"]))
            scores["commonness"] = -np.log([m.get(int(d), 1) for d in ids])  # many copies: common, easy
        difficulty = combine(scores, dict(cfg.weights))
        order, steps = order_documents(difficulty, cfg)
        pct = np.empty(len(ids))
        pct[np.argsort(difficulty, kind="stable")] = np.linspace(0, 1, len(ids)) if len(ids) > 1 else [0.0]
        frame = pd.DataFrame({
            "doc_id": ids[order], "position": np.arange(len(order)), "pacing_step": steps,
            "difficulty": difficulty[order], "percentile": pct[order],
            "scores": [json.dumps({k: round(float(v[i]), 6) for k, v in scores.items()}) for i in order]})
        store.save_curriculum(con, corpus, cfg.order, chash, frame)
        finish_run(con, run, counts_out=len(order))
    report = {"corpus": corpus, "documents": len(ids), "order": cfg.order, "pacing": cfg.pacing, "steps": cfg.steps,
              "scorers": sorted(scores), "notes": notes,
              "difficulty_first_10pct": float(np.mean(difficulty[order[: max(1, len(order) // 10)]])),
              "difficulty_last_10pct": float(np.mean(difficulty[order[-max(1, len(order) // 10):]])),
              "spearman_position_difficulty": float(pd.Series(np.arange(len(order))).corr(
                  pd.Series(difficulty[order]), method="spearman")) if len(order) > 2 else None}
    if plot_path:
        report["plot"] = plot_curriculum(difficulty, cfg, plot_path)
    return report


def plot_curriculum(difficulty: np.ndarray, cfg: CurriculumConfig, path: str | Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.hist(difficulty, bins=40, color="C0")
    a.set(xlabel="combined difficulty (mean percentile rank)", ylabel="documents", title="difficulty distribution")
    t = np.linspace(0, cfg.steps, 200)
    for p in ("linear", "sqrt", "step", "exponential"):
        c = CurriculumConfig(**{**cfg.as_dict(), "pacing": p, "weights": cfg.weights})
        b.plot(t, competence(t, c), label=p, lw=2.5 if p == cfg.pacing else 1)
    b.set(xlabel="training step", ylabel="competence (fraction of data available)", title="pacing")
    b.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def export_shards(db, corpus: str, outdir: str | Path, fmt: str = "parquet", shard_size: int = 100_000,
                  order: str = "curriculum", cfg: CurriculumConfig | None = None) -> dict:
    """Write training shards in curriculum (or random-baseline) order, with a manifest.

    Everything is written into a fresh sibling folder and swapped into place only when complete,
    so a kill mid-export leaves OUTDIR as it was (and no shard the manifest does not describe).
    """
    if fmt not in ("parquet", "jsonl"):
        raise ValueError("format must be parquet or jsonl")
    if shard_size < 1:
        raise ValueError("shard size must be >= 1")
    out = Path(outdir)
    with session(db) as con:
        rows = store.curriculum_rows(con, corpus, order)
        run = start_run(con, "export", stable_hash(corpus, order, len(rows)),
                        {"format": fmt, "shard_size": shard_size, "order": order, "outdir": str(out)}, corpus,
                        counts_in=len(rows))
    if rows.empty:
        build_curriculum(db, corpus, cfg or CurriculumConfig(order=order))
        with session(db) as con:
            rows = store.curriculum_rows(con, corpus, order)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    shards = []
    try:
        with session(db) as con:
            for i, lo in enumerate(range(0, len(rows), shard_size)):
                part = rows.iloc[lo:lo + shard_size]
                docs = store.texts_by_doc_id(con, part["doc_id"].to_numpy())
                frame = pd.DataFrame({"id": docs["ext_id"].to_numpy(), "text": docs["text"].to_numpy(),
                                      "position": part["position"].to_numpy(),
                                      "difficulty": part["difficulty"].to_numpy(),
                                      "pacing_step": part["pacing_step"].to_numpy()})
                name = f"shard-{i:05d}.{fmt}"
                path = tmp / name
                if fmt == "parquet":
                    frame.to_parquet(path, index=False)
                else:
                    frame.to_json(path, orient="records", lines=True, force_ascii=False)
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
                shards.append({"file": name, "rows": len(frame), "bytes": path.stat().st_size, "sha256": _sha256(path),
                               "difficulty": [float(part["difficulty"].min()), float(part["difficulty"].max())],
                               "pacing_steps": [int(part["pacing_step"].min()), int(part["pacing_step"].max())],
                               "positions": [int(part["position"].min()), int(part["position"].max())]})
        manifest = {"corpus": corpus, "order": order, "format": fmt, "shard_size": shard_size,
                    "documents": len(rows), "curriculum_config_hash": str(rows["config_hash"].iloc[0]),
                    "shards": shards}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = {"outdir": str(out), **{k: v for k, v in manifest.items() if k != "shards"}, "shards": len(shards),
              "bytes": sum(s["bytes"] for s in shards)}
    with session(db) as con:
        finish_run(con, run, counts_out=len(rows), details=result)
    return result

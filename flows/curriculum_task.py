"""Curriculum and export tasks: score kept documents, order them with pacing, write shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from curation.curriculum import (
    BATCH_CHARS,
    VIEW_HEAD,
    VIEW_TAIL,
    CurriculumConfig,
    NgramCounts,
    combine,
    order_documents,
    random_order,
    scale_length,
    score_batch,
)
from curation.plots import plot_curriculum
from curation.shards import parse_bytes, shard_bounds
from flows.decontam_task import excluded_documents
from warehouse import curation_store as store
from warehouse import export_store, token_store
from warehouse.corpora import content_version
from warehouse.db import db_path, session
from warehouse.outputs import OutputDir, check_file, write_file
from warehouse.runlog import (
    effective_run,
    last_ok_run,
    logged_run,
    skip_run,
    stable_hash,
)

BATCH = 20_000


def build_curriculum(db, corpus: str, cfg: CurriculumConfig, plot_path: str | Path | None = None,
                     force: bool = False, progress=None) -> dict:
    """Score the kept documents and store their order. Same documents, dedup decisions, label
    findings and config as the stored order: no work, a `skipped` run row, the stored report.
    `progress(stage, done, total)` is told the documents done per pass."""
    if plot_path:
        check_file(plot_path, force=force, what="plot file")
    with session(db) as con:
        dedup_cfg = store.latest_dedup_config(con, corpus)
        ids = store.kept_documents(con, corpus, dedup_cfg)
        if len(ids) == 0:
            raise LookupError(f"corpus '{corpus}' has no documents to order (see `taomi corpora`)")
        labels = effective_run(con, "labels", corpus)
        # length in the corpus's tokens when every kept document has a stored count (comparable
        # across scripts); else in units (words, or characters where a script has no spaces)
        tok_key = token_store.current_tokenizer(con, corpus)
        tok = token_store.doc_token_counts(con, ids, tok_key) if tok_key else None
        if tok is not None and (tok < 0).any():
            tok = None
        inputs = stable_hash(content_version(con, corpus), dedup_cfg, labels["inputs_hash"] if labels else None,
                             cfg.as_dict(), tok_key if tok is not None else None)
        stored = store.curriculum_rows(con, corpus, cfg.order)
        prev = last_ok_run(con, "curriculum", corpus, inputs)
        if len(stored) and stored["config_hash"].iloc[0] == inputs and prev and (prev["details"] or {}).get("report"):
            skip_run(con, "curriculum", inputs, cfg.as_dict(), corpus, prev["run_id"], counts_in=len(ids))
            report = {**prev["details"]["report"], "skipped": True, "reuses": prev["run_id"]}
            if plot_path:
                png = plot_curriculum(stored["difficulty"].to_numpy(), cfg)
                report["plot"] = str(write_file(plot_path, lambda p: p.write_bytes(png), force=force,
                                                what="plot file"))
            return report
        lq = store.label_scores(con, corpus)
        cs = store.cluster_sizes(con, corpus, dedup_cfg) if dedup_cfg else None
        chars = store.texts_sizes(con, ids, chars=True)
    # batches of at most BATCH documents and BATCH_CHARS characters of bounded views
    bounds = shard_bounds(np.minimum(chars, VIEW_HEAD + VIEW_TAIL + 3), BATCH, BATCH_CHARS)

    def batches(stage: str):  # each batch read in its own short session: scoring never keeps the file locked
        for lo, hi in bounds:
            with session(db) as c:
                texts = store.texts_by_doc_id(c, ids[lo:hi], view=(VIEW_HEAD, VIEW_TAIL))["text"].tolist()
            yield texts
            if progress:
                progress(stage, hi, len(ids))

    with logged_run(db, "curriculum", inputs, cfg.as_dict(), corpus, counts_in=len(ids)) as run:
        counts = NgramCounts()  # pass 1: corpus n-gram counts, batch by batch (bounded memory)
        for texts in batches("count n-grams"):
            counts.update(texts)
        parts = [score_batch(texts, counts) for texts in batches("score")]  # pass 2: score each batch
        scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        scores["length"] = scale_length(scores["length"], chars)
        notes = [] if dedup_cfg else ["dedup has not run: every document enters (run `taomi dedup` first)"]
        if (long := int((chars > VIEW_HEAD + VIEW_TAIL).sum())):
            notes.append(f"{long:,} document(s) over {VIEW_HEAD + VIEW_TAIL:,} characters scored on their first "
                         f"{VIEW_HEAD:,} and last {VIEW_TAIL:,} (unit length scaled to the whole)")
        if tok is not None:
            scores["length"] = tok.astype(float)
            notes.append(f"length in {tok_key} tokens")
        else:
            notes.append("length in units (words; characters of scripts without spaces): no token counts "
                         "(run `taomi tokens`)")
        if len(lq):
            m = dict(zip(lq["doc_id"], lq["label_quality"]))
            scores["label_doubt"] = np.array([1 - m.get(int(d), 1.0) for d in ids])
        if cs is not None:
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
        with session(db) as con:  # the stored order carries the hash of the inputs it was made from
            store.save_curriculum(con, corpus, cfg.order, inputs, frame)
        report = {"corpus": corpus, "documents": len(ids), "order": cfg.order, "pacing": cfg.pacing,
                  "steps": cfg.steps, "scorers": sorted(scores), "notes": notes,
                  "difficulty_first_10pct": float(np.mean(difficulty[order[: max(1, len(order) // 10)]])),
                  "difficulty_last_10pct": float(np.mean(difficulty[order[-max(1, len(order) // 10):]])),
                  "spearman_position_difficulty": float(pd.Series(np.arange(len(order))).corr(
                      pd.Series(difficulty[order]), method="spearman")) if len(order) > 2 else None}
        run.counts_out, run.details = len(order), {"report": report}
    if plot_path:
        png = plot_curriculum(difficulty, cfg)
        report["plot"] = str(write_file(plot_path, lambda p: p.write_bytes(png), force=force, what="plot file"))
    return report


def export_shards(db, corpus: str, outdir: str | Path, fmt: str = "parquet", shard_size: int = 100_000,
                  order: str = "curriculum", cfg: CurriculumConfig | None = None, force: bool = False,
                  progress=None, shard_bytes: int | str | None = None, shard_tokens: int | None = None,
                  keep_contaminated: bool = False) -> dict:
    """Write training shards in curriculum (or random-baseline) order, with a manifest.

    Documents flagged by the decontamination of the registered eval sets are left out (the
    manifest says how many, against which sets); `keep_contaminated` keeps them and says so. A
    corpus not decontaminated against a registered set since it changed is refused.

    OUTDIR must be new, empty or a previous Taomi export (else `force`); it may not hold the
    database. Only Taomi's own shards and manifest are ever replaced (warehouse.export_store).
    """
    if fmt not in ("parquet", "jsonl"):
        raise ValueError("format must be parquet or jsonl")
    if shard_size < 1:
        raise ValueError("shard size must be >= 1")
    shard_bytes = parse_bytes(shard_bytes) if shard_bytes is not None else None
    if shard_bytes and shard_tokens:
        raise ValueError("give --shard-bytes or --shard-tokens, not both")
    if shard_tokens is not None and shard_tokens < 1:
        raise ValueError("--shard-tokens must be >= 1")
    out = OutputDir(outdir, force=force, exclusive=True, protect=[db_path(db)], what="export folder")
    export_store.collect_garbage(out)
    with session(db) as con:
        rows = store.curriculum_rows(con, corpus, order)
    if rows.empty and order == "random":  # the baseline needs no scores: one read, one write
        rows = _unscored_random_rows(db, corpus, cfg or CurriculumConfig(order="random"))
    elif rows.empty:
        build_curriculum(db, corpus, cfg or CurriculumConfig(order=order), progress=progress)
        with session(db) as con:
            rows = store.curriculum_rows(con, corpus, order)
    with session(db) as con:
        if keep_contaminated:
            decontam = {"kept_contaminated": True, "documents_removed": 0}
        else:
            excluded, decontam = excluded_documents(con, corpus)
            flagged = rows["doc_id"].isin(excluded)
            decontam["documents_removed"] = int(flagged.sum())  # flagged documents that were to be exported
            rows = rows[~flagged].reset_index(drop=True)
    header = {"corpus": corpus, "order": order, "format": fmt, "shard_size": shard_size, "shard_bytes": shard_bytes,
              "shard_tokens": shard_tokens, "documents": len(rows),
              "curriculum_config_hash": str(rows["config_hash"].iloc[0]) if len(rows) else None,
              "decontamination": decontam}
    # the stored token counts travel with the documents: an `n_tokens` column, totals per shard
    # and in the manifest (what a trainer's budget is in), under the corpus's current tokenizer
    with session(db) as con:
        tokenizer = token_store.current_tokenizer(con, corpus)
        counts = token_store.doc_token_counts(con, rows["doc_id"].to_numpy(), tokenizer) if tokenizer else None
    if counts is not None:
        rows["n_tokens"] = pd.arrays.IntegerArray(counts, mask=counts < 0)
        header.update({"tokenizer": tokenizer, "tokens": int(counts[counts >= 0].sum()),
                       "documents_without_tokens": int((counts < 0).sum())})
    sizes = _shard_sizes(corpus, rows["doc_id"].to_numpy(), counts, shard_bytes, shard_tokens, db)
    key = stable_hash(header, rows["doc_id"].to_numpy().tobytes().hex())
    config = {"format": fmt, "shard_size": shard_size, "shard_bytes": shard_bytes, "shard_tokens": shard_tokens,
              "order": order, "outdir": str(out.path), "keep_contaminated": keep_contaminated}
    manifest = export_store.unchanged(out, key)
    if manifest is not None:  # this exact export is already in OUTDIR, intact
        with session(db) as con:
            skip_run(con, "export", key, config, corpus, counts_in=len(rows))
        return _export_result(out, "unchanged", manifest)
    with logged_run(db, "export", key, config, corpus, counts_in=len(rows)) as run:
        with session(db) as con:
            bounds = shard_bounds(sizes, shard_size, shard_bytes or shard_tokens)
            text = store.texts_sizes(con, rows["doc_id"].to_numpy())  # shards are written in batches of bytes
            batches = [shard_bounds(text[lo:hi], hi - lo, export_store.ROW_GROUP_BYTES) for lo, hi in bounds]
            manifest = export_store.write_shards(con, rows, out, fmt, bounds, {**header, "content_key": key},
                                                 progress, batches)
        result = _export_result(out, "written", manifest)
        run.counts_out, run.details = len(rows), result
    return result


def _shard_sizes(corpus: str, doc_ids, counts: np.ndarray | None, shard_bytes: int | None,
                 shard_tokens: int | None, db) -> np.ndarray:
    """Size per document in export order: text bytes for --shard-bytes, the stored token counts
    (`counts`, -1 where none) for --shard-tokens, zeros otherwise."""
    if shard_bytes:
        with session(db) as con:
            return store.texts_sizes(con, doc_ids)
    if not shard_tokens:
        return np.zeros(len(doc_ids), dtype=np.int64)
    if counts is None or (counts < 0).any():
        raise ValueError(f"--shard-tokens needs every exported document's token count; run `taomi tokens {corpus}`")
    return counts


def _unscored_random_rows(db, corpus: str, cfg: CurriculumConfig) -> pd.DataFrame:
    """The kept documents in a seeded random order (curation.curriculum.random_order), unscored."""
    with session(db) as con:
        dedup_cfg = store.latest_dedup_config(con, corpus)
        ids = store.kept_documents(con, corpus, dedup_cfg)
        if len(ids) == 0:
            raise LookupError(f"corpus '{corpus}' has no documents to export (see `taomi corpora`)")
        inputs = stable_hash(content_version(con, corpus), dedup_cfg, cfg.as_dict(), "unscored random order")
    order, steps = random_order(len(ids), cfg)
    return pd.DataFrame({"doc_id": ids[order], "position": np.arange(len(ids)), "pacing_step": steps,
                         "difficulty": np.full(len(ids), np.nan), "percentile": np.full(len(ids), np.nan),
                         "config_hash": inputs})


def _export_result(out: OutputDir, status: str, manifest: dict) -> dict:
    return {"outdir": str(out.path), "status": status,
            **{k: v for k, v in manifest.items() if k not in ("shards", "writer", "content_key")},
            "shards": len(manifest["shards"]), "bytes": sum(s["bytes"] for s in manifest["shards"])}

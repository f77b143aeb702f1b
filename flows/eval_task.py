"""The evaluate task: eval set + predictions (+ training corpus) -> figures, report, gates."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from evalsets.contamination import ngram_overlap
from evalsets.gates import check_gates, load_gates
from evalsets.metrics import get_metric
from evalsets.report import REPORT_FILES, render_report
from evalsets.sets import EvalInputError, load_eval_set, load_predictions
from evalsets.stats import paired, summarize
from evalsets.tracing import nearest_documents
from warehouse import eval_store as store
from warehouse.corpora import document_count
from warehouse.db import session
from warehouse.outputs import OutputDir
from warehouse.runlog import finish_run, stable_hash, start_run


def _git_sha() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        return r.stdout.strip() or None
    except OSError:
        return None


def auto_slices(items: pd.DataFrame) -> list[list[str]]:
    """Given slices plus automatic ones: length bucket, target label (few distinct), source."""
    n_words = items["input"].str.split().str.len()
    q1, q2 = np.percentile(n_words, [33.3, 66.7]) if len(items) >= 3 else (np.inf, np.inf)
    few_targets = items["target"].nunique() <= 20
    out = []
    for (_, r), nw in zip(items.iterrows(), n_words):
        s = list(r["slices"])
        s.append("length:short" if nw <= q1 else "length:medium" if nw <= q2 else "length:long")
        if few_targets:
            s.append(f"label:{r['target']}")
        src = r["meta"].get("source") if isinstance(r["meta"], dict) else None
        if src:
            s.append(f"source:{src}")
        out.append(s)
    return out


def evaluate(db, eval_path: str | Path, predictions_path: str | Path, model: str | None = None,
             metric: str = "exact_match", train_corpus: str | None = None, gates_path: str | Path | None = None,
             outdir: str | Path | None = None, set_name: str | None = None, n_boot: int = 2000,
             force: bool = False) -> dict:
    out = None
    if outdir:  # checked before any work: a report never replaces a user's file (unless force)
        out = OutputDir(outdir, force=force, what="report folder")
        out.check_writable(REPORT_FILES)
    es = load_eval_set(eval_path, set_name)
    preds = load_predictions(predictions_path)
    score_fn = get_metric(metric)
    gates = load_gates(gates_path) if gates_path else []
    items = es.items.copy()
    known = set(items["id"])
    unknown = sorted(set(preds["id"]) - known)
    merged = items.merge(preds, on="id", how="left")
    missing = merged.loc[merged["prediction"].isna(), "id"].tolist()
    merged["score"] = [score_fn(p, t) if isinstance(p, str) else 0.0
                       for p, t in zip(merged["prediction"], merged["target"])]
    merged["passed"] = merged["score"] >= 0.5 if metric == "token_f1" else merged["score"] == 1.0
    merged["slices"] = auto_slices(merged)

    contamination = None
    with session(db) as con:
        store.save_eval_set(con, es.name, es.content_hash, es.items)
        prev = store.previous_run(con, es.name)
        prev_res = store.run_results(con, prev["run_id"]) if prev else None
        if train_corpus:
            if not document_count(con, train_corpus):
                raise EvalInputError(f"training corpus '{train_corpus}' has no documents (see `taomi corpora`)")
            texts = (merged["input"] + " " + merged["target"]).tolist()
            found = ngram_overlap(texts, store.training_batches(con, train_corpus))
            info = store.doc_info(con, sorted({d for f in found for d in f["matched_docs"]}))
            merged["contamination"] = [f["status"] for f in found]
            for s, f in zip(merged["slices"], found):
                s.append(f"contamination:{f['status']}")
            contamination = {
                "method": "13-gram overlap after normalisation (Brown et al. 2020, app. C)",
                "checked": len(found), "contaminated": sum(f["status"] == "contaminated" for f in found),
                "too_short": sum(f["status"] == "too_short" for f in found),
                "items": [{"id": i, "status": f["status"],
                           "matched_docs": [info.get(d, {}).get("id", d) for d in f["matched_docs"]], "spans": f["spans"]}
                          for i, f in zip(merged["id"], found) if f["status"] == "contaminated"]}
        failures = []
        if train_corpus:
            failed = merged[~merged["passed"]]
            if len(failed):
                traced = nearest_documents((failed["input"]).tolist(), lambda: store.training_batches(con, train_corpus))
                info = store.doc_info(con, sorted({n["doc_id"] for t in traced for n in t["nearest"]}))
                for (_, r), t in zip(failed.iterrows(), traced):
                    near = [{**info.get(n["doc_id"], {}), "similarity": n["similarity"]} for n in t["nearest"]]
                    disagree = [n for n in near if n.get("label") not in (None, r["target"]) and n["similarity"] >= 0.3]
                    suggestion = ("add training data like this item" if t["coverage"] == "few" else
                                  "check the labels of similar training documents" if disagree else
                                  "similar data exists: check the data's quality or the item itself")
                    failures.append({"id": r["id"], "target": r["target"], "prediction": r["prediction"],
                                     "support": t["support"], "coverage": t["coverage"],
                                     "nearest": [{k: n.get(k) for k in ("id", "corpus", "label", "curriculum_position",
                                                                         "similarity")} for n in near[:3]],
                                     "suggestion": suggestion})
        slice_names = sorted({s for sl in merged["slices"] for s in sl})
        slices = {"all": summarize(merged["score"].to_numpy(), n_boot)}
        if contamination:
            clean = merged["contamination"] != "contaminated"
            slices["clean"] = summarize(merged.loc[clean, "score"].to_numpy(), n_boot)
        for s in slice_names:
            mask = merged["slices"].map(lambda x, s=s: s in x)
            slices[s] = summarize(merged.loc[mask, "score"].to_numpy(), n_boot)
        regression, flips = None, None
        if prev_res is not None and len(prev_res):
            both = merged.merge(prev_res.rename(columns={"score": "prev_score", "passed": "prev_passed"}), on="id")
            regression = {}
            for s in slices:
                if s in ("all", "clean"):
                    m = both["id"].isin(merged.loc[clean, "id"]) if s == "clean" else np.ones(len(both), bool)
                else:
                    m = both["slices"].map(lambda x, s=s: s in x).to_numpy()
                regression[s] = paired(both.loc[m, "score"].to_numpy(), both.loc[m, "prev_score"].to_numpy(), n_boot)
            flips = {"pass_to_fail": both.loc[both["prev_passed"] & ~both["passed"], "id"].tolist(),
                     "fail_to_pass": both.loc[~both["prev_passed"] & both["passed"], "id"].tolist()}
        gate_results = check_gates(gates, slices, regression) if gates else []
        run_id = uuid.uuid4().hex[:12]
        report = {
            "run_id": run_id, "model": model or Path(predictions_path).stem, "eval_set": es.name,
            "eval_set_hash": es.content_hash, "git_sha": _git_sha(), "metric": metric,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "previous_run": prev["run_id"] if prev else None, "slices": slices, "regression": regression,
            "flips": flips or {"pass_to_fail": [], "fail_to_pass": []}, "contamination": contamination,
            "failures": failures, "gates": gate_results,
            "gates_failed": [g for g in gate_results if not g["passed"]],
            "prediction_issues": {"unknown_ids": unknown, "missing_ids": missing},
        }
        log = start_run(con, "evaluate", stable_hash(es.content_hash, preds["id"].tolist()[:1000], len(preds)),
                        {"metric": metric, "model": report["model"], "train_corpus": train_corpus}, train_corpus,
                        counts_in=len(merged))
        store.save_run(con, {"run_id": run_id, "set_name": es.name, "set_hash": es.content_hash,
                             "model": report["model"], "metric": metric, "git_sha": report["git_sha"],
                             "summary": {"all": slices["all"], "gates_failed": len(report["gates_failed"])}},
                       merged.assign(prediction=merged["prediction"].astype(object)))
        finish_run(con, log, counts_out=int(merged["passed"].sum()),
                   details={"eval_run": run_id, "gates_failed": len(report["gates_failed"])})
    if out is not None:
        files = {name: str(out.write_text(name, text)) for name, text in render_report(report).items()}
        report["files"] = {"html": files["report.html"], "markdown": files["report.md"], "json": files["report.json"]}
    return report

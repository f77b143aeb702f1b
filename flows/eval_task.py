"""The evaluate task: eval set + predictions (+ training corpus) -> figures, report, gates."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from evalsets.analysis import auto_slices, regressions, suggest_fix
from evalsets.gates import check_gates, load_gates
from evalsets.harness import FORMATS, detect_format, load_harness_samples
from evalsets.metrics import get_metric
from evalsets.report import REPORT_FILES, render_report
from evalsets.sets import EvalInputError, load_eval_set, load_predictions
from evalsets.stats import summarize
from flows.decontam_task import METHOD, contamination_for
from flows.trace_task import trace_failures
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


def evaluate(db, eval_path: str | Path, predictions_path: str | Path | None = None, model: str | None = None,
             metric: str | None = None, train_corpus: str | None = None, gates_path: str | Path | None = None,
             outdir: str | Path | None = None, set_name: str | None = None, n_boot: int = 2000,
             force: bool = False, progress=None, fmt: str = "auto", harness_filter: str | None = None,
             pass_threshold: float = 0.5) -> dict:
    """Evaluate predictions against an eval set (and a training corpus): figures, report, gates.

    `eval_path` is a Taomi eval set (with `predictions_path`) or an lm-evaluation-harness
    `--log_samples` file (items and answers in one; `fmt` auto-detects). Item scores come from the
    harness's per-item metric, a predictions file's `score` field, or `metric` computed here; an
    item passes at score >= `pass_threshold`. `progress(stage, done, total)` is told the training
    documents scanned per pass."""
    out = None
    if outdir:  # checked before any work: a report never replaces a user's file (unless force)
        out = OutputDir(outdir, force=force, what="report folder")
        out.check_writable(REPORT_FILES)
    if fmt not in FORMATS:
        raise EvalInputError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    used = detect_format(eval_path) if fmt == "auto" else fmt
    if used == "lm-eval":
        if predictions_path is not None:
            raise EvalInputError(f"{eval_path}: an lm-evaluation-harness samples file holds the model's answers and "
                                 "scores: give no predictions file")
        es, preds, harness = load_harness_samples(eval_path, metric, harness_filter, set_name)
        metric, source = harness["metric"], f"lm-evaluation-harness per-item '{harness['metric']}'"
        default_model = Path(eval_path).parent.name or Path(eval_path).stem
    else:
        if predictions_path is None:
            raise EvalInputError(f"{eval_path}: a Taomi eval set needs a predictions file (id, prediction[, score]); "
                                 "an lm-evaluation-harness samples file needs none (--format lm-eval)")
        es, preds, harness = load_eval_set(eval_path, set_name), load_predictions(predictions_path), None
        default_model = Path(predictions_path).stem
        if preds["score"].notna().all():
            metric, source = metric or "score", "the predictions file's score field"
        else:
            metric = metric or "exact_match"
            score_fn, source = get_metric(metric), f"{metric} computed by Taomi"
    gates = load_gates(gates_path) if gates_path else []
    items = es.items.copy()
    known = set(items["id"])
    unknown = sorted(set(preds["id"]) - known)
    merged = items.merge(preds, on="id", how="left")
    missing = merged.loc[merged["prediction"].isna(), "id"].tolist()
    if preds["score"].notna().all():
        merged["score"] = merged["score"].fillna(0.0).astype(float)
    else:
        merged["score"] = [score_fn(p, t) if isinstance(p, str) else 0.0
                           for p, t in zip(merged["prediction"], merged["target"])]
    merged["prediction"] = merged["prediction"].fillna("")
    merged["passed"] = merged["score"] >= pass_threshold
    merged["slices"] = auto_slices(merged)

    # 1. a short session: store the set, read the previous run, check the training corpus
    with session(db) as con:
        store.save_eval_set(con, es.name, es.content_hash, es.items)
        prev = store.previous_run(con, es.name)
        prev_res = store.run_results(con, prev["run_id"]) if prev else None
        if train_corpus and not document_count(con, train_corpus):
            raise EvalInputError(f"training corpus '{train_corpus}' has no documents (see `taomi corpora`)")

    # 2. the long work reads the corpus in batches, each in its own short session, and computes
    # with the file closed: other commands and the service open it meanwhile. The contamination
    # scan and the tracing index are stored per corpus version: a second eval reads them.

    def info_of(doc_ids) -> dict:
        with session(db) as con:
            return store.doc_info(con, sorted(doc_ids))

    contamination = None
    if train_corpus:
        found, reuse = contamination_for(db, train_corpus, es, progress)
        info = info_of({d for f in found for d in f["matched_docs"]})
        merged["contamination"] = [f["status"] for f in found]
        for s, f in zip(merged["slices"], found):
            s.append(f"contamination:{f['status']}")
        unchecked = sum(f["status"] in ("too_short", "low_information") for f in found)
        contamination = {
            "method": METHOD, "checked": len(found) - unchecked, "total": len(found),
            "contaminated": sum(f["status"] == "contaminated" for f in found),
            "too_short": sum(f["status"] == "too_short" for f in found),
            "low_information": sum(f["status"] == "low_information" for f in found), "unchecked": unchecked,
            "reused_scan": reuse["reused_scan"], "scan_seconds": reuse["scan_seconds"],
            "items": [{"id": i, "status": f["status"],
                       "matched_docs": [info.get(d, {}).get("id", d) for d in f["matched_docs"]], "spans": f["spans"]}
                      for i, f in zip(merged["id"], found) if f["status"] == "contaminated"]}
    failures = []
    if train_corpus:
        failed = merged[~merged["passed"]]
        if len(failed):
            traced, _ = trace_failures(db, train_corpus, failed["input"].tolist(), progress=progress)
            info = info_of({n["doc_id"] for t in traced for n in t["nearest"]})
            for (_, r), t in zip(failed.iterrows(), traced):
                near = [{**info.get(n["doc_id"], {}), "similarity": n["similarity"]} for n in t["nearest"]]
                suggestion = suggest_fix(t["coverage"], near, r["target"])
                failures.append({"id": r["id"], "target": r["target"], "prediction": r["prediction"],
                                 "support": t["support"], "coverage": t["coverage"],
                                 "nearest": [{k: n.get(k) for k in ("id", "corpus", "label", "curriculum_position",
                                                                     "similarity")} for n in near[:3]],
                                 "suggestion": suggestion})
    slice_names = sorted({s for sl in merged["slices"] for s in sl})
    slices = {"all": summarize(merged["score"].to_numpy(), n_boot)}
    if contamination:
        clean = merged["contamination"] == "clean"  # unchecked items are not known to be clean
        slices["clean"] = summarize(merged.loc[clean, "score"].to_numpy(), n_boot)
    for s in slice_names:
        mask = merged["slices"].map(lambda x, s=s: s in x)
        slices[s] = summarize(merged.loc[mask, "score"].to_numpy(), n_boot)
    regression, flips = None, None
    if prev_res is not None and len(prev_res):
        regression, flips = regressions(merged, prev_res, slices, clean if contamination else None, n_boot)
    gate_results = check_gates(gates, slices, regression) if gates else []
    run_id = uuid.uuid4().hex[:12]
    report = {
        "run_id": run_id, "model": model or default_model, "eval_set": es.name,
        "eval_set_hash": es.content_hash, "git_sha": _git_sha(), "metric": metric, "scores_from": source,
        "format": used, "harness": harness, "pass_threshold": pass_threshold,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_run": prev["run_id"] if prev else None, "slices": slices, "regression": regression,
        "flips": flips or {"pass_to_fail": [], "fail_to_pass": []}, "contamination": contamination,
        "failures": failures, "gates": gate_results,
        "gates_failed": [g for g in gate_results if not g["passed"]],
        "prediction_issues": {"unknown_ids": unknown, "missing_ids": missing},
    }
    # 3. one short session writes the run, its results and the run-log row
    with session(db) as con:
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

"""Prefect flows: composition only. Each task is a thin wrapper around a flows/*_task function
(which opens the warehouse, calls the domain and writes back); tasks pass paths, names and small
dicts, never DataFrames or connections.

Retries with backoff cover transient I/O only (a locked database, a busy disk): never bad input
or a bug. There is no Prefect result cache: each stage knows the hash of its real inputs
(upstream content versions plus its config) and, when nothing changed, does no work and writes a
`skipped` run row naming the run it reuses (warehouse.runlog); a change upstream re-runs exactly
the stages downstream of it. Every stage writes its run-log row and a
Prefect artifact (markdown summary, table) so the Prefect UI shows the reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import RESOURCE_KEYS, load_config, normalize
from flows.progress import note, reported, step
from warehouse.runlog import stable_hash


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: only lock contention and transient I/O are worth another try;
    bad input, a refused output path or a bug fail at once."""
    from warehouse.db import is_transient

    return isinstance(state.data, BaseException) and is_transient(state.data)


RETRY = {"retries": 2, "retry_delay_seconds": [2, 8], "retry_condition_fn": retry_transient}


def _artifact(key: str, title: str, lines: list[str], table: list[dict] | None = None) -> None:
    """The stage's summary as a Prefect artifact, and as INFO log lines of its run (the UI's
    logs tab; the terminal shows warnings only)."""
    get_run_logger().info("%s: %s", title, "; ".join(lines))
    note("; ".join(str(x) for x in lines[:2]))
    key = "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")[:100]
    create_markdown_artifact(markdown=f"# {title}\n\n" + "\n".join(f"- {x}" for x in lines), key=key,
                             description=title)
    if table:
        create_table_artifact(table=table, key=f"{key}-table", description=title)


# ---- tasks ----------------------------------------------------------------------------------

@task(name="ingest", **RETRY)
@reported("ingest")
def ingest_t(db: str, corpus: str, paths: list[str], fields: dict, tokenizer: str = "cl100k_base") -> dict:
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_paths
    from warehouse.readers import expand_inputs, held_out_note, held_out_splits

    held_out = held_out_splits(paths, expand_inputs(paths))
    for split, names in held_out.items():
        get_run_logger().warning(f"{held_out_note(corpus, split, names)}; name the training files in `paths` "
                                 "to keep them out")
    with session(db) as con:
        res = [r.as_dict() for r in ingest_paths(con, paths, IngestConfig(corpus, **fields))]
    if tokenizer != "none":
        from flows.tokens_task import count_tokens

        count_tokens(db, corpus, tokenizer, progress=step)
    _artifact(f"ingest-{corpus}", f"ingest into {corpus}",
              [f"{Path(r['path']).name}: {r['status']}, {r['rows_new']} new, {r['rows_quarantined']} quarantined"
               for r in res])
    return {"files": res, **({"held_out_splits": held_out} if held_out else {})}


@task(name="sign-shard", **RETRY)
def sign_shard_t(db: str, corpus: str, dedup: dict, lo: int, hi: int) -> int:
    from dedup.config import DedupConfig
    from flows.dedup_task import sign_shard

    return sign_shard(db, corpus, DedupConfig(**dedup), lo, hi)


@task(name="signature-shards", **RETRY)
@reported("plan signature shards")
def shards_t(db: str, corpus: str, dedup: dict, shard_docs: int) -> list[tuple[int, int]]:
    from dedup.config import DedupConfig
    from flows.dedup_task import signature_shards

    return signature_shards(db, corpus, DedupConfig(**dedup), shard_docs)


@task(name="signing-check")
@reported("check signing")
def signing_check_t(db: str, corpus: str, dedup: dict, given: list[int], done: list[int]) -> dict:
    """What the signature shards did, seen from the client's database: a task runner whose workers
    signed less than they were given (or signed into another file) is said, not hidden behind the
    dedup step signing the rest itself."""
    from dedup.config import DedupConfig
    from flows.dedup_task import unsigned_count

    left = unsigned_count(db, corpus, DedupConfig(**dedup))
    out = {"shards": len(given), "given": int(sum(given)), "signed_by_tasks": int(sum(done)), "unsigned_after": left}
    if left:
        out["warning"] = (f"the signature tasks were given {out['given']:,} documents and reported "
                          f"{out['signed_by_tasks']:,}, but {left:,} are still unsigned in {db}: the dedup step "
                          "signs them here; check that every worker sees this database file")
        get_run_logger().warning(out["warning"])
    note(f"{out['signed_by_tasks']:,} of {out['given']:,} signed by the shard tasks, {left:,} left")
    return out


@task(name="dedup", **RETRY)
@reported("dedup")
def dedup_t(db: str, corpus: str, dedup: dict, resources: dict | None = None, dask_address: str | None = None) -> dict:
    """Dedup in this process, or with `dask_address` on that Dask cluster's workers (which read
    and write Parquet in the work folder and never open the DuckDB file: flows.dask_dedup)."""
    from dedup.config import DedupConfig, Resources
    from flows.dedup_task import dedup_corpus

    resources = resources or {}
    res = Resources.default(resources.get("workers", 0), resources.get("memory_limit"))
    if dask_address:
        from flows.dask_dedup import SHARD_DOCS, dask_client, dedup_distributed

        with dask_client(dask_address) as client:
            r = dedup_distributed(db, corpus, DedupConfig(**dedup), client, resources.get("work_dir"), step,
                                  partitions=resources.get("partitions", 0),
                                  shard_docs=resources.get("shard_docs", SHARD_DOCS), res=res)
    else:
        r = dedup_corpus(db, corpus, DedupConfig(**dedup), progress=step, res=res)
    _artifact(f"dedup-{corpus}", f"dedup of {corpus}",
              [f"{r['docs_in']} documents in, {r['docs_out']} kept", (f"{r['exact_dropped']} exact, "
               f"{r['near_dropped']} near duplicates removed ({r['bands']}x{r['rows']} bands)"),
               f"{r['candidate_pairs']} candidates, {r['verified_pairs']} verified"],
              [{k: str(v) for k, v in c.items()} for c in r["largest_clusters"]])
    return r


@task(name="labels", **RETRY)
@reported("labels")
def labels_t(db: str, corpus: str, truth: str | None = None) -> dict:
    from flows.labels_task import NoLabels, check_labels

    try:
        r = check_labels(db, corpus, n_boot=200, truth=truth, progress=step)
    except NoLabels as exc:
        get_run_logger().info(str(exc))
        note(f"skipped: {exc}")
        return {"skipped": str(exc)}
    a = r["agreement"] or {}
    _artifact(f"labels-{corpus}", f"labels of {corpus}",
              [f"Krippendorff's alpha {a.get('krippendorff_alpha')}", f"{len(r['conflicts'])} conflicting duplicate groups",
               f"{len(r['suspects'])} suspect labels", *r["notes"]], r["suspects"][:50])
    return {k: r[k] for k in ("agreement", "conflicts", "suspects", "notes") if k in r} | (
        {"truth_check": r["truth_check"]} if "truth_check" in r else {})


@task(name="curriculum", **RETRY)
@reported("curriculum")
def curriculum_t(db: str, corpus: str, curriculum: dict, plot: str | None = None) -> dict:
    from curation.curriculum import CurriculumConfig
    from flows.curriculum_task import build_curriculum

    c = dict(curriculum)
    if "weights" in c:
        c["weights"] = tuple(c["weights"].items())
    r = build_curriculum(db, corpus, CurriculumConfig(**c), plot, progress=step)
    _artifact(f"curriculum-{corpus}", f"curriculum of {corpus}",
              [f"{r['documents']} documents, {r['pacing']} pacing",
               f"difficulty first 10% {r['difficulty_first_10pct']:.3f}, last 10% {r['difficulty_last_10pct']:.3f}"])
    return r


@task(name="register eval set", **RETRY)
@reported("register eval set")
def register_eval_t(db: str, name: str, path: str, fmt: str = "auto") -> dict:
    from flows.decontam_task import register

    r = register(db, name, path, fmt)
    get_run_logger().info("eval set %s %s: %d items, %d checkable", name, r["status"], r["items"], r["checkable"])
    return r


@task(name="decontaminate", **RETRY)
@reported("decontaminate")
def decontaminate_t(db: str, corpus: str) -> dict:
    from flows.decontam_task import PASSAGE, decontaminate, registered_sets

    if not registered_sets(db):
        note("skipped: no registered eval sets")
        return {"skipped": "no registered eval sets ([[eval]] entries or `taomi evalset add`)"}
    r = decontaminate(db, corpus, progress=step)
    _artifact(f"decontaminate-{corpus}", f"decontamination of {corpus}",
              [f"{r['documents_flagged']} documents share {PASSAGE} with {', '.join(r['sets'])}",
               f"method: {r['method']}", "export leaves them out"],
              [{"eval set": k, **v} for k, v in r["per_set"].items()])
    return r


@task(name="export", **RETRY)
@reported("export")
def export_t(db: str, corpus: str, export: dict) -> dict:
    from flows.curriculum_task import export_shards

    r = export_shards(db, corpus, export["outdir"], export.get("format", "parquet"), export.get("shard_size", 100_000),
                      export.get("order", "curriculum"), force=bool(export.get("force", False)),
                      shard_bytes=export.get("shard_bytes"), shard_tokens=export.get("shard_tokens"), progress=step)
    _artifact(f"export-{corpus}", f"export of {corpus}", [f"{r['shards']} shards, {r['bytes']} bytes in {r['outdir']}"])
    return r


@task(name="fit", **RETRY)
@reported("fit", lambda db, observations, bootstrap, name, *a, **k: name)
def fit_t(db: str, observations: str, bootstrap: int, name: str, plots: str | None = None,
          drop_outliers: int = 0) -> dict:
    from flows.scaling_task import fit_file

    r = fit_file(db, observations, bootstrap=bootstrap, name=name, plots_dir=plots, drop_outliers=drop_outliers)
    _artifact(f"fit-{name}", f"fit {name}", [f"{k} = {v:.6g}" for k, v in r["params"].items()],
              [{"param": k, "lo": v[0], "hi": v[1]} for k, v in r["ci"].items()])
    return r


@task(name="plan", **RETRY)
@reported("plan", lambda db, fit_name, budget, *a, **k: ", ".join(f"{k}={v}" for k, v in budget.items()))
def plan_t(db: str, fit_name: str, budget: dict, corpus: str = "") -> dict:
    """A budget planned with the fit, and with the curated corpus's unique tokens when it has
    stored token counts (else planned without a data limit, and the result says why)."""
    from flows.plan_task import answer
    from scaling.planning import PlanRequest
    from warehouse.db import session

    data_note = None
    with session(db) as con:  # read-write: a corpus plan may read a warehouse this run just migrated
        try:
            p = answer(PlanRequest(fit=fit_name, **({"corpus": corpus} if corpus and "unique_tokens" not in budget
                                                      else {}), **budget), con)
        except LookupError as exc:
            if not corpus:
                raise
            data_note = f"planned without a data limit: {exc}"
            p = answer(PlanRequest(fit=fit_name, **budget), con)
        if data_note:
            p["data"] = {"corpus": corpus, "skipped": data_note}
        from warehouse.runlog import finish_run, start_run

        run = start_run(con, "plan", stable_hash(fit_name, budget, corpus), {**budget, "corpus": corpus})
        finish_run(con, run, details={"params": p["params"], "tokens": p["tokens"], "flops": p["flops"],
                                      "unique_tokens": (p.get("data") or {}).get("unique_tokens")})
    d = p.get("data") or {}
    lines = [f"budget {p['flops']:.3g} FLOPs", f"N* {p['params']:.4g}, D* {p['tokens']:.4g}, loss {p['loss']:.4f}",
             *([f"{p['gpu_days']:.0f} GPU-days, MFU {p['mfu']} ({p['mfu_source']})"] if "gpu_days" in p else [])]
    if d.get("unique_tokens"):
        lines += [(f"data: corpus {corpus}, {d['unique_tokens']:.4g} unique {d['tokenizer']} tokens "
                   f"(runs: tokens {d['runs']['tokens']}, dedup {d['runs']['dedup']})"), d.get("verdict", "")]
    elif d.get("skipped"):
        lines.append(d["skipped"])
    _artifact(f"plan-{fit_name}-{stable_hash(budget)[:8]}", "compute-optimal plan", [x for x in lines if x])
    return p


@task(name="calibrate", **RETRY)
@reported("calibrate", lambda *a, **k: "")
def calibrate_t(db: str, calibrate: dict, corpus: str | None) -> dict:
    from flows.calibrate_task import run_calibration
    from scaling.calibrate import require_torch

    try:
        require_torch()
    except RuntimeError as exc:
        msg = f"skipped: {exc}"
        get_run_logger().info(msg)
        return {"skipped": msg}
    r = run_calibration(db, corpus, calibrate.get("size", "tiny"), calibrate.get("steps", 20),
                        calibrate.get("device", "auto"))
    _artifact("calibration", "throughput calibration",
              [f"{r['device_name']}: {r['tokens_per_s']:.0f} tokens/s, MFU {r['mfu']:.1%} ({r['peak_source']})"])
    return r


@task(name="evaluate", **RETRY)
@reported("evaluate", lambda db, ev, *a, **k: str(ev.get("name") or ev.get("eval_set", "")))
def evaluate_t(db: str, ev: dict) -> dict:
    from flows.eval_task import evaluate

    r = evaluate(db, ev["eval_set"], ev.get("predictions"), ev.get("model"), ev.get("metric"),
                 ev.get("train_corpus"), ev.get("gates"), ev.get("out"), ev.get("name"), ev.get("n_boot", 2000),
                 fmt=ev.get("format", "auto"), harness_filter=ev.get("filter"),
                 pass_threshold=ev.get("pass_threshold", 0.5), progress=step)
    a = r["slices"]["all"]
    reg = (r.get("regression") or {}).get("all")
    lines = [(f"{r['metric']} {a['metric']:.4f}, 95% CI [{a['ci'][0]:.4f}, {a['ci'][1]:.4f}], n = {a['n']} "
              f"({r['scores_from']})")]
    if reg:
        lines.append(f"vs previous run {r['previous_run']}: {reg['diff']:+.4f} [{reg['ci'][0]:+.4f}, "
                     f"{reg['ci'][1]:+.4f}]" + (f", p = {reg['p_value']:.3g} ({reg['test']})"
                                                if reg.get("p_value") is not None else ""))
    if r.get("contamination"):
        c = r["contamination"]
        lines.append(f"contamination: {c['contaminated']} of {c['checked']} checkable items "
                     f"({c['unchecked']} could not be checked)")
    lines += [f"gates failed: {len(r['gates_failed'])}"
              + "".join(f"; {g['gate']} on {g['slice']}: {g['recommendation']}" for g in r["gates_failed"]),
              f"report: {Path(r['files']['html']).resolve() if r.get('files') else 'not written'}"]
    table = [{"slice": s, "n": v["n"], r["metric"]: round(v["metric"], 4),
              "95% CI": f"[{v['ci'][0]:.4f}, {v['ci'][1]:.4f}]",
              "vs previous": (f"{r['regression'][s]['diff']:+.4f}" if r.get("regression") and s in r["regression"]
                              else "")} for s, v in r["slices"].items()]
    _artifact(f"eval-{r['eval_set']}", f"eval {r['eval_set']} ({r['model']})", lines, table)
    return r


# ---- flows ----------------------------------------------------------------------------------

def _dask_scheduler() -> str | None:
    """The scheduler address of the running flow's Dask task runner, or None for any other runner."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or type(ctx.task_runner).__name__ != "DaskTaskRunner":
        return None
    return ctx.task_runner.client.scheduler.address  # the runner's client, made (cluster and all) on first use


def _cfg(config: str | dict) -> dict:
    return normalize(config, Path(".")) if isinstance(config, dict) else load_config(config)


@flow(name="curate", task_runner=ThreadPoolTaskRunner(max_workers=2))
def curate_flow(config: str | dict) -> dict:
    cfg = _cfg(config)
    db = cfg["db"]
    out: dict[str, Any] = {}
    dd = {k: v for k, v in cfg["dedup"].items() if k not in RESOURCE_KEYS}
    resources = {k: v for k, v in cfg["dedup"].items() if k in RESOURCE_KEYS}
    shard_docs = int(cfg["dedup"].get("shard_docs", 100_000))
    dask_address = _dask_scheduler()
    for ev in cfg["eval"]:  # the pipeline's eval sets are registered: its corpora are decontaminated against them
        register_eval_t(db, ev.get("name") or Path(ev["eval_set"]).stem, ev["eval_set"], ev.get("format", "auto"))
    for c in cfg["corpus"]:
        name = c["name"]
        fields = {k: c[k] for k in ("text_field", "id_field", "label_field", "annotator_field") if k in c}
        if c.get("max_line_bytes"):
            fields["max_line_bytes"] = c["max_line_bytes"]
        ing = ingest_t(db, name, c["paths"], fields, c.get("tokenizer") or "cl100k_base")  # runs the task now
        if dask_address:  # the Dask runner: every per-document dedup stage on its workers, off the DuckDB file
            dup = dedup_t(db, name, dd, resources, dask_address)
            signing = {"engine": "dask", "shards": dup.get("shards"), "signed_by_tasks": dup["signatures_computed"]}
        else:
            shards = shards_t(db, name, dd, shard_docs)
            signed = sign_shard_t.map(unmapped(db), unmapped(name), unmapped(dd), [s[0] for s in shards],
                                      [s[1] for s in shards])
            signed.wait()  # signature shards run in parallel on the task runner
            signing = signing_check_t(db, name, dd, [s[2] for s in shards], [f.result() for f in signed])
            dup = dedup_t(db, name, dd, resources)
        lab = labels_t(db, name, c.get("truth"))
        cur = curriculum_t(db, name, cfg["curriculum"], c.get("plot"))
        res = {"ingest": ing, "signed": signing["signed_by_tasks"], "signing": signing, "dedup": dup,
               "labels": lab, "curriculum": cur}
        res["decontaminate"] = decontaminate_t(db, name)  # before export: flagged documents stay out
        if cfg["export"]:
            res["export"] = export_t(db, name, cfg["export"])
        out[name] = res
    return out


@flow(name="scaling", task_runner=ThreadPoolTaskRunner(max_workers=2))
def scaling_flow(config: str | dict) -> dict:
    cfg = _cfg(config)
    sc = cfg["scaling"]
    if not sc:
        return {"skipped": "no [scaling] section"}
    name = sc.get("name", Path(sc["observations"]).stem)
    fit = fit_t(cfg["db"], sc["observations"], int(sc.get("bootstrap", 200)), name, sc.get("plots"),
                int(sc.get("drop_outliers", 0)))
    plans = [plan_t(cfg["db"], name, b, sc.get("corpus") or "") for b in sc.get("budgets", [])]
    return {"fit": fit, "plans": plans}


@flow(name="calibrate")
def calibrate_flow(config: str | dict) -> dict:
    cfg = _cfg(config)
    cal = cfg["calibrate"]
    if not cal.get("enabled", False):
        return {"skipped": "calibration not enabled in the config ([calibrate] enabled = true)"}
    corpus = cal.get("corpus") or (cfg["corpus"][0]["name"] if cfg["corpus"] else None)
    return calibrate_t(cfg["db"], cal, corpus)


@flow(name="evaluate")
def evaluate_flow(config: str | dict) -> list[dict]:
    cfg = _cfg(config)
    results = []
    for ev in cfg["eval"]:
        results.append(evaluate_t(cfg["db"], ev))
    return results


@flow(name="all")
def all_flow(config: str | dict, runner: str = "threads", dask_address: str | None = None, workers: int = 2) -> dict:
    """curate -> calibrate -> scaling -> evaluate, from one config."""
    cfg = _cfg(config)
    tr = task_runner(runner, dask_address, workers)
    return {"curate": curate_flow.with_options(task_runner=tr)(cfg), "calibrate": calibrate_flow(cfg),
            "scaling": scaling_flow.with_options(task_runner=task_runner(runner, dask_address, workers))(cfg),
            "evaluate": evaluate_flow(cfg)}


FLOWS = {"curate": curate_flow, "scaling": scaling_flow, "calibrate": calibrate_flow, "evaluate": evaluate_flow,
         "all": all_flow}


def task_runner(kind: str, dask_address: str | None = None, workers: int = 2):
    """threads | processes | dask (an existing scheduler's address, else a local cluster)."""
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    raise ValueError(f"unknown task runner '{kind}'; choose threads, processes or dask")


def run_flow(name: str, config: str | dict, runner: str = "threads", dask_address: str | None = None,
             workers: int = 2) -> Any:
    if name not in FLOWS:
        raise ValueError(f"unknown flow '{name}'; choose one of {', '.join(FLOWS)}")
    if name == "all":
        return all_flow(config, runner, dask_address, workers)
    f = FLOWS[name]
    if name in ("curate", "scaling"):
        f = f.with_options(task_runner=task_runner(runner, dask_address, workers))
    return f(config)


def summary_json(result: Any) -> str:
    return json.dumps(result, default=str)


def deployment(name: str, config: str, cron: str, deployment_name: str = "taomi-nightly"):
    """A Prefect deployment of a flow on a cron schedule (for `serve`)."""
    from prefect.client.schemas.schedules import CronSchedule

    CronSchedule(cron=cron)  # validates the expression: a bad one raises here, not at 03:00
    return FLOWS[name].to_deployment(name=deployment_name, cron=cron, parameters={"config": config})

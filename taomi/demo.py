"""`make demo`: generate the sample corpus, run the pipeline on it, print what a user came for."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from taomi.demo_data import DemoConfig, generate
from taomi.output import emit, make_progress


def run_demo(workdir: Path, db: str, docs: int = 5000, seed: int = 0,
             console: Console | None = None) -> dict:
    """Run every stage that exists on the embedded defaults; return the summary printed."""
    from warehouse.corpora import corpus_stats
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_paths

    say = console.print if console else (lambda *a, **k: None)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = generate(workdir / "data", DemoConfig(docs=docs, seed=seed))
    say(f"[bold]1. sample corpus[/]: {data['docs']:,} documents with {data['exact_duplicates']} planted exact "
        f"and {data['near_duplicates']} near duplicates, {data['labelled']} labelled items, "
        f"{data['broken_lines']} broken lines -> {workdir / 'data'}")
    summary: dict = {"workdir": str(workdir), "db": db, "sample": data}
    cfg = IngestConfig(corpus="demo")
    with session(db) as con:
        with make_progress(console or Console(), quiet=console is None) as progress:
            def factory(p: Path):
                task = progress.add_task(f"ingest {p.name}", total=p.stat().st_size)
                return lambda done: progress.update(task, completed=done)

            results = ingest_paths(con, [data["corpus"], data["labels"]], cfg, factory)
        summary["ingest"] = [r.as_dict() for r in results]
        stats = corpus_stats(con, "demo")
    summary["corpus"] = stats
    for r in results:
        say(f"[bold]2. ingest[/] {Path(r.path).name}: {r.status}, {r.rows_new:,} new rows, "
            f"{r.annotations_new:,} annotations, {r.rows_quarantined} quarantined "
            + (f"({', '.join(f'{k}: {v}' for k, v in r.reasons.items())})" if r.reasons else ""))
    if console:
        emit({k: v for k, v in stats.items() if k not in ("files", "given_labels")}, False,
             title="corpus 'demo'", console=console)

    from dedup.config import DedupConfig
    from flows.dedup_task import dedup_corpus

    dd = dedup_corpus(db, "demo", DedupConfig())
    summary["dedup"] = dd
    planted = data["exact_duplicates"] + data["near_duplicates"]
    say(f"[bold]3. dedup[/]: {dd['docs_in']:,} documents -> {dd['docs_out']:,} kept; removed "
        f"{dd['exact_dropped']:,} exact and {dd['near_dropped']:,} near duplicates (J >= 0.8, "
        f"{dd['bands']}x{dd['rows']} bands, {dd['candidate_pairs']:,} candidates, every one verified); "
        f"the generator planted {planted:,} copies, some edited below J = 0.8 on purpose")
    if console and dd["largest_clusters"]:
        emit(dd["largest_clusters"][:3], False, title="largest duplicate clusters", console=console)

    from curation.curriculum import CurriculumConfig
    from flows.curriculum_task import build_curriculum, export_shards
    from flows.labels_task import check_labels

    lab = check_labels(db, "demo", n_boot=200, truth=data["truth"])
    summary["labels"] = {k: lab[k] for k in ("agreement", "truth_check", "notes")} | {
        "conflicts": len(lab["conflicts"]), "suspects": len(lab["suspects"])}
    a, tc = lab["agreement"], lab["truth_check"]
    say(f"[bold]4. labels[/]: Krippendorff's alpha {a['krippendorff_alpha']:.3f} over {a['items']} items and "
        f"{len(a['annotators'])} annotators (< 0.667: not reliable; >= 0.8 reliable); Dawid-Skene accuracy "
        + ", ".join(f"{k} {v:.2f}" for k, v in a["annotator_accuracy_dawid_skene"].items())
        + f"; {len(lab['conflicts'])} duplicate groups with conflicting labels; {len(lab['suspects'])} suspect labels "
        f"(precision {tc['precision']:.2f}, recall {tc['recall']:.2f} against the planted noise)")
    cur = build_curriculum(db, "demo", CurriculumConfig(), workdir / "plots" / "curriculum.png")
    exp = export_shards(db, "demo", workdir / "shards", "parquet", 1000)
    summary["curriculum"], summary["export"] = cur, exp
    say(f"[bold]5. curriculum[/]: {cur['documents']:,} kept documents ordered easy-to-hard with sqrt pacing "
        f"(mean difficulty {cur['difficulty_first_10pct']:.2f} in the first 10% vs {cur['difficulty_last_10pct']:.2f} "
        f"in the last); exported {exp['shards']} shards ({exp['bytes'] / 1e6:.1f} MB) + manifest to {exp['outdir']}")

    from flows.plan_task import budget, make_plan, resolve_law
    from flows.scaling_task import fit_file
    from warehouse.db import connect

    fit = fit_file(db, data["scaling_runs"], bootstrap=200, name="demo-runs", plots_dir=workdir / "plots")
    summary["fit"] = fit
    p, ci = fit["params"], fit["ci"]
    say(f"[bold]6. scaling law[/] fitted to {fit['n_points']} small runs ({workdir / 'data' / 'scaling_runs.csv'}): "
        f"L = {p['E']:.3f} + {p['A']:.0f}/N^{p['alpha']:.3f} + {p['B']:.0f}/D^{p['beta']:.3f}; "
        f"alpha 95% CI [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}], beta [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}]"
        + (f"; poorly determined: {', '.join(fit['poorly_determined'])}" if fit["poorly_determined"] else ""))
    con = connect(db, read_only=True)
    try:
        law, samples, desc = resolve_law(con, fit="demo-runs")
        bud = budget(None, 64, "h100-sxm", 14, None, None, con)
    finally:
        con.close()
    pl = make_plan(law, samples, desc, bud)
    summary["plan"] = pl
    pci = pl.get("ci", {})
    say(f"[bold]7. plan[/] for 64 x H100-SXM for 14 days at MFU {pl['mfu']:.2f} ({pl['mfu_source']}): "
        f"{pl['flops']:.3g} FLOPs -> N* = {pl['params'] / 1e9:.2f}B params "
        f"[{pci['params'][0] / 1e9:.2f}B, {pci['params'][1] / 1e9:.2f}B], D* = {pl['tokens'] / 1e9:.0f}B tokens "
        f"({pl['tokens_per_param']:.1f} per param), predicted loss {pl['loss']:.3f}; {pl['gpu_days']:.0f} GPU-days; "
        f"training state {pl['memory']['training_state_bytes'] / 2**30:.0f} GiB "
        f"(>= {pl['memory']['min_gpus_for_state_zero3']} GPUs just to hold it with ZeRO-3)")
    say(f"plots: {', '.join(fit.get('plots', []))}")

    from flows.eval_task import evaluate

    evaluate(db, data["eval_set"], data["predictions_previous"], "model-v1", "accuracy", "demo", n_boot=500)
    ev = evaluate(db, data["eval_set"], data["predictions_current"], "model-v2", "accuracy", "demo", data["gates"],
                  workdir / "report", n_boot=1000)
    summary["eval"] = {k: ev[k] for k in ("run_id", "slices", "gates_failed", "files")} | {
        "contaminated": ev["contamination"]["contaminated"], "flips": {k: len(v) for k, v in ev["flips"].items()}}
    a = ev["slices"]["all"]
    worst = min(((s, v) for s, v in (ev["regression"] or {}).items()), key=lambda kv: kv[1]["diff"], default=None)
    say(f"[bold]8. hard-set eval[/] of model-v2 vs model-v1 on {a['n']} items: accuracy {a['metric']:.3f} "
        f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}], clean subset {ev['slices']['clean']['metric']:.3f}; "
        f"{ev['contamination']['contaminated']} items found in the training corpus; "
        f"{len(ev['flips']['pass_to_fail'])} pass->fail flips"
        + (f"; biggest regression {worst[0]} {worst[1]['diff']:+.3f}" if worst else "")
        + "; gates: " + ("; ".join(f"FAILED {g['gate']} on {g['slice']} -> {g['recommendation']}"
                                     for g in ev["gates_failed"]) or "passed"))
    say(f"report: {ev['files']['html']}")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"database: {db}  ({summary['seconds']} s)")
    return summary

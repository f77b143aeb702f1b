"""`make demo`: generate the sample corpus, run the `all` Prefect flow once on embedded defaults,
and print what a user came for."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from scaling.data import CHINCHILLA_POINTS
from taomi.demo_data import DemoConfig, generate
from taomi.output import emit, styled
from warehouse.outputs import OutputDir

DEMO_CONFIG = """# written by `taomi demo`: the embedded defaults, runnable with `taomi run all --config {path}`
db = "{db}"

[[corpus]]
name = "demo"
paths = ["data/corpus.jsonl", "data/labels.jsonl"]
truth = "{truth}"
plot = "{plot}"

[dedup]
threshold = 0.8
shard_docs = 100000
workers = 0             # signing threads (0: every core); the result is the same for any number
memory_limit = "1GB"    # band keys past half of it are grouped on disk by DuckDB

[curriculum]
pacing = "sqrt"

[export]
outdir = "shards"
format = "parquet"
shard_size = 1000

[scaling]
# real measurements: Epoch AI's extraction of the Chinchilla paper's Figure 4 (Hoffmann et al.
# 2022), fitted as Epoch did (Besiroglu et al. 2024): the 5 highest-loss points dropped
observations = "{observations}"
drop_outliers = 5
name = "epoch-chinchilla"
bootstrap = 200
plots = "{plots}"
budgets = [{{gpus = 64, gpu = "h100-sxm", days = 14}}, {{flops = 1e23}}]

[calibrate]
enabled = true
size = "tiny"
steps = 10

[[eval]]
eval_set = "data/eval_set.jsonl"
predictions = "data/predictions_previous.jsonl"
model = "model-v1"
metric = "accuracy"
train_corpus = "demo"
n_boot = 500

[[eval]]
eval_set = "data/eval_set.jsonl"
predictions = "data/predictions_current.jsonl"
model = "model-v2"
metric = "accuracy"
train_corpus = "demo"
gates = "data/gates.toml"
out = "report"
n_boot = 1000
"""


def run_demo(workdir: Path, db: str, docs: int = 5000, seed: int = 0, console: Console | None = None) -> dict:
    from taomi.common import quiet_prefect

    quiet_prefect()
    def say(head: str, rest: str | None = None) -> None:  # a bold step name, then plain text
        if console:
            console.print(styled((head, "bold"), rest) if rest is not None else head)

    workdir = workdir.resolve()
    home = OutputDir(workdir, what="demo folder")
    home.check_writable(["pipeline.toml"])
    t0 = time.perf_counter()
    data = generate(workdir / "data", DemoConfig(docs=docs, seed=seed))
    say("1. sample corpus", f": {data['docs']:,} documents with {data['exact_duplicates']} planted exact, "
        f"{data['reformatted_duplicates']} re-cased or re-spaced and {data['near_duplicates']} near duplicates, "
        f"{data['labelled']} labelled items, {data['broken_lines']} broken lines -> {workdir / 'data'}")
    cfg_path = workdir / "pipeline.toml"
    home.write_text(cfg_path.name, DEMO_CONFIG.format(path=cfg_path, db=Path(db).resolve(), truth=data["truth"],
                                                      plot=workdir / "plots" / "curriculum.png", plots=workdir / "plots",
                                                      observations=CHINCHILLA_POINTS))
    say(f"running the `all` Prefect flow ({cfg_path}) ...")
    from flows.pipeline import run_flow

    res = run_flow("all", str(cfg_path))
    cur = res["curate"]["demo"]
    summary: dict = {"workdir": str(workdir), "db": db, "config": str(cfg_path), "sample": data, "flows": res}

    for f in cur["ingest"]["files"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in f["reasons"].items())
        say("2. ingest", f" {Path(f['path']).name}: {f['status']}, {f['rows_new']:,} new rows, "
            f"{f['annotations_new']:,} annotations, {f['rows_quarantined']} quarantined" + (f" ({reasons})" if reasons else ""))
    dd = cur["dedup"]
    say("3. dedup", f": corpus {dd['docs_in']:,} documents -> {dd['docs_out']:,} kept; removed "
        f"{dd['exact_dropped']:,} exact and {dd['near_dropped']:,} near duplicates (J >= 0.8, {dd['bands']}x{dd['rows']} "
        f"bands, {dd['candidate_pairs']:,} candidates, every one verified); the generator planted "
        f"{data['exact_duplicates'] + data['reformatted_duplicates'] + data['near_duplicates']:,} copies, some "
        "edited below J = 0.8 on purpose")
    if console and dd["largest_clusters"]:
        emit(dd["largest_clusters"][:3], False, title="largest duplicate clusters", console=console)
    lab = cur["labels"]
    a, tc = lab.get("agreement"), lab.get("truth_check")
    if a:
        say("4. labels", f": Krippendorff's alpha {a['krippendorff_alpha']:.3f} over {a['items']} items and "
            f"{len(a['annotators'])} annotators (< 0.667: not reliable; >= 0.8 reliable); Dawid-Skene accuracy "
            + ", ".join(f"{k} {v:.2f}" for k, v in a["annotator_accuracy_dawid_skene"].items())
            + f"; {len(lab['conflicts'])} duplicate groups with conflicting labels; {len(lab['suspects'])} suspect labels"
            + (f" (precision {tc['precision']:.2f}, recall {tc['recall']:.2f} against the noise planted in this "
               "generated corpus; on real text see bench/labels_bench.py)" if tc else ""))
    c, ex = cur["curriculum"], cur.get("export", {})
    say("5. curriculum", f": {c['documents']:,} kept documents ordered easy-to-hard with {c['pacing']} pacing; "
        f"exported {ex.get('shards')} shards ({ex.get('bytes', 0) / 1e6:.1f} MB) + manifest to {ex.get('outdir')}"
        + (f"; {ex['decontamination']['documents_removed']} documents that share a 13-gram (or its CJK run) with the eval "
           "set left out (decontaminated before export)" if (ex.get("decontamination") or {}).get("registered_sets")
           else ""))
    cal = res["calibrate"]
    if "mfu" in cal:
        say("6. calibration", f": {cal['device_name']}: {cal['tokens_per_s']:,.0f} tokens/s, MFU {cal['mfu']:.1%} "
            f"({cal['peak_source']})")
    else:
        say("6. calibration", f": {cal.get('skipped')}")
    fit = res["scaling"]["fit"]
    p, ci = fit["params"], fit["ci"]
    say("7. scaling law", f" fitted to {fit['n_points']} published training runs (Epoch AI's extraction of "
        f"Chinchilla's Fig. 4, 5 highest-loss dropped): L = {p['E']:.3f} + {p['A']:.0f}/N^{p['alpha']:.3f}"
        f" + {p['B']:.0f}/D^{p['beta']:.3f}; alpha 95% CI [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}], beta "
        f"[{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}]"
        + (f"; poorly determined: {', '.join(fit['poorly_determined'])}" if fit["poorly_determined"] else ""))
    limited = res["scaling"]["plans"][0]  # the pipeline planned with the curated corpus's own tokens
    from flows.plan_task import answer
    from scaling.planning import PlanRequest
    from warehouse.db import session

    with session(db, read_only=True) as con:  # the same budget with unlimited data, to compare
        pl = answer(PlanRequest(fit="epoch-chinchilla", gpus=64, gpu="h100-sxm", days=14), con)
    pci = pl.get("ci", {})
    d = limited.get("data") or {}
    say("8. plan", f" for 64 x H100-SXM for 14 days at MFU {pl['mfu']:.2f} ({pl['mfu_source']}): "
        f"{pl['flops']:.3g} FLOPs -> N* = {pl['params'] / 1e9:.2f}B params"
        + (f" [{pci['params'][0] / 1e9:.2f}B, {pci['params'][1] / 1e9:.2f}B]" if pci else "")
        + f", D* = {pl['tokens'] / 1e9:.0f}B tokens ({pl['tokens_per_param']:.1f} per param), predicted loss "
        f"{pl['loss']:.3f}; {pl['gpu_days']:.0f} GPU-days; training state "
        f"{pl['memory']['training_state_bytes'] / 2**30:.0f} GiB (>= {pl['memory']['min_gpus_for_state_zero3']} GPUs "
        "just to hold it with ZeRO-3)"
        + (f". But the curated corpus holds {d['unique_tokens'] / 1e6:.2f}M unique {d['tokenizer']} tokens (after "
           f"dedup and decontamination), {pl['tokens'] / d['unique_tokens']:,.0f} epochs of that plan: "
           f"{d['verdict']}" if d.get("unique_tokens") else
           (f" ({d['skipped']})" if d.get("skipped") else "")))
    ev = res["evaluate"][-1]
    a = ev["slices"]["all"]
    from evalsets.gates import MIN_N

    worst = min(((s, v) for s, v in (ev["regression"] or {}).items() if v["n"] >= MIN_N), key=lambda kv: kv[1]["diff"],
                default=None)
    say("9. hard-set eval", f" of {ev['model']} vs the previous run on {a['n']} items: accuracy {a['metric']:.3f} "
        f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}], clean subset {ev['slices']['clean']['metric']:.3f}; "
        f"{ev['contamination']['contaminated']} items found in the training corpus (copies verbatim, partial "
        "and reformatted; near-miss edits left clean); "
        f"{len(ev['flips']['pass_to_fail'])} pass->fail flips"
        + (f"; biggest regression among slices of >= {MIN_N} items {worst[0]} {worst[1]['diff']:+.3f} (n={worst[1]['n']}, "
           f"p={worst[1]['p_value']:.3g})" if worst else "")
        + "; gates: " + ("; ".join(f"FAILED {g['gate']} on {g['slice']} -> {g['recommendation']}"
                                     for g in ev["gates_failed"]) or "passed"))
    say(f"report: {ev['files']['html']}")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"database: {db}  ({summary['seconds']} s; rerun the same pipeline with `taomi run all --config {cfg_path}`)")
    return summary

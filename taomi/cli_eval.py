"""`taomi eval` and `taomi hardset build`: hard-set evaluation reports and release gates."""

from __future__ import annotations

from pathlib import Path

import typer

from taomi.common import console, err, fail, state
from taomi.output import StageBars, emit, make_progress, print_json, styled

app = typer.Typer()  # joined to the main app by taomi.cli

hardset = typer.Typer(no_args_is_help=True, help="Build hard sets from failures, label problems and edge cases.")
app.add_typer(hardset, name="hardset")
evalset = typer.Typer(no_args_is_help=True, help="Register eval sets: training corpora are decontaminated against them.")
app.add_typer(evalset, name="evalset")


@evalset.command("add")
def evalset_add(name: str, path: Path = typer.Argument(..., help="Eval set (JSONL/CSV) or lm-evaluation-harness samples"),
                fmt: str = typer.Option("auto", "--format", help="auto | lm-eval | taomi"),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Register an eval set (or a new version of it) and build its 13-gram index once."""
    from evalsets.sets import EvalInputError
    from flows.decontam_task import RUN_BY_SCRIPT, register

    try:
        r = register(state.db, name, path, fmt)
    except (EvalInputError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print_json(r)
        return
    console.print(f"eval set '{r['name']}' {r['status']} ({r['format']}, {r['items']} items, hash {r['set_hash']}): "
                  f"{r['checkable']} checkable, {r['too_short']} too short (under 13 units; "
                  f"{min(RUN_BY_SCRIPT.values())}-{max(RUN_BY_SCRIPT.values())} in scripts without spaces), "
                  f"{r['low_information']} with no "
                  "informative 13-gram")


@evalset.command("list")
def evalset_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The registered eval sets."""
    from flows.decontam_task import registered

    emit(registered(state.db), as_json, title="registered eval sets", console=console)


@evalset.command("remove")
def evalset_remove(name: str) -> None:
    """Unregister an eval set (its items and index stay for earlier reports)."""
    from flows.decontam_task import unregister

    if not unregister(state.db, name):
        fail(f"no registered eval set named '{name}' (see `taomi evalset list`)")
    console.print(f"eval set '{name}' unregistered")


@app.command("decontaminate")
def decontaminate_cmd(corpus: str, sets: list[str] | None = typer.Option(None, "--set", help="Only these registered "
                                                                        "sets (repeatable; default: all)."),
                      quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """Mark every training document that shares an informative 13-gram with a registered eval item
    (21-75 characters in a row in scripts without spaces; export then leaves them out)."""
    from evalsets.sets import EvalInputError
    from flows.decontam_task import PASSAGE, decontaminate

    try:
        with make_progress(console, quiet=quiet or as_json, units="count") as progress:
            r = decontaminate(state.db, corpus, sets or None, StageBars(progress))
    except (EvalInputError, LookupError) as exc:
        fail(str(exc))
    if as_json:
        print_json(r)
        return
    console.print(f"{corpus}: {r['documents_flagged']} documents share {PASSAGE} with {', '.join(r['sets'])} "
                  f"({'scanned now' if r['scanned_now'] else 'stored scan, corpus unchanged'}); export leaves them out")
    emit([{"eval set": k, **v} for k, v in r["per_set"].items()], False, title="per eval set", console=console)
    for e in r["examples"][:10]:
        console.print(f"  {e['doc']} ~ {e['eval_set']}/{e['item']} ({e['ngrams']} matched 13-grams): "
                      f"{e['spans'][0]['text'][:120] if e['spans'] else ''}")


@app.command("eval")
def eval_cmd(evalset: Path = typer.Argument(..., help="Eval set (JSONL/CSV: id, input, target[, slices]) or an "
                                           "lm-evaluation-harness samples_<task>_<date>.jsonl"),
             predictions: Path | None = typer.Argument(None, help="Predictions (JSONL/CSV: id, prediction[, score]); "
                                                      "none for a harness samples file"),
             model: str | None = typer.Option(None, "--model", help="Model name (default: predictions file stem, or "
                                              "the harness output folder)."),
             metric: str | None = typer.Option(None, "--metric", help="exact_match | accuracy | token_f1 (computed); "
                                               "for a harness file, one of its per-item metrics (acc, pass@1, ...)"),
             fmt: str = typer.Option("auto", "--format", help="auto | lm-eval | taomi"),
             harness_filter: str | None = typer.Option(None, "--filter", help="Harness filter (default: the first)."),
             pass_threshold: float = typer.Option(0.5, "--pass-threshold", help="An item passes at score >= this."),
             train_corpus: str | None = typer.Option(None, "--train-corpus", help="Check contamination, trace failures."),
             gates: Path | None = typer.Option(None, "--gates", help="Release gates (TOML)."),
             out: Path = typer.Option(Path("eval-report"), "--out", help="Folder for report.html/.md/.json."),
             name: str | None = typer.Option(None, "--name", help="Eval set name (default: file stem or harness task)."),
             force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
             quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Evaluate predictions per slice with CIs, vs the previous run, with contamination and gates.

    Exits 3 when a gate fails, naming it and the recommended action."""
    from evalsets.sets import EvalInputError
    from flows.eval_task import evaluate

    try:
        with make_progress(console, quiet=quiet or as_json, units="count") as progress:
            r = evaluate(state.db, evalset, predictions, model, metric, train_corpus, gates, out, name, force=force,
                         progress=StageBars(progress), fmt=fmt, harness_filter=harness_filter,
                         pass_threshold=pass_threshold)
    except (EvalInputError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print_json(r)
    else:
        a = r["slices"]["all"]
        h = r.get("harness")
        console.print(f"read as {r['format']}" + (f" (task {h['task']}, filter {h['filter']}, per-item metrics: "
                                                  f"{', '.join(h['metrics'])})" if h else "")
                      + f"; scores: {r['scores_from']}")
        console.print(styled((r["eval_set"], "bold"), f" ({r['eval_set_hash']}), model ", (r["model"], "bold"),
                             f": {r['metric']} {a['metric']:.4f} [{a['ci'][0]:.4f}, {a['ci'][1]:.4f}] over {a['n']} items"
                             + (f"; clean subset {r['slices']['clean']['metric']:.4f}" if "clean" in r["slices"] else "")))
        rows = [{"slice": s, "n": v["n"], r["metric"]: round(v["metric"], 4), "95% CI": f"[{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]",
                 **({"vs previous": f"{r['regression'][s]['diff']:+.3f}"} if r["regression"] and s in r["regression"] else {})}
                for s, v in r["slices"].items()]
        emit(rows, False, title="per slice", console=console)
        if r["previous_run"]:
            console.print(f"vs previous run {r['previous_run']}: {len(r['flips']['pass_to_fail'])} pass->fail, "
                          f"{len(r['flips']['fail_to_pass'])} fail->pass")
        if r["contamination"]:
            c = r["contamination"]
            console.print(f"contamination: {c['contaminated']} of {c['checked']} checkable items overlap the training "
                          f"corpus ({c['method']})" + (f"; {c['unchecked']} of {c['total']} items could not be checked "
                                                       f"({c['too_short']} under 13 units or their script's run, {c['low_information']} "
                                                       "with no informative 13-gram) and are not in the clean slice"
                                                       if c["unchecked"] else "")
                          + ("; scan reused" if c["reused_scan"] else ""))
        issues = r["prediction_issues"]
        if issues["unknown_ids"] or issues["missing_ids"]:
            console.print(styled(("predictions:", "yellow"), f" {len(issues['unknown_ids'])} unknown ids "
                                 f"(e.g. {issues['unknown_ids'][:3]}), {len(issues['missing_ids'])} items without a "
                                 "prediction (scored as failures)"))
        for f in r.get("failures", [])[:5]:
            console.print(f"  failed {f['id']}: {f['coverage']} similar training docs ({f['support']}) -> {f['suggestion']}")
        for g in r["gates"]:
            if g.get("status") in ("not_enough_items", "not_significant"):
                console.print(styled(("gate undecided:", "yellow"), f" {g['gate']} on slice '{g['slice']}': "
                                     f"{g['recommendation']}"))
        console.print(f"report: {r['files']['html']} ({r['files']['markdown']}, {r['files']['json']})")
    failed = r["gates_failed"]
    if failed:
        for g in failed:
            sig = f", n={g['n']}" + (f", p={g['p_value']:.3g}" if g.get("p_value") is not None else "")
            err.print(f"GATE FAILED: {g['gate']} on slice '{g['slice']}' ({g['check']} value {g['value']:.4f}, "
                      f"threshold {g['threshold']}{sig}): {g['recommendation']}", highlight=False, soft_wrap=True)
        raise typer.Exit(3)


@hardset.command("build")
def hardset_build(name: str, corpus: str | None = typer.Option(None, "--corpus", help="Corpus for label-problem items."),
                  from_: list[str] = typer.Option(["failures", "suspects", "disagreement", "conflicts"], "--from",
                                                  help="failures | suspects | disagreement | conflicts | FILE.jsonl"),
                  out: Path | None = typer.Option(None, "--out", help="Write the hard set as JSONL here."),
                  limit: int = typer.Option(500, "--limit", min=1),
                  force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Assemble a hard set from last runs' failures, label problems and user edge cases."""
    from evalsets.sets import EvalInputError
    from flows.hardset_task import build_hardset

    try:
        r = build_hardset(state.db, name, from_, corpus, out or Path(f"{name}.jsonl"), limit, force)
    except (EvalInputError, LookupError, ValueError) as exc:
        fail(str(exc))
    emit(r, as_json, title=f"hard set '{name}'", console=console)


@hardset.command("export")
def hardset_export(name: str, out: Path = typer.Option(..., "--out", help="Folder for NAME.jsonl and NAME.yaml."),
                   fmt: str = typer.Option("lm-eval", "--format", help="lm-eval (a custom task for the harness)"),
                   include: Path | None = typer.Option(None, "--include", help="The source task's YAML: the hard "
                                                       "set inherits its prompt, filters and metrics"),
                   force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Write a hard set back as an lm-evaluation-harness task (JSONL + task YAML)."""
    from evalsets.sets import EvalInputError
    from flows.hardset_task import export_hardset

    try:
        r = export_hardset(state.db, name, out, fmt, str(include) if include else None, force)
    except (EvalInputError, LookupError, ValueError) as exc:
        fail(str(exc))
    emit(r, as_json, title=f"hard set '{name}' for lm-evaluation-harness", console=console)

"""`taomi labels`, `taomi curriculum`, `taomi export`: label checks, ordering, training shards."""

from __future__ import annotations

from pathlib import Path

import typer

from taomi.common import console, fail, name_numbers, state
from taomi.output import StageBars, emit, make_progress, print_json, styled

app = typer.Typer()  # joined to the main app by taomi.cli


@app.command()
def labels(corpus: str, truth: Path | None = typer.Option(None, "--truth", help="Planted truth (demo data) to score suspects."),
           bootstrap: int = typer.Option(500, "--bootstrap", min=0, help="Resamples for the alpha CI."),
           top: int = typer.Option(20, "--top", min=1), as_json: bool = typer.Option(False, "--json"),
           quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
           workers: int = typer.Option(0, "--workers", min=0, help="Fold processes (0: per core, within the memory limit)."),
           memory_limit: str | None = typer.Option(None, "--memory-limit",
                                                   help="Budget, e.g. 4GB (default: a quarter of RAM, at most 1 GB); "
                                                        "large corpora run their folds side by side only within it.")
           ) -> None:
    """Label consistency: conflicts among duplicates, agreement, consensus, suspect labels."""
    from dedup.config import parse_size_mb, total_memory_mb
    from flows.labels_task import check_labels

    try:
        parse_size_mb(memory_limit, total_memory_mb())
    except ValueError as exc:
        fail(f"--memory-limit: {exc}")

    with make_progress(console, quiet=quiet or as_json, units="count") as progress:
        try:
            r = check_labels(state.db, corpus, n_boot=bootstrap, truth=truth, top=top, workers=workers,
                             memory_limit=memory_limit, progress=StageBars(progress, "folds"))
        except LookupError as exc:
            fail(str(exc))
    if as_json:
        print_json(r)
        return
    for n in r["notes"]:
        console.print(styled(("note:", "yellow"), f" {n}"))
    a = r["agreement"]
    if a:
        ci = a["krippendorff_alpha_ci"]
        console.print(styled(("agreement", "bold"), f" over {a['items']:,} items, {len(a['annotators'])} annotators: "
                             f"Krippendorff's alpha {a['krippendorff_alpha']:.3f}"
                             + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                             + (f", Fleiss' kappa {a['fleiss_kappa']:.3f}" if a["fleiss_kappa"] is not None else "")))
        console.print(f"  how to read: {a['how_to_read']}")
        emit([{"a": p["a"], "b": p["b"], "n": p["n"], "kappa": round(p["kappa"], 3),
               "95% CI": f"[{p['ci'][0]:.3f}, {p['ci'][1]:.3f}]"} for p in a["cohen_kappa"]], False,
             title="Cohen's kappa per annotator pair", console=console)
        emit([{"annotator": x["annotator"], "agreement with consensus": round(x["agreement"], 3),
               "kappa": round(x["kappa"], 3),
               "estimated accuracy (Dawid-Skene)": a["annotator_accuracy_dawid_skene"].get(x["annotator"])}
              for x in a["annotator_vs_consensus"]], False, title="annotators vs consensus", console=console)
        console.print("per-class agreement: " + ", ".join(f"{k} {v:.2f}" for k, v in a["per_class"].items() if v is not None))
    c = r["consensus"]
    console.print(styled(("consensus", "bold"), f": {c['items']:,} items; majority vote and Dawid-Skene differ on "
                         f"{c['majority_vs_dawid_skene_differ']}; {c['ties']} majority ties"))
    console.print(styled(("conflicts", "bold"), f": {len(r['conflicts'])} duplicate groups carry different labels"))
    for x in r["conflicts"][:top]:
        console.print(f"  {x['kind']}: " + ", ".join(f"{i}={lab}" for i, lab in zip(x["ids"], x["labels"])))
    console.print(styled(("suspect labels", "bold"), f": {len(r['suspects'])} (lowest self-confidence first)"))
    emit(r["suspects"][:top], False, title="suspects", console=console)
    if "truth_check" in r:
        t = r["truth_check"]
        console.print(f"against planted noise: precision {t['precision']:.3f}, recall {t['recall']:.3f} "
                      f"({t['true_positives']} of {t['planted']} planted, {t['flagged']} flagged)")


@app.command()
def curriculum(corpus: str, pacing: str = typer.Option("sqrt", "--pacing", help="linear | sqrt | step | exponential"),
               order: str = typer.Option("curriculum", "--order", help="curriculum | random (the baseline)"),
               steps: int = typer.Option(100, "--steps", min=1), c0: float = typer.Option(0.1, "--c0"),
               seed: int = typer.Option(0, "--seed"),
               weight: list[str] = typer.Option([], "--weight", help="Scorer weight, e.g. --weight length=2"),
               plot: Path | None = typer.Option(None, "--plot", help="PNG of difficulty and pacing."),
               force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
               quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Order kept documents easy-and-common first (difficulty scorers + pacing)."""
    from curation.curriculum import DEFAULT_WEIGHTS, CurriculumConfig
    from flows.curriculum_task import build_curriculum

    weights = {**DEFAULT_WEIGHTS, **name_numbers(weight, "--weight")}
    try:
        cfg = CurriculumConfig(pacing=pacing, order=order, steps=steps, c0=c0, seed=seed,
                               weights=tuple(weights.items()))
        with make_progress(console, quiet=quiet or as_json, units="count") as progress:
            r = build_curriculum(state.db, corpus, cfg, plot, force, StageBars(progress))
    except (ValueError, LookupError) as exc:
        fail(str(exc))
    emit(r, as_json, title=f"curriculum of '{corpus}'", console=console)


@app.command()
def export(corpus: str, outdir: Path, fmt: str = typer.Option("parquet", "--format", help="parquet | jsonl"),
           shard_size: int = typer.Option(100_000, "--shard-size", min=1, help="Most documents per shard."),
           shard_bytes: str | None = typer.Option(None, "--shard-bytes",
                                                  help="Most text per shard, e.g. 256MB (whichever limit comes first)."),
           shard_tokens: int | None = typer.Option(None, "--shard-tokens", min=1,
                                                   help="Most tokens per shard (the stored counts; instead of "
                                                        "--shard-bytes)."),
           order: str = typer.Option("curriculum", "--order",
                                     help="curriculum | random (kept documents shuffled with a seed, nothing "
                                          "scored; a stored `curriculum --order random` is used if there is one)"),
           force: bool = typer.Option(False, "--force", help="Write into a non-empty folder Taomi did not create "
                                      "(its files are kept: Taomi deletes only what it wrote)."),
           keep_contaminated: bool = typer.Option(False, "--keep-contaminated",
                                                  help="Keep documents that share a 13-gram (longer runs in CJK and Thai) with a registered eval "
                                                       "set (recorded in the manifest)."),
           quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Write training shards in order, with a manifest (rows, bytes, sha256, score range, pacing step).

    Documents flagged by `taomi decontaminate` against the registered eval sets are left out."""
    from curation.curriculum import CurriculumConfig
    from flows.curriculum_task import export_shards

    try:
        with make_progress(console, quiet=quiet or as_json, units="count") as progress:
            r = export_shards(state.db, corpus, outdir, fmt, shard_size, order, CurriculumConfig(order=order)
                              if order in ("curriculum", "random") else None, force=force,
                              progress=StageBars(progress), shard_bytes=shard_bytes, shard_tokens=shard_tokens,
                              keep_contaminated=keep_contaminated)
    except (ValueError, LookupError) as exc:
        fail(str(exc))
    emit(r, as_json, title="export", console=console)

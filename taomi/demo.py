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
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"database: {db}  ({summary['seconds']} s)")
    return summary

"""The `taomi` command line (Typer). Thin: parse, call the library, print (rich or --json)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.table import Table

from taomi.common import (
    EXIT_PARTIAL,
    EXIT_USAGE,
    console,
    err,
    fail,
    known_error,
    name_numbers,
    one_line,
    prefect_console,
    reading,
    state,
)
from taomi.output import StageBars, emit, make_progress, print_json, styled

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Taomi: corpus cleaning, scaling-law planning and hard-set evaluation.")
@app.callback()
def main(db: str | None = typer.Option(None, "--db", envvar="TAOMI_DB",
                                          help="DuckDB file (default ./taomi.duckdb, or $TAOMI_DB).")) -> None:
    state.db = db


@app.command("demo-data")
def demo_data(outdir: Path = typer.Argument(..., help="Folder to write corpus.jsonl, labels.jsonl, truth.json"),
              docs: int = typer.Option(5000, "--docs", min=1), seed: int = typer.Option(0, "--seed"),
              words: int = typer.Option(250, "--words", min=5, help="Mean words per document."),
              force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Generate the deterministic sample corpus (with planted duplicates, label noise, broken lines)."""
    from taomi.demo_data import DemoConfig, generate

    with console.status(f"generating {docs:,} documents"):
        summary = generate(outdir, DemoConfig(docs=docs, seed=seed, words_mean=words), force=force)
    emit(summary, as_json, title="sample corpus")


SHOWN_FILES = 20  # files listed one by one in ingest's table; the rest are one summed row (--json has all)
BAR_PER_FILE = 8  # up to this many files get a bar each; more share one bar (1,308 bars took 42 s to draw)


def _shown(results: list) -> list:
    return results[:SHOWN_FILES]


def _file_bars(progress, files: list[Path]):
    """Progress callbacks for ingest: a bar per file for a few files, one bar over all of them
    for many (the bar's description names the file being read)."""
    if len(files) <= BAR_PER_FILE:
        def factory(p: Path):
            task = progress.add_task(p.name, total=p.stat().st_size)
            return lambda done: progress.update(task, completed=done)
        return factory
    sizes = {str(f): f.stat().st_size for f in files}
    task = progress.add_task(f"{len(files):,} files", total=sum(sizes.values()))
    finished = [0]

    def shared(p: Path):
        base = finished[0]
        finished[0] += sizes.get(str(p), 0)
        label = f"{p.name} ({len(files):,} files)"
        return lambda done: progress.update(task, completed=base + done, description=label)
    return shared


@app.command()
def ingest(paths: list[str] = typer.Argument(..., help="Files, folders (read recursively) or globs ('data/*.parquet', "
                                                  "'shards/**/*.jsonl.gz'): JSON lines or one JSON array (.jsonl, "
                                                  ".json; .gz, .zst), Parquet, Arrow IPC (.arrow, as datasets "
                                                  "writes), CSV (.gz, .zst)"),
           corpus: str = typer.Option(..., "--corpus", "-c", help="Corpus name to ingest into."),
           text_field: str = typer.Option("text", "--text-field"),
           id_field: str = typer.Option("id", "--id-field"),
           label_field: str = typer.Option("label", "--label-field", help="'' for none."),
           annotator_field: str = typer.Option("annotator", "--annotator-field", help="'' for none."),
           memory_limit: str | None = typer.Option(None, "--memory-limit",
                                                   help="Memory budget, e.g. 512MB, 2GB, 25% (default: a quarter "
                                                        "of RAM, at most 1GB); half of it caps DuckDB."),
           tokenizer: str = typer.Option("cl100k_base", "--tokenizer",
                                         help="Count each document's tokens: cl100k_base | o200k_base (shipped, "
                                              "offline) | a tokenizer.json path | none."),
           max_line_bytes: str | None = typer.Option(None, "--max-line-bytes",
                                                     help="A JSON line or CSV record longer than this is quarantined "
                                                          "with its length, unread; the file's other rows go in "
                                                          "(default: a quarter of DuckDB's memory, at most 256MB)."),
           quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Ingest files into a corpus; bad rows go to quarantine, re-ingesting a file is a no-op."""
    from warehouse.db import bulk_session
    from warehouse.ingest import IngestConfig, InputError, PartialIngest, ingest_paths
    from warehouse.readers import check_input, expand_inputs, held_out_note, held_out_splits

    try:
        from curation.shards import parse_bytes

        cfg = IngestConfig(corpus, text_field, id_field, label_field or None, annotator_field or None,
                           parse_bytes(max_line_bytes, "--max-line-bytes") if max_line_bytes else None)
    except ValueError as exc:
        fail(str(exc))
    duckdb_mb = _resources(1, memory_limit).duckdb_mb
    try:  # every input is found and checked before the database is opened (or created)
        files = expand_inputs(paths)
        for f in files:
            check_input(f, cfg.fields())
        held_out = held_out_splits(paths, files)
        for split, names in held_out.items():  # said before the work, on stderr (stdout stays the report)
            print(f"note: {held_out_note(corpus, split, names)}; to keep them out, name the training files "
                  "(e.g. 'DIR/**/train*')", file=sys.stderr)
        if tokenizer != "none":
            from curation.tokens import Tokenizer

            Tokenizer(tokenizer)
        with bulk_session(state.db) as con, make_progress(console, quiet=quiet or as_json) as progress:
            factory = _file_bars(progress, files)

            results = ingest_paths(con, files, cfg, factory, duckdb_mb)
            partial = None
    except (InputError, ValueError) as exc:
        fail(str(exc))
    except PartialIngest as exc:
        results, partial = exc.results, exc
    tokens = None
    if tokenizer != "none" and results:  # also counts what an interrupted earlier run left uncounted
        from flows.tokens_task import count_tokens

        try:
            with make_progress(console, quiet=quiet or as_json, units="count") as progress:
                tokens = count_tokens(state.db, corpus, tokenizer, StageBars(progress))
        except Exception as exc:  # the documents are stored (committed): say so, not only what failed
            known = known_error(exc)
            if known is None:
                raise
            fail(f"{sum(r.rows_new for r in results):,} new documents are stored in '{corpus}'; counting their tokens "
                 f"failed: {known[0]}. `taomi tokens {corpus}` counts them", known[1])
    kept = sum(r.rows_new for r in results)
    quarantined = sum(r.rows_quarantined for r in results)
    report = {"corpus": corpus, "rows_new": kept, "rows_quarantined": quarantined,
              "files": [r.as_dict() for r in results], "tokens": tokens,
              **({"held_out_splits": held_out} if held_out else {})}
    if as_json:
        print_json(report)
    else:
        table = Table(title=f"ingest into '{corpus}'")
        for col in ("file", "status", "read", "new", "already stored", "quarantined", "annotations"):
            table.add_column(col, justify="left" if col in ("file", "status") else "right")
        for r in _shown(results):
            table.add_row(Path(r.path).name, r.status, f"{r.rows_read:,}", f"{r.rows_new:,}",
                          f"{r.rows_existing:,}", f"{r.rows_quarantined:,}", f"{r.annotations_new:,}")
        if len(results) > SHOWN_FILES:
            rest = [r for r in results if r not in _shown(results)]
            table.add_row(f"... {len(rest):,} more files", "", f"{sum(r.rows_read for r in rest):,}",
                          f"{sum(r.rows_new for r in rest):,}", f"{sum(r.rows_existing for r in rest):,}",
                          f"{sum(r.rows_quarantined for r in rest):,}", f"{sum(r.annotations_new for r in rest):,}")
        console.print(table)
        for r in _shown([r for r in results if r.reasons]):
            for reason, n in r.reasons.items():
                console.print(f"  quarantined {n:,} row(s) of {Path(r.path).name}: {reason}")
        if (more := sum(bool(r.reasons) for r in results) - SHOWN_FILES) > 0:
            console.print(f"  ... and in {more:,} more files (`taomi quarantine {corpus}` lists every row)")
        console.print(f"kept {kept:,} new rows, quarantined {quarantined:,} "
                      f"(see `taomi quarantine {corpus}`)")
        if tokens:
            console.print(f"tokens ({tokens['tokenizer']}): {tokens['tokens']:,} in the corpus, "
                          f"{tokens['counted_now']:,} documents counted now")
    if partial is not None:
        fail(f"partial ingest: {partial}", EXIT_PARTIAL)
    if all(r.status == "ingested" and r.rows_read > 0 and r.rows_quarantined == r.rows_read
           for r in results) and results:
        err.print("error: nothing could be read: every row was quarantined")
        raise typer.Exit(1)


@app.command()
def tokens(corpus: str,
           tokenizer: str = typer.Option("cl100k_base", "--tokenizer",
                                         help="cl100k_base | o200k_base (shipped, offline) | a tokenizer.json path"),
           quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Count each document's tokens with a real tokenizer (only documents not yet counted with it)."""
    from flows.tokens_task import count_tokens

    try:
        with make_progress(console, quiet=quiet or as_json, units="count") as progress:
            out = count_tokens(state.db, corpus, tokenizer, StageBars(progress))
    except ValueError as exc:
        fail(str(exc))
    emit(out, as_json, title=f"tokens of '{corpus}'", console=console)


@app.command()
def corpora(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the corpora in the warehouse."""
    from warehouse.corpora import list_corpora

    with reading() as con:
        rows = list_corpora(con)
    emit(rows, as_json, title="corpora")


@app.command()
def migrate(as_json: bool = typer.Option(False, "--json")) -> None:
    """Bring a warehouse written by an older Taomi up to this version's schema (read-only commands
    never change the file; any writing command also does this)."""
    from warehouse.db import db_path, upgrade

    try:
        before, now = upgrade(state.db)
    except FileNotFoundError as exc:
        fail(str(exc))
    emit({"database": str(db_path(state.db)), "schema_before": before, "schema_now": now, "changed": before != now},
         as_json, title="migrate", console=console)


@app.command()
def stats(corpus: str,
          by: str | None = typer.Option(None, "--by", help="A metadata field (source, url, dump, a Parquet column, a nested one as meta.KEY...), "
                                                          "or language / script (`taomi languages`): documents, "
                                                          "characters, tokens, kept and removed per value."),
          limit: int = typer.Option(50, "--limit", min=1, help="With --by: the most frequent values shown."),
          plot: Path | None = typer.Option(None, "--plot", help="PNG of document lengths in tokens, one curve per "
                                                              "source (or per --by value)."),
          force: bool = typer.Option(False, "--force", help="With --plot: overwrite a file Taomi did not write."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Statistics of one corpus: documents, lengths, exact duplicates, labels, quarantine, metadata fields."""
    from warehouse.corpora import corpus_exists, corpus_stats, meta_fields, meta_path, stats_by
    from warehouse.curation_store import latest_dedup_config
    from warehouse.token_store import current_tokenizer, token_totals

    with reading() as con:
        if not corpus_exists(con, corpus):
            fail(f"no corpus named '{corpus}' (see `taomi corpora`)")
        fields = meta_fields(con, corpus)
        tokenizer, dedup_cfg = current_tokenizer(con, corpus), latest_dedup_config(con, corpus)
        field = meta_path(con, corpus, by, fields) if by is not None else None  # top-level, or nested by its dots
        if by is not None:
            if field is None and by not in ("language", "script"):
                fail(f"no metadata field '{by}' in corpus '{corpus}' (fields: {', '.join(fields) or 'none'}; "
                     "a nested one as FIELD.KEY; or language, script after `taomi languages`)")
            if field is None:
                from warehouse.language_store import shares

                if not shares(con, corpus, by):
                    fail(f"corpus '{corpus}' has no detected {by} yet: run `taomi languages {corpus}` first")
            from flows.decontam_task import N_GRAM, RULE

            rows = stats_by(con, corpus, by, dedup_cfg, limit, tokenizer, rule=(N_GRAM, RULE))
        else:
            from dedup.shingle import WORD_RE2

            out = {**corpus_stats(con, corpus, WORD_RE2), "metadata_fields": fields,
                   "tokens": token_totals(con, corpus, tokenizer, dedup_cfg) if tokenizer else None}
            if tokenizer:  # what export writes and plans count: kept by dedup, not flagged
                from flows.decontam_task import N_GRAM, RULE
                from warehouse.plan_store import curated_tokens

                cur = curated_tokens(con, corpus, N_GRAM, RULE)
                out["tokens"].update(tokens_for_training=cur["unique_tokens"],
                                     documents_decontaminated_out=cur["documents_decontaminated_out"],
                                     decontaminated=cur["decontaminated"])
        if plot is not None:
            from flows.stats_plot import length_plot

            drawn = length_plot(con, corpus, plot, by if field is not None else None, force)
            if by is None:
                out["plot"] = drawn
            else:
                print(f"plot: {drawn['plot']} (lengths in {drawn['unit']}"
                      + (f", by {drawn['field']}: {len(drawn['values'])} curves)" if drawn["field"] else ")"),
                      file=sys.stderr)
    if by is not None:
        emit(rows, as_json, title=f"corpus '{corpus}' by {by}", console=console)
        return
    emit(out, as_json, title=f"corpus '{corpus}'")


@app.command()
def languages(corpus: str, quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Detect each document's dominant script and language (once per document; `stats --by language`)."""
    from flows.languages_task import detect

    with reading() as con:
        from warehouse.corpora import corpus_exists

        if not corpus_exists(con, corpus):
            fail(f"no corpus named '{corpus}' (see `taomi corpora`)")
    with make_progress(console, quiet=quiet or as_json, units="count") as progress:
        r = detect(state.db, corpus, StageBars(progress))
    if as_json:
        print_json(r)
        return
    console.print(f"{corpus}: {r['detected_now']:,} documents detected now ({r['detector']}); scripts: "
                  + ", ".join(f"{k} {v:,}" for k, v in r["scripts"].items()) + "; languages: "
                  + ", ".join(f"{k} {v:,}" for k, v in list(r["languages"].items())[:10]))
    if r["warning"]:
        err.print(styled(("warning:", "yellow"), " ", r["warning"]))


@app.command()
def quarantine(corpus: str, limit: int = typer.Option(50, "--limit", min=1),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Show quarantined rows: file, line, field and reason."""
    from warehouse.corpora import quarantine_rows

    with reading() as con:
        rows = quarantine_rows(con, corpus, limit)
    emit(rows, as_json, title=f"quarantine of '{corpus}'")


@app.command()
def runs(limit: int = typer.Option(20, "--limit", min=1), as_json: bool = typer.Option(False, "--json")) -> None:
    """The run log: every stage execution with its counts and status."""
    from warehouse.runlog import list_runs

    with reading() as con:
        rows = list_runs(con, limit)
    if as_json:
        emit(rows, True, title="runs")
        return
    for r in rows:  # one line per run: the table was unreadable at 80 columns (--json has every field)
        took = f"{(r['finished_at'] - r['started_at']).total_seconds():.1f}s" if r["finished_at"] else "-"
        counts = f"{r['counts_in'] if r['counts_in'] is not None else '-'} -> " \
                 f"{r['counts_out'] if r['counts_out'] is not None else '-'}"
        why = f"reuses {r['reuses'][:8]}" if r["reuses"] else (r["message"] or "")
        console.print(f"{r['run_id'][:8]}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['stage']:<10} {r['corpus'] or '':<10} "
                      f"{r['status']:<9} {counts:<16} {took:>7}  {why}", highlight=False, soft_wrap=True)


def _resources(workers: int, memory_limit: str | None):
    """--workers / --memory-limit as a Resources, or one error line naming the option."""
    from dedup.config import Resources

    try:
        return Resources.default(workers, memory_limit)
    except ValueError as exc:
        fail(f"--memory-limit: {exc}")


def _dedup_config(threshold: float, num_perm: int, ngram: int, char_ngrams: bool, policy: str,
                  script_units: bool = True, to_simplified: bool = False):
    from dedup.config import DedupConfig

    try:
        return DedupConfig(threshold=threshold, num_perm=num_perm, ngram=ngram, char_ngrams=char_ngrams,
                           policy=policy, script_units=script_units, to_simplified=to_simplified)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def dedup(corpus: str,
          threshold: float = typer.Option(0.8, "--threshold", help="Jaccard threshold in (0, 1]."),
          num_perm: int = typer.Option(128, "--num-perm"),
          ngram: int = typer.Option(5, "--ngram", help="Shingle size (words, or characters with --char-ngrams)."),
          char_ngrams: bool = typer.Option(False, "--char-ngrams", help="Character n-grams of the whole text "
                                           "(short texts)."),
          script_units: bool = typer.Option(True, "--script-units/--no-script-units",
                                            help="Each character of Chinese, Japanese, Korean, Thai, Lao, Khmer and "
                                                 "Myanmar text is a unit (the default); off: whitespace words only."),
          to_simplified: bool = typer.Option(False, "--to-simplified", help="Traditional Chinese as simplified "
                                             "(OpenCC t2s) before shingling: zh-cn and zh-tw copies match."),
          policy: str = typer.Option("first", "--policy", help="Which copy to keep: first | longest | quality."),
          pairs_out: Path | None = typer.Option(None, "--pairs-out", help="Write every duplicate pair (.csv/.parquet)."),
          force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
          workers: int = typer.Option(0, "--workers", min=0, max=256,
                                      help="Signing threads (0: every core; the result is the same for any N)."),
          memory_limit: str | None = typer.Option(None, "--memory-limit",
                                                  help="Memory budget, e.g. 512MB, 2GB, 25% (default: a quarter "
                                                       "of RAM, at most 1GB); band keys past half of it are "
                                                       "grouped on disk by DuckDB."),
          dask_address: str | None = typer.Option(None, "--dask-address",
                                                  help="Run on this Dask scheduler (tcp://host:8786): workers read "
                                                       "and write Parquet in --work-dir, never the DuckDB file."),
          cluster: str | None = typer.Option(None, "--cluster", help="local: start a Dask cluster of --workers "
                                             "processes here (same results as without it)."),
          work_dir: Path | None = typer.Option(None, "--work-dir", help="Folder every Dask worker sees at the same "
                                               "path, for shards and exchange files (default: DB path + .work)."),
          partitions: int = typer.Option(0, "--partitions", min=0, help="Shuffle partitions of band keys (0: one "
                                         "per 4M band-key rows)."),
          shard_docs: int = typer.Option(100_000, "--shard-docs", min=1, help="Documents per Parquet shard (one "
                                         "signing and one verification task each)."),
          components: str = typer.Option("auto", "--components", help="Dask: where clusters are found and "
                                         "decided: auto (here up to 2M verified edges, else on the workers) | "
                                         "local | dask."),
          memory_per_worker: str | None = typer.Option(None, "--memory-per-worker", help="--cluster local: memory "
                                                       "limit of each worker, e.g. 1.5GB (Dask restarts a worker "
                                                       "past it)."),
          quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Remove exact and near duplicates (MinHash + LSH, every candidate verified by exact Jaccard)."""
    from flows.dedup_task import dedup_corpus

    cfg = _dedup_config(threshold, num_perm, ngram, char_ngrams, policy, script_units, to_simplified)
    res = _resources(workers, memory_limit)
    if pairs_out is not None and pairs_out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        fail(f"{pairs_out}: --pairs-out must end in .csv or .parquet")
    if cluster not in (None, "local"):
        fail(f"--cluster {cluster!r}: the only cluster Taomi starts is 'local'; for another, give --dask-address")
    if cluster and dask_address:
        fail("give --cluster local or --dask-address, not both")
    if components not in ("auto", "local", "dask"):
        fail(f"--components {components!r}: choose auto, local or dask")
    with make_progress(console, quiet=quiet or as_json, units="count") as progress:
        try:
            if cluster or dask_address:
                report = _dedup_on_dask(corpus, cfg, StageBars(progress), pairs_out, force, res, dask_address,
                                        workers or 2, work_dir, partitions, shard_docs, memory_per_worker, components)
            else:
                report = dedup_corpus(state.db, corpus, cfg, StageBars(progress), pairs_out, force, res)
        except (LookupError, FileExistsError, FileNotFoundError) as exc:
            fail(str(exc))
    if as_json:
        print_json(report)
        return
    if report.get("unchanged"):
        console.print("same documents and config as the last run: nothing to do (stored results shown)", style="dim")
    console.print(styled((f"{report['docs_in']:,}", "bold"), " documents in -> ", (f"{report['docs_out']:,}", "bold"),
                         f" kept: {report['exact_dropped']:,} exact and {report['near_dropped']:,} near duplicates "
                         f"removed (threshold {report['config']['threshold']}, {report['bands']} bands x "
                         f"{report['rows']} rows)"))
    console.print(f"candidates {report['candidate_pairs']:,} -> verified {report['verified_pairs']:,} pairs; "
                  f"{report['clusters']:,} clusters; signatures computed {report['signatures_computed']:,}, "
                  f"reused {report['signatures_reused']:,}")
    emit(report["largest_clusters"], False, title="largest clusters", console=console)
    console.print("time per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in report["seconds"].items()))
    if report.get("engine") == "dask":
        peaks = ", ".join(f"{v:,.0f}" for v in report["worker_peak_mb"].values())
        console.print(f"dask: {report['workers']} workers, {report['shards']} shards ({report['shards_exported']} "
                      f"written, {report['shards_signed']} signed now), {report['partitions']} partitions, "
                      f"{report['shuffle_bytes'] / 2**20:,.1f} MB shuffled; peak MB per worker: {peaks}"
                      + (f"; {report['worker_restarts']} worker(s) lost and replaced" if report["worker_restarts"] else ""))
    if report.get("pairs_out"):
        console.print(f"wrote {report['pairs_written']:,} pairs to {report['pairs_out']}")


def _dedup_on_dask(corpus, cfg, progress, pairs_out, force, res, address, workers, work_dir, partitions, shard_docs,
                   memory_per_worker, components) -> dict:
    from flows.dask_dedup import dask_client, dedup_distributed

    if address:
        from distributed.comm.addressing import parse_address, parse_host_port

        try:
            parse_host_port(parse_address(address)[1])
        except ValueError as exc:
            fail(f"--dask-address {address!r}: {exc}; give the scheduler's address, e.g. tcp://scheduler:8786")
    try:
        with dask_client(address, workers, memory_per_worker) as client:
            return dedup_distributed(state.db, corpus, cfg, client, work_dir, progress, partitions, shard_docs,
                                     pairs_out=pairs_out, force=force, res=res, components=components)
    except OSError as exc:
        if address and "connect" in str(exc).lower():
            fail(f"--dask-address {address}: no Dask scheduler answers there ({exc})")
        raise


@app.command("dedup-query")
def dedup_query(corpus: str, text: str = typer.Option(..., "--text", help="The text to look up."),
                threshold: float = typer.Option(0.8, "--threshold"),
                num_perm: int = typer.Option(128, "--num-perm"), ngram: int = typer.Option(5, "--ngram"),
                char_ngrams: bool = typer.Option(False, "--char-ngrams"),
                script_units: bool = typer.Option(True, "--script-units/--no-script-units"),
                limit: int = typer.Option(10, "--limit", min=1), as_json: bool = typer.Option(False, "--json")) -> None:
    """Which stored documents is this text a near-duplicate of? (MinHashLSH + exact verification)"""
    from flows.dedup_task import query_near_duplicates

    cfg = _dedup_config(threshold, num_perm, ngram, char_ngrams, "first", script_units)
    try:
        matches = query_near_duplicates(state.db, corpus, text, cfg, limit)
    except (LookupError, ValueError) as exc:
        fail(str(exc))
    emit(matches, as_json, title=f"near duplicates in '{corpus}' (J >= {threshold})")


@app.command()
def fit(path: Path = typer.Argument(..., help="Observations: CSV, Parquet or JSON with N, D (or C), loss[, U]"),
        law: str = typer.Option("chinchilla", "--law", help="chinchilla | kaplan | data-constrained"),
        method: str = typer.Option("huber", "--method", help="huber (Hoffmann) | likelihood (Epoch AI)"),
        bootstrap: int = typer.Option(0, "--bootstrap", min=0, help="Bootstrap resamples for CIs (e.g. 1000)."),
        name: str | None = typer.Option(None, "--name", help="Store the fit under this name (default: file stem)."),
        drop_outliers: int = typer.Option(0, "--drop-outliers", min=0, help="Drop the k highest-loss points."),
        fix: list[str] = typer.Option([], "--fix", help="Pin a parameter, e.g. --fix alpha=0.34 (repeatable)."),
        seed: int = typer.Option(0, "--seed"),
        plots: Path | None = typer.Option(None, "--plots", help="Folder for fit/residual/isoFLOP PNGs."),
        force: bool = typer.Option(False, "--force", help="Overwrite files Taomi did not write (it never deletes them)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        as_json: bool = typer.Option(False, "--json")) -> None:
    """Fit a scaling law L(N, D) to observations; store it for `taomi plan --fit NAME`."""
    from flows.scaling_task import fit_file
    from scaling.observations import ObservationError

    fixed = name_numbers(fix, "--fix")
    with make_progress(console, quiet=quiet or as_json or not bootstrap, units="count") as progress:
        task = progress.add_task("bootstrap refits", total=bootstrap) if bootstrap else None
        try:
            report = fit_file(state.db, path, law=law, method=method, bootstrap=bootstrap, name=name,
                              drop_outliers=drop_outliers, fixed=fixed, seed=seed, plots_dir=plots, force=force,
                              progress=(lambda k, n: progress.update(task, completed=k)) if task is not None else None)
        except (ObservationError, ValueError) as exc:
            fail(str(exc))
    if as_json:
        print_json(report)
        return
    table = Table(title=f"{report['law']} fit '{report['name']}' on {report['n_points']} points"
                  + (" (stored result)" if report["cached"] else ""))
    for col in ("parameter", "estimate", "95% CI", ""):
        table.add_column(col)
    for k, v in report["params"].items():
        ci = report["ci"].get(k)
        flag = "poorly determined" if k in report["poorly_determined"] else ""
        table.add_row(k, f"{v:.6g}", f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "", flag)
    if "allocation" in report:
        for k in ("a", "b"):
            ci = report["ci"].get(k)
            table.add_row(f"{k} (N_opt ~ C^a, D_opt ~ C^b)" if k == "a" else k, f"{report['allocation'][k]:.4f}",
                          f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "", "")
    console.print(table)
    console.print(f"objective {report['objective']:.8e}; {report.get('n_at_best')} of the polished starts reached it; "
                  f"converged: {report.get('converged')}")
    for p in report.get("plots", []):
        console.print(f"plot: {p}")


@app.command()
def approaches(path: Path = typer.Argument(..., help="Runs: N, D (or C), loss[, run]; a run column with several "
                                                     "checkpoints per run enables approach 1"),
               reference_flops: float | None = typer.Option(None, "--reference-flops",
                                                            help="Compare N_opt here (default 100x the largest run)."),
               bootstrap: int = typer.Option(300, "--bootstrap", min=0, help="Resamples for the exponents' CIs."),
               drop_outliers: int = typer.Option(0, "--drop-outliers", min=0,
                                                 help="Drop the k highest-loss points first (Epoch drops 5)."),
               seed: int = typer.Option(0, "--seed"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Hoffmann et al.'s approaches 1-3 side by side on the same runs, with their disagreement and
    a held-out check (fit the smaller budgets, predict the largest). A `budget` column (the
    isoFLOP budget each run was planned for) groups approach 2's runs by it."""
    from scaling.approaches import compare, holdout_check
    from scaling.observations import ObservationError, read_observations

    try:
        obs = read_observations(path).without_highest_loss(drop_outliers)
        out = compare(obs, reference_flops, n_boot=bootstrap, seed=seed)
        out["dropped_outliers"] = drop_outliers
    except (ObservationError, ValueError) as exc:
        fail(str(exc))
    try:
        out["holdout"] = holdout_check(obs)
    except ValueError as exc:
        out["holdout"] = {"skipped": str(exc)}
    if as_json:
        print_json(out)
        return
    table = Table(title=f"N_opt ~ C^a on {len(obs)} points; N_opt at {out['reference_flops']:.3g} FLOPs")
    for col in ("approach", "a", "95% CI", "b", "N_opt at reference"):
        table.add_column(col)
    for r in out["approaches"].values():
        ci = r["ci"]["a"]
        table.add_row(r["method"], f"{r['a']:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "",
                      f"{r['b']:.4f}", f"{r['params_opt_at_reference']:.4g}")
    console.print(table)
    for k, why in out["skipped"].items():
        console.print(f"{k.replace('_', ' ')}: skipped: {why}")
    for k, r in out["approaches"].items():
        if r.get("ci_flag"):
            console.print(f"{k.replace('_', ' ')}: {r['ci_flag']}", style="yellow")
    d = out["disagreement"]
    if d:
        console.print(f"disagreement: a in [{d['a_range'][0]:.4f}, {d['a_range'][1]:.4f}]; N_opt at the reference "
                      f"differs {d['params_opt_ratio']:.2f}x between approaches")
    h = out["holdout"]
    if "skipped" in h:
        console.print(f"held-out check: skipped: {h['skipped']}")
    else:
        console.print(f"held-out check: fitted on {h['train_points']} runs below {h['held_out_flops']:.3g} FLOPs, the "
                      f"{h['held_out_points']} runs there are predicted within {h['loss_error_mean_abs']:.2%} "
                      f"(max {h['loss_error_max_abs']:.2%})"
                      + (f"; N_opt observed {h['params_opt_observed']:.4g}, approach 3 "
                         f"{h['params_opt_approach_3']:.4g}" if "params_opt_observed" in h else ""))


@app.command()
def fits(as_json: bool = typer.Option(False, "--json")) -> None:
    """Stored fits (latest per name)."""
    from warehouse.scaling_store import list_fits

    with reading() as con:
        rows = list_fits(con)
    emit(rows, as_json, title="fits")


@app.command()
def laws(as_json: bool = typer.Option(False, "--json"),
         law_file: Path | None = typer.Option(None, "--check", help="Validate a law file and show it.")) -> None:
    """Published laws that ship with Taomi (law files in scaling/data/laws), with their sources,
    FLOP accounting and the ranges they were fitted on; --check FILE validates your own."""
    from scaling.laws import PUBLISHED, read_law_file

    if law_file is not None:
        try:
            pubs = [read_law_file(law_file)]
        except ValueError as exc:
            fail(str(exc))
    else:
        pubs = list(PUBLISHED.values())
    if as_json:
        emit([p.as_dict() for p in pubs], True)
        return
    def rng(f):
        return "; ".join(f"{k} {v[0]:.2g}-{v[1]:.2g}" for k, v in f.items())
    emit([{"name": p.law.name, "kind": p.law.kind, "accounting": p.law.accounting,
           "params": ", ".join(f"{k}={v:.5g}" for k, v in p.law.params().items()), "fitted on": rng(p.fitted),
           "source": p.citation[:90] + ("..." if len(p.citation) > 90 else "")} for p in pubs], False,
         title="laws")


@app.command()
def demo(workdir: Path = typer.Option(Path("demo-out"), "--workdir", help="Where the sample corpus goes."),
         docs: int = typer.Option(5000, "--docs", min=10), seed: int = typer.Option(0, "--seed"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Run the main job on embedded defaults and print what a user came for."""
    from taomi.demo import run_demo

    db = state.db or str(workdir / "taomi.duckdb")
    with prefect_console():
        summary = run_demo(workdir, db, docs=docs, seed=seed, console=None if as_json else console)
    if as_json:
        print_json(summary)


from taomi import cli_curation, cli_eval, cli_flows, cli_plan

for _sub in (cli_curation.app, cli_eval.app, cli_flows.app, cli_plan.app):
    app.add_typer(_sub)


def run() -> None:
    """Console entry point: the commands, with the errors a user can act on as one line each
    (never a traceback): a busy database exits 75 (try again later), an unusable path 2."""
    try:
        code = app(standalone_mode=False)
    except click.exceptions.Abort:
        code = one_line("aborted", 1)
    except (click.exceptions.ClickException, typer.TyperException) as exc:
        # typer >= 0.2x checks values with its own copy of click (a bad --workers -1 raised its
        # BadParameter past click's handler as a traceback): shown as click shows its own, exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            one_line(str(exc), EXIT_USAGE)
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except Exception as exc:
        code = _known_error(exc)
        if code is None:
            raise
    sys.exit(code if isinstance(code, int) else 0)


def _known_error(exc: Exception) -> int | None:
    """The exit code for an error a user can act on, after printing it as one line; None for a bug."""
    known = known_error(exc)
    return None if known is None else one_line(*known)

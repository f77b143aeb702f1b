"""`taomi run` and `taomi schedule`: Prefect flows once, or served on a cron schedule."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from taomi.common import console, fail, prefect_console, quiet_prefect
from taomi.output import dumps, print_json

app = typer.Typer()  # joined to the main app by taomi.cli


@app.command("run")
def run_cmd(flow: str = typer.Argument("all", help="curate | scaling | calibrate | evaluate | all"),
            config: Path = typer.Option(..., "--config", help="Pipeline config (TOML)."),
            task_runner: str = typer.Option("threads", "--task-runner", help="threads | processes | dask"),
            dask_address: str | None = typer.Option(None, "--dask-address", help="Existing Dask scheduler."),
            workers: int = typer.Option(2, "--workers", min=1),
            quiet: bool = typer.Option(False, "--quiet", help="No stage lines on stderr."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Run a pipeline flow once (Prefect; ephemeral API unless PREFECT_API_URL points at a server)."""
    quiet_prefect()
    from flows.config import ConfigError, load_config

    try:
        load_config(config)  # the whole config is checked before Prefect starts or anything is written
    except ConfigError as exc:
        fail(str(exc))
    from flows import progress as stage_report
    from flows.pipeline import run_flow
    from taomi.output import RunStages, SafeConsole, stage_progress

    try:
        with prefect_console(), stage_progress(SafeConsole(stderr=True), quiet=quiet or as_json) as bars:
            # a failed task's Prefect traceback is shown only for a bug; each stage is one line on stderr
            stage_report.install(None if quiet or as_json else RunStages(bars))
            result = run_flow(flow, str(config), task_runner, dask_address, workers)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    finally:
        stage_report.install(None)
    if as_json:
        print_json(result)
    else:
        print(dumps(result, indent=2))  # the whole result (a cut one was invalid JSON)
    curate = result.get("curate", result) if flow in ("curate", "all") and isinstance(result, dict) else {}
    for name, res in curate.items():  # what the workers left undone is said, not only stored
        warning = res.get("signing", {}).get("warning") if isinstance(res, dict) else None
        if warning:
            print(f"warning: corpus {name}: {warning}", file=sys.stderr)


@app.command()
def schedule(config: Path = typer.Option(..., "--config", help="Pipeline config (TOML)."),
             cron: str = typer.Option("0 3 * * *", "--cron", help="Cron expression (default 03:00 daily)."),
             flow: str = typer.Option("all", "--flow"), name: str = typer.Option("taomi-nightly", "--name")) -> None:
    """Serve a flow on a cron schedule (Prefect `serve`; blocks until stopped)."""
    quiet_prefect()
    from flows.pipeline import FLOWS, deployment

    if flow not in FLOWS:
        fail(f"unknown flow '{flow}'; choose one of {', '.join(FLOWS)}")
    if not config.exists():
        fail(f"{config}: no such file")
    from prefect import serve

    dep = deployment(flow, str(config.resolve()), cron, name)
    console.print(f"serving flow '{flow}' as deployment '{name}' on cron '{cron}' (Ctrl-C stops)")
    with prefect_console():
        serve(dep)

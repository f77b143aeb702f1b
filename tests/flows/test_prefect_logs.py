"""Runs have logs in the Prefect UI (issue 25, item 6): `taomi run` sends its tasks' INFO lines to
the Prefect API while the terminal shows warnings only. A real run with its own PREFECT_HOME (the
ephemeral API's database), then a second process reads that database's logs through the client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READ_LOGS = """
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

async def main():
    async with get_client() as client:
        runs = await client.read_flow_runs()
        logs = await client.read_logs()
        print(json.dumps({"runs": [r.name for r in runs], "flows": len(runs),
                          "logs": [{"level": l.level, "message": l.message, "flow_run": str(l.flow_run_id)}
                                   for l in logs]}))
asyncio.run(main())
"""


def test_a_run_logs_info_to_the_api_and_warnings_only_to_the_terminal(tmp_path, sample):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(tmp_path / "prefect-home"))
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'db = "{tmp_path / "p.duckdb"}"\n[scaling]\nobservations = "{sample["scaling_synthetic"]}"\n'
                   'bootstrap = 0\nbudgets = [{flops = 1e21}]\n')
    run = subprocess.run([sys.executable, "-m", "taomi", "run", "scaling", "--config", str(cfg), "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=400, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["plans"][0]["params"] > 0
    assert " | INFO " not in run.stderr and "compute-optimal plan:" not in run.stderr  # a quiet terminal
    env["PREFECT_LOGGING_LEVEL"] = "ERROR"
    got = subprocess.run([sys.executable, "-c", READ_LOGS], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=400, check=False)
    assert got.returncode == 0, got.stderr[-3000:]
    data = json.loads(got.stdout.strip().splitlines()[-1])
    assert data["flows"] >= 1
    messages = [x["message"] for x in data["logs"] if x["level"] == 20]
    assert any(m.startswith("compute-optimal plan: budget 1e+21 FLOPs") for m in messages), messages[:20]
    assert any(m.startswith("fit ") for m in messages), messages[:20]


def test_run_prints_a_large_result_whole(tmp_path, taomi_cli, monkeypatch, sample):
    """The issue's crash: the result was cut at 20,000 characters and parsed again (JSONDecodeError,
    exit 1, after the work was done). Both output modes print all of it, as valid JSON."""
    from flows import pipeline

    big = {"curate": {"c": {"examples": [{"id": f"doc-{i}", "text": "x" * 50} for i in range(2000)]}}}
    monkeypatch.setattr(pipeline, "run_flow", lambda *a, **k: big)
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'db = "{tmp_path / "p.duckdb"}"\n[scaling]\nobservations = "{sample["scaling_synthetic"]}"\n')
    for extra in ([], ["--json"]):
        r = taomi_cli("run", "all", "--config", str(cfg), *extra)
        assert r.code == 0, r.output
        assert len(r.out) > 100_000 and json.loads(r.out) == big

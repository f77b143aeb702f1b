"""Prefect flows: one session-scoped harness; an end-to-end `all` run, re-run caching, a real
Dask LocalCluster, SIGKILL mid near-dedup then resume, and a cron schedule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taomi.demo_data import DemoConfig, generate

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def write_config(tmp: Path, s: dict, shard_docs: int = 100_000, calibrate: bool = False) -> Path:
    cfg = tmp / "pipeline.toml"
    cfg.write_text(f"""
db = "p.duckdb"
[[corpus]]
name = "c"
paths = ["{s['corpus']}", "{s['labels']}"]
[dedup]
shard_docs = {shard_docs}
[export]
outdir = "shards"
shard_size = 200
[scaling]
observations = "{s['scaling_synthetic']}"
bootstrap = 20
budgets = [{{flops = 1e22}}, {{gpus = 8, gpu = "h100-sxm", days = 3}}]
[calibrate]
enabled = {str(calibrate).lower()}
steps = 2
[[eval]]
eval_set = "{s['eval_set']}"
predictions = "{s['predictions_current']}"
metric = "accuracy"
train_corpus = "c"
gates = "{s['gates']}"
out = "report"
n_boot = 200
""")
    return cfg


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe")
    return out, generate(out / "data", DemoConfig(docs=600, seed=2, words_mean=80))


def test_all_flow_end_to_end_and_rerun(harness, small):
    from flows.pipeline import run_flow
    from warehouse.db import connect

    out, s = small
    cfg = write_config(out, s, calibrate=True)
    r = run_flow("all", str(cfg))
    cur = r["curate"]["c"]
    assert cur["dedup"]["docs_in"] == 600 and cur["dedup"]["docs_out"] < 600
    assert cur["signed"] == 600 and cur["export"]["shards"] >= 1
    assert r["scaling"]["fit"]["n_points"] > 10 and len(r["scaling"]["plans"]) == 2
    # the plans use the curated corpus's own token count (after dedup and decontamination), and say so
    from flows.plan_task import corpus_tokens

    con = connect(out / "p.duckdb", read_only=True)
    data = corpus_tokens(con, "c")
    con.close()
    assert data["decontaminated"] and data["tokens_deduplicated"] > data["unique_tokens"] > 0
    for p in r["scaling"]["plans"]:
        assert p["data"]["unique_tokens"] == data["unique_tokens"] and p["data"]["tokenizer"] == "cl100k_base"
        assert p["data"]["verdict"].startswith("the budget outruns the data")  # ~0.3M tokens for 1e22 FLOPs
    assert cur["decontaminate"]["documents_flagged"] > 0  # the demo's planted leaks
    assert r["evaluate"][0]["files"]["html"].endswith("report.html")
    assert "mfu" in r["calibrate"]
    con = connect(out / "p.duckdb", read_only=True)
    stages = {x[0] for x in con.execute("SELECT DISTINCT stage FROM runs WHERE status = 'ok'").fetchall()}
    before = con.execute("SELECT count(*) FROM documents").fetchall()[0][0]
    con.close()
    assert stages >= {"ingest", "dedup", "labels", "curriculum", "export", "fit", "plan", "calibrate", "evaluate"}
    again = run_flow("curate", str(cfg))
    assert again["c"]["dedup"]["docs_out"] == cur["dedup"]["docs_out"] and again["c"]["signed"] == 0
    con = connect(out / "p.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM documents").fetchall()[0][0] == before
    con.close()
    # A recreated database at the same path is a new warehouse: nothing cached may be reused.
    (out / "p.duckdb").unlink()
    fresh = run_flow("all", str(cfg))
    assert fresh["curate"]["c"]["dedup"]["docs_out"] == cur["dedup"]["docs_out"]
    con = connect(out / "p.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM scaling_fits").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM dedup_decisions").fetchall()[0][0] > 0
    con.close()


def test_dask_local_cluster_matches_threads(harness, tmp_path, small):
    from flows.pipeline import run_flow

    _, s = small
    cfg = write_config(tmp_path, s, shard_docs=150)
    r = run_flow("curate", str(cfg), runner="dask", workers=2)
    # the Dask runner takes the distributed path: 4 Parquet shards signed on the workers
    assert r["c"]["signed"] == 600 and r["c"]["signing"]["engine"] == "dask" and r["c"]["dedup"]["shards"] == 4
    assert r["c"]["dedup"]["engine"] == "dask" and r["c"]["dedup"]["worker_restarts"] == 0
    t = tmp_path / "threads"
    t.mkdir()
    r2 = run_flow("curate", str(write_config(t, s, shard_docs=150)), runner="threads")
    assert r2["c"]["signing"]["unsigned_after"] == 0 and "warning" not in r2["c"]["signing"]
    for k in ("docs_out", "candidate_pairs", "verified_pairs", "clusters"):
        assert r["c"]["dedup"][k] == r2["c"]["dedup"][k], k
    from warehouse.db import connect

    rows = []
    for db in (tmp_path / "p.duckdb", t / "p.duckdb"):
        con = connect(db, read_only=True)
        rows.append(con.execute("SELECT * EXCLUDE (corpus) FROM dedup_decisions ORDER BY ALL").fetchall())
        con.close()
    assert rows[0] == rows[1] and rows[0]


KILL = """
import sys, time
from pathlib import Path
import warehouse.dedup_store as store
from dedup.config import DedupConfig
from flows.dedup_task import sign_shard
real = store.write_signatures
calls = {"n": 0}
def slow(*a, **k):
    real(*a, **k)
    calls["n"] += 1
    if calls["n"] == 2:
        Path(sys.argv[2]).write_text("mid-dedup")
        time.sleep(120)
store.write_signatures = slow
sign_shard(sys.argv[1], "c", DedupConfig(batch_docs=100), 0, 10**12)
"""


def _tables(db):
    from warehouse.db import connect

    con = connect(db, read_only=True)
    out = {t: con.execute(q).fetchall() for t, q in {
        "decisions": "SELECT doc_id, keep, reason, matched_doc, round(similarity, 9), cluster_id FROM dedup_decisions ORDER BY ALL",
        "pairs": "SELECT doc_a, doc_b, round(similarity, 9), kind FROM dedup_pairs ORDER BY ALL",
        "signatures": "SELECT doc_id, sig_key, n_shingles, md5(sig::VARCHAR) FROM dedup_signatures ORDER BY ALL",
    }.items()}
    con.close()
    return out


def test_sigkill_mid_near_dedup_then_resume_gives_identical_tables(tmp_path, small):
    from dedup.config import DedupConfig
    from flows.dedup_task import dedup_corpus
    from warehouse.db import connect
    from warehouse.ingest import IngestConfig, ingest_paths

    _, s = small
    dbs = {}
    for name in ("killed", "clean"):
        dbs[name] = str(tmp_path / f"{name}.duckdb")
        con = connect(dbs[name])
        ingest_paths(con, [s["corpus"]], IngestConfig("c"))
        con.close()
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL, dbs["killed"], str(marker)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = connect(dbs["killed"], read_only=True)
    partial = con.execute("SELECT count(*) FROM dedup_signatures").fetchall()[0][0]
    con.close()
    assert partial == 200  # two committed batches of 100 survived the kill, nothing half-written
    resumed = dedup_corpus(dbs["killed"], "c", DedupConfig(batch_docs=100))
    assert resumed["signatures_computed"] == 400 and resumed["signatures_reused"] == 200
    dedup_corpus(dbs["clean"], "c", DedupConfig(batch_docs=100))
    assert _tables(dbs["killed"]) == _tables(dbs["clean"])


def test_cron_schedule_registers(harness, small, tmp_path):
    from flows.pipeline import deployment

    _, s = small
    dep = deployment("all", str(write_config(tmp_path, s)), "0 3 * * *")
    assert dep.schedules[0].schedule.cron == "0 3 * * *"
    assert dep.parameters["config"].endswith("pipeline.toml")
    with pytest.raises(ValueError):
        deployment("all", "x.toml", "not a cron")


def _runs_since(db: Path, t0) -> list[tuple[str, str]]:
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        return con.execute("SELECT stage, status FROM runs WHERE started_at > ? ORDER BY started_at",
                           [t0]).fetchall()
    finally:
        con.close()


def _now_utc():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def test_rerun_with_same_config_only_skips_and_a_new_threshold_reruns_downstream(harness, tmp_path, small):
    from flows.pipeline import run_flow

    _, s = small
    cfg = write_config(tmp_path, s)
    first = run_flow("curate", str(cfg))["c"]
    t0 = _now_utc()
    again = run_flow("curate", str(cfg))["c"]
    rows = _runs_since(tmp_path / "p.duckdb", t0)
    assert {stage for stage, _ in rows} >= {"ingest", "dedup", "labels", "curriculum", "export"}
    assert {status for _, status in rows} == {"skipped"}, rows
    assert again["dedup"]["docs_out"] == first["dedup"]["docs_out"] and again["export"]["status"] == "unchanged"
    # A new threshold: dedup and everything downstream of it re-run; ingest does not.
    cfg.write_text(cfg.read_text().replace("[dedup]\n", "[dedup]\nthreshold = 0.6\n"))
    t1 = _now_utc()
    run_flow("curate", str(cfg))
    status = dict(_runs_since(tmp_path / "p.duckdb", t1))
    assert status == {"ingest": "skipped", "tokens": "skipped", "dedup": "ok", "labels": "ok", "curriculum": "ok",
                      "decontaminate": "skipped", "export": "ok"}  # the corpus's text did not change


def test_a_typo_in_the_config_exits_2_before_anything_is_written(tmp_path, small):
    from typer.testing import CliRunner

    from taomi.cli import app

    _, s = small
    cfg = write_config(tmp_path, s)
    cfg.write_text(cfg.read_text().replace("[dedup]\n", "[dedup]\ntreshold = 0.7\n"))
    r = CliRunner().invoke(app, ["run", "curate", "--config", str(cfg)])
    assert r.exit_code == 2 and "dedup: unknown key 'treshold'" in r.stderr and str(cfg) in r.stderr
    assert not (tmp_path / "p.duckdb").exists()  # not even created
    cfg.write_text(cfg.read_text().replace("treshold = 0.7", "threshold = \"high\""))
    r = CliRunner().invoke(app, ["run", "curate", "--config", str(cfg)])
    assert r.exit_code == 2 and "threshold must be float, got str 'high'" in r.stderr
    assert not (tmp_path / "p.duckdb").exists()
    # the run's resources (issue 16) are checked the same way
    for bad, says in (('memory_limit = "lots"', "give a size like 512MB"), ("workers = 1.5", "workers must be an integer"),
                      ('memory_limit = "10MB"', "below 64 MB")):
        cfg.write_text(cfg.read_text().replace('threshold = "high"', bad).replace("workers = 1.5", bad)
                       .replace('memory_limit = "lots"', bad))
        r = CliRunner().invoke(app, ["run", "curate", "--config", str(cfg)])
        assert r.exit_code == 2 and says in r.stderr, r.stderr
        assert not (tmp_path / "p.duckdb").exists()


def test_fit_options_a_law_cannot_honour_are_rejected(tmp_path, small):
    from typer.testing import CliRunner

    from taomi.cli import app

    _, s = small
    db = str(tmp_path / "f.duckdb")
    r = CliRunner().invoke(app, ["--db", db, "fit", s["scaling_synthetic"], "--law", "kaplan", "--drop-outliers", "5",
                                 "--bootstrap", "50", "--method", "likelihood", "--fix", "alpha=0.3"])
    assert r.exit_code == 2
    assert "--law kaplan does not support --method likelihood; --bootstrap 50; --drop-outliers 5; --fix alpha" \
        in r.stderr
    assert not Path(db).exists() or "kaplan" not in Path(db).read_bytes().decode("latin-1")


def test_retries_only_transient_errors():
    import duckdb

    from flows.config import ConfigError
    from warehouse.db import WarehouseBusy, is_transient
    from warehouse.outputs import OutputRefused

    assert is_transient(WarehouseBusy("busy")) and is_transient(duckdb.IOException("Could not set lock on file"))
    assert is_transient(OSError(5, "Input/output error")) and is_transient(TimeoutError())
    for exc in (ValueError("bad"), TypeError("bug"), KeyError("x"), ConfigError("typo"), OutputRefused("no"),
                FileNotFoundError(2, "gone"), PermissionError(13, "denied")):
        assert not is_transient(exc), exc


def test_abandoned_runs_are_marked_and_failures_keep_their_reason(tmp_path):
    from warehouse.db import connect
    from warehouse.runlog import list_runs, logged_run

    db = str(tmp_path / "r.duckdb")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    con = connect(db)
    con.execute("INSERT INTO runs (run_id, stage, inputs_hash, started_at, status, pid, host) "
                "VALUES ('r1', 'dedup', 'x', now(), 'running', ?, ?)", [int(dead), __import__("socket").gethostname()])
    con.close()
    with pytest.raises(ZeroDivisionError), logged_run(db, "labels", "h", {}, "c"):
        _ = 1 / 0
    con = connect(db, read_only=True)
    rows = {r["run_id"]: r for r in list_runs(con)}
    con.close()
    assert rows["r1"]["status"] == "abandoned" and f"pid {dead}" in rows["r1"]["message"]
    failed = next(r for r in rows.values() if r["stage"] == "labels")
    assert failed["status"] == "failed" and failed["message"] == "ZeroDivisionError: division by zero"


def test_config_paths_are_absolute_whatever_the_working_folder(tmp_path, monkeypatch, small):
    """A relative database path reached Dask workers as `p.duckdb`: each worker, in its own
    folder, created an empty warehouse there and signed nothing (issue 27)."""
    from flows.config import load_config

    _, s = small
    write_config(tmp_path, s)
    monkeypatch.chdir(tmp_path.parent)
    cfg = load_config(Path(tmp_path.name) / "pipeline.toml")
    assert Path(cfg["db"]).is_absolute() and cfg["db"] == str(tmp_path / "p.duckdb")
    assert Path(cfg["export"]["outdir"]).is_absolute()


def test_a_worker_that_cannot_see_the_database_fails_loudly_and_creates_nothing(tmp_path, monkeypatch):
    from dedup.config import DedupConfig
    from flows.dedup_task import sign_shard

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no Taomi database at .*elsewhere\.duckdb .*same absolute path"):
        sign_shard("elsewhere.duckdb", "c", DedupConfig(), 0, 10)
    assert list(tmp_path.iterdir()) == []


def test_signature_tasks_that_did_less_than_given_are_reported(harness, tmp_path, small, monkeypatch):
    """A worker that signs into another file (or not at all) used to be hidden: the dedup step
    signed everything in the client and the run said nothing. The flow now checks its own
    database after the shards and says what is left; the result is still right."""
    import flows.dedup_task as D
    from flows.pipeline import run_flow

    _, s = small
    monkeypatch.setattr(D, "sign_shard", lambda *a, **k: 150)  # reports work, writes nothing here
    r = run_flow("curate", str(write_config(tmp_path, s, shard_docs=150)), runner="threads")
    sig = r["c"]["signing"]
    assert sig["shards"] == 4 and sig["given"] == 600 and sig["signed_by_tasks"] == 600
    assert sig["unsigned_after"] == 600 and "still unsigned" in sig["warning"]
    assert r["c"]["dedup"]["docs_in"] == 600 and r["c"]["dedup"]["docs_out"] < 600


def test_taomi_run_reports_each_stage_as_it_starts_and_ends(harness, tmp_path, small, taomi_cli):
    """`taomi run` was silent for minutes (515 s on a real corpus) until its final JSON: each
    stage is now a line on stderr (spinner while it runs; ✓, its summary and time when done),
    silenced by --quiet and --json; a failed stage is marked ✗. The reporter sees every stage of
    the curate flow in order."""
    import flows.progress as P
    from flows.pipeline import run_flow

    _, s = small
    events, steps = [], {}

    class Record:
        def begin(self, key, label):
            events.append(("begin", label))

        def end(self, key, label, ok, note, seconds):
            events.append(("end", label, ok, note))

        def step(self, key, label, what, done, total):
            steps.setdefault(label, []).append((what, done, total))

    P.install(Record())
    try:
        run_flow("curate", str(write_config(tmp_path, s, shard_docs=300)), runner="threads")
    finally:
        P.install(None)
    ends = [e for e in events if e[0] == "end"]
    assert [e[1] for e in ends] == ["register eval set " + Path(s["eval_set"]).stem, "ingest c",
                                    "plan signature shards c", "check signing c", "dedup c", "labels c",
                                    "curriculum c", "decontaminate c", "export c"]
    assert all(e[2] for e in ends) and sum(e[0] == "begin" for e in events) == len(ends)
    notes = {e[1]: e[3] for e in ends}
    assert "600 documents in" in notes["dedup c"] and "600 of 600 signed" in notes["check signing c"]
    # inside the long stages: how far they are, ending at their totals (the shards signed every
    # document before dedup, so dedup itself signs none)
    for label, what in (("ingest c", "count tokens"), ("labels c", "classifier folds"), ("curriculum c", ""),
                        ("export c", "write shards"),
                        ("decontaminate c", "contamination scan")):
        seen = [x for x in steps.get(label, []) if x[0].startswith(what)]
        assert seen and seen[-1][1] == seen[-1][2] > 0, (label, steps.get(label))

    other = tmp_path / "cli"
    other.mkdir()
    cfg = write_config(other, s, shard_docs=300)
    r = taomi_cli("run", "curate", "--config", cfg)
    assert r.code == 0 and "✓ dedup c: 600 documents in" in r.err and "✓ export c" in r.err
    assert json.loads(r.out)["c"]["dedup"]["docs_in"] == 600  # stdout stays the result alone
    r = taomi_cli("run", "curate", "--config", cfg, "--quiet")
    assert r.code == 0 and "✓" not in r.err

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    import flows.curriculum_task as C

    (tmp_path / "x").mkdir()
    C.build_curriculum, real = broken, C.build_curriculum
    try:
        r = taomi_cli("run", "curate", "--config", write_config(tmp_path / "x", s))
    finally:
        C.build_curriculum = real
    assert r.code != 0 and "✗ curriculum c" in r.err and "Traceback" not in r.err

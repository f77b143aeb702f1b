"""The distributed dedup path on a real Dask LocalCluster (2 worker processes): exactly the
decisions, pairs and cluster ids of `taomi dedup`, no worker ever opening the DuckDB file, a
worker SIGKILLed in each stage changing nothing, and re-runs that redo only what changed."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from dedup.config import DedupConfig
from flows.dask_dedup import dedup_distributed
from flows.dedup_task import dedup_corpus
from taomi.demo_data import DemoConfig, generate
from warehouse.db import connect, session
from warehouse.ingest import IngestConfig, ingest_paths

SMALL = {"shard_docs": 750, "group_docs": 200, "partitions": 3}  # many shards, row groups and partitions


class NoDuckDB:
    """A worker plugin: any attempt to open a DuckDB database on a worker raises."""

    name = "taomi-no-duckdb"

    def setup(self, worker):
        import duckdb

        def refuse(*args, **kwargs):
            raise AssertionError(f"a Dask worker tried to open DuckDB: {args}")

        duckdb.connect = refuse
        import warehouse.db

        warehouse.db.duckdb.connect = refuse

    def teardown(self, worker):
        pass


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


class Cluster:
    """A 2-process LocalCluster with the NoDuckDB plugin, started again when a test left it with
    fewer than 2 workers (a killed worker is replaced by its nanny in seconds, but on a loaded
    machine a nanny has been seen to close instead)."""

    def __init__(self):
        self.cluster = self.client = None

    def get(self):
        from distributed import Client, LocalCluster
        from distributed.diagnostics.plugin import WorkerPlugin
        from distributed.exceptions import WorkerStartTimeoutError

        if self.client is not None:
            try:
                self.client.wait_for_workers(2, timeout=30)
                return self.client
            except (WorkerStartTimeoutError, TimeoutError, OSError):
                self.close()
        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                    memory_limit="2GB")
        self.client = Client(self.cluster)
        self.client.register_plugin(type("NoDuckDBPlugin", (NoDuckDB, WorkerPlugin), {})())
        return self.client

    def close(self):
        for x in (self.client, self.cluster):
            if x is not None:
                x.close()
        self.cluster = self.client = None


@pytest.fixture(scope="module")
def cluster(faults):
    import os

    os.environ["TAOMI_DASK_FAULTS"] = str(faults)  # the worker processes inherit it
    holder = Cluster()
    try:
        yield holder
    finally:
        holder.close()
        os.environ.pop("TAOMI_DASK_FAULTS", None)


@pytest.fixture()
def client(cluster):
    return cluster.get()


def chinese_docs(n: int = 300, seed: int = 5) -> list[dict]:
    """Chinese paragraphs (no spaces), with near copies: a few characters changed, and copies
    with a space between every character (a PDF-extraction artefact)."""
    rng = random.Random(seed)
    common = [chr(c) for c in range(0x4E00, 0x4E00 + 600)]
    out = []
    for i in range(n):
        if i % 5 == 4:  # a copy of the previous original, edited
            base = list(out[-1]["text"].replace(" ", ""))
            for _ in range(3):
                base[rng.randrange(len(base))] = rng.choice(common)
            text = "".join(base) if i % 2 else " ".join(base)
        else:
            text = "".join(rng.choice(common) for _ in range(rng.randint(120, 400))) + "。"
        out.append({"id": f"zh-{i}", "text": text})
    return out


def chain_docs(n: int = 80, seed: int = 9) -> list[dict]:
    """A chain of near copies, each a few words off the one before (the ends share little), in
    shuffled order: one long cluster whose doc ids zig-zag, for the components step."""
    rng = random.Random(seed)
    words = [f"w{rng.randrange(5000)}" for _ in range(300)]
    out = []
    for i in range(n):
        for _ in range(4):
            words[rng.randrange(len(words))] = f"x{rng.randrange(10**6)}"
        out.append({"id": f"chain-{i}", "text": " ".join(words)})
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("dask-corpus")
    s = generate(out, DemoConfig(docs=2500, seed=11, words_mean=120))
    zh = out / "zh.jsonl"
    zh.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chinese_docs()), encoding="utf-8")
    chain = out / "chain.jsonl"
    chain.write_text("".join(json.dumps(r) + "\n" for r in chain_docs()))
    template = out / "template.duckdb"
    with session(template) as con:
        ingest_paths(con, [s["corpus"], str(zh), str(chain)], IngestConfig("c"))
    return {"template": template, "summary": s, "zh": zh, "dir": out}


def _copy(corpus, tmp_path: Path, name: str) -> str:
    db = tmp_path / f"{name}.duckdb"
    shutil.copy(corpus["template"], db)
    return str(db)


def _results(db: str) -> dict:
    con = connect(db, read_only=True)
    out = {t: con.execute(f"SELECT * EXCLUDE (corpus) FROM {t} ORDER BY ALL").fetchall()
           for t in ("dedup_decisions", "dedup_pairs")}
    out["run"] = con.execute("SELECT status, counts_out FROM runs WHERE stage = 'dedup' ORDER BY started_at").fetchall()
    con.close()
    return out


COUNTS = ("docs_in", "docs_out", "exact_dropped", "near_dropped", "candidate_pairs", "verified_pairs", "clusters",
          "empty_docs", "bands", "rows")


@pytest.mark.parametrize(("cfg", "components"), [
    (DedupConfig(), "local"), (DedupConfig(), "dask"), (DedupConfig(char_ngrams=True, policy="longest"), "dask"),
    (DedupConfig(threshold=0.7, policy="quality", num_perm=64), "dask")],
    ids=["words-local", "words", "char-longest", "t0.7-quality"])
def test_distributed_equals_single_machine(client, corpus, tmp_path, cfg, components):
    """Decisions, pairs and cluster ids equal; components on the client, or by large-star/small-star
    and `decide` per cluster partition on the workers."""
    single, dist = _copy(corpus, tmp_path, "single"), _copy(corpus, tmp_path, "dask")
    r1 = dedup_corpus(single, "c", cfg)
    r2 = dedup_distributed(dist, "c", cfg, client, tmp_path / "work", components=components, **SMALL)
    assert {k: r2[k] for k in COUNTS} == {k: r1[k] for k in COUNTS}
    assert r2["shards"] == 4 and r2["partitions"] == 3 and r2["worker_restarts"] == 0
    assert r2["components"] == components and (r2["component_rounds"] >= 2) == (components == "dask")
    # the chain is one cluster (several of its documents kept: each drop needs a kept neighbour)
    largest = r2["largest_clusters"][0]
    assert largest["representative"].startswith("chain-") and largest["size"] >= 40
    assert r1["verified_pairs"] > 40 and r1["near_dropped"] > 20
    a, b = _results(single), _results(dist)
    assert a["dedup_decisions"] == b["dedup_decisions"] and a["dedup_pairs"] == b["dedup_pairs"]
    assert b["run"] == [("ok", r1["docs_out"])]
    # Chinese copies (edited, or spaced out) are found on both paths
    con = connect(dist, read_only=True)
    zh_dropped = con.execute("""SELECT count(*) FROM dedup_decisions x JOIN documents d USING (doc_id)
                                WHERE d.ext_id LIKE 'zh-%' AND NOT x.keep""").fetchall()[0][0]
    con.close()
    assert zh_dropped >= 50
    # the run's exchange files are gone, the shards and signatures stay for the next run
    work = tmp_path / "work"
    assert not any((work / "runs").iterdir())
    assert len(list((work / "sigs").rglob("*.parquet"))) == 4


def _open_duckdb() -> None:
    import duckdb

    duckdb.connect(":memory:")


def test_workers_cannot_open_duckdb_here(client):
    """The guard the other tests rely on is in place on every worker."""
    for worker in client.scheduler_info()["workers"]:
        with pytest.raises(AssertionError, match="tried to open DuckDB"):
            client.submit(_open_duckdb, workers=[worker], pure=False).result()


def test_rerun_is_a_noop_and_new_documents_redo_only_the_last_shard(client, corpus, tmp_path):
    cfg = DedupConfig()
    db, work = _copy(corpus, tmp_path, "inc"), tmp_path / "work"
    first = dedup_distributed(db, "c", cfg, client, work, **SMALL)
    assert first["shards_exported"] == 4 and first["shards_signed"] == 4 and first["signatures_computed"] == 2880
    again = dedup_distributed(db, "c", cfg, client, work, **SMALL)
    assert again["unchanged"] is True
    # the single-machine path sees the same inputs and config: a no-op there too
    assert dedup_corpus(db, "c", cfg)["unchanged"] is True
    extra = tmp_path / "more.jsonl"
    extra.write_text("".join(json.dumps({"id": f"new-{i}", "text": f"brand new document number {i} " * 20}) + "\n"
                             for i in range(300)))
    with session(db) as con:
        ingest_paths(con, [str(extra)], IngestConfig("c"))
    more = dedup_distributed(db, "c", cfg, client, work, **SMALL)
    # 3180 documents: shards 0-2 unchanged (reused), shard 3 grew from 630 to 750, shard 4 is new
    assert more["shards"] == 5 and more["shards_exported"] == 2 and more["shards_signed"] == 2
    assert more["signatures_computed"] == 3180 - 3 * 750
    ref = _copy(corpus, tmp_path, "ref")
    with session(ref) as con:
        ingest_paths(con, [str(extra)], IngestConfig("c"))
    r = dedup_corpus(ref, "c", cfg)
    assert {k: more[k] for k in COUNTS} == {k: r[k] for k in COUNTS}
    assert _results(ref)["dedup_decisions"] == _results(db)["dedup_decisions"]
    # the shard files of the old contents are gone; one text file per shard
    assert len(list((work / "texts").rglob("*.parquet"))) == 5


@pytest.mark.parametrize("stage", ["sign", "band", "pairs", "gather", "verify", "components", "decide"])
def test_a_worker_killed_in_any_stage_changes_nothing(client, corpus, tmp_path, faults, stage):
    cfg = DedupConfig(policy="longest")
    ref = _copy(corpus, tmp_path, "ref")
    dedup_corpus(ref, "c", cfg)
    db = _copy(corpus, tmp_path, "killed")
    (faults / stage).touch()
    r = dedup_distributed(db, "c", cfg, client, tmp_path / "work", components="dask", **SMALL)
    assert (faults / f"{stage}.fired").exists() and not (faults / stage).exists()  # a worker was killed
    assert r["worker_restarts"] == 1
    (faults / f"{stage}.fired").unlink()
    a, b = _results(ref), _results(db)
    assert a["dedup_decisions"] == b["dedup_decisions"] and a["dedup_pairs"] == b["dedup_pairs"]


def test_cli_local_cluster_and_bad_options(corpus, tmp_path):
    from typer.testing import CliRunner

    from taomi.cli import app

    db = _copy(corpus, tmp_path, "cli")
    runner = CliRunner()
    r = runner.invoke(app, ["--db", db, "dedup", "c", "--cluster", "local", "--workers", "2", "--shard-docs",
                            "1000", "--work-dir", str(tmp_path / "w"), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["engine"] == "dask" and rep["shards"] == 3 and rep["workers"] == 2
    r = runner.invoke(app, ["--db", db, "dedup", "c", "--cluster", "slurm"])
    assert r.exit_code != 0 and "only cluster Taomi starts is 'local'" in r.output
    for bad in ("nonsense", "tcp://scheduler", "tcp://scheduler:port"):  # refused before any connection
        r = runner.invoke(app, ["--db", db, "dedup", "c", "--dask-address", bad])
        assert r.exit_code == 2 and "e.g. tcp://scheduler:8786" in r.output and r.exception is not None
        assert isinstance(r.exception, SystemExit), r.exception
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    r = runner.invoke(app, ["--db", db, "dedup", "c", "--cluster", "local", "--threshold", "0.7", "--work-dir",
                            str(user)])
    assert r.exit_code != 0 and "not a Taomi work folder" in r.output and "Traceback" not in r.output
    assert (user / "notes.txt").read_text() == "mine" and sorted(p.name for p in user.iterdir()) == ["notes.txt"]


def test_a_worker_that_cannot_see_the_work_folder_says_so(tmp_path):
    from flows.dask_dedup import band_task, sign_task
    from warehouse.shard_store import Shard

    missing = Shard(0, str(tmp_path / "elsewhere" / "s00000.parquet"), 1, 10, 10, "f" * 32, (1,))
    with pytest.raises(FileNotFoundError, match=r"cannot see .*elsewhere.* same absolute path"):
        sign_task(missing, str(tmp_path / "sig.parquet"), DedupConfig())
    with pytest.raises(FileNotFoundError, match="work folder"):
        band_task(str(tmp_path / "nope.parquet"), 0, 16, 8, str(tmp_path / "x.parquet"), 2, str(tmp_path), False)
    assert not (tmp_path / "sig.parquet").exists()

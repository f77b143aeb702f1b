"""Shared fixtures: a small generated corpus (session-scoped) and a fresh database per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taomi.demo_data import DemoConfig, generate

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"  # published data copied into the repository (see its README)


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> dict:
    """600 documents with planted duplicates, label noise and broken lines."""
    out = tmp_path_factory.mktemp("sample")
    summary = generate(out, DemoConfig(docs=600, seed=7, words_mean=80))
    summary["truth_data"] = json.loads(Path(summary["truth"]).read_text())
    return summary


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "test.duckdb")


@pytest.fixture
def con(db):
    from warehouse.db import connect

    c = connect(db)
    yield c
    c.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Published reference data: the copy in tests/data (checked against its recorded sha256), so
    the reproduction tests run in CI and never skip."""
    import hashlib

    path = TEST_DATA / "chinchilla_svg_extracted.csv"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30", "tests/data was altered"
    return TEST_DATA


@pytest.fixture(scope="session")
def ingest_files():
    """ingest_files(db, paths, corpus) -> FileResults: ingest into a database, connection closed."""
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_paths

    def run(db, paths, corpus: str = "c"):
        with session(db) as con:
            return ingest_paths(con, list(paths), IngestConfig(corpus))

    return run


@pytest.fixture(scope="session")
def record_fault():
    """record_fault(suite, **counts): one line for bench/fault_suite.py when TAOMI_FAULT_REPORT is set."""
    import os

    def record(suite: str, **counts) -> None:
        path = os.environ.get("TAOMI_FAULT_REPORT")
        if path:
            with open(path, "a") as fh:
                fh.write(json.dumps({"suite": suite, **counts}) + "\n")

    return record

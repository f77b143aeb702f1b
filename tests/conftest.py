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


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def output(self) -> str:
        return self.out + self.err


@pytest.fixture(scope="session")
def taomi_cli():
    """taomi_cli(*args) -> CliResult: the real console entry point (`taomi.cli.run`, with its one-line
    error handling) in this process, stdout and stderr captured; an uncaught exception is returned
    as a traceback on stderr with code 1, as the shell would show it."""
    import io
    import os
    import sys
    import traceback
    from contextlib import redirect_stderr, redirect_stdout

    def run(*args: str, env: dict | None = None) -> CliResult:
        from taomi.cli import run as entry

        out, err = io.StringIO(), io.StringIO()
        saved_argv, saved_env = sys.argv, dict(os.environ)
        sys.argv = ["taomi", *map(str, args)]
        os.environ.update({"COLUMNS": "200", **(env or {})})
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                try:
                    entry()
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except BaseException:  # noqa: BLE001 - what the user would see
                    err.write(traceback.format_exc())
                    code = 1
        finally:
            sys.argv = saved_argv
            os.environ.clear()
            os.environ.update(saved_env)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def bench_module():
    """bench_module(name) -> the module bench/NAME.py (bench/ is not a package; its modules import
    their siblings, so bench/ is on sys.path while one loads). Loaded once per session."""
    import importlib.util
    import sys

    bench = ROOT / "bench"

    def load(name: str):
        if name in sys.modules:
            return sys.modules[name]
        sys.path.insert(0, str(bench))
        try:
            spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            return mod
        finally:
            sys.path.remove(str(bench))

    return load


_OPEN = ("import duckdb, sys\ntry:\n    duckdb.connect(sys.argv[1]).close(); print('opened')\n"
         "except duckdb.Error as e:\n    print('refused', e)")


@pytest.fixture(scope="session")
def another_process_opens():
    """Whether another process can open a database file read-write now: False while this process
    holds DuckDB's lock on it."""
    import subprocess
    import sys

    def opens(db) -> bool:
        out = subprocess.run([sys.executable, "-c", _OPEN, str(db)], check=False, capture_output=True, text=True,
                             timeout=60).stdout
        assert out.startswith(("opened", "refused")), out
        return out.startswith("opened")

    return opens

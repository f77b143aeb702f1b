"""The real HTTP service, started once per test module (uvicorn subprocess, loopback port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str | None, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`taomi serve` in a subprocess on a free loopback port, once /health answers."""
    port = free_port()
    args = [sys.executable, "-m", "taomi", *(["--db", db] if db else []), "serve", "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "server did not start"
        time.sleep(0.2)


@pytest.fixture
def serve():
    """serve(db, **env) -> base URL of a `taomi serve` started for this test (stopped after it)."""
    procs = []

    def start(db: str | None = None, **env: str) -> str:
        proc, base = start_server(db, env)
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from flows.scaling_task import fit_file
    from scaling.laws import ChinchillaLaw

    tmp = tmp_path_factory.mktemp("svc")
    law = ChinchillaLaw(E=1.7, A=400, B=410, alpha=0.34, beta=0.28)
    N = np.repeat(np.geomspace(5e7, 5e9, 6), 6)
    D = np.tile(np.geomspace(1e9, 2e11, 6), 6)
    rng = np.random.default_rng(1)
    pd.DataFrame({"N": N, "D": D, "loss": law.predict_loss(N, D) * np.exp(rng.normal(0, 0.003, 36))}).to_csv(
        tmp / "obs.csv", index=False)
    db = str(tmp / "svc.duckdb")
    fit_file(db, tmp / "obs.csv", bootstrap=20, name="mine")
    proc, base = start_server(db, {"TAOMI_CACHE_S": "0.5"})
    yield {"base": base, "db": db, "tmp": tmp}
    proc.terminate()
    proc.wait(10)

"""The HTTP service for real: a uvicorn subprocess on a free loopback port, bad inputs, and
queries while another process holds the database read-write."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys, time
from pathlib import Path
from warehouse.db import connect
con = connect(sys.argv[1])                    # read-write: holds the file lock until closed
Path(sys.argv[2]).write_text("locked")
n = 0
end = time.time() + float(sys.argv[3])
while time.time() < end:
    con.execute("INSERT INTO runs (run_id, stage, inputs_hash, started_at, status) VALUES (?, 'writer', 'x', now(), 'ok')",
                [f"w{n}"]).fetchall()
    n += 1
    time.sleep(0.01)
con.close()
print(n)
"""




def test_endpoints(server):
    b = server["base"]
    assert httpx.get(b + "/health").json()["status"] == "ok"
    assert {x["name"] for x in httpx.get(b + "/laws").json()} >= {"chinchilla-2022", "epoch-2024", "kaplan-2020"}
    assert [f["name"] for f in httpx.get(b + "/fits").json()["fits"]] == ["mine"]
    p = httpx.post(b + "/plan", json={"flops": 5.76e23, "law": "chinchilla-2022"}).json()
    assert 39e9 < p["params"] < 41e9 and {"tokens", "loss", "flops", "tokens_per_param"} <= set(p)
    assert "flawed" in p["law_info"]["warning"]
    p = httpx.post(b + "/plan", json={"flops": 5.76e23}).json()  # the default: Epoch's refit, ~20 tokens/param
    assert 65e9 < p["params"] < 75e9 and p["law_info"]["name"] == "epoch-2024" and "ci" in p
    p = httpx.post(b + "/plan", json={"flops": 1e22, "fit": "mine"}).json()
    assert p["ci"]["params"][0] < p["params"] < p["ci"]["params"][1]
    inv = httpx.post(b + "/plan", json={"params": 7e10}).json()
    assert inv["tokens"] > 7e10 and inv["params"] == 7e10
    pred = httpx.post(b + "/plan", json={"params": 1e9, "tokens": 1e10}).json()  # both: a prediction
    assert pred["ci"]["loss"][0] < pred["loss"] < pred["ci"]["loss"][1]
    assert httpx.post(b + "/plan", json={"params": 1e9, "tokens": 1e10, "flops": 1e22}).status_code == 422
    t = httpx.post(b + "/estimate/time", json={"params": 175e9, "tokens": 300e9, "gpus": 1024, "gpu": "a100",
                                                "mfu": 0.45, "recompute": "full"}).json()
    assert round(t["days"], 1) == 25.4 and t["hfu"] == pytest.approx(0.6)
    m = httpx.post(b + "/estimate/memory", json={"layers": 96, "hidden": 12288, "heads": 96, "seq": 2048}).json()
    assert m["activation_bytes_per_layer"] == 2_868_903_936
    assert httpx.get(b + "/openapi.json").status_code == 200


@pytest.mark.parametrize("path,body,field", [
    ("/plan", '{"flops": 1e999}', "flops"),
    ("/plan", '{"flops": NaN}', "flops"),
    ("/plan", '{"flops": -5}', "flops"),
    ("/plan", '{"flops": 0}', "flops"),
    ("/plan", '{"flops": "lots"}', "flops"),
    ("/plan", '{"gpus": 8, "gpu": "h100-sxm", "days": 1, "mfu": 1.5}', "mfu"),
    ("/plan", '{"flops": 1e22, "bogus": 1}', "bogus"),
    ("/plan", '{"flops": 1e22', "body"),
    ("/plan", '[1, 2]', "body"),
    ("/estimate/time", '{"params": 1e9, "tokens": 1e10, "gpus": 8, "gpu": "h100-sxm", "mfu": Infinity}', "mfu"),
    ("/estimate/memory", '{"layers": -1, "hidden": 64, "heads": 8, "seq": 16}', "layers"),
    ("/estimate/memory", '{"layers": 2, "hidden": 64, "heads": 8, "seq": 16, "kv_heads": 3}', "body"),
    ("/estimate/memory", '{"layers": 2, "hidden": 64, "heads": 8, "seq": 16, "precision": "fp64"}', "precision"),
])
def test_bad_input_is_422_naming_the_field(server, path, body, field):
    r = httpx.post(server["base"] + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(field in d["field"] for d in detail), detail


def test_semantic_errors(server):
    b = server["base"]
    assert httpx.post(b + "/plan", json={"flops": 1e22, "fit": "absent"}).status_code == 404
    r = httpx.post(b + "/plan", json={"gpus": 8, "gpu": "tpu-v9", "days": 1})
    assert r.status_code == 422 and "unknown GPU" in r.text
    r = httpx.post(b + "/plan", json={"target_loss": 1.0})
    assert r.status_code == 422 and "irreducible" in r.text
    r = httpx.post(b + "/plan", json={"flops": 1e22, "law": "nope"})
    assert r.status_code == 422 and "unknown law" in r.text


def test_keeps_answering_while_a_pipeline_writes(server):
    b = server["base"]
    assert httpx.post(b + "/plan", json={"flops": 1e22, "fit": "mine"}).status_code == 200  # warm the cache
    marker = server["tmp"] / "locked"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, server["db"], str(marker), "3"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE)
    deadline = time.time() + 30
    while not marker.exists():
        assert writer.poll() is None and time.time() < deadline
        time.sleep(0.05)
    codes, stale = [], []
    t_end = time.time() + 2.0
    while time.time() < t_end:
        r = httpx.post(b + "/plan", json={"flops": 1e22, "fit": "mine"}, timeout=5)
        codes.append(r.status_code)
        stale.append(r.json().get("stale"))
        codes.append(httpx.get(b + "/fits", timeout=5).status_code)
        codes.append(httpx.post(b + "/plan", json={"flops": 1e22}, timeout=5).status_code)
        time.sleep(0.05)
    out, _ = writer.communicate(timeout=30)
    assert writer.returncode == 0 and int(out) > 50  # the writer was never blocked by the service
    assert set(codes) == {200}, codes
    assert True in stale  # after the cache expired, answers came from it, marked stale
    r = httpx.post(b + "/plan", json={"flops": 1e22, "fit": "mine"})
    time.sleep(0.6)
    assert httpx.post(b + "/plan", json={"flops": 1e22, "fit": "mine"}).json()["stale"] is False
    assert r.status_code == 200
    from warehouse.db import connect

    con = connect(server["db"], read_only=True)
    assert con.execute("SELECT count(*) FROM runs WHERE stage = 'writer'").fetchall()[0][0] == int(out)
    con.close()

"""Calibration on the CPU: the model learns, the FLOP count matches torch's counter, rows are
stored and plans use them, and everything else works without torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taomi.cli import app

torch = pytest.importorskip("torch")

from scaling.calibrate import byte_tokens, calibrate, length_extrapolation, table_gpu
from scaling.model import SIZES, TinyLM, flops_per_token

runner = CliRunner()


@pytest.fixture(scope="module")
def tokens(sample):
    texts = [json.loads(x)["text"] for x in Path(sample["labels"]).read_text(encoding="utf-8").splitlines()]
    return byte_tokens(texts * 4)


def test_model_trains_on_real_text(tokens):
    r = calibrate(tokens, "tiny", steps=30, warmup=2)
    assert r["loss_last"] < r["loss_first"] - 1.0
    assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1.5
    assert "measured" in r["peak_source"] and r["gpu"] == "cpu"


def test_flop_formula_matches_torch_counter():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    for size in ("tiny", "small"):
        cfg = SIZES[size]
        m = TinyLM(cfg)
        x = torch.randint(0, cfg.vocab, (2, cfg.seq))
        # the default (flash) CPU kernel reports 0 FLOPs for attention; the math kernel the full T^2
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
            _, loss = m(x, x)
            loss.backward()
        counted = fc.get_total_flops() / (2 * cfg.seq)
        assert flops_per_token(cfg, m.num_params(), cfg.seq) == pytest.approx(counted, rel=0.02)
        assert flops_per_token(cfg, m.num_params(), cfg.seq, causal_halved=True) < counted


def test_device_names_map_to_the_table():
    assert table_gpu("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert table_gpu("NVIDIA H100 PCIe") == "h100-pcie"
    assert table_gpu("NVIDIA H200") == "h200"
    assert table_gpu("NVIDIA A100-SXM4-40GB", 40) == "a100-40gb"
    assert table_gpu("Some Future Accelerator") is None


def test_calibration_stored_and_used_by_plans(tmp_path, sample):
    from warehouse.calibration_store import list_calibrations, save_calibration
    from warehouse.db import connect

    db = str(tmp_path / "c.duckdb")
    res = runner.invoke(app, ["--db", db, "calibrate", "--steps", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    con = connect(db)
    rows = list_calibrations(con)
    assert rows[0]["tokens_per_s"] == pytest.approx(out["tokens_per_s"])
    # A tiny-model calibration on the GPU does not set the MFU of a billion-parameter plan ...
    save_calibration(con, {**out, "gpu": "h100-sxm", "device_name": "NVIDIA H100 80GB HBM3", "mfu": 0.43})
    con.close()
    args = ["--db", db, "plan", "--gpus", "8", "--gpu", "h100-sxm", "--days", "1", "--json"]
    plan = json.loads(runner.invoke(app, args).stdout)
    assert plan["mfu"] == 0.4 and "not within 10x of the planned size" in plan["mfu_source"]
    assert plan["params"] > 1e3 * out["params"]
    # ... a calibration of a comparable size does, and the service answers the same (one path).
    con = connect(db)
    save_calibration(con, {**out, "params": int(plan["params"] / 2), "gpu": "h100-sxm",
                           "device_name": "NVIDIA H100 80GB HBM3", "mfu": 0.37})
    con.close()
    plan = json.loads(runner.invoke(app, args).stdout)
    assert plan["mfu"] == 0.37 and "calibration of a" in plan["mfu_source"]
    from fastapi.testclient import TestClient

    from taomi.service import create_app

    served = TestClient(create_app(db)).post("/plan", json={"gpus": 8, "gpu": "h100-sxm", "days": 1}).json()
    assert {k: served[k] for k in ("params", "tokens", "mfu", "mfu_source", "flops")} == {
        k: plan[k] for k in ("params", "tokens", "mfu", "mfu_source", "flops")}


def test_sweep_and_extrapolation_small(tokens):
    from scaling.sweep import SweepPreset, judge, micro_sweep

    # A small preset in-process and in 2 worker processes: same rows (every run is seeded).
    p = SweepPreset(sizes=((1, 16), (2, 64)), tokens=(2e4, 6e4), seq=32, batch=8, seeds=(0, 1), eval_tokens=4096)
    one = micro_sweep(tokens, p, workers=1)
    two = micro_sweep(tokens, p, workers=2)
    assert [(r["run"], round(r["loss"], 5)) for r in one["rows"]] == [(r["run"], round(r["loss"], 5)) for r in two["rows"]]
    rows = one["rows"]
    assert len(rows) == 8 and all(r["eval_tokens"] >= 4096 for r in rows)
    big = {r["run"]: r["loss"] for r in rows}
    assert big["L2-h64-D60000-s0"] < big["L1-h16-D20000-s0"]
    assert {r["lr"] for r in rows if r["N"] == rows[0]["N"]} != {r["lr"] for r in rows if r["N"] != rows[0]["N"]}
    v = judge(rows)
    assert v["decades_of_N"] < 1.5 and not v["supports_a_law"] and any("decades" in a for a in v["advice"])
    with pytest.raises(ValueError, match="held-out slice"):
        micro_sweep(tokens[:5000], p, workers=1)
    e = length_extrapolation(tokens, seq=32, factors=(2, 4), train_tokens=40_000)
    assert [t["factor"] for t in e["table"]] == [1, 2, 4] and isinstance(e["graceful"], bool)


def test_judge_says_what_to_run_next():
    from scaling.sweep import judge

    rows = [{"N": n, "D": d, "loss": 3 - 0.1 * i - 0.2 * j + (0.5 if (i, j) == (2, 0) else 0), "seed": 0}
            for i, n in enumerate((1e4, 1e5, 1e6)) for j, d in enumerate((1e5, 1e6))]
    v = judge(rows)
    assert v["loss_falls_with_D"][1e6] and not v["loss_falls_with_N"][1e5]
    assert any("D = 100,000" in a and "undertrained" in a for a in v["advice"])
    good = [{"N": n, "D": d, "loss": 3 - 0.1 * i - 0.2 * j, "seed": 0}
            for i, n in enumerate((1e4, 1e5, 1e6)) for j, d in enumerate((1e5, 1e6))]
    assert judge(good)["supports_a_law"]


def test_without_torch_calibrate_explains_and_the_rest_works(monkeypatch, db):
    monkeypatch.setitem(sys.modules, "torch", None)
    res = runner.invoke(app, ["--db", db, "calibrate"])
    assert res.exit_code == 2 and "pip install 'taomi[torch]'" in res.stderr
    assert runner.invoke(app, ["plan", "--flops", "1e21", "--json"]).exit_code == 0
    assert np.isfinite(json.loads(runner.invoke(app, ["plan", "--flops", "1e21", "--json"]).stdout)["params"])


def test_gpu_preset_spans_10m_to_100m_parameters():
    from scaling.model import ModelConfig
    from scaling.sweep import PRESETS

    sizes = [TinyLM(ModelConfig(vocab=256, layers=layer, hidden=h, heads=h // 16, seq=8)).num_params()
             for layer, h in PRESETS["gpu"].sizes]
    assert 10e6 <= min(sizes) and max(sizes) <= 100e6
    cpu = [TinyLM(ModelConfig(vocab=256, layers=layer, hidden=h, heads=max(1, h // 16), seq=8)).num_params()
           for layer, h in PRESETS["cpu"].sizes]
    assert np.log10(max(cpu) / min(cpu)) >= 1.5 and PRESETS["cpu"].eval_tokens >= 65_536
    assert len(PRESETS["cpu"].seeds) >= 2


def test_sweep_scale_is_checked_with_one_clear_line():
    r = runner.invoke(app, ["calibrate", "--sweep", "--scale", "tpu"])
    assert r.exit_code == 2 and r.stderr.strip() == "error: --scale must be cpu or gpu, not 'tpu'"

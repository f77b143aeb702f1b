"""The sweep designer (issue 26 item 8): which runs to do next to narrow the allocation
exponent's interval fastest per FLOP, given the runs already stored, with learning rate and
batch per run and the interval now and after, simulated from the current fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling.approaches import synthetic_sweep
from scaling.design import design, simulate_interval
from scaling.fit import ChinchillaFitter, FitConfig
from scaling.laws import get_law
from taomi.cli import app

runner = CliRunner()
TRUE = get_law("epoch-2024")


@pytest.fixture(scope="module")
def small_sweep():
    """Three budgets a decade apart, five sizes each, 1% noise: the exponent is loosely pinned."""
    obs = synthetic_sweep(TRUE, budgets=(1e17, 3e17, 1e18), sizes=5, span=4, checkpoints=1, noise=0.01, seed=0)
    return obs, ChinchillaFitter(FitConfig()).fit(obs).law_


def test_design_spends_the_budget_on_isoflop_runs_and_narrows_the_exponent(small_sweep):
    obs, law = small_sweep
    d = design(law, obs, budget=3e19)
    assert d["runs"] and d["flops_used"] <= 3e19
    for r in d["runs"]:
        assert 6 * r["params"] * r["tokens"] == pytest.approx(r["flops"])
    assert d["sd_a_after"] < d["sd_a_now"] / 2
    sds = [r["sd_a_after"] for r in d["runs"]]
    assert sds == sorted(sds, reverse=True)  # every added run narrows it further
    assert len({r["flops"] for r in d["runs"]}) >= 3 and len({round(r["params"]) for r in d["runs"]}) >= 8
    sim = simulate_interval(law, obs, d["runs"], d["sigma"], simulations=12)
    now, after = sim["now"], sim["after"]
    assert after[1] - after[0] < (now[1] - now[0]) / 2
    assert after[0] - 0.05 < TRUE.a_exponent < after[1] + 0.05


def test_greedy_per_flop_beats_spending_the_same_budget_on_one_big_line(small_sweep):
    obs, law = small_sweep
    d = design(law, obs, budget=3e19)
    largest = float((6 * obs.N * obs.D).max())
    # the naive alternative: the same FLOPs as a few runs on the biggest affordable isoFLOP line
    c = max(f for f in (0.3, 1, 3, 10, 30, 100) if largest * f * 3 <= 3e19) * largest
    n0 = law.G * (c / 6) ** law.a_exponent
    naive = [{"flops": c, "params": n, "tokens": c / (6 * n)} for n in (n0 / 2, n0, n0 * 2)]
    from scaling.design import _grad_a, _jacobian, _var_a

    def sd(runs):
        J = _jacobian(law, np.r_[obs.N, [r["params"] for r in runs]], np.r_[obs.D, [r["tokens"] for r in runs]])
        return _var_a(J.T @ J / d["sigma"] ** 2, _grad_a(law)) ** 0.5

    assert sd(d["runs"]) < sd(naive)


def test_a_budget_too_small_for_any_run_is_one_clear_error(small_sweep):
    obs, law = small_sweep
    with pytest.raises(ValueError, match="buys no run"):
        design(law, obs, budget=1e10)


@pytest.fixture(scope="module")
def stored_fit(tmp_path_factory, small_sweep):
    obs, _ = small_sweep
    tmp = tmp_path_factory.mktemp("design")
    csv = tmp / "runs.csv"
    pd.DataFrame({"N": obs.N, "D": obs.D, "loss": obs.loss}).to_csv(csv, index=False)
    db = str(tmp / "t.duckdb")
    assert runner.invoke(app, ["--db", db, "fit", str(csv), "--name", "mine"]).exit_code == 0
    return db


def test_sweep_design_on_the_command_line(stored_fit):
    r = runner.invoke(app, ["--db", stored_fit, "sweep", "design", "--fit", "mine", "--budget", "3e19",
                            "--simulations", "8", "--seq", "2048", "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["points"] == 15 and out["runs"]
    assert all(x["learning_rate"] > 0 and x["batch_tokens"] > 0 for x in out["runs"])
    assert out["interval"]["after"][1] - out["interval"]["after"][0] < out["interval"]["now"][1] - out["interval"]["now"][0]
    text = runner.invoke(app, ["--db", stored_fit, "sweep", "design", "--fit", "mine", "--budget", "3e19",
                               "--simulations", "0"])
    assert text.exit_code == 0 and "sd" in text.stdout and "next runs" in text.stdout
    bad = runner.invoke(app, ["--db", stored_fit, "sweep", "design", "--fit", "nope", "--budget", "1e19"])
    assert bad.exit_code == 2 and "no stored fit named 'nope'" in bad.stderr


def test_the_micro_sweep_hands_its_fit_to_the_designer(monkeypatch, tmp_path):
    """run_sweep (both presets) stores its fit, then asks the designer for the next runs."""
    import flows.calibrate_task as ct
    import scaling.sweep as sw

    obs = synthetic_sweep(TRUE, budgets=(1e15, 3e15, 1e16), sizes=5, span=4, checkpoints=1, noise=0.02, seed=1)
    rows = [{"N": n, "D": d, "loss": lo, "run": f"r{i}", "seed": 0, "lr": 1e-3, "eval_tokens": 65536}
            for i, (n, d, lo) in enumerate(zip(obs.N, obs.D, obs.loss))]
    monkeypatch.setattr(ct, "corpus_tokens", lambda db, corpus: np.zeros(10, np.uint8))
    monkeypatch.setattr(sw, "micro_sweep", lambda *a, **k: {"rows": rows, "seconds": 1.0, "workers": 1,
                                                            "preset": "gpu"})
    out = ct.run_sweep(str(tmp_path / "t.duckdb"), scale="gpu", device="cpu", bootstrap=20)
    nxt = out["next_runs"]
    assert nxt["runs"] and nxt["sd_a_after"] < nxt["sd_a_now"]
    assert nxt["budget"] == pytest.approx(10 * sum(6 * r["N"] * r["D"] for r in rows))

"""Fitting: Epoch AI's published figures on the real Chinchilla points, synthetic recovery, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling.fit import ChinchillaFitter, FitConfig, grid_objective, hoffmann_grid, huber_objective
from scaling.fit_other import DataConstrainedFitter, KaplanFitter
from scaling.laws import PUBLISHED, ChinchillaLaw, DataConstrainedLaw, KaplanLaw, get_law
from scaling.observations import ObservationError, from_frame
from taomi.cli import app


def sig3(x: float, y: float) -> bool:
    return float(f"{x:.3g}") == float(f"{y:.3g}")


@pytest.fixture(scope="module")
def chinchilla_points(shared_data):
    df = pd.read_csv(shared_data / "chinchilla_svg_extracted.csv")
    return from_frame(df[["Model Size", "Training FLOP", "loss"]])


def test_grid_fit_reproduces_epoch(chinchilla_points):
    f = ChinchillaFitter(FitConfig(drop_outliers=5)).fit(chinchilla_points)
    p = f.params_
    assert f.n_points_ == 240 and f.n_starts_ == 4500
    for k, v in {"A": 477.8, "B": 2143, "E": 1.8172, "alpha": 0.3473, "beta": 0.3672}.items():
        assert sig3(p[k], v), (k, p[k], v)
    assert f.objective_ == pytest.approx(1.01827402e-3, rel=1e-6)
    assert f.n_at_best_ >= 2 and f.converged_


def test_likelihood_fit_reproduces_epoch_headline(chinchilla_points):
    f = ChinchillaFitter(FitConfig(drop_outliers=5, method="likelihood")).fit(chinchilla_points)
    for k, v in {"A": 482.01, "B": 2085.43, "E": 1.8169, "alpha": 0.3478, "beta": 0.3658}.items():
        assert sig3(f.params_[k], v), (k, f.params_[k], v)


def test_bootstrap_cis_land_near_epoch(chinchilla_points):
    f = ChinchillaFitter(FitConfig(drop_outliers=5)).fit(chinchilla_points).bootstrap(chinchilla_points, n=300)
    published = {"A": (285, 744), "B": (1042, 5810), "E": (1.769, 1.871), "alpha": (0.317, 0.373),
                 "beta": (0.331, 0.415)}
    for k, (lo, hi) in published.items():
        mlo, mhi = f.ci_[k]
        assert mlo < f.params_[k] < mhi
        assert abs(np.log(mlo / lo)) < 0.25 and abs(np.log(mhi / hi)) < 0.25, (k, f.ci_[k], (lo, hi))
    assert set(f.poorly_determined_) == {"A", "B"}


def synthetic(law, n_sizes=8, per=8, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(5e7, 5e9, n_sizes), per)
    D = np.tile(np.geomspace(1e9, 2e11, per), n_sizes) * rng.uniform(0.9, 1.1, n_sizes * per)
    L = law.predict_loss(N, D) * np.exp(rng.normal(0, noise, len(N)))
    return N, D, L


def test_recovers_synthetic_chinchilla_law():
    true = PUBLISHED["chinchilla-2022"].law
    N, D, L = synthetic(true, noise=0.003)
    f = ChinchillaFitter().fit(from_frame(pd.DataFrame({"N": N, "D": D, "loss": L})))
    assert f.params_["alpha"] == pytest.approx(true.alpha, abs=0.03)
    assert f.params_["beta"] == pytest.approx(true.beta, abs=0.03)
    assert f.params_["E"] == pytest.approx(true.E, rel=0.03)
    assert f.law_.a_exponent == pytest.approx(true.a_exponent, abs=0.03)


def test_fixed_exponent_and_weights():
    true = ChinchillaLaw(E=1.7, A=400, B=410, alpha=0.34, beta=0.28)
    N, D, L = synthetic(true, noise=0.002, seed=3)
    obs = from_frame(pd.DataFrame({"N": N, "D": D, "loss": L, "weight": np.ones(len(N))}))
    f = ChinchillaFitter(FitConfig(fixed=(("alpha", 0.34),))).fit(obs)
    assert f.params_["alpha"] == 0.34
    assert f.params_["beta"] == pytest.approx(0.28, abs=0.03)


def test_analytic_gradient_matches_numeric():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(18, 23, 30), rng.uniform(20, 26, 30)
    logl = rng.uniform(0.7, 1.2, 30)
    w = np.ones(30)
    theta = np.array([6.0, 6.5, 0.5, 0.33, 0.29])
    f, g = huber_objective(theta, x, y, logl, w, 1e-3)
    eps = 1e-7
    num = [(huber_objective(theta + eps * e, x, y, logl, w, 1e-3)[0]
            - huber_objective(theta - eps * e, x, y, logl, w, 1e-3)[0]) / (2 * eps) for e in np.eye(5)]
    assert np.allclose(g, num, rtol=1e-4, atol=1e-9)
    assert grid_objective(theta[None, :], x, y, logl, w, 1e-3)[0] == pytest.approx(f)
    assert hoffmann_grid().shape == (4500, 5)


def test_kaplan_and_data_constrained_recovery():
    kap = get_law("kaplan-2020")
    N, D, L = synthetic(kap, noise=0.001)
    k = KaplanFitter().fit(from_frame(pd.DataFrame({"N": N, "D": D, "loss": L})))
    assert k.params_["alpha_N"] == pytest.approx(0.076, abs=0.01)
    assert k.params_["alpha_D"] == pytest.approx(0.103, abs=0.01)
    assert isinstance(k.law_, KaplanLaw)

    dc = DataConstrainedLaw(base=ChinchillaLaw(E=1.7, A=400, B=410, alpha=0.34, beta=0.28), R_D_star=15.4)
    rng = np.random.default_rng(5)
    N = np.repeat(np.geomspace(1e8, 3e9, 6), 10)
    D = np.tile(np.geomspace(2e9, 2e11, 10), 6)
    U = np.where(rng.random(len(N)) < 0.5, D * 2, D / rng.choice([2, 4, 8, 16, 40], len(N)))
    L = dc.predict_loss(N, D, U) * np.exp(rng.normal(0, 0.001, len(N)))
    f = DataConstrainedFitter().fit(from_frame(pd.DataFrame({"N": N, "D": D, "loss": L, "U": U})))
    assert f.params_["R_D_star"] == pytest.approx(15.4, rel=0.35)


def test_effective_tokens_saturate():
    law = get_law("muennighoff-2023")
    assert law.effective_tokens(1e9, 1e9) == pytest.approx(1e9)
    assert law.effective_tokens(4e9, 1e9) < 4e9
    assert law.effective_tokens(1e12, 1e9) == pytest.approx(1e9 * (1 + 15.4), rel=1e-3)


@pytest.mark.parametrize("frame,msg", [
    ({"N": [1e8, 2e8, 3e8], "D": [1e9, 2e9, 3e9], "loss": [3, 2.9, 2.8]}, "cannot determine"),
    ({"N": [1e8, -2e8, 3e8, 4e8, 5e8, 6e8], "D": [1e9] * 6, "loss": [3] * 6}, "N must be > 0"),
    ({"N": [1e8, 2e8, 3e8, 4e8, 5e8, 6e8], "D": [1e9, 2e9, 3e9, 4e9, 5e9, 6e9],
      "loss": [3, 2.9, float("nan"), 2.7, 2.6, 2.5]}, "rows 3: loss is missing, NaN or infinite"),
    ({"N": [1e8, 1e8, 3e8, 4e8, 5e8, 6e8], "D": [1e9, 1e9, 3e9, 4e9, 5e9, 6e9],
      "loss": [3, 3, 2.8, 2.7, 2.6, 2.5]}, "rows 2 repeat"),
    ({"N": [1e8] * 6, "D": [1e9, 2e9, 3e9, 4e9, 5e9, 6e9], "loss": [3, 2.9, 2.8, 2.7, 2.6, 2.5]},
     "exponent of N is not identifiable"),
    ({"N": [1e8, 2e8, 3e8, 4e8, 5e8, 6e8], "D": [1e9, 2e9, 3e9, 4e9, 5e9, float("inf")],
      "loss": [3, 2.9, 2.8, 2.7, 2.6, 2.5]}, "D is missing, NaN or infinite"),
])
def test_bad_observations(frame, msg):
    with pytest.raises(ObservationError, match=msg):
        from_frame(pd.DataFrame(frame), min_points=6)


def test_cli_fit_json_and_store(chinchilla_points, tmp_path, shared_data):
    runner = CliRunner()
    db = str(tmp_path / "f.duckdb")
    res = runner.invoke(app, ["--db", db, "fit", str(shared_data / "chinchilla_svg_extracted.csv"),
                              "--drop-outliers", "5", "--bootstrap", "50", "--name", "epoch", "--json",
                              "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["law"] == "chinchilla" and out["n_points"] == 240
    assert set(out["params"]) == {"A", "B", "E", "alpha", "beta"}
    assert set(out["ci"]) >= {"A", "B", "E", "alpha", "beta"} and all(len(v) == 2 for v in out["ci"].values())
    assert out["objective"] == pytest.approx(1.01827402e-3, rel=1e-6)
    assert all((tmp_path / "plots" / n).stat().st_size > 1000 for n in ("fit.png", "residuals.png", "isoflop.png"))
    again = json.loads(runner.invoke(app, ["--db", db, "fit", str(shared_data / "chinchilla_svg_extracted.csv"),
                                           "--drop-outliers", "5", "--bootstrap", "50", "--name", "epoch",
                                           "--json"]).stdout)
    assert again["cached"] and again["params"] == out["params"]
    fits = json.loads(runner.invoke(app, ["--db", db, "fits", "--json"]).stdout)
    assert fits[0]["name"] == "epoch"
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,1e9,3\n")
    r = runner.invoke(app, ["--db", db, "fit", str(bad)])
    assert r.exit_code == 2 and "cannot determine" in r.stderr


def test_data_constrained_fit_recovers_both_decays_on_noise_free_data_with_cis():
    # Issue 14: the base law was fitted on points its own U_N term decays (R_N* 5.92 for 5.3).
    truth = DataConstrainedLaw(base=get_law("epoch-2024"), R_D_star=15.4, R_N_star=5.3)
    rng = np.random.default_rng(2)
    N = np.repeat(np.geomspace(3e7, 3e9, 8), 10)
    D = np.tile(np.geomspace(1e9, 3e11, 10), 8)
    U = np.where(rng.random(len(N)) < 0.4, D * 2, D / rng.choice([1.5, 3, 6, 12, 30, 60], len(N)))
    L = truth.predict_loss(N, D, U)
    obs = from_frame(pd.DataFrame({"N": N, "D": D, "loss": L, "U": U}))
    f = DataConstrainedFitter().fit(obs)
    assert f.params_["R_N_star"] == pytest.approx(5.3, rel=0.02)
    assert f.params_["R_D_star"] == pytest.approx(15.4, rel=0.02)
    assert f.base_points_ < int((U >= D).sum())  # points with excess parameters were left out of stage 1
    f.bootstrap(obs, n=12, seed=0)
    lo, hi = f.ci_["R_D_star"]
    assert lo <= 15.4 * 1.05 and hi >= 15.4 * 0.95

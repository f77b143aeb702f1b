"""Scaling answers a researcher would sign (issue 14): the default law and its shipped CIs, the
law named in every answer with its warning, Kaplan's published frontier, data-limited plans that
never repeat data past what the law rewards, every option honoured or refused, inverse queries
for every law, predictions with CIs, inference-aware plans, robust bootstraps."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.plan_task import answer
from scaling import plan as P
from scaling.fit import ChinchillaFitter, FitConfig
from scaling.laws import DEFAULT_LAW, PUBLISHED, DataConstrainedLaw, get_law, published_samples
from scaling.observations import Observations
from scaling.planning import PlanRequest
from taomi.cli import app

runner = CliRunner()
GOPHER = 5.76e23


@pytest.fixture(scope="module")
def service_client():
    from fastapi.testclient import TestClient

    from taomi.service import create_app

    return TestClient(create_app(None))


def _cli(*args):
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_default_is_epoch_refit_with_shipped_cis_and_about_20_tokens_per_param():
    assert DEFAULT_LAW == "epoch-2024"
    out = answer(PlanRequest(flops=GOPHER))
    assert out["law_info"]["name"] == "epoch-2024" and "Besiroglu" in out["law_info"]["source"]
    assert 18 < out["tokens_per_param"] < 23  # approaches 1 and 2, Chinchilla's own 70B/1.4T: ~20
    lo, hi = out["ci"]["params"]
    assert lo < out["params"] < hi and hi / lo < 3
    s = published_samples("epoch-2024")
    assert len(s) == 1000
    alpha = np.percentile([x.alpha for x in s], [2.5, 97.5])
    assert abs(alpha[0] - 0.317) < 0.01 and abs(alpha[1] - 0.373) < 0.01  # Epoch's published CI


@pytest.mark.parametrize("name", ["chinchilla-2022", "chinchilla-2022-rounded", "muennighoff-2023-chinchilla-base",
                                  "kaplan-2020"])
def test_laws_known_to_disagree_say_so_in_every_plan(name):
    out = answer(PlanRequest(flops=GOPHER, law=name))
    assert out["law_info"]["warning"] == PUBLISHED[name].warning != ""
    r = runner.invoke(app, ["plan", "--flops", str(GOPHER), "--law", name])
    assert r.exit_code == 0 and "warning:" in r.stdout
    if name == "chinchilla-2022":
        assert 40 < out["tokens_per_param"] < 65  # the ~2x the warning is about


def test_kaplan_plans_follow_kaplans_published_frontier():
    out = answer(PlanRequest(flops=GOPHER, law="kaplan-2020"))
    # Kaplan counts non-embedding N: the budget (6·N·D, N all parameters) is converted, and said so
    acc = out["accounting"]
    assert acc["law"] == "kaplan" and acc["budget"] == "6nd" and "non-embedding" in acc["note"]
    c_pf_days = acc["law_flops"] / 8.64e19
    assert out["params_non_embedding"] == pytest.approx(1.3e9 * c_pf_days ** 0.73, rel=1e-9)
    assert 6 * out["params"] * out["tokens"] == pytest.approx(GOPHER)
    assert 6 * out["params_non_embedding"] * out["tokens"] == pytest.approx(acc["law_flops"])
    assert out["params"] > out["params_non_embedding"]
    assert "frontier" in out["law_info"]["allocation"]
    big = answer(PlanRequest(flops=GOPHER * 10, law="kaplan-2020"))
    ratio = big["params_non_embedding"] / out["params_non_embedding"]
    law_ratio = big["accounting"]["law_flops"] / acc["law_flops"]
    assert math.log(ratio) / math.log(law_ratio) == pytest.approx(0.73, abs=1e-9)  # N ~ C^0.73
    eq15 = answer(PlanRequest(flops=GOPHER, law="kaplan-2020", kaplan_allocation="eq1.5"))
    assert 2.3e11 < eq15["params_non_embedding"] < 2.5e11  # the eq. 1.5 optimum, kept only as an option
    with pytest.raises(ValueError, match="Kaplan law"):
        answer(PlanRequest(flops=GOPHER, kaplan_allocation="eq1.5"))


def test_data_limited_plans_never_exceed_the_epochs_the_law_rewards():
    out = answer(PlanRequest(flops=GOPHER, unique_tokens=1e9))
    rep = out["repetition"]
    assert out["tokens"] / 1e9 <= rep["epochs_worth_it"] + 1e-6 < 12  # not 6,514 epochs
    flat = rep["flat"]
    assert flat and flat["waste_share"] > 0.99 and flat["flops_needed"] < 1e21
    assert out["plan_flops"] == pytest.approx(flat["flops_needed"], rel=1e-6)
    assert out["loss"] <= flat["best_loss_at_budget"] + flat["tolerance"] + 1e-9
    lo, hi = out["ci"]["loss"]
    assert lo <= out["loss"] <= hi
    # Plenty of unique data: the plan is the unconstrained one.
    big = answer(PlanRequest(flops=1e21, unique_tokens=1e13))
    free = answer(PlanRequest(flops=1e21))
    assert big["params"] == pytest.approx(free["params"], rel=2e-2) and not big["repetition"]["flat"]
    assert big["loss"] == pytest.approx(free["loss"], abs=1e-6)  # a flat optimum: N within 2%, loss equal
    # Every budget: epochs within the cap, loss never rising with compute.
    law = DataConstrainedLaw(base=get_law(DEFAULT_LAW))
    plans = [P.data_limited_plan(law, c, 1e10) for c in np.geomspace(1e19, 1e25, 13)]
    best = [p["flat"]["best_loss_at_budget"] if p["flat"] else p["loss"] for p in plans]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(best))
    assert all(p["epochs"] <= p["epochs_rewarded"] + 1e-9 for p in plans)
    assert plans[-1]["flat"] and not plans[0]["flat"]


def test_options_a_law_cannot_honour_are_refused_on_cli_and_http(service_client):
    r = runner.invoke(app, ["plan", "--flops", "1e23", "--law", "kaplan-2020", "--unique-tokens", "1e9"])
    assert r.exit_code == 2 and "no term for repeated data" in r.stderr
    h = service_client.post("/plan", json={"flops": 1e23, "law": "kaplan-2020", "unique_tokens": 1e9})
    assert h.status_code == 422 and "repeated data" in h.text
    h = service_client.post("/plan", json={"flops": 1e23, "kaplan_allocation": "eq1.5"})
    assert h.status_code == 422


LOSS_LAWS = sorted(n for n, p in PUBLISHED.items() if p.law.kind != "allocation")
ALLOCATIONS = sorted(n for n, p in PUBLISHED.items() if p.law.kind == "allocation")


@pytest.mark.parametrize("name", ALLOCATIONS)
def test_allocation_laws_refuse_loss_questions_in_one_line(name, service_client):
    for args in (["--target-loss", "2.6"], ["--params", "1e9"], ["--flops", "1e21", "--experiments"]):
        r = runner.invoke(app, ["plan", *args, "--law", name])
        assert r.exit_code == 2 and "allocation" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    h = service_client.post("/plan", json={"target_loss": 2.6, "law": name})
    assert h.status_code == 422 and "allocation" in h.text


@pytest.mark.parametrize("name", LOSS_LAWS)
def test_target_loss_works_for_every_law_on_cli_and_http(name, service_client):
    out = _cli("plan", "--target-loss", "2.6", "--law", name)
    got = answer(PlanRequest(flops=out["flops"], law=name))
    assert got["loss"] == pytest.approx(2.6, abs=1e-6)
    h = service_client.post("/plan", json={"target_loss": 2.6, "law": name})
    assert h.status_code == 200 and h.json()["flops"] == pytest.approx(out["flops"])


def test_target_below_a_data_limited_plateau_is_a_clear_error():
    with pytest.raises(ValueError, match="levels off"):
        answer(PlanRequest(target_loss=2.0, unique_tokens=1e9))


def test_predict_any_point_with_ci_and_overtraining():
    out = _cli("predict", "--params", "8e9", "--tokens", "15e12")  # Llama-3-8B's data on purpose
    assert out["ci"]["loss"][0] < out["loss"] < out["ci"]["loss"][1]
    assert out["overtraining"] > 50 and out["loss_above_optimal"] > 0
    law = get_law(DEFAULT_LAW)
    assert out["loss"] == pytest.approx(float(law.predict_loss(8e9, 15e12)))
    bad = runner.invoke(app, ["predict", "--params", "-1", "--tokens", "1e9"])
    assert bad.exit_code == 2


def test_inference_aware_plan_trades_size_for_tokens():
    law = get_law(DEFAULT_LAW)
    none = P.inference_aware(law, 2.1, 0)
    ref = P.flops_for_loss(law, 2.1)
    assert none["params"] == pytest.approx(ref["params"], rel=1e-4)  # no inference: Chinchilla-optimal
    heavy = P.inference_aware(law, 2.1, 2e13)
    assert heavy["params"] < none["params"] and heavy["tokens"] > none["tokens"]
    assert 0 < heavy["saving"] < 1 and heavy["total_flops"] < heavy["compute_optimal"]["total_flops"]
    assert float(law.predict_loss(heavy["params"], heavy["tokens"])) == pytest.approx(2.1, abs=1e-9)
    out = _cli("plan", "--target-loss", "2.1", "--inference-tokens", "2e13")
    assert out["params"] == pytest.approx(heavy["params"], rel=1e-6)


def test_a_degenerate_bootstrap_resample_does_not_abort_the_fit():
    # Few, noisy points: some resamples drive E to 0 or an exponent <= 0. They are counted, not fatal.
    rng = np.random.default_rng(3)
    law = get_law(DEFAULT_LAW)
    N = np.repeat(np.geomspace(1e7, 1e8, 4), 2)
    D = np.tile([2e8, 2e9], 4)
    L = law.predict_loss(N, D) * np.exp(rng.normal(0, 0.05, len(N)))
    obs = Observations(N, D, L)
    f = ChinchillaFitter(FitConfig()).fit(obs)
    f.bootstrap(obs, n=60, seed=1)
    assert f.degenerate_ >= 0 and len(f.bootstrap_samples_) == 60 - f.degenerate_
    assert set(f.ci_) >= {"A", "B", "E", "alpha", "beta"}

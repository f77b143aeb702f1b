"""Gates fire on evidence, not noise: a regression gate fails only on a significant drop in a
slice of at least min_n items; smaller or noisy slices are reported as undecided, with n and p."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from evalsets.gates import check_gates, load_gates
from evalsets.sets import EvalInputError
from evalsets.stats import paired, summarize

GATE = '[[gate]]\nname = "no regressions"\nslice = "*"\nmax_regression = 0.05\naction = "review"\n'


def _slices_and_regression(runs: dict[str, tuple[np.ndarray, np.ndarray]]):
    slices = {s: summarize(cur, 500) for s, (cur, _) in runs.items()}
    reg = {s: paired(cur, prev, 500) for s, (cur, prev) in runs.items()}
    return slices, reg


def _flips(n: int, worse: int, better: int, seed: int = 0):
    """Pass/fail scores of two runs over n items with the given numbers of flips each way."""
    prev = np.ones(n)
    cur = np.ones(n)
    prev[:better] = 0
    cur[better:better + worse] = 0
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return cur[order], prev[order]


def test_mcnemar_exact_is_scipys_binomial_test_on_the_flips():
    cur, prev = _flips(56, worse=9, better=3)
    r = paired(cur, prev, 500)
    assert r["test"] == "McNemar exact" and r["flips"] == {"worse": 9, "better": 3}
    assert r["p_value"] == pytest.approx(binomtest(9, 12, 0.5).pvalue)


def test_the_issues_noisy_slices_do_not_fail(tmp_path):
    """n=14, diff -0.214 (the issue's first case) and n=56 with a CI across 0: undecided, not failed;
    a drop of the same size on 400 items is significant and fails."""
    gates = tmp_path / "g.toml"
    gates.write_text(GATE)
    small = _flips(14, worse=4, better=1)              # diff -3/14 = -0.214
    noisy = _flips(56, worse=7, better=3, seed=1)      # diff -0.071, p = 0.34
    big = _flips(400, worse=60, better=10, seed=2)     # diff -0.125, p < 1e-8
    slices, reg = _slices_and_regression({"small": small, "noisy": noisy, "big": big})
    assert reg["small"]["diff"] == pytest.approx(-3 / 14)
    res = {r["slice"]: r for r in check_gates(load_gates(gates), slices, reg)}
    assert res["small"]["status"] == "not_enough_items" and res["small"]["passed"] and res["small"]["n"] == 14
    assert "n=14 < min_n=30" in res["small"]["recommendation"]
    assert res["noisy"]["status"] == "not_significant" and res["noisy"]["passed"]
    assert res["noisy"]["p_value"] > 0.05 and res["noisy"]["value"] > 0.05
    assert res["big"]["status"] == "failed" and not res["big"]["passed"] and res["big"]["p_value"] < 1e-6


def test_min_n_and_alpha_are_per_gate_and_checked(tmp_path):
    gates = tmp_path / "g.toml"
    gates.write_text(GATE.replace('action = "review"', 'action = "review"\nmin_n = 10\nalpha = 0.5'))
    small = _flips(14, worse=4, better=1)
    slices, reg = _slices_and_regression({"small": small})
    (r,) = check_gates(load_gates(gates), slices, reg)
    assert r["status"] == "failed" and r["min_n"] == 10  # p = 0.375 < alpha 0.5
    for bad, why in (("min_n = 0", "min_n"), ("min_n = 2.5", "min_n"), ("alpha = 1.5", "alpha"),
                     ('alpha = "x"', "alpha")):
        gates.write_text(GATE + bad + "\n")
        with pytest.raises(EvalInputError, match=why):
            load_gates(gates)


def test_continuous_scores_use_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    prev = rng.random(300)
    same = paired(prev + rng.normal(0, 0.05, 300), prev, 2000)
    worse = paired(prev - 0.1 + rng.normal(0, 0.05, 300), prev, 2000)
    assert same["test"] == worse["test"] == "paired bootstrap"
    assert worse["p_value"] < 0.01 and same["p_value"] > 0.05


def test_metric_min_needs_min_n_too(tmp_path):
    gates = tmp_path / "g.toml"
    gates.write_text('[[gate]]\nname = "floor"\nslice = "*"\nmetric_min = 0.9\n')
    slices = {"tiny": summarize(np.array([0.0, 1.0, 0.0]), 200), "wide": summarize(np.zeros(40), 200)}
    res = {r["slice"]: r for r in check_gates(load_gates(gates), slices, None)}
    assert res["tiny"]["status"] == "not_enough_items" and res["wide"]["status"] == "failed"

"""Agreement statistics against hand-computed examples and reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from curation.agreement import (
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    per_class_agreement,
)
from curation.consensus import dawid_skene, majority_vote


def test_cohen_kappa_hand_computed():
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4
    a = np.array([0] * 25 + [1] * 25)
    b = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    r = cohen_kappa(a, b, 2)
    assert r["kappa"] == pytest.approx(0.4)
    assert r["se"] == pytest.approx(np.sqrt(0.7 * 0.3 / (50 * 0.25)))
    assert r["ci"][0] < 0.4 < r["ci"][1]


def test_against_statsmodels_and_krippendorff_on_random_data():
    from krippendorff import alpha as ref_alpha
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 300)
    ratings = np.where(rng.random((300, 3)) < 0.75, truth[:, None], rng.integers(0, 4, (300, 3)))
    table = np.zeros((4, 4))
    np.add.at(table, (ratings[:, 0], ratings[:, 1]), 1)
    assert cohen_kappa(ratings[:, 0], ratings[:, 1], 4)["kappa"] == pytest.approx(cohens_kappa(table).kappa)
    assert fleiss_kappa(ratings, 4) == pytest.approx(sm_fleiss(aggregate_raters(ratings, n_cat=4)[0]))
    missing = ratings.copy()
    missing[rng.random(missing.shape) < 0.2] = -1
    ref = ref_alpha(reliability_data=np.where(missing >= 0, missing, np.nan).T.astype(float),
                    level_of_measurement="nominal")
    assert krippendorff_alpha(missing, 4) == pytest.approx(ref, abs=1e-9)
    assert fleiss_kappa(missing, 4) is None  # unequal ratings per item


def test_perfect_and_chance_agreement():
    same = np.tile(np.arange(3), (2, 1)).T.repeat(5, axis=0)
    assert krippendorff_alpha(same, 3) == pytest.approx(1.0)
    assert np.allclose(per_class_agreement(same, 3), 1.0)


def test_consensus_recovers_truth_and_weighs_good_annotators():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 800)
    acc = np.array([0.95, 0.9, 0.55, 0.5, 0.45])
    ratings = np.where(rng.random((800, 5)) < acc, truth[:, None], rng.integers(0, 5, (800, 5)))
    mv, _, _ = majority_vote(ratings, 5)
    ds, conf, est = dawid_skene(ratings, 5)
    assert np.mean(ds == truth) >= np.mean(mv == truth)
    assert np.mean(ds == truth) > 0.95
    assert est[0] > est[2] and est[1] > est[4]
    assert conf.min() > 0.2


def test_report_shape():
    r = agreement_report(np.array([[0, 0], [1, 1], [1, 0], [0, -1]]), ["x", "y"], ["a", "b"],
                         np.array([0, 1, 1, 0]), n_boot=20)
    assert set(r) >= {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "per_class", "annotator_vs_consensus",
                      "how_to_read"}
    assert r["cohen_kappa"][0]["n"] == 3

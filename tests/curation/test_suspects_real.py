"""Suspect labels on real text (docstrings of installed libraries, labelled by library: classes
that share vocabulary), beside cleanlab's default pipeline in the same run (issue 15, item 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from curation.suspects import SuspectConfig, find_suspects, suspect_labels

pytest.importorskip("statsmodels")  # one of the six libraries (test extra)


def _realtext():
    path = Path(__file__).resolve().parents[2] / "bench" / "realtext.py"
    spec = importlib.util.spec_from_file_location("realtext", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def noisy():
    rt = _realtext()
    rows = rt.docstring_corpus(per_class=200, seed=3)
    given, planted = rt.flip_labels(rows, 0.10, seed=4)
    classes = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], np.array([classes.index(g) for g in given]), len(classes), planted


def _prf(mask, planted):
    found = set(np.flatnonzero(mask).tolist())
    tp = len(found & planted)
    p, r = tp / max(len(found), 1), tp / len(planted)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def test_precision_first_and_not_worse_than_cleanlab_default(noisy):
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, y, k, planted = noisy
    s = suspect_labels(texts, y, k, SuspectConfig())
    p, r, f1 = _prf(s["suspect"], planted)
    x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    probs = cross_val_predict(LogisticRegression(C=10, max_iter=1000), x, y, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=0))
    bp, br, bf1 = _prf(find_label_issues(y, probs), planted)
    print(f"taomi P {p:.3f} R {r:.3f} F1 {f1:.3f}; cleanlab P {bp:.3f} R {br:.3f} F1 {bf1:.3f}")
    # 1,200 items (the 2,040-item benchmark reaches >= 0.75; fewer items, a weaker classifier)
    assert p >= 0.6 and p >= bp + 0.1
    assert f1 >= bf1
    # Ranked: the flagged items are the least self-confident given labels, suggested != given.
    flagged = np.flatnonzero(s["suspect"])
    assert np.all(s["suggested"][flagged] != y[flagged])
    assert s["score"][flagged].mean() < s["score"][~s["suspect"]].mean()


def test_find_suspects_on_known_probabilities():
    # 3 classes, 60 items, confident model; items 0 and 1 are labelled against a confident prediction.
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    probs = np.full((60, 3), 0.05)
    probs[np.arange(60), y] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    probs[0] = [0.02, 0.96, 0.02]
    probs[1] = [0.03, 0.02, 0.95]
    probs /= probs.sum(axis=1, keepdims=True)
    s = find_suspects(probs, y)
    assert set(np.flatnonzero(s["suspect"])) == {0, 1}
    assert s["suggested"][0] == 1 and s["suggested"][1] == 2
    assert s["score"][[0, 1]].max() < s["score"][2:].min()


def test_config_is_checked():
    with pytest.raises(ValueError, match="folds"):
        SuspectConfig(folds=1)
    with pytest.raises(ValueError, match="cleanlab"):
        SuspectConfig(filter_by="vibes")

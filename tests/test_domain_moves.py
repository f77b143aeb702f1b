"""Domain logic that used to sit in flows/, now pure functions with their own tests (issue 13):
label findings (curation.label_report), evaluation analysis (evalsets.analysis) and the merge of
exact and near dedup decisions (dedup.decisions)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from curation.label_report import conflicts, label_report, rating_matrix
from dedup.decisions import merge_decisions
from evalsets.analysis import auto_slices, regressions, suggest_fix


def test_rating_matrix_of_a_label_only_corpus_is_empty_not_a_crash():
    ann = pd.DataFrame({"ext_id": ["a", "b"], "annotator": ["", ""], "label": [1, "x"]})
    r, items, annotators, classes = rating_matrix(ann)
    assert r.shape == (0, 0) and items == annotators == [] and classes == ["1", "x"]


def test_rating_matrix_codes_each_annotators_label():
    ann = pd.DataFrame({"ext_id": ["a", "a", "b"], "annotator": ["u", "v", "u"], "label": ["p", "q", "q"]})
    r, items, annotators, classes = rating_matrix(ann)
    assert items == ["a", "b"] and annotators == ["u", "v"] and classes == ["p", "q"]
    assert r.tolist() == [[0, 1], [1, -1]]


def test_label_report_on_given_labels_only():
    words = {"sport": "match goal team score league coach", "food": "bread soup salt oven spice taste"}
    rows, texts = [], {}
    for i in range(40):
        topic = "sport" if i % 2 else "food"
        rows.append({"ext_id": f"d{i}", "annotator": "", "label": topic})
        texts[f"d{i}"] = f"{words[topic]} {i}"
    report, agreement, consensus, suspects, given = label_report(pd.DataFrame(rows), texts, 10, 0, "c")
    assert agreement is None and len(consensus) == 0 and len(given) == 40
    assert any("no per-annotator rows" in n for n in report["notes"])
    assert list(suspects.columns) == ["ext_id", "given", "suggested", "score", "rank"]


def test_conflicts_among_exact_and_near_duplicates():
    groups = pd.DataFrame({"ext_id": ["a", "b", "c", "d", "e"], "label": ["x", "y", "x", "x", "z"],
                           "cluster_id": [-1, -1, 7, 7, 9], "content_hash": ["h", "h", "k", "m", "n"]})
    out = conflicts(groups)
    assert out[["kind", "ext_ids", "labels"]].values.tolist() == [["exact", '["a", "b"]', '["x", "y"]']]


def test_auto_slices_length_label_and_source():
    items = pd.DataFrame({"input": ["a", "a b c d", "a b c d e f g h"], "target": ["p", "q", "p"],
                          "slices": [["s"], [], []], "meta": [{"source": "web"}, {}, {}]})
    out = auto_slices(items)
    assert out[0] == ["s", "length:short", "label:p", "source:web"]
    assert out[2][0] == "length:long"


def test_regressions_and_flips():
    merged = pd.DataFrame({"id": ["a", "b", "c"], "score": [1.0, 0.0, 1.0], "passed": [True, False, True],
                           "slices": [["x"], ["x"], []]})
    prev = pd.DataFrame({"id": ["a", "b", "c"], "score": [1.0, 1.0, 0.0], "passed": [True, True, False]})
    reg, flips = regressions(merged, prev, {"all": {}, "x": {}}, None, 200)
    assert flips == {"pass_to_fail": ["b"], "fail_to_pass": ["c"]}
    assert reg["all"]["diff"] == 0.0 and reg["x"]["diff"] == -0.5


def test_suggest_fix():
    assert suggest_fix("few", [], "p") == "add training data like this item"
    assert suggest_fix("some", [{"label": "q", "similarity": 0.5}], "p").startswith("check the labels")
    assert suggest_fix("some", [{"label": "q", "similarity": 0.1}], "p").startswith("similar data exists")


def test_merge_decisions_keeps_one_per_group_and_names_keepers():
    dec = SimpleNamespace(doc_id=np.array([5, 6]), keep=np.array([True, False]), matched_doc=np.array([-1, 5]),
                          similarity=np.array([np.nan, 0.9]), cluster_id=np.array([5, 5]))
    decisions, pairs = merge_decisions(np.array([2, 3]), np.array([1, 5]), dec, np.array([[5, 6]]), np.array([0.9]))
    keep = dict(zip(decisions["doc_id"].tolist(), decisions["keep"].tolist()))
    assert keep == {2: False, 3: False, 1: True, 5: True, 6: False}
    assert list(zip(pairs["doc_a"].tolist(), pairs["doc_b"].tolist(), pairs["kind"].tolist())) == [
        (1, 2, "exact"), (5, 3, "exact"), (5, 6, "near")]

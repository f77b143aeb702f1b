"""Hard-set evaluation: CI coverage, contamination, regressions and flips, gates, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsets.contamination import ngram_overlap
from evalsets.gates import check_gates, load_gates
from evalsets.metrics import exact_match, token_f1
from evalsets.sets import EvalInputError, load_eval_set, load_predictions
from evalsets.stats import bootstrap_ci, paired
from flows.eval_task import evaluate
from taomi.cli import app
from taomi.demo_data import DemoConfig, generate

runner = CliRunner()


def test_bootstrap_ci_covers_truth_at_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    reps = 300
    for r in range(reps):
        x = (rng.random(200) < 0.7).astype(float)
        lo, hi = bootstrap_ci(x, n_boot=1000, seed=r)
        hits += lo <= 0.7 <= hi
    assert 0.91 <= hits / reps <= 0.98, hits / reps


def test_paired_difference():
    cur = np.array([1, 1, 0, 1, 1, 1, 0, 1.0] * 20)
    prev = np.array([1, 0, 0, 1, 0, 1, 0, 1.0] * 20)
    p = paired(cur, prev, 500)
    assert p["diff"] == pytest.approx(0.25) and p["ci"][0] > 0


def test_metrics():
    assert exact_match("The Answer!", "answer") == 1.0
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)


@pytest.mark.parametrize(("pred", "target", "em", "f1"), [
    ("北京是中国的首都。", "北京", 0.0, 2 * (2 / 8) * 1 / (2 / 8 + 1)),  # characters are the tokens (MLQA's zh)
    ("北京。", "北京", 1.0, 1.0),  # CJK punctuation is punctuation
    ("「東京」です", "東京", 0.0, 2 * (2 / 4) / (2 / 4 + 1)),
    ("서울특별시", "서울", 0.0, 2 * (2 / 5) / (2 / 5 + 1)),  # KorQuAD scores Korean by character
    ("กรุงเทพมหานคร", "กรุงเทพ", 0.0, 2 * (7 / 13) / (7 / 13 + 1)),
    ("don’t stop", "dont stop", 1.0, 1.0),  # a curly apostrophe is punctuation too
    ("Paris, France", "paris", 0.0, 2 * 0.5 / 1.5),  # space-delimited text: unchanged
])
def test_metrics_in_every_script(pred, target, em, f1):
    """On whitespace tokens a Chinese, Japanese, Korean or Thai answer was one token, so F1 was
    exact match; and '。' or '」' were not punctuation, so exact match failed on them."""
    assert exact_match(pred, target) == em
    assert token_f1(pred, target) == pytest.approx(f1)


def test_planted_contamination_found_clean_not():
    train = ["the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn at dawn",
             "completely unrelated text about baking bread with flour water salt and yeast in a hot oven"]
    items = ["quiz: the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn? yes",
             "a fresh question about rivers mountains and valleys that appears in no training document at all here",
             "too short"]
    out = ngram_overlap(items, [(np.array([10, 11]), train)])
    assert out[0]["status"] == "contaminated" and out[0]["matched_docs"] == [10]
    assert out[0]["spans"] and "quick brown fox" in out[0]["spans"][0]["text"]
    assert out[1]["status"] == "clean" and out[1]["matched_docs"] == []
    assert out[2]["status"] == "too_short"


@pytest.fixture(scope="module")
def evalenv(tmp_path_factory, ingest_files):
    out = tmp_path_factory.mktemp("ev")
    s = generate(out, DemoConfig(docs=800, seed=9, words_mean=100))
    db = str(out / "e.duckdb")
    ingest_files(db, [s["corpus"]], "train")
    return {"db": db, "s": s, "out": out, "truth": json.loads(Path(s["truth"]).read_text())["eval"]}


def test_evaluate_end_to_end_with_regression_gates_and_report(evalenv):
    s, db = evalenv["s"], evalenv["db"]
    r1 = evaluate(db, s["eval_set"], s["predictions_previous"], "v1", "accuracy", "train", None, None, n_boot=300)
    assert r1["previous_run"] is None and r1["regression"] is None
    found = {i["id"] for i in r1["contamination"]["items"]}
    assert found == set(evalenv["truth"]["contaminated"])
    assert r1["slices"]["clean"]["n"] == r1["slices"]["all"]["n"] - len(found)
    r2 = evaluate(db, s["eval_set"], s["predictions_current"], "v2", "accuracy", "train", s["gates"],
                  evalenv["out"] / "report", n_boot=300)
    weak = f"label:{evalenv['truth']['regressed_label']}"
    assert r2["previous_run"] == r1["run_id"]
    assert r2["regression"][weak]["diff"] < 0 and r2["regression"][weak]["ci"][1] < 0
    prev = {p["id"]: p["prediction"] for p in map(json.loads, Path(s["predictions_previous"]).read_text().splitlines())}
    cur = {p["id"]: p["prediction"] for p in map(json.loads, Path(s["predictions_current"]).read_text().splitlines())}
    items = {i["id"]: i["target"] for i in map(json.loads, Path(s["eval_set"]).read_text().splitlines())}
    expect = sorted(i for i in items if prev[i] == items[i] and cur[i] != items[i])
    assert sorted(r2["flips"]["pass_to_fail"]) == expect
    assert any(g["slice"] == weak and not g["passed"] for g in r2["gates"])
    assert r2["failures"] and all(f["coverage"] in ("few", "many") for f in r2["failures"])
    html = Path(r2["files"]["html"]).read_text()
    assert html.count("data:image/png;base64,") == 2 and "gate(s) failed" in html and weak in html
    j = json.loads(Path(r2["files"]["json"]).read_text())
    assert j["eval_set_hash"] and j["run_id"] == r2["run_id"] and "contamination" in j


def test_cli_failed_gate_exits_nonzero(evalenv, tmp_path):
    s = evalenv["s"]
    gates = tmp_path / "g.toml"
    gates.write_text('[[gate]]\nname = "impossible"\nslice = "all"\nmetric_min = 0.999\naction = "block"\n')
    res = runner.invoke(app, ["--db", evalenv["db"], "eval", s["eval_set"], s["predictions_current"], "--metric",
                              "accuracy", "--gates", str(gates), "--out", str(tmp_path / "r")])
    assert res.exit_code == 3
    assert "GATE FAILED: impossible on slice 'all'" in res.stderr and "block the release" in res.stderr


def test_bad_inputs(evalenv, tmp_path):
    s = evalenv["s"]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "prediction": "x"}\n{"id": "a", "prediction": "y"}\n')
    with pytest.raises(EvalInputError, match="line 2: field 'id': 'a' repeats line 1"):
        load_predictions(dup)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(EvalInputError, match="no predictions"):
        load_predictions(empty)
    unknown = tmp_path / "unknown.jsonl"
    lines = Path(s["predictions_current"]).read_text().splitlines()[:-5] + ['{"id": "not-in-set", "prediction": "x"}']
    unknown.write_text("\n".join(lines) + "\n")
    r = evaluate(evalenv["db"], s["eval_set"], unknown, "partial", "accuracy", n_boot=100, set_name="other")
    assert r["prediction_issues"]["unknown_ids"] == ["not-in-set"]
    assert len(r["prediction_issues"]["missing_ids"]) == 5
    noslice = tmp_path / "noslice.jsonl"
    noslice.write_text("\n".join(json.dumps({"id": str(i), "input": f"q {i}", "target": "a"}) for i in range(6)) + "\n")
    es = load_eval_set(noslice)
    assert es.items["slices"].map(len).sum() == 0
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps({"id": str(i), "prediction": "a" if i % 2 else "b"}) for i in range(6)) + "\n")
    r = evaluate(evalenv["db"], noslice, preds, "m", "exact_match", n_boot=100)
    assert r["slices"]["all"]["metric"] == pytest.approx(0.5)
    bad_gate = tmp_path / "bad.toml"
    bad_gate.write_text('[[gate]]\nname = "ghost"\nslice = "nope"\nmetric_min = 0.5\n')
    with pytest.raises(EvalInputError, match="gate 'ghost' names unknown slice 'nope'"):
        check_gates(load_gates(bad_gate), r["slices"], None)
    res = runner.invoke(app, ["--db", evalenv["db"], "eval", str(noslice), str(preds), "--gates", str(bad_gate),
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown slice 'nope'" in res.stderr
    missing_field = tmp_path / "mf.jsonl"
    missing_field.write_text('{"id": "1", "input": "x"}\n')
    with pytest.raises(EvalInputError, match="line 1: field 'target' is missing"):
        load_eval_set(missing_field)


def test_hardset_build(evalenv, tmp_path):
    res = runner.invoke(app, ["--db", evalenv["db"], "hardset", "build", "hard", "--from", "failures", "--out",
                              str(tmp_path / "hard.jsonl"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["items"] > 0 and (tmp_path / "hard.jsonl").exists()
    res = runner.invoke(app, ["--db", evalenv["db"], "hardset", "build", "h2", "--from", "suspects"])
    assert res.exit_code == 2 and "needs --corpus" in res.stderr

"""lm-evaluation-harness `--log_samples` files are read as they are, and a predictions file's
numeric score is the item's metric. The fixture writes samples the way the harness's
EvaluationTracker.save_results_samples does (arguments as gen_args_i/arg_j, target as a string,
sanitised resps, one line per (doc, filter), metric values as fields)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsets.harness import detect_format, load_harness_samples
from evalsets.sets import EvalInputError
from flows.eval_task import evaluate


def harness_line(doc_id: int, doc: dict, target, requests: list[tuple], resps: list, filtered: list, filt: str,
                 metrics: dict) -> str:
    """One sample as lm_eval's evaluator builds it and the tracker writes it (releases >= 0.4.3)."""
    sample = {"doc_id": doc_id, "doc": doc, "target": target, "arguments": [list(r) for r in requests],
              "resps": resps, "filtered_resps": filtered, "filter": filt, "metrics": list(metrics),
              "doc_hash": f"{doc_id:064x}", "prompt_hash": f"{doc_id + 1:064x}", "target_hash": f"{doc_id + 2:064x}"}
    sample.update(metrics)
    sample["arguments"] = {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)}
                           for i, arg in enumerate(sample["arguments"])}
    sample["target"] = str(sample["target"])
    return json.dumps(sample, ensure_ascii=False) + "\n"


def humaneval(folder: Path, n: int = 40) -> Path:
    out = folder / "pretrained__tiny-coder"
    out.mkdir(parents=True, exist_ok=True)
    p = out / "samples_humaneval_2026-12-01T10-11-12.123456.jsonl"
    lines = []
    for i in range(n):
        doc = {"task_id": f"HumanEval/{i}", "prompt": f"def f{i}(x):\n    \"\"\"Return x plus {i}.\"\"\"\n",
               "canonical_solution": f"    return x + {i}\n", "test": f"def check(c):\n    assert c(1) == {1 + i}\n",
               "entry_point": f"f{i}"}
        gen = f"    return x + {i if i % 4 else i + 1}\n"
        lines.append(harness_line(i, doc, doc["test"] + f"\ncheck({doc['entry_point']})", [(doc["prompt"], {"until": ["\nclass"]})],
                                  [[gen]], [[doc["prompt"] + gen]], "create_test", {"pass@1": float(i % 4 != 0)}))
    p.write_text("".join(lines))
    return p


def arc(folder: Path, n: int = 60) -> Path:
    p = folder / "samples_arc_easy_2026-12-01T10-11-12.jsonl"
    lines = []
    for i in range(n):
        choices = ["red", "green", "blue", "black"]
        gold = i % 4
        doc = {"id": f"Mercury_{i}", "question": f"Question {i}: which colour?", "subject": ["physics", "biology"][i % 2],
               "choices": {"text": choices, "label": list("ABCD")}, "answerKey": "ABCD"[gold]}
        ctx = f"Question: {doc['question']}\nAnswer:"
        best = gold if i % 3 else (gold + 1) % 4
        lls = [[-5.0 + (2.0 if k == best else 0.0), k == best] for k in range(4)]
        lines.append(harness_line(i, doc, gold, [(ctx, f" {c}") for c in choices], [[x] for x in lls], lls, "none",
                                  {"acc": float(best == gold), "acc_norm": float(best == gold)}))
    p.write_text("".join(lines))
    return p


def gsm8k(folder: Path, n: int = 30) -> Path:
    """Two lines per document, one per filter, as the harness writes GSM8K."""
    p = folder / "samples_gsm8k.jsonl"
    lines = []
    for i in range(n):
        doc = {"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"}
        gen = f"The answer is {2 * i}. #### {2 * i if i % 5 else 0}"
        for filt, got in (("strict-match", str(2 * i) if i % 5 else "0"), ("flexible-extract", str(2 * i))):
            lines.append(harness_line(i, doc, doc["answer"], [(doc["question"], {"until": ["Question:"]})],
                                      [[gen]], [got], filt, {"exact_match": float(got == str(2 * i))}))
    p.write_text("".join(lines))
    return p


def test_generation_task_keeps_every_field_and_uses_the_harness_metric(tmp_path):
    p = humaneval(tmp_path)
    assert detect_format(p) == "lm-eval"
    es, preds, info = load_harness_samples(p)
    assert info["task"] == "humaneval" and info["metric"] == "pass@1" and info["filter"] == "create_test"
    assert es.name == "humaneval" and len(es.items) == 40
    doc = es.items.iloc[3]["meta"]["doc"]
    assert doc["entry_point"] == "f3" and "assert c(1) == 4" in doc["test"]  # nothing of the item is lost
    assert es.items.iloc[3]["input"].startswith("def f3(x):")
    assert preds["score"].tolist() == [float(i % 4 != 0) for i in range(40)]


def test_multiple_choice_answer_is_the_likeliest_choice_and_fields_become_slices(tmp_path):
    es, preds, info = load_harness_samples(arc(tmp_path))
    assert info["metrics"] == ["acc", "acc_norm"] and info["metric"] == "acc"
    assert preds.loc[1, "prediction"] == "1" and preds.loc[3, "prediction"] == "0"  # item 3: wrong choice 0
    assert "subject:physics" in es.items.iloc[0]["slices"] and "subject:biology" in es.items.iloc[1]["slices"]
    assert not any(s.startswith(("id:", "question:")) for s in es.items.iloc[0]["slices"])  # unique fields are not slices
    assert es.items.iloc[0]["meta"]["choices"] == [" red", " green", " blue", " black"]
    _, p2, i2 = load_harness_samples(arc(tmp_path), metric="acc_norm")
    assert i2["metric"] == "acc_norm" and p2["score"].sum() == preds["score"].sum()


def test_filters_metrics_and_bad_lines_are_named(tmp_path):
    p = gsm8k(tmp_path)
    _, strict, info = load_harness_samples(p)
    assert info["filters"] == ["strict-match", "flexible-extract"] and info["filter"] == "strict-match"
    _, flex, _ = load_harness_samples(p, filter_name="flexible-extract")
    # i % 5 == 0 fails the strict filter, except i = 0
    assert strict["score"].mean() == pytest.approx(25 / 30) and flex["score"].mean() == 1.0
    with pytest.raises(EvalInputError, match="no samples with filter 'x'; filters in the file: strict-match, "):
        load_harness_samples(p, filter_name="x")
    with pytest.raises(EvalInputError, match=r"line 1: field 'pass@1' is missing; metrics in the file: exact_match"):
        load_harness_samples(p, metric="pass@1")
    bleu = tmp_path / "samples_wmt_2026-01-01T00-00-00.jsonl"
    bleu.write_text(harness_line(0, {"src": "a"}, "b", [("a", {})], [["b"]], ["b"], "none", {"bleu": ["b", "b"]}))
    with pytest.raises(EvalInputError, match="line 1: field 'bleu' is not a per-item number .* aggregated"):
        load_harness_samples(bleu, metric="bleu")
    bad = tmp_path / "samples_x.jsonl"
    bad.write_text(p.read_text().splitlines()[0] + "\n{\"doc_id\": 1}\n")
    with pytest.raises(EvalInputError, match="line 2: not an lm-evaluation-harness sample"):
        load_harness_samples(bad)


def test_older_harness_releases_wrote_arguments_as_lists(tmp_path):
    p = tmp_path / "samples_boolq_2023-09-01T00-00-00.jsonl"
    rec = {"doc_id": 0, "doc": {"passage": "p", "question": "q?"}, "target": 1,
           "arguments": [["p\nQuestion: q?\nAnswer:", " no"], ["p\nQuestion: q?\nAnswer:", " yes"]],
           "resps": [[[-2.0, False]], [[-1.0, True]]], "filtered_resps": [[-2.0, False], [-1.0, True]], "acc": 1.0}
    p.write_text(json.dumps(rec) + "\n")
    es, preds, info = load_harness_samples(p)
    assert es.items.iloc[0]["input"].endswith("Answer:") and preds.loc[0, "prediction"] == "1"
    assert info["metric"] == "acc" and preds.loc[0, "score"] == 1.0


def test_eval_of_a_harness_file_end_to_end(tmp_path, taomi_cli):
    p = humaneval(tmp_path)
    db = tmp_path / "h.duckdb"
    r = evaluate(str(db), p, None, outdir=tmp_path / "rep", n_boot=100)
    assert r["format"] == "lm-eval" and r["model"] == "pretrained__tiny-coder" and r["metric"] == "pass@1"
    assert r["slices"]["all"]["metric"] == pytest.approx(30 / 40)
    res = taomi_cli("--db", str(db), "eval", str(p), "--out", str(tmp_path / "rep2"), "--quiet")
    assert res.code == 0, res.output
    assert "read as lm-eval (task humaneval, filter create_test, per-item metrics: pass@1)" in res.output
    assert "pass@1 0.7500" in res.output
    res = taomi_cli("--db", str(db), "eval", str(p), str(p), "--out", str(tmp_path / "rep3"))
    assert res.code == 2 and "give no predictions file" in res.output


def test_a_predictions_files_score_is_the_items_metric(tmp_path, taomi_cli):
    es = tmp_path / "set.jsonl"
    es.write_text("".join(json.dumps({"id": f"q{i}", "input": f"question {i}", "target": "x"}) + "\n" for i in range(10)))
    preds = tmp_path / "judge.jsonl"
    preds.write_text("".join(json.dumps({"id": f"q{i}", "prediction": "", "score": i / 10}) + "\n" for i in range(10)))
    r = evaluate(str(tmp_path / "s.duckdb"), es, preds, n_boot=100)
    assert r["metric"] == "score" and r["scores_from"] == "the predictions file's score field"
    assert r["slices"]["all"]["metric"] == pytest.approx(0.45)  # not 0.0 from the empty predictions
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({"id": "q0", "prediction": "x", "score": 1}) + "\n"
                     + json.dumps({"id": "q1", "prediction": "x"}) + "\n")
    res = taomi_cli("--db", str(tmp_path / "s.duckdb"), "eval", str(es), str(mixed), "--out", str(tmp_path / "r"))
    assert res.code == 2 and "line 2: field 'score' is missing here but given on line 1" in res.output
    res = taomi_cli("--db", str(tmp_path / "s.duckdb"), "eval", str(es), "--out", str(tmp_path / "r"))
    assert res.code == 2 and "needs a predictions file" in res.output


def test_a_hard_set_keeps_every_field_and_goes_back_to_the_harness(tmp_path, taomi_cli):
    """Harness samples -> eval -> hard set of the failures -> an lm-eval custom task (JSONL + YAML)
    whose rows are the original HumanEval documents, test and entry_point included."""
    import yaml
    from datasets import load_dataset

    p = humaneval(tmp_path)
    db = str(tmp_path / "rt.duckdb")
    evaluate(db, p, None, n_boot=50)
    r = taomi_cli("--db", db, "hardset", "build", "hard_he", "--from", "failures", "--out", str(tmp_path / "hard.jsonl"))
    assert r.code == 0, r.output
    items = [json.loads(x) for x in (tmp_path / "hard.jsonl").read_text().splitlines()]
    assert len(items) == 10  # the ten items with pass@1 = 0
    doc = items[0]["metadata"]["doc"]
    assert set(doc) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
    assert items[0]["metadata"]["source_set"] == "humaneval" and "origin:failed-last-run" in items[0]["slices"]
    r = taomi_cli("--db", db, "hardset", "export", "hard_he", "--out", str(tmp_path / "task"), "--json")
    assert r.code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "task" / "hard_he.yaml").read_text())
    assert cfg["task"] == "hard_he" and cfg["dataset_path"] == "json" and cfg["test_split"] == "test"
    assert cfg["output_type"] == "generate_until" and cfg["doc_to_text"] == "{{input}}"
    data = cfg["dataset_kwargs"]["data_files"]["test"]
    ds = load_dataset("json", data_files={"test": data}, split="test")  # what the harness does with it
    assert len(ds) == 10 and ds[0]["entry_point"] == doc["entry_point"] and ds[0]["test"] == doc["test"]
    assert ds[0]["prompt"] == doc["prompt"] and ds[0]["taomi_id"] == items[0]["id"]
    base = tmp_path / "humaneval.yaml"
    base.write_text("task: humaneval\ndataset_path: openai/openai_humaneval\noutput_type: generate_until\n")
    r = taomi_cli("--db", db, "hardset", "export", "hard_he", "--out", str(tmp_path / "task2"), "--include", str(base))
    cfg = yaml.safe_load((tmp_path / "task2" / "hard_he.yaml").read_text())
    assert cfg["include"] == str(base.resolve()) and "doc_to_text" not in cfg and cfg["dataset_path"] == "json"
    r = taomi_cli("--db", db, "hardset", "export", "nope", "--out", str(tmp_path / "task3"))
    assert r.code == 2 and "no stored eval set or hard set named 'nope'" in r.output

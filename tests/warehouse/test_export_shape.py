"""Export that trainers load (issue 23, item 6): shards cut by rows or by bytes of text, whichever
first; Hub-style names; Parquet row groups of a bounded size; `datasets.load_dataset("parquet",
data_dir=OUTDIR)` reads the export back in curriculum order."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest


def test_shard_bounds_cut_by_rows_or_bytes_whichever_first():
    from curation.shards import parse_bytes, shard_bounds

    sizes = np.array([10, 10, 50, 10, 200, 10, 10])
    assert shard_bounds(sizes, 3) == [(0, 3), (3, 6), (6, 7)]
    assert shard_bounds(sizes, 3, 60) == [(0, 2), (2, 4), (4, 5), (5, 7)]  # the 200-byte document alone
    assert shard_bounds(sizes, 100, 1) == [(i, i + 1) for i in range(7)]
    assert shard_bounds(np.array([], dtype=int), 5, 10) == []
    assert parse_bytes("256MB") == 256 << 20 and parse_bytes("1.5G") == 3 << 29 and parse_bytes(4096) == 4096
    for bad in ("lots", "-1MB", "0"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_an_export_is_read_back_by_datasets_in_curriculum_order(tmp_path, sample, taomi_cli, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"]).code == 0
    assert taomi_cli("--db", db, "curriculum", "c", "--quiet").code == 0
    out = tmp_path / "export"
    r = taomi_cli("--db", db, "export", "c", out, "--shard-bytes", "40KB", "--quiet", "--json")
    assert r.code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    names = [s["file"] for s in manifest["shards"]]
    n = len(names)
    assert n > 3 and all(re.fullmatch(rf"train-{i:05d}-of-{n:05d}-[0-9a-f]{{8}}\.parquet", x) for i, x in enumerate(names))
    texts = [pq.read_table(out / x, columns=["text"]).column(0).to_pylist() for x in names]
    assert all(sum(len(t.encode()) for t in shard) <= 40 << 10 or len(shard) == 1 for shard in texts)
    ds = load_dataset("parquet", data_dir=str(out), split="train")
    assert ds["position"] == list(range(manifest["documents"]))  # curriculum order, shard after shard
    assert ds["text"] == [t for shard in texts for t in shard]


def test_parquet_row_groups_are_bounded(tmp_path, sample, monkeypatch, taomi_cli):
    import warehouse.export_store as es

    monkeypatch.setattr(es, "ROW_GROUP_BYTES", 20_000)
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"]).code == 0
    assert taomi_cli("--db", db, "export", "c", tmp_path / "o", "--order", "random", "--quiet").code == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    pf = pq.ParquetFile(tmp_path / "o" / manifest["shards"][0]["file"])
    assert pf.metadata.num_row_groups > 1
    # each row group holds at most ROW_GROUP_BYTES of text (a longer document alone): a shard is
    # written batch by batch, never held whole
    for i in range(pf.metadata.num_row_groups):
        texts = pf.read_row_group(i, columns=["text"]).column("text").to_pylist()
        assert len(texts) == 1 or sum(len(t.encode()) for t in texts) <= 20_000
    assert sum(pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)) == manifest["shards"][0]["rows"]
    # the text column is written without dictionary or min/max statistics (both copy every
    # value: +670 MB for one 130 MB text); the other columns keep them
    meta = pf.metadata.row_group(0)
    cols = {meta.column(j).path_in_schema: meta.column(j) for j in range(meta.num_columns)}
    assert cols["text"].statistics is None and not any("DICT" in e for e in cols["text"].encodings)
    assert cols["position"].statistics is not None and cols["id"].statistics is not None


def test_shards_cut_by_tokens_use_the_stored_counts(tmp_path, sample, taomi_cli):
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"], "--tokenizer", "none").code == 0
    r = taomi_cli("--db", db, "export", "c", tmp_path / "a", "--order", "random", "--shard-tokens", "5000")
    assert r.code == 2 and "taomi tokens c" in r.err, r.output
    assert taomi_cli("--db", db, "tokens", "c", "--quiet").code == 0
    r = taomi_cli("--db", db, "export", "c", tmp_path / "a", "--order", "random", "--shard-tokens", "5000",
                  "--quiet", "--json")
    assert r.code == 0, r.output
    from curation.tokens import Tokenizer

    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["tokenizer"] == "cl100k_base" and manifest["shard_tokens"] == 5000
    tok = Tokenizer("cl100k_base")
    per_shard = [int(tok.count(pq.read_table(tmp_path / "a" / s["file"], columns=["text"]).column(0).to_pylist()).sum())
                 for s in manifest["shards"]]
    assert len(per_shard) > 3 and all(n <= 5000 for n in per_shard)
    r = taomi_cli("--db", db, "export", "c", tmp_path / "b", "--shard-tokens", "10", "--shard-bytes", "1MB")
    assert r.code == 2 and "not both" in r.err


def test_long_texts_are_written_piece_by_piece_as_the_same_json_lines(tmp_path, monkeypatch, taomi_cli):
    """A text over LONG_CHARS goes from DuckDB to the JSON line in pieces (issue 28: a 100 MB
    document built whole took 2 GB): the file must be byte-identical to the whole-row path, with
    quotes, backslashes, control characters, U+2028, astral and CJK characters cut at any piece
    boundary, with and without metadata, and texts exactly on a piece's length."""
    import warehouse.export_store as es

    odd = 'a"b\\c\nd\te\x01f\u2028g😀h漢字カナ한글ไทย '
    docs = [{"id": "long", "text": (odd * 40)[:997], "meta": {"source": "x", "n": 1.5}},
            {"id": "exact", "text": ("xy" * 500)[:100]},
            {"id": "short", "text": "tiny", "meta": {"source": "y"}},
            {"id": "edge", "text": odd * 9}]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", src, "--tokenizer", "none").code == 0

    def export(name):
        r = taomi_cli("--db", db, "export", "c", tmp_path / name, "--format", "jsonl", "--order", "random",
                      "--quiet", "--json")
        assert r.code == 0, r.output
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        return b"".join((tmp_path / name / s["file"]).read_bytes() for s in manifest["shards"])

    whole = export("whole")
    seen = []
    real = es._text_pieces

    def counted(con, doc_id):
        for piece in real(con, doc_id):
            seen.append(len(piece))
            yield piece

    monkeypatch.setattr(es, "LONG_CHARS", 50)
    monkeypatch.setattr(es, "PIECE_CHARS", 25)
    monkeypatch.setattr(es, "_text_pieces", counted)
    pieces = export("pieces")
    assert pieces == whole
    assert len(seen) > 40 and 0 in seen  # the 100-character text ends on a piece boundary
    rows = [json.loads(line) for line in pieces.decode().split("\n") if line]
    assert sorted(r["text"] for r in rows) == sorted(d["text"] for d in docs)


def test_token_counts_reach_the_export(tmp_path, taomi_cli, monkeypatch):
    """Stages hand on what they learn: each exported document carries its stored token count
    (`n_tokens`, the corpus's tokenizer named in the manifest), each shard and the manifest their
    totals, equal to what `stats` says is left for training. A document counted under no
    tokenizer has a null count and leaves its shard's total unknown, not short; a metadata field
    named n_tokens is kept as `meta_n_tokens`; a corpus never counted has no such column."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    from curation.tokens import Tokenizer

    texts = ["数据清洗是训练语言模型的第一步。" * 30, "The quick brown fox jumps over the lazy dog. " * 40,
             "ภาษาไทยไม่มีช่องว่างระหว่างคำ " * 20, "短い日本語の文です。", "x", "한국어 문장입니다. " * 15]
    first = tmp_path / "a.jsonl"
    first.write_text("".join(json.dumps({"id": f"a{i}", "text": t, "n_tokens": "mine", "source": "web"},
                                        ensure_ascii=False) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", first, "--quiet").code == 0
    r = taomi_cli("--db", db, "export", "c", tmp_path / "o", "--order", "random", "--shard-size", "4", "--quiet",
                  "--json")
    assert r.code == 0, r.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    tok = Tokenizer("cl100k_base")
    ds = load_dataset("parquet", data_dir=str(tmp_path / "o"), split="train")
    assert ds["n_tokens"] == [int(n) for n in tok.count(ds["text"])] and ds["meta_n_tokens"] == ["mine"] * 6
    assert manifest["tokenizer"] == "cl100k_base" and manifest["documents_without_tokens"] == 0
    assert [s["tokens"] for s in manifest["shards"]] == [sum(ds["n_tokens"][:4]), sum(ds["n_tokens"][4:])]
    stats = json.loads(taomi_cli("--db", db, "stats", "c", "--json").out)
    assert manifest["tokens"] == sum(ds["n_tokens"]) == stats["tokens"]["tokens_for_training"]

    # two documents more, not counted: their counts are null, their shard's total unknown
    second = tmp_path / "b.jsonl"
    second.write_text('{"id": "b0", "text": "late one"}\n{"id": "b1", "text": "late two"}\n', encoding="utf-8")
    assert taomi_cli("--db", db, "ingest", "-c", "c", second, "--tokenizer", "none", "--quiet").code == 0
    r = taomi_cli("--db", db, "export", "c", tmp_path / "p", "--order", "random", "--format", "jsonl",
                  "--shard-size", "4", "--quiet", "--json")
    assert r.code == 0, r.output
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    rows = [json.loads(line) for s in manifest["shards"]
            for line in (tmp_path / "p" / s["file"]).read_text(encoding="utf-8").splitlines()]
    late = {r["id"] for r in rows if r["n_tokens"] is None}
    assert late == {"b0", "b1"} and manifest["documents_without_tokens"] == 2
    assert manifest["tokens"] == sum(r["n_tokens"] for r in rows if r["n_tokens"] is not None)
    for k, s in enumerate(manifest["shards"]):
        part = rows[4 * k:4 * k + 4]
        assert s["tokens"] == (None if any(r["n_tokens"] is None for r in part) else sum(r["n_tokens"] for r in part))

    # a corpus never counted: no column, no tokenizer
    assert taomi_cli("--db", db, "ingest", "-c", "d", second, "--tokenizer", "none", "--quiet").code == 0
    assert taomi_cli("--db", db, "export", "d", tmp_path / "q", "--order", "random", "--quiet").code == 0
    manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert "tokenizer" not in manifest and "tokens" not in manifest["shards"][0]
    assert "n_tokens" not in pq.read_schema(tmp_path / "q" / manifest["shards"][0]["file"]).names

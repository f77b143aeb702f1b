"""`taomi stats --plot` (issue 23 item 5): a length histogram in tokens per source, counted in
DuckDB, drawn with fonts for every script, never over a user's file."""

from __future__ import annotations

import json

import numpy as np


def _corpus(tmp_path, sources: dict[str, int]) -> str:
    rng = np.random.default_rng(0)
    rows = []
    for name, n in sources.items():
        for i in range(n):
            words = int(rng.lognormal(4, 1.2)) + 1
            rows.append({"text": " ".join(f"w{j % 97}" for j in range(words)) + f" {name} {i}",
                         "metadata": {"source": name}})
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(src)


def test_the_histogram_counts_every_document_in_its_quarter_octave(tmp_path, taomi_cli):
    from warehouse.corpora import length_histogram
    from warehouse.db import connect

    sources = {"web": 60, "书籍": 40, "ข่าว": 25, "a": 5, "b": 4, "c": 3}
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", _corpus(tmp_path, sources)).code == 0
    con = connect(db, read_only=True)
    try:
        hist = length_histogram(con, "c", "source", "cl100k_base", top=4)
        n = con.execute("""SELECT json_extract_string(d.meta, '$.source'), t.n_tokens FROM documents d
                           JOIN doc_tokens t ON t.doc_id = d.doc_id AND t.tokenizer = 'cl100k_base'""").fetchall()
        chars = length_histogram(con, "c", None, None)
    finally:
        con.close()
    assert int(hist["documents"].sum()) == sum(sources.values())
    assert list(dict.fromkeys(hist["value"])) == ["web", "书籍", "ข่าว", "a", "(other)"]  # the top 4, then the rest
    for value, tokens in (("web", [t for s, t in n if s == "web"]), ("(other)", [t for s, t in n if s in "bc"])):
        want = np.bincount(np.floor(4 * np.log2(np.maximum(tokens, 1))).astype(int))
        got = hist[hist["value"] == value]
        assert dict(zip(got["bin"], got["documents"])) == {b: c for b, c in enumerate(want) if c}
    assert set(chars["value"]) == {"(all)"} and int(chars["documents"].sum()) == sum(sources.values())


def test_stats_plot_writes_a_png_and_never_over_a_users_file(tmp_path, taomi_cli):
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", _corpus(tmp_path, {"web": 30, "书籍": 20})).code == 0
    r = taomi_cli("--db", db, "stats", "c", "--plot", tmp_path / "len.png", "--json")
    assert r.code == 0, r.output
    info = json.loads(r.output)["plot"]
    assert info["field"] == "source" and info["unit"] == "tokens (cl100k_base)"
    assert [v["value"] for v in info["values"]] == ["web", "书籍"] and sum(v["documents"] for v in info["values"]) == 50
    assert (tmp_path / "len.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert taomi_cli("--db", db, "stats", "c", "--plot", tmp_path / "len.png", "--json").code == 0  # its own file
    mine = tmp_path / "mine.png"
    mine.write_text("a user's file")
    r = taomi_cli("--db", db, "stats", "c", "--plot", mine)
    assert r.code != 0 and "--force" in r.output and mine.read_text() == "a user's file"
    assert taomi_cli("--db", db, "stats", "c", "--plot", mine, "--force").code == 0
    assert mine.read_bytes()[:4] == b"\x89PNG"
    # without token counts the lengths are characters, and the plot says so
    db2 = tmp_path / "w2.duckdb"
    assert taomi_cli("--db", db2, "ingest", "-c", "c", _corpus(tmp_path, {"x": 10}), "--tokenizer", "none").code == 0
    r = taomi_cli("--db", db2, "stats", "c", "--plot", tmp_path / "chars.png", "--json")
    assert r.code == 0 and json.loads(r.output)["plot"]["unit"].startswith("characters")

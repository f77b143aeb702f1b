"""Progress on every long stage (issue 23, item 5): curriculum, export and eval --train-corpus show
a bar per pass over the documents; --quiet and --json silence them (stdout stays one JSON)."""

from __future__ import annotations

import json


def test_long_stages_show_progress_and_quiet_or_json_silence_it(tmp_path, sample, taomi_cli):
    db = tmp_path / "w.duckdb"
    assert taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"]).code == 0
    r = taomi_cli("--db", db, "curriculum", "c")
    assert r.code == 0 and "count n-grams (docs)" in r.out and "score (docs)" in r.out, r.output
    r = taomi_cli("--db", db, "export", "c", tmp_path / "out", "--order", "random", "--shard-size", "100")
    assert r.code == 0 and "write shards (docs)" in r.out, r.output
    args = ["eval", sample["eval_set"], sample["predictions_current"], "--train-corpus", "c", "--out", tmp_path / "rep"]
    r = taomi_cli("--db", db, *args)
    assert r.code in (0, 3) and "contamination scan (docs)" in r.out and "trace index: postings" in r.out, r.output
    quiet = taomi_cli("--db", db, *args, "--quiet", "--force")
    assert quiet.code in (0, 3) and "(docs)" not in quiet.out
    r = taomi_cli("--db", db, "curriculum", "c", "--order", "random", "--json")
    assert r.code == 0 and "(docs)" not in r.out
    json.loads(r.out)

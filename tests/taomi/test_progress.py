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


def test_every_command_that_draws_a_bar_takes_quiet():
    """The class, not the examples: each command function in taomi/ that opens a progress display
    has a --quiet option and passes it on (ingest, dedup, labels, fit and calibrate lacked one)."""
    import ast
    from pathlib import Path

    missing = []
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("taomi").glob("cli*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "make_progress"]
            if not calls or not any(isinstance(d, ast.Attribute) and d.attr == "command" for d in
                                    (x.func if isinstance(x, ast.Call) else x for x in fn.decorator_list)):
                continue
            params = {a.arg for a in fn.args.args}
            passes = all(any(isinstance(k.value, ast.BoolOp) and "quiet" in ast.unparse(k.value)
                             or ast.unparse(k.value).startswith("quiet") for k in c.keywords if k.arg == "quiet")
                         for c in calls)
            if "quiet" not in params or not passes:
                missing.append(f"{path.name}:{fn.name}")
    assert not missing, missing


def test_ingest_and_dedup_quiet(tmp_path, sample, taomi_cli):
    for quiet in (False, True):
        db = tmp_path / f"q{int(quiet)}.duckdb"
        r = taomi_cli("--db", db, "ingest", "-c", "c", sample["corpus"], *(["--quiet"] if quiet else []))
        assert r.code == 0 and "tokens (cl100k_base):" in r.out
        assert ("count tokens (cl100k_base)" in r.out) != quiet, r.out
        r = taomi_cli("--db", db, "dedup", "c", *(["--quiet"] if quiet else []))
        assert r.code == 0 and "documents in ->" in r.out and ("sign (docs)" in r.out) != quiet, r.out

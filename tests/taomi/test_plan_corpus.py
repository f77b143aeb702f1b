"""Plans see the corpus (issue 25, item 1): the unique tokens of a curated corpus come from its
stored token counts, after dedup and decontamination, through the CLI, HTTP and the pure answer."""

from __future__ import annotations

import json

import pytest

from flows.plan_task import answer, corpus_tokens
from scaling.planning import PlanRequest
from warehouse.db import session


@pytest.fixture(scope="module")
def curated(tmp_path_factory, sample):
    from dedup.config import DedupConfig
    from flows.decontam_task import decontaminate, register
    from flows.dedup_task import dedup_corpus
    from flows.tokens_task import count_tokens
    from warehouse.ingest import IngestConfig, ingest_paths

    t = tmp_path_factory.mktemp("plancorpus")
    db = str(t / "p.duckdb")
    with session(db) as con:
        ingest_paths(con, [sample["corpus"]], IngestConfig("c"))
    count_tokens(db, "c", "cl100k_base")
    dedup_corpus(db, "c", DedupConfig())
    register(db, "qa", sample["eval_set"])
    decontaminate(db, "c")
    return db


def test_corpus_tokens_are_the_kept_clean_documents_stored_counts(curated):
    with session(curated, read_only=True) as con:
        d = corpus_tokens(con, "c")
        kept_clean = con.execute("""
            SELECT sum(t.n_tokens) FROM documents d JOIN doc_tokens t ON t.doc_id = d.doc_id
            WHERE d.corpus = 'c' AND t.tokenizer = 'cl100k_base'
              AND d.doc_id NOT IN (SELECT doc_id FROM dedup_decisions WHERE NOT keep)
              AND d.doc_id NOT IN (SELECT doc_id FROM contamination_hits)""").fetchall()[0][0]
    assert d["unique_tokens"] == kept_clean and d["tokens"] > d["tokens_deduplicated"] > d["unique_tokens"]
    assert d["documents_decontaminated_out"] > 0 and d["decontaminated"] and d["tokenizer"] == "cl100k_base"
    assert d["runs"]["tokens"] and d["runs"]["dedup"] and d["runs"]["decontaminate"]


def test_stats_say_what_decontamination_left_out_overall_and_per_source(curated, taomi_cli):
    """`stats` and `stats --by` give the tokens left for training (kept by dedup, not flagged: the
    plan's count, what export writes) and the flagged documents, per value too; before, they
    stopped at dedup and a user could not see the 'unique tokens' a plan used."""
    with session(curated, read_only=True) as con:
        d = corpus_tokens(con, "c")
    r = taomi_cli("--db", curated, "stats", "c", "--json")
    tokens = json.loads(r.out)["tokens"]
    assert tokens["tokens_for_training"] == d["unique_tokens"] < tokens["tokens_kept"]
    assert tokens["documents_decontaminated_out"] == d["documents_decontaminated_out"] > 0 and tokens["decontaminated"]
    field = next(f for f in json.loads(r.out)["metadata_fields"])
    rows = json.loads(taomi_cli("--db", curated, "stats", "c", "--by", field, "--json").out)
    assert sum(x["contaminated"] for x in rows) == d["documents_decontaminated_out"]
    assert sum(x["tokens_for_training"] or 0 for x in rows) == d["unique_tokens"]


def test_a_corpus_plan_equals_the_plan_with_its_count_typed_in(curated):
    with session(curated, read_only=True) as con:
        via_corpus = answer(PlanRequest(flops=1e20, corpus="c"), con)
        typed = answer(PlanRequest(flops=1e20, unique_tokens=via_corpus["data"]["unique_tokens"]), con)
    assert via_corpus["params"] == typed["params"] and via_corpus["tokens"] == typed["tokens"]
    assert via_corpus["data"]["verdict"].startswith("the budget outruns the data")
    with session(curated, read_only=True) as con:
        small = answer(PlanRequest(flops=1e8, corpus="c"), con)  # ~28k tokens of ~50k
    assert small["data"]["epochs"] < 1 and "once" in small["data"]["verdict"]


def test_cli_and_errors(curated, taomi_cli, tmp_path):
    r = taomi_cli("--db", curated, "plan", "--flops", "1e20", "--corpus", "c")
    assert r.code == 0 and "data: corpus 'c' has" in r.out and "cl100k_base tokens (after dedup, decontaminated" in r.out
    assert "the budget outruns the data" in r.out
    r = taomi_cli("--db", curated, "plan", "--flops", "1e20", "--corpus", "c", "--json")
    assert json.loads(r.out)["data"]["corpus"] == "c"
    r = taomi_cli("--db", curated, "plan", "--flops", "1e20", "--corpus", "nope")
    assert r.code == 2 and "corpus 'nope' has no documents" in r.output
    r = taomi_cli("--db", curated, "plan", "--flops", "1e20", "--corpus", "c", "--unique-tokens", "5")
    assert r.code == 2 and "give corpus or unique_tokens, not both" in r.output
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"id": "x", "text": "a few words"}) + "\n")
    r = taomi_cli("--db", curated, "ingest", str(bare), "--corpus", "uncounted", "--tokenizer", "none")
    assert r.code == 0
    r = taomi_cli("--db", curated, "plan", "--flops", "1e20", "--corpus", "uncounted")
    assert r.code == 2 and "has no token counts: run `taomi tokens uncounted`" in r.output


def test_http_plan_with_corpus(curated, serve):
    base = serve(curated)
    import httpx

    r = httpx.post(f"{base}/plan", json={"flops": 1e20, "corpus": "c"}, timeout=60)
    assert r.status_code == 200 and r.json()["data"]["tokenizer"] == "cl100k_base"
    r = httpx.post(f"{base}/plan", json={"flops": 1e20, "corpus": "nope"}, timeout=60)
    assert r.status_code == 404
    r = httpx.post(f"{base}/plan", json={"flops": 1e20, "corpus": ""}, timeout=60)
    assert r.status_code == 422


def test_hits_of_an_older_contamination_rule_do_not_count(curated, tmp_path):
    """A database scanned under an older rule (before the per-script runs) keeps those hits beside
    the new ones; plan and stats count only the current rule's, as export does."""
    import shutil

    from flows.decontam_task import N_GRAM, RULE
    from warehouse.plan_store import curated_tokens

    db = tmp_path / "copy.duckdb"
    shutil.copy(curated, db)
    with session(str(db)) as con:
        before = curated_tokens(con, "c", N_GRAM, RULE)
        flagged = {r[0] for r in con.execute("SELECT DISTINCT doc_id FROM contamination_hits").fetchall()}
        clean = con.execute("SELECT min(doc_id) FROM documents WHERE corpus = 'c' AND doc_id NOT IN "
                            "(SELECT unnest(?))", [list(flagged)]).fetchall()[0][0]
        con.execute("""INSERT INTO contamination_hits SELECT corpus, set_hash, n, 'v3-older-rule', corpus_version, ?,
                       item_id, item_pos, doc_pos FROM contamination_hits LIMIT 1""", [clean])
        con.execute("""INSERT INTO contamination_scans SELECT corpus, set_hash, n, 'v3-older-rule', corpus_version,
                       n_docs, docs_flagged, seconds, finished_at FROM contamination_scans""")
        after = curated_tokens(con, "c", N_GRAM, RULE)
        older = curated_tokens(con, "c", N_GRAM, "v3-older-rule")
    assert after == before
    assert older["documents_decontaminated_out"] == 1

"""What a plan needs to know of a curated corpus: its unique tokens after dedup and
decontamination, under the tokenizer it was counted with, per source, and the runs behind them."""

from __future__ import annotations

import duckdb

from warehouse.corpora import content_version
from warehouse.curation_store import latest_dedup_config
from warehouse.db import one
from warehouse.decontam_store import flagged_docs
from warehouse.token_store import current_tokenizer


def _last_run(con: duckdb.DuckDBPyConnection, stage: str, corpus: str) -> str | None:
    row = one(con, """SELECT run_id FROM runs WHERE stage = ? AND corpus = ? AND status IN ('ok', 'skipped')
                      ORDER BY started_at DESC LIMIT 1""", [stage, corpus])
    return row[0] if row else None


def curated_tokens(con: duckdb.DuckDBPyConnection, corpus: str, n: int, rule: str) -> dict:
    """documents, documents_counted, tokens (all), tokens_deduplicated, unique_tokens (kept by
    dedup and not flagged against a registered eval set under the contamination rule `n`, `rule`),
    the tokenizer, the runs, by source."""
    tokenizer, dedup_cfg = current_tokenizer(con, corpus), latest_dedup_config(con, corpus)
    flagged, flagged_args, decontaminated, registered = flagged_docs(con, corpus, content_version(con, corpus), n,
                                                                      rule)
    base = f"""
        FROM documents d LEFT JOIN doc_tokens t ON t.doc_id = d.doc_id AND t.tokenizer = ?
        LEFT JOIN dedup_decisions x ON x.corpus = d.corpus AND x.doc_id = d.doc_id AND x.config_hash = ?
        LEFT JOIN {flagged} c ON c.doc_id = d.doc_id
        WHERE d.corpus = ?"""
    args = [tokenizer or "", dedup_cfg or "", *flagged_args, corpus]
    row = one(con, f"""SELECT count(*), count(t.n_tokens), coalesce(sum(t.n_tokens), 0),
                              coalesce(sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false), 0),
                              coalesce(sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false AND c.doc_id IS NULL), 0),
                              count(*) FILTER (x.keep IS DISTINCT FROM false AND c.doc_id IS NOT NULL)
                       {base}""", args)
    sources = con.execute(f"""SELECT json_extract_string(d.meta, '$.source') AS source,
                                     coalesce(sum(t.n_tokens) FILTER (x.keep IS DISTINCT FROM false
                                                                      AND c.doc_id IS NULL), 0) AS tokens
                              {base} GROUP BY ALL ORDER BY tokens DESC, source""", args).fetchall()
    by_source = {s: int(n) for s, n in sources if s is not None}
    return {"corpus": corpus, "tokenizer": tokenizer, "documents": int(row[0]), "documents_counted": int(row[1]),
            "tokens": int(row[2]), "tokens_deduplicated": int(row[3]), "unique_tokens": int(row[4]),
            "documents_decontaminated_out": int(row[5]), "deduplicated": dedup_cfg is not None,
            "decontaminated": decontaminated, "registered_eval_sets": registered,
            "runs": {"tokens": _last_run(con, "tokens", corpus), "dedup": _last_run(con, "dedup", corpus),
                     "decontaminate": _last_run(con, "decontaminate", corpus) if decontaminated else None},
            "by_source": by_source if len(by_source) > 1 or (by_source and len(sources) > 1) else {}}

"""The tokens task: each document's token count under a named tokenizer, stored once.

Counts that exist for this tokenizer are kept; only documents without one are counted (a new
ingest, or another tokenizer). Texts are read in short sessions, counted with the file closed,
and written per batch, so a killed run keeps what it counted and the re-run finishes the rest.
"""

from __future__ import annotations

from curation.tokens import Tokenizer
from warehouse import token_store as store
from warehouse.curation_store import latest_dedup_config, texts_in_batches
from warehouse.db import session
from warehouse.runlog import logged_run, skip_run, stable_hash

BATCH = 5_000


def count_tokens(db, corpus: str, tokenizer: str, progress=None) -> dict:
    """Count the tokens of every document of `corpus` that has no count under `tokenizer`."""
    tok = Tokenizer(tokenizer)
    key = tok.key
    with session(db) as con:
        missing = store.missing_token_ids(con, corpus, key)
        if len(missing) == 0:  # every document already counted with this tokenizer: no work
            totals = store.token_totals(con, corpus, key, latest_dedup_config(con, corpus))
            skip_run(con, "tokens", stable_hash(corpus, key, 0), {"tokenizer": key}, corpus,
                     counts_in=totals["documents_counted"])
            return {**totals, "counted_now": 0, "reused": totals["documents_counted"]}
    with logged_run(db, "tokens", stable_hash(corpus, key, len(missing)), {"tokenizer": key}, corpus,
                    counts_in=len(missing)) as run:
        done = 0
        for part, texts in texts_in_batches(db, missing, BATCH):
            counts = tok.count(texts)
            with session(db) as con:
                store.write_token_counts(con, key, part, counts)
            done += len(part)
            if progress:
                progress(f"count tokens ({key})", done, len(missing))
        with session(db) as con:
            totals = store.token_totals(con, corpus, key, latest_dedup_config(con, corpus))
        run.counts_out = len(missing)
        run.details = {**totals, "counted_now": len(missing)}
    return {**totals, "counted_now": len(missing), "reused": totals["documents_counted"] - len(missing)}


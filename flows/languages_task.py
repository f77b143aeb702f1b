"""The languages task: each document's dominant script and language, stored once; and whether
the corpus's scripts are served by the current settings.

Like the tokens task: only documents without a row are done, in batches read in short sessions
and written per batch, so a killed run keeps what it did and the re-run finishes the rest."""

from __future__ import annotations

from curation.languages import DETECTOR, UNIT_SCRIPTS, detect_languages, dominant_script
from warehouse import language_store as store
from warehouse.curation_store import texts_in_batches
from warehouse.db import session
from warehouse.runlog import logged_run, skip_run, stable_hash

BATCH = 5_000


def detect(db, corpus: str, progress=None) -> dict:
    with session(db) as con:
        missing = store.missing_ids(con, corpus)
        if len(missing) == 0:
            skip_run(con, "languages", stable_hash(corpus, DETECTOR, 0), {"detector": DETECTOR}, corpus)
            return summary(db, corpus, done_now=0)
    with logged_run(db, "languages", stable_hash(corpus, DETECTOR, len(missing)), {"detector": DETECTOR}, corpus,
                    counts_in=len(missing)) as run:
        done = 0
        for part, texts in texts_in_batches(db, missing, BATCH):
            scripts, languages = [dominant_script(t) for t in texts], detect_languages(texts)
            with session(db) as con:
                store.write(con, part, scripts, languages, DETECTOR)
            done += len(part)
            if progress:
                progress("detect script and language", done, len(missing))
        run.counts_out = len(missing)
    return summary(db, corpus, done_now=len(missing))


def summary(db, corpus: str, done_now: int) -> dict:
    """Documents per script and language, and a warning when most documents are in scripts
    written without spaces while the latest dedup ran with whitespace words."""
    with session(db) as con:
        scripts, languages = store.shares(con, corpus, "script"), store.shares(con, corpus, "language")
        row = store.last_dedup_units(con, corpus)
    total = sum(n for _, n in scripts) or 1
    unit_share = sum(n for s, n in scripts if s in UNIT_SCRIPTS) / total
    warning = None
    if row is not None and unit_share >= 0.5 and str(row[0]).lower() == "false" and str(row[1]).lower() != "true":
        warning = (f"{unit_share:.0%} of the documents are in scripts written without spaces (Chinese, Japanese, "
                   "Korean, Thai...), but the last dedup ran with whitespace words: re-run `taomi dedup "
                   f"{corpus}` without --no-script-units ([dedup] script_units = true)")
    return {"corpus": corpus, "detector": DETECTOR, "detected_now": done_now,
            "scripts": dict(scripts), "languages": dict(languages[:20]),
            "unit_script_share": round(unit_share, 4), "warning": warning}

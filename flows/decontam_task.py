"""Decontamination: eval sets registered in the warehouse, their n-gram index built once per set
version, a scan of a training corpus per corpus version (hits stored), and the per-item answer
that `eval` reads from the same store (a second eval of the same corpus does not scan again).

The corpus is read in batches, each in its own short session; scanning is done with the file
closed, and a scan's hits and record are written in one transaction (a killed scan leaves no
partial record: the next run scans again)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from dedup.config import SHINGLE_VERSION
from evalsets.contamination import (
    MIN_INFORMATIVE,
    N_GRAM,
    RULE_TAG,
    RUN_BY_SCRIPT,
    doc_spans,
    item_ngrams,
    item_results,
    keep_runs,
    required_run,
    scan_documents,
    text_units,
)
from evalsets.harness import detect_format, load_harness_samples
from evalsets.sets import EvalInputError, EvalSet, load_eval_set
from warehouse import decontam_store as store
from warehouse import eval_store
from warehouse.corpora import content_version, document_count
from warehouse.curation_store import texts_by_doc_id
from warehouse.db import session
from warehouse.runlog import finish_run, skip_run, stable_hash, start_run

# the units and the rules: a change re-indexes and re-scans
RULE = f"v{SHINGLE_VERSION}-evidence>={MIN_INFORMATIVE}-{RULE_TAG}"
# what a flagged document shares with an eval item, in words a user reads
PASSAGE = (f"a {N_GRAM}-gram ({min(RUN_BY_SCRIPT.values())}-{max(RUN_BY_SCRIPT.values())} characters in a row in "
           "scripts without spaces)")
METHOD = (f"{N_GRAM}-gram overlap after normalisation (Brown et al. 2020, app. C), characters as the units of "
          f"scripts without spaces; an n-gram counts with >= {MIN_INFORMATIVE} distinct informative units; items "
          f"mostly in a script without spaces need as many units in a row as 13 English words carry "
          f"({', '.join(f'{k} {v}' for k, v in RUN_BY_SCRIPT.items())})")


def load_items(path: str | Path, name: str | None = None, fmt: str = "auto") -> tuple[EvalSet, str]:
    """An eval set's items from a Taomi eval set or an lm-evaluation-harness samples file."""
    used = detect_format(path) if fmt == "auto" else fmt
    if used == "lm-eval":
        return load_harness_samples(path, name=name)[0], used
    if used != "taomi":
        raise EvalInputError(f"unknown format '{fmt}'; choose auto, lm-eval or taomi")
    return load_eval_set(path, name), used


def item_texts(items: pd.DataFrame) -> list[str]:
    """What a leak of an item looks like: its input and its target."""
    return (items["input"] + " " + items["target"]).tolist()


def ensure_index(db, es: EvalSet) -> None:
    """Store the set's items and build its n-gram index once per set version."""
    with session(db) as con:
        eval_store.save_eval_set(con, es.name, es.content_hash, es.items)
        if store.index_built(con, es.content_hash, N_GRAM, RULE):
            return
    texts = item_texts(es.items)
    idx = item_ngrams(texts, N_GRAM, need=[required_run(t) for t in texts])
    with session(db) as con:
        store.write_index(con, es.content_hash, N_GRAM, RULE, es.items["id"].tolist(), idx.h, idx.item, idx.pos,
                          idx.status)


def register(db, name: str, path: str | Path, fmt: str = "auto") -> dict:
    es, used = load_items(path, name, fmt)
    ensure_index(db, es)
    with session(db) as con:
        state = store.register_set(con, name, es.content_hash, str(Path(path).resolve()), used, len(es.items))
        status = store.item_status(con, es.content_hash, N_GRAM, RULE)
    counts = pd.Series(list(status.values())).value_counts().to_dict()
    return {"name": name, "status": state, "set_hash": es.content_hash, "format": used, "items": len(es.items),
            "checkable": counts.get("checkable", 0), "too_short": counts.get("too_short", 0),
            "low_information": counts.get("low_information", 0)}


def scan(db, corpus: str, set_hashes: list[str], progress=None) -> dict:
    """Scan the corpus for every set version not yet scanned at its current version; returns the
    corpus version and what was scanned now."""
    with session(db) as con:
        if not document_count(con, corpus):
            raise EvalInputError(f"training corpus '{corpus}' has no documents (see `taomi corpora`)")
        version = content_version(con, corpus)
        pending = sorted(set(set_hashes) - store.scanned(con, corpus, set_hashes, N_GRAM, RULE, version))
        index = store.read_index(con, pending, N_GRAM, RULE) if pending else None
        total = document_count(con, corpus)
    if not pending:
        return {"version": version, "scanned_now": [], "seconds": 0.0}
    t0 = time.perf_counter()
    keys = np.unique(index["h"].to_numpy(np.uint64))
    found, done = [], 0
    for doc_ids, texts in eval_store.training_batches(db, corpus):
        d, h, p = scan_documents(keys, doc_ids, texts, N_GRAM)
        if len(d):
            found.append(pd.DataFrame({"h": h, "doc_id": d, "doc_pos": p}))
        done += len(texts)
        if progress:
            progress("contamination scan", done, total)
    hits = pd.concat(found, ignore_index=True) if found else pd.DataFrame({"h": np.zeros(0, np.uint64),
                                                                           "doc_id": np.zeros(0, np.int64),
                                                                           "doc_pos": np.zeros(0, np.int32)})
    pairs = index.rename(columns={"pos": "item_pos"}).merge(hits, on="h")
    if len(pairs):  # items in scripts without spaces need a longer run (evalsets.contamination.required_run)
        with session(db) as con:
            texts = eval_store.item_texts_for(con, pending)
        need_of = {(h, i): required_run(t) for h, i, t in texts.itertuples(index=False)}
        need = np.fromiter((need_of.get(k, N_GRAM) for k in zip(pairs["set_hash"], pairs["item_id"])),
                           dtype=np.int64, count=len(pairs))
        pairs = keep_runs(pairs, need, N_GRAM, ("set_hash", "item_id"))
    seconds = time.perf_counter() - t0
    with session(db) as con:
        store.write_scan(con, corpus, pending, N_GRAM, RULE, version, pairs, done, seconds)
    return {"version": version, "scanned_now": pending, "seconds": round(seconds, 3)}


def contamination_for(db, corpus: str, es: EvalSet, progress=None) -> tuple[list[dict], dict]:
    """Per item of an eval set: status, matched training docs, spans (as ngram_overlap gives), from
    the stored scan of this corpus version; the index and the scan are made when missing."""
    ensure_index(db, es)
    s = scan(db, corpus, [es.content_hash], progress)
    with session(db) as con:
        pairs = store.hits(con, corpus, es.content_hash, N_GRAM, RULE, s["version"])
        status = store.item_status(con, es.content_hash, N_GRAM, RULE)
    ids = es.items["id"].tolist()
    pos_of = {i: k for k, i in enumerate(ids)}
    pairs = pairs.assign(item=pairs["item_id"].map(pos_of)) if len(pairs) else pd.DataFrame(
        columns=["item", "doc_id", "item_pos", "doc_pos"])
    found = item_results(item_texts(es.items), [status[i] for i in ids], pairs, N_GRAM)
    return found, {"reused_scan": not s["scanned_now"], "scan_seconds": s["seconds"], "corpus_version": s["version"]}


def decontaminate(db, corpus: str, sets: list[str] | None = None, progress=None, examples: int = 20) -> dict:
    """Mark every document of the corpus that shares an evidence n-gram with an item of a
    registered eval set (all registered sets, or those named)."""
    with session(db) as con:
        regs = store.registered_sets(con, sets)
    if not regs:
        raise LookupError("no registered eval sets: add one with `taomi evalset add NAME FILE`")
    hashes = sorted({r["set_hash"] for r in regs})
    config = {"sets": [r["name"] for r in regs], "n": N_GRAM, "rule": RULE}
    with session(db) as con:
        version = content_version(con, corpus) if document_count(con, corpus) else ""
        inputs = stable_hash(version, hashes, RULE)
        done = store.scanned(con, corpus, hashes, N_GRAM, RULE, version) == set(hashes)
        run = skip_run(con, "decontaminate", inputs, config, corpus) if done else \
            start_run(con, "decontaminate", inputs, config, corpus)
    s = scan(db, corpus, hashes, progress)
    with session(db) as con:
        flagged = store.flagged_documents(con, corpus, hashes, N_GRAM, RULE, s["version"])
        texts: dict[int, str] = {}
        name_of = {r["set_hash"]: r["name"] for r in regs}
        docs = flagged["doc_id"].nunique() if len(flagged) else 0
        per_set = {name_of[h]: {"documents": int(g["doc_id"].nunique()), "items": int(g["item_id"].nunique())}
                   for h, g in flagged.groupby("set_hash")} if len(flagged) else {}
        shown = flagged.drop_duplicates("doc_id").head(examples)
        if len(shown):
            got = texts_by_doc_id(con, shown["doc_id"].to_numpy(np.int64))
            texts = dict(zip(got["doc_id"].astype(int), got["text"]))
        if not done:
            finish_run(con, run, counts_out=int(docs), details={"documents_flagged": int(docs), "per_set": per_set,
                                                                 "scanned_now": len(s["scanned_now"])})
    out = {"corpus": corpus, "sets": [r["name"] for r in regs], "method": METHOD, "documents_flagged": int(docs),
           "per_set": {r["name"]: per_set.get(r["name"], {"documents": 0, "items": 0}) for r in regs},
           "scanned_now": bool(s["scanned_now"]), "scan_seconds": s["seconds"], "examples": []}
    for _, r in shown.iterrows():
        words = text_units(texts.get(int(r["doc_id"]), ""), N_GRAM)
        spans = doc_spans([int(p) for p in r["doc_pos"]], N_GRAM)
        out["examples"].append({"doc": r["ext_id"], "eval_set": name_of[r["set_hash"]], "item": r["item_id"],
                                "ngrams": int(r["ngrams"]),
                                "spans": [{"words": [a, b], "text": " ".join(words[a:b])[:300]} for a, b in spans[:3]]})
    return out


def excluded_documents(con, corpus: str) -> tuple[np.ndarray, dict]:
    """The documents export leaves out: those flagged against the registered eval sets at the
    corpus's current version. A registered set not scanned at this version is an error (the
    export would ship what the scan would have found)."""
    regs = store.registered_sets(con)
    if not regs:
        return np.zeros(0, dtype=np.int64), {"registered_sets": [], "documents_removed": 0}
    hashes = sorted({r["set_hash"] for r in regs})
    version = content_version(con, corpus)
    missing = [r["name"] for r in regs if r["set_hash"] not in store.scanned(con, corpus, hashes, N_GRAM, RULE, version)]
    if missing:
        raise EvalInputError(f"corpus '{corpus}' has not been decontaminated against eval set(s) "
                             f"{', '.join(missing)} since it last changed: run `taomi decontaminate {corpus}` "
                             "(or export with --keep-contaminated)")
    flagged = store.flagged_documents(con, corpus, hashes, N_GRAM, RULE, version)
    ids = np.unique(flagged["doc_id"].to_numpy(np.int64)) if len(flagged) else np.zeros(0, dtype=np.int64)
    return ids, {"registered_sets": [r["name"] for r in regs], "method": METHOD, "documents_flagged": len(ids)}


def registered(db) -> list[dict]:
    with session(db, read_only=True) as con:
        return [{**r, "added_at": str(r["added_at"])} for r in store.registered_sets(con)]


def unregister(db, name: str) -> bool:
    with session(db) as con:
        return store.remove_set(con, name)


def registered_sets(db) -> list[dict]:
    """The registered eval sets (a read-write session: an older warehouse is migrated first)."""
    with session(db) as con:
        return store.registered_sets(con)

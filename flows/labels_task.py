"""The label-check task: conflicts among duplicates, agreement, consensus, suspect labels."""

from __future__ import annotations

import json
from pathlib import Path

from curation.label_report import conflicts, label_report
from warehouse import curation_store as store
from warehouse.corpora import document_count
from warehouse.db import session
from warehouse.runlog import finish_run, stable_hash, start_run


class NoLabels(LookupError):
    """The corpus has no labels to check."""


def check_labels(db, corpus: str, n_boot: int = 500, seed: int = 0, truth: str | Path | None = None,
                 top: int = 20) -> dict:
    # Read (a short connection), compute with the file closed, write back (another short one):
    # a long label check never keeps other commands out of the database.
    with session(db) as con:
        ann = store.annotations(con, corpus)
        if ann.empty:
            n = document_count(con, corpus)
            raise NoLabels(f"corpus '{corpus}' has no labels" if n else f"no corpus named '{corpus}'"
                           + " (ingest a file with --label-field and, for several annotators, --annotator-field)")
        ids = ann["ext_id"].drop_duplicates().tolist()
        text_of = dict(zip(ids, store.texts_by_ext_id(con, corpus, ids)))
        dedup_cfg = store.latest_dedup_config(con, corpus)
        groups = store.label_groups(con, corpus, dedup_cfg)
        run = start_run(con, "labels", stable_hash(len(ann), corpus), {"n_boot": n_boot, "seed": seed}, corpus,
                        counts_in=len(ann))
    try:
        report, agreement, consensus, suspects, given = label_report(ann, text_of, n_boot, seed, corpus)
        conf = conflicts(groups)
        if dedup_cfg is None:
            report["notes"].append("dedup has not run: conflicts cover exact duplicates only (run `taomi dedup`)")
    except BaseException as exc:
        with session(db) as con:
            finish_run(con, run, status="failed", message=str(exc)[:500])
        raise
    with session(db) as con:
        store.save_labels(con, corpus, agreement, consensus, suspects, conf)
        finish_run(con, run, counts_out=len(suspects), details={"suspects": len(suspects), "conflicts": len(conf)})

    report["conflicts"] = [{"kind": r.kind, "ids": json.loads(r.ext_ids), "labels": json.loads(r.labels)}
                           for r in conf.itertuples()]
    report["agreement"] = agreement
    report["consensus"] = {
        "items": len(consensus),
        "ties": int(consensus["majority_tie"].sum()) if len(consensus) else 0,
        "majority_vs_dawid_skene_differ": int((consensus["majority"] != consensus["dawid_skene"]).sum())
        if len(consensus) else 0,
        "rows": consensus.head(top).to_dict(orient="records"),
    }
    report["suspects"] = [{"id": r.ext_id, "given": r.given, "suggested": r.suggested, "score": round(float(r.score), 4)}
                          for r in suspects.itertuples()]
    if truth:
        planted = set(json.loads(Path(truth).read_text()).get("noisy_labels", []))
        found = {s["id"] for s in report["suspects"]}
        labelled = set(given["ext_id"])
        planted &= labelled
        tp = len(found & planted)
        report["truth_check"] = {"planted": len(planted), "flagged": len(found), "true_positives": tp,
                                 "precision": tp / len(found) if found else None,
                                 "recall": tp / len(planted) if planted else None}
    return report

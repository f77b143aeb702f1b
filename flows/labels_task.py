"""The label-check task: conflicts among duplicates, agreement, consensus, suspect labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from curation.agreement import agreement_report
from curation.consensus import dawid_skene, majority_vote
from curation.suspects import find_suspects, hashed_features, out_of_fold_probabilities
from warehouse import curation_store as store
from warehouse.corpora import document_count
from warehouse.db import session
from warehouse.runlog import finish_run, stable_hash, start_run


class NoLabels(LookupError):
    """The corpus has no labels to check."""


def _ratings(ann: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(items x annotators codes with -1 for missing, item ids, annotators, classes)."""
    rated = ann[ann["annotator"] != ""]
    items = sorted(rated["ext_id"].unique().tolist())
    annotators = sorted(rated["annotator"].unique().tolist())
    classes = sorted(ann["label"].astype(str).unique().tolist())
    ci = {c: i for i, c in enumerate(classes)}
    ii = {x: i for i, x in enumerate(items)}
    ai = {a: i for i, a in enumerate(annotators)}
    r = np.full((len(items), len(annotators)), -1, dtype=np.int64)
    r[rated["ext_id"].map(ii).to_numpy(), rated["annotator"].map(ai).to_numpy()] = \
        rated["label"].astype(str).map(ci).to_numpy()
    return r, items, annotators, classes


def conflicts(groups: pd.DataFrame) -> pd.DataFrame:
    """Duplicate groups (near cluster, else exact hash) whose given labels differ."""
    rows = []
    if len(groups):
        g = groups.copy()
        g["key"] = np.where(g["cluster_id"] >= 0, "near:" + g["cluster_id"].astype(str), "exact:" + g["content_hash"])
        for i, (key, grp) in enumerate(g.groupby("key", sort=True)):
            if grp["label"].nunique() > 1:
                rows.append({"group_id": i, "kind": key.split(":")[0],
                             "ext_ids": json.dumps(grp["ext_id"].tolist()), "labels": json.dumps(grp["label"].tolist())})
    return pd.DataFrame(rows, columns=["group_id", "kind", "ext_ids", "labels"])


def _compute(ann: pd.DataFrame, text_of: dict[str, str], n_boot: int, seed: int, corpus: str):
    """Agreement, consensus and suspects from the annotations (no database)."""
    ann["label"] = ann["label"].astype(str)  # a label column of mixed types compares as text
    report: dict = {"corpus": corpus, "notes": []}
    ratings, items, annotators, classes = _ratings(ann)
    k = len(classes)

    # Consensus + agreement (needs annotator rows)
    consensus = pd.DataFrame(columns=["ext_id", "n_ratings", "majority", "majority_confidence", "majority_tie",
                                      "dawid_skene", "ds_confidence"])
    agreement = None
    if len(annotators) >= 1 and len(items):
        mv, mv_conf, tie = majority_vote(ratings, k)
        ds, ds_conf, acc = dawid_skene(ratings, k)
        consensus = pd.DataFrame({
            "ext_id": items, "n_ratings": (ratings >= 0).sum(axis=1),
            "majority": [classes[i] if i >= 0 else None for i in mv], "majority_confidence": mv_conf,
            "majority_tie": tie, "dawid_skene": [classes[i] if i >= 0 else None for i in ds],
            "ds_confidence": ds_conf})
        if len(annotators) >= 2:
            agreement = agreement_report(ratings, annotators, classes, ds, n_boot, seed)
            agreement["annotator_accuracy_dawid_skene"] = dict(zip(annotators, acc.round(4).tolist()))
        else:
            report["notes"].append("one annotator only: agreement needs at least two; consensus is that "
                                   "annotator's labels")
    else:
        report["notes"].append("no per-annotator rows: agreement and consensus need an annotator field")

    # Given labels: the item's own label, else the Dawid-Skene consensus.
    given = ann[ann["annotator"] == ""].drop_duplicates("ext_id")[["ext_id", "label"]]
    if given.empty and len(consensus):
        given = consensus[["ext_id", "dawid_skene"]].rename(columns={"dawid_skene": "label"}).dropna()
        report["notes"].append("no given labels: suspects are checked against the consensus labels")
    suspects = pd.DataFrame(columns=["ext_id", "given", "suggested", "score", "rank"])
    lab = sorted(given["label"].unique().tolist())
    if len(given) >= 20 and len(lab) >= 2 and given["label"].value_counts().min() >= 2:
        texts = [text_of[i] for i in given["ext_id"]]
        y = given["label"].map({c: i for i, c in enumerate(lab)}).to_numpy()
        probs = out_of_fold_probabilities(hashed_features(texts), y, len(lab), seed=seed)
        s = find_suspects(probs, y)
        idx = np.flatnonzero(s["suspect"])
        idx = idx[np.argsort(s["score"][idx], kind="stable")]
        suspects = pd.DataFrame({"ext_id": given["ext_id"].to_numpy()[idx], "given": [lab[y[i]] for i in idx],
                                 "suggested": [lab[s["suggested"][i]] for i in idx],
                                 "score": s["score"][idx], "rank": np.arange(1, len(idx) + 1)})
    else:
        report["notes"].append("too few labelled items or classes (need >= 20 items, >= 2 classes with >= 2 "
                               "items each) to train the suspect-label classifier")
    return report, agreement, consensus, suspects, given


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
        report, agreement, consensus, suspects, given = _compute(ann, text_of, n_boot, seed, corpus)
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

"""Label findings from annotations, as pure functions: the ratings matrix, agreement and
consensus (when there are annotator rows), confident-learning suspects (when there are given
labels and enough items), and conflicting labels among duplicates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from curation.agreement import agreement_report
from curation.consensus import dawid_skene, majority_vote
from curation.suspects import SuspectConfig, suspect_labels


def rating_matrix(ann: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(items x annotators codes with -1 for missing, item ids, annotators, classes)."""
    rated = ann[ann["annotator"] != ""]
    items = sorted(rated["ext_id"].unique().tolist())
    annotators = sorted(rated["annotator"].unique().tolist())
    classes = sorted(ann["label"].astype(str).unique().tolist())
    ci = {c: i for i, c in enumerate(classes)}
    ii = {x: i for i, x in enumerate(items)}
    ai = {a: i for i, a in enumerate(annotators)}
    r = np.full((len(items), len(annotators)), -1, dtype=np.int64)
    if len(rated):  # a label-only corpus has no annotator rows: an empty matrix, not a crash
        r[rated["ext_id"].map(ii).to_numpy(np.int64), rated["annotator"].map(ai).to_numpy(np.int64)] = \
            rated["label"].astype(str).map(ci).to_numpy(np.int64)
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


def label_report(ann: pd.DataFrame, text_of, n_boot: int, seed: int, corpus: str, workers: int = 0,
                 memory_mb: int = 0, progress=None):
    """Agreement, consensus and suspects from the annotations (no database). `text_of`: ext_id ->
    text, or a function giving the texts of a list of ext_ids (in that order, any sequence the
    classifier reads: curation.suspects.TextFile). `workers` / `memory_mb`: as SuspectConfig."""
    ann["label"] = ann["label"].astype(str)  # a label column of mixed types compares as text
    report: dict = {"corpus": corpus, "notes": []}
    ratings, items, annotators, classes = rating_matrix(ann)
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
        if len(annotators) >= 2 and not ((ratings >= 0).sum(axis=1) >= 2).any():
            report["notes"].append("every item has a single rating: agreement needs items rated by at least "
                                   "two annotators; consensus is each item's one label")
        elif len(annotators) >= 2:
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
        ids = given["ext_id"].tolist()
        texts = text_of(ids) if callable(text_of) else [text_of[i] for i in ids]
        y = given["label"].map({c: i for i, c in enumerate(lab)}).to_numpy()
        try:
            s = suspect_labels(texts, y, len(lab), SuspectConfig(seed=seed, workers=workers, memory_mb=memory_mb),
                               progress)
        except ValueError as exc:  # e.g. texts with no words at all: the classifier has nothing to learn from
            report["notes"].append(f"suspect labels not computed: {exc}")
            s = {"suspect": np.zeros(len(y), dtype=bool), "score": np.ones(len(y)), "suggested": y}
        idx = np.flatnonzero(s["suspect"])
        idx = idx[np.argsort(s["score"][idx], kind="stable")]
        suspects = pd.DataFrame({"ext_id": given["ext_id"].to_numpy()[idx], "given": [lab[y[i]] for i in idx],
                                 "suggested": [lab[s["suggested"][i]] for i in idx],
                                 "score": s["score"][idx], "rank": np.arange(1, len(idx) + 1)})
    else:
        report["notes"].append("too few labelled items or classes (need >= 20 items, >= 2 classes with >= 2 "
                               "items each) to train the suspect-label classifier")
    return report, agreement, consensus, suspects, given

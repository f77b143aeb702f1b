"""The label-check task: conflicts among duplicates, agreement, consensus, suspect labels."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from curation.label_report import conflicts, label_report
from curation.suspects import VIEW_HEAD, VIEW_TAIL, TextFile
from dedup.config import parse_size_mb, total_memory_mb
from warehouse import curation_store as store
from warehouse.corpora import content_version, document_count
from warehouse.db import session
from warehouse.runlog import effective_run, logged_run, skip_run, stable_hash


class NoLabels(LookupError):
    """The corpus has no labels to check."""


def check_labels(db, corpus: str, n_boot: int = 500, seed: int = 0, truth: str | Path | None = None,
                 top: int = 20, workers: int = 0, memory_limit: str | int | None = None, progress=None) -> dict:
    """Label findings for a corpus. Read (a short connection), compute with the file closed,
    write back (another short one). Same documents, annotations, dedup config and options as the
    run whose findings are stored: no work, a `skipped` run row, that run's report."""
    config = {"n_boot": n_boot, "seed": seed, "top": top, "truth": str(truth) if truth else None}
    with session(db) as con:
        ann = store.annotations(con, corpus)
        if ann.empty:
            n = document_count(con, corpus)
            raise NoLabels(f"corpus '{corpus}' has no labels" if n else f"no corpus named '{corpus}'"
                           + " (ingest a file with --label-field and, for several annotators, --annotator-field)")
        dedup_cfg = store.latest_dedup_config(con, corpus)
        inputs = stable_hash(content_version(con, corpus), dedup_cfg, config)
        eff = effective_run(con, "labels", corpus)
        if eff and eff["inputs_hash"] == inputs and (eff.get("details") or {}).get("report"):
            skip_run(con, "labels", inputs, config, corpus, eff["run_id"], counts_in=len(ann))
            return {**eff["details"]["report"], "skipped": True, "reuses": eff["run_id"]}
        groups = store.label_groups(con, corpus, dedup_cfg)
    with logged_run(db, "labels", inputs, config, corpus, counts_in=len(ann)) as run, \
            tempfile.TemporaryDirectory(prefix="taomi-labels-") as tmp:

        def texts_of(ext_ids: list[str]) -> TextFile:
            # each text as the bounded view the classifiers read (curation.suspects), cut in the
            # database and written to a file the check reads by index (not held in this process)
            path = Path(tmp) / "views.arrow"
            with session(db) as c:
                rows = store.write_texts_file(c, corpus, ext_ids, path, view=(VIEW_HEAD, VIEW_TAIL))
            return TextFile(path, rows)

        budget = parse_size_mb(memory_limit, total_memory_mb())  # how many folds run side by side
        report, agreement, consensus, suspects, given = label_report(ann, texts_of, n_boot, seed, corpus,
                                                                     workers, budget, progress)
        conf = conflicts(groups)
        if dedup_cfg is None:
            report["notes"].append("dedup has not run: conflicts cover exact duplicates only (run `taomi dedup`)")
        with session(db) as con:
            store.save_labels(con, corpus, agreement, consensus, suspects, conf)
        report = _summary(report, agreement, consensus, suspects, conf, given, truth, top)
        run.counts_out = len(suspects)
        run.details = {"suspects": len(suspects), "conflicts": len(conf), "report": report}
    return report


def _summary(report: dict, agreement, consensus, suspects, conf, given, truth, top: int) -> dict:
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
        planted &= set(given["ext_id"])
        tp = len(found & planted)
        report["truth_check"] = {"planted": len(planted), "flagged": len(found), "true_positives": tp,
                                 "precision": tp / len(found) if found else None,
                                 "recall": tp / len(planted) if planted else None}
    return report

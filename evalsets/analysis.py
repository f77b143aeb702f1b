"""Evaluation analysis as pure functions of frames: automatic slices, regressions against the
previous run (paired CIs and flipped items), and the suggested fix for a traced failure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalsets.stats import paired


def auto_slices(items: pd.DataFrame) -> list[list[str]]:
    """Given slices plus automatic ones: length bucket, target label (few distinct), source.
    Length is in units (words; characters of scripts written without spaces), so Chinese items
    are not all "short" by whitespace."""
    from dedup.config import DedupConfig
    from dedup.shingle import words

    cfg = DedupConfig()
    n_words = items["input"].map(lambda t: len(words(t, cfg)))
    q1, q2 = np.percentile(n_words, [33.3, 66.7]) if len(items) >= 3 else (np.inf, np.inf)
    few_targets = items["target"].nunique() <= 20
    out = []
    for (_, r), nw in zip(items.iterrows(), n_words):
        s = list(r["slices"])
        s.append("length:short" if nw <= q1 else "length:medium" if nw <= q2 else "length:long")
        if few_targets:
            s.append(f"label:{r['target']}")
        src = r["meta"].get("source") if isinstance(r["meta"], dict) else None
        if src:
            s.append(f"source:{src}")
        out.append(s)
    return out


def regressions(merged: pd.DataFrame, prev: pd.DataFrame, slices: dict, clean: pd.Series | None,
                n_boot: int) -> tuple[dict, dict]:
    """Per-slice paired difference against the previous run, and the items that flipped.

    `merged`: this run (id, score, passed, slices); `prev`: the previous run (id, score, passed);
    `clean`: mask over `merged` of uncontaminated items (for the "clean" slice), or None."""
    both = merged.merge(prev.rename(columns={"score": "prev_score", "passed": "prev_passed"}), on="id")
    regression = {}
    for s in slices:
        if s in ("all", "clean"):
            m = both["id"].isin(merged.loc[clean, "id"]) if s == "clean" else np.ones(len(both), bool)
        else:
            m = both["slices"].map(lambda x, s=s: s in x).to_numpy()
        regression[s] = paired(both.loc[m, "score"].to_numpy(), both.loc[m, "prev_score"].to_numpy(), n_boot)
    flips = {"pass_to_fail": both.loc[both["prev_passed"] & ~both["passed"], "id"].tolist(),
             "fail_to_pass": both.loc[~both["prev_passed"] & both["passed"], "id"].tolist()}
    return regression, flips


def suggest_fix(coverage: str, nearest: list[dict], target: str, min_similarity: float = 0.3) -> str:
    """What to do about a failed item, from the training documents nearest to it."""
    if coverage == "few":
        return "add training data like this item"
    if any(n.get("label") not in (None, target) and n.get("similarity", 0) >= min_similarity for n in nearest):
        return "check the labels of similar training documents"
    return "similar data exists: check the data's quality or the item itself"

"""Eval sets and prediction files: loading and validation with file/line/field errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


class EvalInputError(ValueError):
    """An eval set or predictions file that cannot be used; the message names file, line, field."""


@dataclass(frozen=True)
class EvalSet:
    name: str
    items: pd.DataFrame  # id, input, target, slices (list[str]), meta (dict)
    content_hash: str


def read_records(path: Path) -> list[tuple[int, dict]]:
    """(line, record) of a JSONL or CSV file; a bad line is an error naming the file and line."""
    if not path.exists():
        raise EvalInputError(f"{path}: no such file")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    out: list[tuple[int, dict]] = []
    if suffix in (".jsonl", ".json", ".ndjson"):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalInputError(f"{path}: line {i}: malformed JSON ({exc.msg})") from exc
            except RecursionError as exc:
                raise EvalInputError(f"{path}: line {i}: JSON nested too deeply") from exc
            if not isinstance(rec, dict):
                raise EvalInputError(f"{path}: line {i}: expected a JSON object")
            out.append((i, rec))
    elif suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        out = [(i + 2, r) for i, r in enumerate(df.to_dict(orient="records"))]
    else:
        raise EvalInputError(f"{path}: unknown format '{suffix}'; expected .jsonl or .csv")
    return out


def load_eval_set(path: str | Path, name: str | None = None) -> EvalSet:
    """Records with id, input, target, optional slices (list or comma-separated) and metadata."""
    p = Path(path)
    rows, seen = [], {}
    for line, rec in read_records(p):
        for f in ("id", "input", "target"):
            if f not in rec or rec[f] is None or str(rec[f]).strip() == "":
                raise EvalInputError(f"{p}: line {line}: field '{f}' is missing or empty")
        item_id = str(rec["id"])
        if item_id in seen:
            raise EvalInputError(f"{p}: line {line}: field 'id': '{item_id}' repeats line {seen[item_id]}")
        seen[item_id] = line
        sl = rec.get("slices") or []
        if isinstance(sl, str):
            sl = [s.strip() for s in sl.split(",") if s.strip()]
        if not isinstance(sl, list):
            raise EvalInputError(f"{p}: line {line}: field 'slices' must be a list or a comma-separated string")
        meta = rec.get("metadata") or {k: v for k, v in rec.items() if k not in ("id", "input", "target", "slices")}
        rows.append({"id": item_id, "input": str(rec["input"]), "target": str(rec["target"]),
                     "slices": [str(s) for s in sl], "meta": meta})
    if not rows:
        raise EvalInputError(f"{p}: no items")
    items = pd.DataFrame(rows)
    canon = json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()
    return EvalSet(name or p.stem, items, hashlib.sha256(canon).hexdigest()[:16])


def load_predictions(path: str | Path) -> pd.DataFrame:
    """id, prediction, optional score; duplicate ids are an error; an empty file is an error.

    A numeric `score` per item (a grader's or a judge's) is the item's metric; then `prediction`
    may be absent. Scores on some lines and not others is an error naming the line."""
    p = Path(path)
    rows, seen = [], {}
    for line, rec in read_records(p):
        if "id" not in rec or str(rec["id"]).strip() == "":
            raise EvalInputError(f"{p}: line {line}: field 'id' is missing")
        has_score = rec.get("score") not in (None, "")
        if ("prediction" not in rec or rec["prediction"] is None) and not has_score:
            raise EvalInputError(f"{p}: line {line}: field 'prediction' is missing (give a prediction or a score)")
        item_id = str(rec["id"])
        if item_id in seen:
            raise EvalInputError(f"{p}: line {line}: field 'id': '{item_id}' repeats line {seen[item_id]}")
        seen[item_id] = line
        score = rec.get("score")
        try:
            score = None if score in (None, "") else float(score)
        except (TypeError, ValueError) as exc:
            raise EvalInputError(f"{p}: line {line}: field 'score' is not a number") from exc
        if rows and (score is None) != (rows[0]["score"] is None):
            first = next(ln for ln in seen.values())
            raise EvalInputError(f"{p}: line {line}: field 'score' is {'missing' if score is None else 'given'} here "
                                 f"but {'given' if score is None else 'missing'} on line {first}: give a score on "
                                 "every line (it is used as the item's metric) or on none")
        pred = rec.get("prediction")
        rows.append({"id": item_id, "prediction": "" if pred is None else str(pred), "score": score})
    if not rows:
        raise EvalInputError(f"{p}: no predictions")
    return pd.DataFrame(rows)

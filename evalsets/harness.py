"""lm-evaluation-harness `--log_samples` files as eval inputs: items and answers in one file.

The harness (EleutherAI, lm_eval/loggers/evaluation_tracker.py, `save_results_samples`) writes
`samples_<task>_<date>.jsonl` (older releases) or `samples_<task>.jsonl`, one JSON object per
(document, filter):

    doc_id, doc (the dataset row), target (a string), arguments ({"gen_args_0": {"arg_0": prompt,
    "arg_1": continuation}, ...}; a list of lists in releases before 0.4.3), resps, filtered_resps,
    filter ("none", "strict-match", ...), metrics (the names), doc_hash, prompt_hash, target_hash,
    and one field per metric with the value the harness computed for this item (acc, acc_norm,
    exact_match, pass@1, ...).

We read it as it is: the item is the prompt the model saw (gen_args_0.arg_0) and the target; the
score is the harness's own per-item metric; the answer is the filtered response (for a
multiple-choice task, the index of the most likely choice); the document's fields are kept whole
(a HumanEval item keeps `test` and `entry_point`) and its few-valued fields become slices.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd

from evalsets.sets import EvalInputError, EvalSet, read_records

FORMATS = ("auto", "lm-eval", "taomi")
_REQUIRED = ("doc_id", "target")
_ANSWERS = ("filtered_resps", "resps")
_NOT_METRICS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics", "doc_hash",
                "prompt_hash", "target_hash"}
_TASK = re.compile(r"^samples_(?P<task>.+?)(?:_\d{4}-\d{2}-\d{2}T[\d\-.:]+)?\.jsonl?$")
MAX_SLICE_VALUES = 20  # a document field with at most this many values (and more than one) is a slice


def looks_like_harness(record: dict) -> bool:
    return all(k in record for k in _REQUIRED) and any(k in record for k in _ANSWERS) and "id" not in record


def detect_format(path: str | Path) -> str:
    """'lm-eval' when the first record is a harness sample, else 'taomi'."""
    p = Path(path)
    if not p.exists():
        raise EvalInputError(f"{p}: no such file")
    if p.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        return "taomi"
    with p.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    return "taomi"  # the taomi reader names the line and the error
                return "lm-eval" if isinstance(rec, dict) and looks_like_harness(rec) else "taomi"
    return "taomi"


def task_name(path: Path) -> str:
    m = _TASK.match(path.name)
    return m.group("task") if m else path.stem


def _prompt(rec: dict) -> str:
    args = rec.get("arguments")
    first = None
    if isinstance(args, dict):
        first = args.get("gen_args_0", {}).get("arg_0") if isinstance(args.get("gen_args_0"), dict) else None
    elif isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
        first = args[0][0]
    if isinstance(first, str) and first.strip():
        return first
    doc = rec.get("doc")
    return json.dumps(doc, ensure_ascii=False, sort_keys=True) if doc is not None else ""


def _choices(rec: dict) -> list[str]:
    args = rec.get("arguments")
    if isinstance(args, dict):
        return [str(v.get("arg_1", "")) for _, v in sorted(args.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[-1]))
                if isinstance(v, dict)]
    if isinstance(args, list):
        return [str(a[1]) for a in args if isinstance(a, list) and len(a) > 1]
    return []


def _answer(rec: dict) -> str:
    """The model's answer: a generated string, or for log-likelihood requests ([[ll, greedy], ...]
    over the choices) the index of the most likely choice."""
    resp = rec.get("filtered_resps", rec.get("resps"))
    while isinstance(resp, list) and len(resp) == 1 and isinstance(resp[0], list):
        resp = resp[0]
    if isinstance(resp, list) and resp and all(isinstance(r, list) and r and isinstance(r[0], (int, float))
                                               for r in resp):
        lls = [float(r[0]) for r in resp]
        return str(max(range(len(lls)), key=lls.__getitem__))
    if isinstance(resp, list):
        resp = resp[0] if len(resp) == 1 else resp
    return resp if isinstance(resp, str) else json.dumps(resp, ensure_ascii=False)


def _score(value, where: str, metric: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    raise EvalInputError(f"{where}: field '{metric}' is not a per-item number ({type(value).__name__}); "
                         "it is aggregated by the harness over the whole set and cannot be sliced")


def load_harness_samples(path: str | Path, metric: str | None = None, filter_name: str | None = None,
                         name: str | None = None) -> tuple[EvalSet, pd.DataFrame, dict]:
    """(eval set, predictions with score, info: task, metric, filter, filters, metrics)."""
    p = Path(path)
    records = read_records(p)
    for i, rec in records:
        if not looks_like_harness(rec):
            raise EvalInputError(f"{p}: line {i}: not an lm-evaluation-harness sample (needs doc_id, target "
                                 "and filtered_resps or resps)")
    if not records:
        raise EvalInputError(f"{p}: no samples")
    filters = list(dict.fromkeys(str(r.get("filter", "none")) for _, r in records))
    chosen = filter_name or filters[0]
    if chosen not in filters:
        raise EvalInputError(f"{p}: no samples with filter '{chosen}'; filters in the file: {', '.join(filters)}")
    records = [(i, r) for i, r in records if str(r.get("filter", "none")) == chosen]
    names = [m for m in records[0][1].get("metrics") or [] if m in records[0][1]]
    if not names:
        names = [k for k, v in records[0][1].items() if k not in _NOT_METRICS and isinstance(v, (int, float, bool))]
    if metric is None:
        if not names:
            raise EvalInputError(f"{p}: line {records[0][0]}: no per-item metric field; give --metric FIELD")
        metric = names[0]
    rows, preds, seen = [], [], {}
    for line, rec in records:
        where = f"{p}: line {line}"
        if metric not in rec:
            raise EvalInputError(f"{where}: field '{metric}' is missing; metrics in the file: "
                                 f"{', '.join(names) or 'none'}")
        item_id = str(rec["doc_id"])
        if item_id in seen:
            raise EvalInputError(f"{where}: field 'doc_id': '{item_id}' repeats line {seen[item_id]} "
                                 f"(filter '{chosen}')")
        seen[item_id] = line
        doc = rec.get("doc") if isinstance(rec.get("doc"), dict) else {"doc": rec.get("doc")}
        target = str(rec["target"])
        choices = _choices(rec)
        meta = {"doc": doc, "task": task_name(p), "doc_hash": rec.get("doc_hash"),
                **({"choices": choices} if len(choices) > 1 else {})}
        rows.append({"id": item_id, "input": _prompt(rec), "target": target, "slices": [], "meta": meta})
        preds.append({"id": item_id, "prediction": _answer(rec), "score": _score(rec[metric], where, metric)})
    _doc_slices(rows)
    items = pd.DataFrame(rows)
    canon = json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str).encode()
    es = EvalSet(name or task_name(p), items, hashlib.sha256(canon).hexdigest()[:16])
    info = {"format": "lm-eval", "task": task_name(p), "metric": metric, "metrics": names, "filter": chosen,
            "filters": filters}
    return es, pd.DataFrame(preds), info


def _doc_slices(rows: list[dict]) -> None:
    """Slices from the documents' few-valued scalar fields (subject, level, category, ...)."""
    values: dict[str, set] = {}
    for r in rows:
        for k, v in r["meta"]["doc"].items():
            if isinstance(v, (str, int, bool)) and not (isinstance(v, str) and len(v) > 60):
                values.setdefault(k, set()).add(v)
            else:
                values.setdefault(k, set()).update(range(MAX_SLICE_VALUES + 1))  # not a slice field
    fields = [k for k, vs in values.items() if 1 < len(vs) <= min(MAX_SLICE_VALUES, max(2, len(rows) // 2))]
    for r in rows:
        r["slices"] = [f"{k}:{r['meta']['doc'][k]}" for k in fields if k in r["meta"]["doc"]]


def harness_rows(items: pd.DataFrame) -> list[dict]:
    """A hard set as a dataset the harness reads with `dataset_path: json`: each item's original
    document fields (a harness item's `doc`, or its metadata) at the top level, so the source task's
    own templates apply, plus Taomi's id, input and target (never overwriting a field of the doc)."""
    out = []
    for r in items.to_dict(orient="records"):
        meta = r["meta"] if isinstance(r["meta"], dict) else {}
        doc = meta.get("doc") if isinstance(meta.get("doc"), dict) else {k: v for k, v in meta.items()
                                                                           if k not in ("source_set", "task")}
        out.append({"taomi_id": r["id"], "input": r["input"], "target": r["target"],
                       "taomi_slices": list(r["slices"]), **doc})
    return out


def task_yaml(task: str, data_file: str, include: str | None = None, metric: str = "exact_match") -> str:
    """An lm-evaluation-harness task config (its TaskConfig fields) for a hard set in a JSONL file.

    With `include` (the source task's YAML), the hard set inherits everything of that task (its
    prompt template, output type, filters and metrics: HumanEval's pass@1 runs its tests) and
    replaces only the data. Without it, a generation task over Taomi's input and target."""
    import json as _json

    def q(s: str) -> str:
        return _json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML scalar, quotes escaped

    lines = [f"task: {q(task)}"]
    if include:
        lines.append(f"include: {q(include)}")
    lines += ["dataset_path: json", "dataset_name: null", "dataset_kwargs:", "  data_files:",
              f"    test: {q(data_file)}", "test_split: test", "training_split: null", "validation_split: null",
              "fewshot_split: null"]
    if not include:
        lines += ["output_type: generate_until", 'doc_to_text: "{{input}}"', 'doc_to_target: "{{target}}"',
                  "generation_kwargs:", '  until: ["\\n\\n"]', "  do_sample: false", "metric_list:",
                  f"  - metric: {q(metric)}", "    aggregation: mean", "    higher_is_better: true",
                  "metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"

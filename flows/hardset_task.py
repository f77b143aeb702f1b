"""Build a hard set: items the last runs failed, label problems (suspects, annotator
disagreement, conflicting duplicates) and user-supplied edge cases, with their origin as a slice."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from evalsets.sets import EvalInputError, load_eval_set
from warehouse import eval_store
from warehouse.db import session
from warehouse.outputs import check_file, write_file


def build_hardset(db, name: str, sources: list[str], corpus: str | None, out: Path, limit: int = 500,
                  force: bool = False) -> dict:
    check_file(out, force=force, what="hard-set file")
    rows: list[dict] = []
    counts: dict[str, int] = {}
    with session(db) as con:
        for src in sources:
            before = len(rows)
            if src == "failures":
                for r in eval_store.last_run_failures(con, limit).to_dict(orient="records"):
                    rows.append({**r, "slices": json.loads(r["slices"] or "[]"), "meta": json.loads(r["meta"] or "{}"),
                                 "origin": "failed-last-run"})
            elif src in ("suspects", "disagreement", "conflicts"):
                if not corpus:
                    raise ValueError(f"--from {src} needs --corpus")
                rows += eval_store.label_problem_items(con, corpus, src, limit).assign(
                    origin=src, slices=lambda d: [[] for _ in range(len(d))],
                    meta=lambda d: [{"corpus": corpus} for _ in range(len(d))]).to_dict(orient="records")
            elif src.endswith((".jsonl", ".csv")):
                es = load_eval_set(src)
                rows += es.items[["id", "input", "target", "slices", "meta"]].assign(origin="edge-case").to_dict(
                    orient="records")
            else:
                raise ValueError(f"unknown source '{src}': failures | suspects | disagreement | conflicts | FILE.jsonl")
            counts[src] = len(rows) - before
        if not rows:
            raise EvalInputError("nothing to put in the hard set: no failures or label problems found yet "
                                 "(run `taomi eval` / `taomi labels` first, or pass --from FILE.jsonl)")
        df = pd.DataFrame(rows).drop_duplicates("id").head(limit)
        # every field of the source item is kept (a harness item's whole document: HumanEval's test
        # and entry_point), its slices too, and where it came from
        items = [{"id": r["id"], "input": r["input"], "target": r["target"],
                  "slices": [*[s for s in r["slices"] if not str(s).startswith("origin:")], f"origin:{r['origin']}"],
                  "metadata": {**(r["meta"] if isinstance(r["meta"], dict) else {}),
                               **({"source_set": r["set_name"]} if isinstance(r.get("set_name"), str) else {})}}
                 for r in df.to_dict(orient="records")]
        text = "\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n"
        write_file(out, lambda p: p.write_text(text, encoding="utf-8"), force=force, what="hard-set file")
        es = load_eval_set(out, name)
        eval_store.save_eval_set(con, name, es.content_hash, es.items)
    return {"name": name, "items": len(items), "by_source": counts, "path": str(out), "hash": es.content_hash}


def export_hardset(db, name: str, outdir: Path, fmt: str = "lm-eval", include: str | None = None,
                   force: bool = False) -> dict:
    """Write a stored hard set (or any stored eval set) back as an lm-evaluation-harness custom
    task: OUTDIR/NAME.jsonl and OUTDIR/NAME.yaml (`lm_eval --include_path OUTDIR --tasks NAME`)."""
    from evalsets.harness import harness_rows, task_yaml
    from warehouse.outputs import OutputDir

    if fmt != "lm-eval":
        raise ValueError(f"unknown format '{fmt}'; choose lm-eval")
    if include is not None and not Path(include).is_file():
        raise EvalInputError(f"{include}: no such task YAML")
    task = "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "hardset"
    out = OutputDir(outdir, force=force, what="task folder")
    files = (f"{task}.jsonl", f"{task}.yaml")
    out.check_writable(files)
    from warehouse.db import open_read_only

    con = open_read_only(db)
    try:
        items = eval_store.latest_items(con, name)
    finally:
        con.close()
    if items is None:
        raise LookupError(f"no stored eval set or hard set named '{name}' (build one with `taomi hardset build`)")
    rows = harness_rows(items)
    data = out.write_text(files[0], "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
    cfg = out.write_text(files[1], task_yaml(task, str(Path(data).resolve()),
                                             str(Path(include).resolve()) if include else None))
    return {"name": name, "task": task, "items": len(rows), "data": str(data), "yaml": str(cfg),
            "run": f"lm_eval --include_path {Path(cfg).parent} --tasks {task} ..."}

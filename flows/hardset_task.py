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
                rows += eval_store.last_run_failures(con, limit).assign(origin="failed-last-run").to_dict(
                    orient="records")
            elif src in ("suspects", "disagreement", "conflicts"):
                if not corpus:
                    raise ValueError(f"--from {src} needs --corpus")
                rows += eval_store.label_problem_items(con, corpus, src, limit).assign(origin=src).to_dict(
                    orient="records")
            elif src.endswith((".jsonl", ".csv")):
                es = load_eval_set(src)
                rows += es.items[["id", "input", "target"]].assign(origin="edge-case").to_dict(orient="records")
            else:
                raise ValueError(f"unknown source '{src}': failures | suspects | disagreement | conflicts | FILE.jsonl")
            counts[src] = len(rows) - before
        if not rows:
            raise EvalInputError("nothing to put in the hard set: no failures or label problems found yet "
                                 "(run `taomi eval` / `taomi labels` first, or pass --from FILE.jsonl)")
        df = pd.DataFrame(rows).drop_duplicates("id").head(limit)
        items = [{"id": r.id, "input": r.input, "target": r.target, "slices": [f"origin:{r.origin}"]}
                 for r in df.itertuples()]
        text = "\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n"
        write_file(out, lambda p: p.write_text(text, encoding="utf-8"), force=force, what="hard-set file")
        es = load_eval_set(out, name)
        eval_store.save_eval_set(con, name, es.content_hash, es.items)
    return {"name": name, "items": len(items), "by_source": counts, "path": str(out), "hash": es.content_hash}

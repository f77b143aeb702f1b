"""The pipeline config (one TOML file naming corpora, budgets, eval sets), validated on load.

    db = "taomi.duckdb"

    [[corpus]]
    name = "web"
    paths = ["data/web.jsonl.gz"]          # relative paths are relative to this file
    text_field = "text"                     # optional: id_field, label_field, annotator_field

    [dedup]                                 # optional; DedupConfig fields
    threshold = 0.8
    shard_docs = 100000                     # signature shards mapped over the task runner

    [curriculum]                            # optional; CurriculumConfig fields
    pacing = "sqrt"

    [export]                                # optional
    outdir = "shards"
    format = "parquet"
    shard_size = 100000

    [scaling]                               # optional
    observations = "runs.csv"
    bootstrap = 1000
    budgets = [{gpus = 64, gpu = "h100-sxm", days = 14}, {flops = 1e23}]

    [calibrate]                             # optional
    enabled = true
    size = "tiny"
    steps = 20

    [[eval]]                                # optional, repeatable
    eval_set = "eval.jsonl"
    predictions = "preds.jsonl"
    metric = "accuracy"
    train_corpus = "web"
    gates = "gates.toml"
    out = "report"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A pipeline config that cannot run; the message names the file and the key."""


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p)
    return str(q if q.is_absolute() else (base / q))


def load_config(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    return normalize(raw, p.parent, str(p))


def normalize(raw: dict, base: Path, where: str = "config") -> dict[str, Any]:
    known = {"db", "corpus", "dedup", "curriculum", "export", "scaling", "calibrate", "eval"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    cfg: dict[str, Any] = {"db": _resolve(base, raw.get("db", "taomi.duckdb"))}
    corpora = []
    for i, c in enumerate(raw.get("corpus", []), start=1):
        if "name" not in c or "paths" not in c:
            raise ConfigError(f"{where}: corpus {i}: needs 'name' and 'paths'")
        corpora.append({**c, "paths": [_resolve(base, x) for x in c["paths"]]})
    cfg["corpus"] = corpora
    cfg["dedup"] = dict(raw.get("dedup", {}))
    cfg["curriculum"] = dict(raw.get("curriculum", {}))
    exp = dict(raw.get("export", {}))
    if exp:
        exp["outdir"] = _resolve(base, exp.get("outdir", "shards"))
    cfg["export"] = exp
    sc = dict(raw.get("scaling", {}))
    if sc:
        if "observations" not in sc:
            raise ConfigError(f"{where}: [scaling] needs 'observations'")
        sc["observations"] = _resolve(base, sc["observations"])
    cfg["scaling"] = sc
    cfg["calibrate"] = dict(raw.get("calibrate", {}))
    evals = []
    for i, e in enumerate(raw.get("eval", []), start=1):
        if "eval_set" not in e or "predictions" not in e:
            raise ConfigError(f"{where}: eval {i}: needs 'eval_set' and 'predictions'")
        evals.append({**e, **{k: _resolve(base, e.get(k)) for k in ("eval_set", "predictions", "gates", "out")}})
    cfg["eval"] = evals
    return cfg

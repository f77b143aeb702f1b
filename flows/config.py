"""The pipeline config (one TOML file naming corpora, budgets, eval sets), validated on load.

    db = "taomi.duckdb"

    [[corpus]]
    name = "web"
    paths = ["data/web.jsonl.gz"]          # relative paths are relative to this file
    text_field = "text"                     # optional: id_field, label_field, annotator_field

    [dedup]                                 # optional; DedupConfig fields
    threshold = 0.8
    shard_docs = 100000                     # signature shards mapped over the task runner
    workers = 2                             # signing threads per task (default: every core)
    memory_limit = "1GB"                    # dedup's memory budget (default: RAM/4, at most 1GB)
    work_dir = "/shared/taomi-work"         # Dask runner: Parquet shards and exchange files, seen by
                                            # every worker at this path (default: the db path + .work)
    partitions = 0                          # Dask runner: band-key shuffle partitions (0: automatic)

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

import os
import tomllib
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A pipeline config that cannot run; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


class CorpusSection(_Section):
    name: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)
    text_field: str = "text"
    id_field: str = "id"
    label_field: str | None = "label"
    annotator_field: str | None = "annotator"
    tokenizer: str = "cl100k_base"  # cl100k_base | o200k_base | a tokenizer.json path | none
    truth: str | None = None
    plot: str | None = None
    max_line_bytes: str | int | None = None  # e.g. "64MB": a longer JSON line / CSV record is quarantined unread

    @field_validator("max_line_bytes")
    @classmethod
    def _max_line(cls, v):
        from curation.shards import parse_bytes

        return None if v is None else parse_bytes(v, "max_line_bytes")


class ExportSection(_Section):
    outdir: str = "shards"
    format: Literal["parquet", "jsonl"] = "parquet"
    shard_size: int = Field(100_000, ge=1)
    shard_bytes: str | int | None = None  # e.g. "256MB": most text per shard (with shard_size, whichever first)
    shard_tokens: int | None = Field(None, ge=1)  # most tokens per shard (stored counts), instead of shard_bytes
    order: Literal["curriculum", "random"] = "curriculum"
    force: bool = False

    @field_validator("shard_bytes")
    @classmethod
    def _shard_bytes(cls, v):
        from curation.shards import parse_bytes

        return None if v is None else parse_bytes(v)


class BudgetSection(_Section):
    flops: float | None = None
    gpus: int | None = None
    gpu: str | None = None
    days: float | None = None
    mfu: float | None = None
    peak_tflops: float | None = None
    unique_tokens: float | None = None  # given: the corpus's count is not used for this budget


class ScalingSection(_Section):
    observations: str
    name: str | None = None
    # plans use this curated corpus's unique tokens (stored counts after dedup and decontamination);
    # default: the config's first [[corpus]]; "" plans with no data limit
    corpus: str | None = None
    bootstrap: int = Field(200, ge=0)
    drop_outliers: int = Field(0, ge=0)
    plots: str | None = None
    budgets: list[BudgetSection] = []


class CalibrateSection(_Section):
    enabled: bool = False
    size: str = "tiny"
    steps: int = Field(20, ge=1)
    device: str = "auto"
    corpus: str | None = None


class EvalSection(_Section):
    eval_set: str
    predictions: str | None = None  # none for an lm-evaluation-harness samples file
    model: str | None = None
    metric: str | None = None  # exact_match | accuracy | token_f1, or a harness per-item metric
    format: Literal["auto", "lm-eval", "taomi"] = "auto"
    filter: str | None = None
    pass_threshold: float = 0.5
    train_corpus: str | None = None
    gates: str | None = None
    out: str | None = None
    name: str | None = None
    n_boot: int = Field(2000, ge=0)


# [dedup] keys that are not DedupConfig fields
RESOURCE_KEYS = ("shard_docs", "workers", "memory_limit", "work_dir", "partitions")


class PipelineConfig(_Section):
    db: str = "taomi.duckdb"
    corpus: list[CorpusSection] = []
    dedup: dict[str, Any] = {}
    curriculum: dict[str, Any] = {}
    export: ExportSection | None = None
    scaling: ScalingSection | None = None
    calibrate: CalibrateSection = CalibrateSection()
    eval: list[EvalSection] = []

    @field_validator("dedup")
    @classmethod
    def _dedup(cls, v: dict) -> dict:
        from dedup.config import DedupConfig, Resources

        _dataclass_keys(DedupConfig, {k: x for k, x in v.items() if k not in RESOURCE_KEYS})
        if "shard_docs" in v and (not isinstance(v["shard_docs"], int) or v["shard_docs"] < 1):
            raise ValueError("shard_docs must be a positive integer")
        if "partitions" in v and (not isinstance(v["partitions"], int) or isinstance(v["partitions"], bool)
                                  or v["partitions"] < 0):
            raise ValueError("partitions must be a non-negative integer (0: one per 4M band-key rows)")
        if "work_dir" in v and not isinstance(v["work_dir"], str):
            raise ValueError("work_dir must be a folder path (a string)")
        if "workers" in v and (not isinstance(v["workers"], int) or isinstance(v["workers"], bool)):
            raise ValueError("workers must be an integer (0: every core)")
        if "memory_limit" in v and not isinstance(v["memory_limit"], (str, int)):
            raise ValueError("memory_limit must be a size like \"512MB\", \"2GB\" or \"25%\"")
        Resources.default(v.get("workers", 0), v.get("memory_limit"))  # raises ValueError naming the problem
        return v

    @field_validator("curriculum")
    @classmethod
    def _curriculum(cls, v: dict) -> dict:
        from curation.curriculum import CurriculumConfig

        c = dict(v)
        if "weights" in c:
            if not isinstance(c["weights"], dict):
                raise ValueError("weights must be a table of scorer = number")
            c["weights"] = tuple(c["weights"].items())
        _dataclass_keys(CurriculumConfig, c)
        return v


def _dataclass_keys(cls, values: dict) -> None:
    """Unknown keys and bad values of a stage's frozen dataclass config, as a ValueError."""
    fields = {f.name: f for f in dc_fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown key {', '.join(repr(k) for k in unknown)} (known: {', '.join(fields)})")
    for key, value in values.items():  # the type of a field's default is the type it takes
        default = fields[key].default
        want = float if isinstance(default, float) else type(default)
        if default is not None and want in (bool, int, float, str) and not (
                isinstance(value, want) and (want is bool or not isinstance(value, bool))
                or want is float and isinstance(value, int) and not isinstance(value, bool)):
            raise ValueError(f"{key} must be {want.__name__}, got {type(value).__name__} {value!r}")
    try:
        cls(**values)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p)
    # absolute: a Dask worker runs in its own folder (a relative database path made each worker
    # create an empty warehouse of its own and sign nothing)
    return os.path.abspath(q if q.is_absolute() else (base / q))


def load_config(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    return normalize(raw, p.parent, str(p))


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def normalize(raw: dict, base: Path, where: str = "config") -> dict[str, Any]:
    """Validate the whole config before anything runs (unknown keys, types, values, files that
    must exist) and return it as plain dicts with paths resolved against the config's folder."""
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {_where(e['loc'])}: {msg}{more}") from None
    out: dict[str, Any] = {"db": _resolve(base, cfg.db)}
    missing: list[str] = []

    def must_exist(key: str, value: str | None) -> str | None:
        path = _resolve(base, value)
        if path is not None and not Path(path).exists():
            missing.append(f"{key} = {value!r} ({path}: no such file)")
        return path

    def must_match(key: str, value: str) -> str:
        """A corpus path: a file, a folder or a glob, kept as written (a scheduled run picks up new
        shards) and checked now to match at least one data file."""
        from warehouse.readers import InputError, expand_inputs

        path = _resolve(base, value)
        try:
            expand_inputs([path])
        except InputError as exc:
            missing.append(f"{key} = {value!r} ({exc})")
        return path

    def tokenizer(key: str, value: str) -> str:
        """A shipped tokenizer's name or 'none' as written; a tokenizer.json path resolved and read
        (a file the tokenizers library cannot read fails here, not mid-run)."""
        from curation.tokens import BUILTIN, Tokenizer

        if value in (*BUILTIN, "none"):
            return value
        path = must_exist(key, value)
        if path and Path(path).is_file():
            try:
                Tokenizer(path)
            except ValueError as exc:
                missing.append(f"{key} = {value!r} ({exc})")
        return path

    out["corpus"] = [{**c.model_dump(exclude_none=False),
                      "tokenizer": tokenizer(f"corpus[{i}].tokenizer", c.tokenizer),
                      "paths": [must_match(f"corpus[{i}].paths", x) for x in c.paths],
                      "truth": must_exist(f"corpus[{i}].truth", c.truth), "plot": _resolve(base, c.plot)}
                     for i, c in enumerate(cfg.corpus)]
    out["dedup"] = dict(cfg.dedup)
    if "work_dir" in out["dedup"]:
        out["dedup"]["work_dir"] = _resolve(base, out["dedup"]["work_dir"])
    out["curriculum"] = dict(cfg.curriculum)
    out["export"] = {**cfg.export.model_dump(), "outdir": _resolve(base, cfg.export.outdir)} if cfg.export else {}
    if cfg.scaling:
        sc = cfg.scaling.model_dump()
        sc["observations"] = must_exist("scaling.observations", cfg.scaling.observations)
        sc["plots"] = _resolve(base, cfg.scaling.plots)
        sc["budgets"] = [{k: v for k, v in b.items() if v is not None} for b in sc["budgets"]]
        if sc.get("corpus") is None:
            sc["corpus"] = cfg.corpus[0].name if cfg.corpus else ""
        for i, b in enumerate(sc["budgets"]):
            from scaling.planning import PlanRequest

            try:
                PlanRequest(**b)
            except ValueError as exc:
                raise ConfigError(f"{where}: scaling.budgets[{i}]: {exc}") from None
        out["scaling"] = sc
    else:
        out["scaling"] = {}
    out["calibrate"] = cfg.calibrate.model_dump()
    out["eval"] = [{**e.model_dump(), "eval_set": must_exist(f"eval[{i}].eval_set", e.eval_set),
                    "predictions": must_exist(f"eval[{i}].predictions", e.predictions),
                    "gates": must_exist(f"eval[{i}].gates", e.gates), "out": _resolve(base, e.out)}
                   for i, e in enumerate(cfg.eval)]
    missing += _unusable_outputs(out)
    if missing:
        raise ConfigError(f"{where}: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return out


def _unusable_outputs(out: dict[str, Any]) -> list[str]:
    """Paths the run would write that cannot be used (a folder where a file goes, a file where a
    folder goes, a database path that is not a DuckDB file): found here, before Prefect starts."""
    from warehouse.db import WarehouseError, check_db_file

    problems = []
    try:
        check_db_file(Path(out["db"]))
    except WarehouseError as exc:
        problems.append(f"db: {exc}")
    folders = [("export.outdir", out["export"].get("outdir")), ("scaling.plots", out["scaling"].get("plots"))]
    folders += [(f"eval[{i}].out", e.get("out")) for i, e in enumerate(out["eval"])]
    for key, path in folders:
        if path and Path(path).exists() and not Path(path).is_dir():
            problems.append(f"{key} = {path!r}: exists and is not a folder; give a folder path")
    for i, c in enumerate(out["corpus"]):
        if c.get("plot") and Path(c["plot"]).is_dir():
            problems.append(f"corpus[{i}].plot = {c['plot']!r}: is a folder; give a PNG file path")
    return problems

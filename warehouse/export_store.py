"""Training shards on disk: written into a staging folder inside OUTDIR, then published.

Shard names follow the Hub's pattern with a per-export tag (`train-00000-of-00012-<tag>.parquet`:
`datasets.load_dataset("parquet", data_dir=OUTDIR)` reads them in order), so the new shards sit beside
the old ones until `manifest.json` is replaced (one atomic rename, the commit point); only then
are the old shards deleted, and only those Taomi wrote (see warehouse.outputs). A reader that
follows the manifest never sees a mix of two exports; a kill at any point leaves the previous
export complete, and the next run removes what the killed one left.
"""

from __future__ import annotations

import json
import uuid

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.curation_store import texts_by_doc_id
from warehouse.outputs import OutputDir, check_name, sha256

MANIFEST = "manifest.json"


def current_manifest(out: OutputDir) -> dict | None:
    """The manifest of the export in `out`, when Taomi wrote it and nobody changed it. Its shard
    names are checked like the ledger's (`check_name`): a hostile one refuses the export."""
    if not out.owns(MANIFEST):
        return None
    try:
        manifest = json.loads((out.path / MANIFEST).read_text(encoding="utf-8"))
        shards = manifest.get("shards", [])
        names = [s["file"] for s in shards]
    except (ValueError, AttributeError, KeyError, TypeError):
        return None  # not a manifest Taomi can read: nothing in it is trusted or deleted
    for name in names:
        check_name(out.path, name, str(out.path / MANIFEST))
    return manifest


def collect_garbage(out: OutputDir) -> list[str]:
    """Delete Taomi's shards that no live manifest names (left by a kill after the commit)."""
    live = {s["file"] for s in (current_manifest(out) or {}).get("shards", [])}
    stale = [n for n in out.files if n.startswith(("shard-", "train-")) and n not in live]
    return out.remove_owned(stale) if stale else []


def unchanged(out: OutputDir, content_key: str) -> dict | None:
    """The manifest, if the export in `out` already holds exactly this content, intact."""
    m = current_manifest(out)
    if m and m.get("content_key") == content_key and all(out.owns(s["file"]) for s in m.get("shards", [])):
        return m
    return None


def _range(col: pd.Series) -> list[float] | None:
    """[min, max] of a column, None when it holds no values (an unscored random order)."""
    if col.isna().all():
        return None
    return [float(col.min()), float(col.max())]


FIXED = ("id", "text", "position", "difficulty", "pacing_step")
# a metadata field is one column of every shard, typed by what it holds across the whole export
_META_TYPES = {frozenset({"UBIGINT"}): "Int64", frozenset({"BIGINT"}): "Int64", frozenset({"UBIGINT", "BIGINT"}): "Int64",
               frozenset({"BOOLEAN"}): "boolean", frozenset({"VARCHAR"}): "string"}


def meta_columns(con: duckdb.DuckDBPyConnection, doc_ids) -> dict[str, str]:
    """Metadata field -> pandas dtype, over the exported documents: integers, floats (any mix of
    numbers), booleans and strings keep their type; anything else (objects, lists, mixed types)
    is written as its JSON text, so every shard has the same schema."""
    con.register("export_ids", pd.DataFrame({"doc_id": pd.array(doc_ids, dtype="int64")}))
    try:
        # `lossy`: a number that int64 / float64 would change (an integer beyond 64 bits, one over
        # 2^63-1, a float that overflows to infinity): the field is then written as the numbers' own text
        found = con.execute("""
            SELECT k, list_distinct(list(t)),
                   bool_or((t = 'DOUBLE' AND (coalesce(isinf(TRY_CAST(x AS DOUBLE)), true)
                                              OR regexp_full_match(x, '-?[0-9]+')))
                           OR (t = 'UBIGINT' AND TRY_CAST(x AS UBIGINT) > 9223372036854775807))
            FROM (SELECT k, json_type(d.meta, p) AS t, json_extract(d.meta, p)::VARCHAR AS x
                  FROM (SELECT d.meta, k, '$."' || replace(k, '"', '\\"') || '"' AS p
                        FROM documents d JOIN export_ids e ON e.doc_id = d.doc_id, unnest(json_keys(d.meta)) AS t(k)
                        WHERE d.meta IS NOT NULL) d)
            GROUP BY k ORDER BY k""").fetchall()
    finally:
        con.unregister("export_ids")
    out = {}
    for key, types, lossy in found:
        kinds = frozenset(t for t in types if t != "NULL")
        if lossy and kinds <= {"UBIGINT", "BIGINT", "DOUBLE"}:
            out[key] = "number_text"
            continue
        out[key] = _META_TYPES.get(kinds) or ("float64" if kinds <= {"UBIGINT", "BIGINT", "DOUBLE"} and kinds
                                              else "json")
    return out


def _meta_frame(metas, columns: dict[str, str]) -> pd.DataFrame:
    parsed = [json.loads(m) if isinstance(m, str) else {} for m in metas]
    literal = ([json.loads(m, parse_float=str, parse_int=str, parse_constant=str) if isinstance(m, str) else {}
                for m in metas] if "number_text" in columns.values() else None)
    data = {}
    for key, kind in columns.items():
        values = [p.get(key) for p in (literal if kind == "number_text" else parsed)]
        if kind == "json":
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        name = key if key not in FIXED else f"meta_{key}"
        data[name] = pd.array(values, dtype="string" if kind in ("json", "number_text") else kind)
    return pd.DataFrame(data)


ROW_GROUP_BYTES = 64 << 20  # Parquet row groups of ~64 MB of text: readers stream them, trainers seek by them
_ARROW = {"Int64": pa.int64(), "float64": pa.float64(), "boolean": pa.bool_()}


def _schema(columns: dict[str, str]) -> pa.Schema:
    """One Parquet schema for every batch of every shard, whatever a batch happens to hold."""
    fields = [pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("position", pa.int64()),
              pa.field("difficulty", pa.float64()), pa.field("pacing_step", pa.int64())]
    fields += [pa.field(k if k not in FIXED else f"meta_{k}", _ARROW.get(kind, pa.string()))
               for k, kind in columns.items()]
    return pa.schema(fields)


def _json_lines(frame: pd.DataFrame):
    """One JSON object per row, written as it is made (pandas' to_json built the whole batch's
    text first: +377 MB for a 70 MB batch); missing values are null, floats exact."""
    cols = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
    names = list(frame.columns)
    for row in zip(*cols):
        yield json.dumps(dict(zip(names, row)), ensure_ascii=False, allow_nan=False) + "\n"


def _frame(con: duckdb.DuckDBPyConnection, part: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    docs = texts_by_doc_id(con, part["doc_id"].to_numpy())
    frame = pd.DataFrame({"id": docs["ext_id"].to_numpy(), "text": docs["text"].to_numpy(),
                          "position": part["position"].to_numpy(), "difficulty": part["difficulty"].to_numpy(),
                          "pacing_step": part["pacing_step"].to_numpy()})
    if columns:
        frame = pd.concat([frame, _meta_frame(docs["meta"].tolist(), columns)], axis=1)
    return frame


def write_shards(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, out: OutputDir, fmt: str,
                 bounds: list[tuple[int, int]], header: dict, progress=None,
                 batches: list[list[tuple[int, int]]] | None = None) -> dict:
    """Write `rows` (doc_id, position, pacing_step, difficulty) as shards (the half-open row
    ranges `bounds`) plus a manifest; every metadata field of the documents is a column (see
    `meta_columns`). Each shard is written batch by batch (`batches`: per shard, row ranges
    within it, of ~ROW_GROUP_BYTES of text each; one Parquet row group per batch), so a shard of
    any size is never held whole (a 318 MB corpus in one shard peaked at 6.3 GB)."""
    old = current_manifest(out)
    columns = meta_columns(con, rows["doc_id"].to_numpy())
    tag = uuid.uuid4().hex[:8]
    stage = out.staging()
    shards = []
    schema = _schema(columns) if fmt == "parquet" else None
    try:
        for i, (lo, hi) in enumerate(bounds):
            part = rows.iloc[lo:hi]
            name = f"train-{i:05d}-of-{len(bounds):05d}-{tag}.{fmt}"
            path = stage / name
            writer = pq.ParquetWriter(path, schema) if fmt == "parquet" else path.open("w", encoding="utf-8")
            try:
                for a, b in (batches[i] if batches else [(0, hi - lo)]):
                    frame = _frame(con, part.iloc[a:b], columns)
                    if fmt == "parquet":
                        writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False),
                                           row_group_size=len(frame))
                    else:
                        writer.writelines(_json_lines(frame))
                    if progress:
                        progress("write shards", lo + b, len(rows))
            finally:
                writer.close()
            shards.append({"file": name, "rows": len(part), "bytes": path.stat().st_size, "sha256": sha256(path),
                           "difficulty": _range(part["difficulty"]),
                           "pacing_steps": [int(part["pacing_step"].min()), int(part["pacing_step"].max())],
                           "positions": [int(part["position"].min()), int(part["position"].max())]})
        manifest = {**header, "writer": "taomi", "metadata_columns": {
            (k if k not in FIXED else f"meta_{k}"): v for k, v in columns.items()}, "shards": shards}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        out.publish(stage, [s["file"] for s in shards] + [MANIFEST], last=MANIFEST)
    finally:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
    if old:
        out.remove_owned(s["file"] for s in old.get("shards", []) if s["file"] not in {x["file"] for x in shards})
    return manifest

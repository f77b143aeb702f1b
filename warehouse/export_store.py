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
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.outputs import OutputDir, check_name, sha256
from warehouse.sql import wanted_docs

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


# `n_tokens`: each document's stored token count under the corpus's tokenizer (named in the
# manifest), a column when the corpus has counts; a metadata field of that name is `meta_n_tokens`
FIXED = ("id", "text", "position", "difficulty", "pacing_step", "n_tokens")
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


def _schema(columns: dict[str, str], tokens: bool = False) -> pa.Schema:
    """One Parquet schema for every batch of every shard, whatever a batch happens to hold."""
    fields = [pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("position", pa.int64()),
              pa.field("difficulty", pa.float64()), pa.field("pacing_step", pa.int64())]
    fields += [pa.field("n_tokens", pa.int64())] if tokens else []
    fields += [pa.field(k if k not in FIXED else f"meta_{k}", _ARROW.get(kind, pa.string()))
               for k, kind in columns.items()]
    return pa.schema(fields)


LONG_CHARS = 4 << 20  # JSON lines: a text over 4M characters is read from DuckDB and escaped piece by piece
PIECE_CHARS = 4 << 20  # (a 100 MB text built into one line took 2 GB); Parquet needs the value whole


def _text_pieces(con: duckdb.DuckDBPyConnection, doc_id: int):
    """The text of one document, PIECE_CHARS characters at a time, cut in DuckDB."""
    start = 1
    while True:
        piece = con.execute("SELECT substr(text, ?, ?) FROM documents WHERE doc_id = ?",
                            [start, PIECE_CHARS, int(doc_id)]).fetchall()[0][0]
        yield piece
        if len(piece) < PIECE_CHARS:
            return
        start += PIECE_CHARS


def _json_lines(con: duckdb.DuckDBPyConnection, table: pa.Table, doc_ids: np.ndarray):
    """One JSON object per row, written as it is made (pandas' to_json built the whole batch's
    text first: +377 MB for a 70 MB batch); missing values are null, floats exact. A text that
    `_frame` left out (over LONG_CHARS) is escaped piece by piece between its row's head and
    tail: the same bytes as json.dumps of the whole row."""
    names = table.column_names
    cols = [table[c].to_pylist() for c in names]
    for i, row in enumerate(zip(*cols)):
        d = dict(zip(names, row))
        if d["text"] is not None:
            yield json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n"
            continue
        rest = {k: v for k, v in d.items() if k not in ("id", "text")}  # id and text lead every row
        yield json.dumps({"id": d["id"]}, ensure_ascii=False)[:-1] + ', "text": "'
        for piece in _text_pieces(con, doc_ids[i]):
            yield json.dumps(piece, ensure_ascii=False)[1:-1]
        yield '"' + (", " + json.dumps(rest, ensure_ascii=False, allow_nan=False)[1:] if rest else "}") + "\n"


def _frame(con: duckdb.DuckDBPyConnection, part: pd.DataFrame, columns: dict[str, str], schema: pa.Schema,
           long_chars: int | None = None) -> pa.Table:
    """The batch as an Arrow table of `schema`; texts go from DuckDB to Arrow without becoming
    Python strings. With `long_chars`, a text longer than that is left null (see _json_lines)."""
    text = "d.text" if long_chars is None else f"CASE WHEN d.n_chars > {int(long_chars)} THEN NULL ELSE d.text END"
    with wanted_docs(con, part["doc_id"].to_numpy()):
        docs = con.sql(f"""SELECT d.ext_id, {text} AS text, d.meta FROM want_docs w
                               JOIN documents d ON d.doc_id = w.doc_id ORDER BY w.pos""").to_arrow_table()
    frame = pd.DataFrame({"position": part["position"].to_numpy(), "difficulty": part["difficulty"].to_numpy(),
                          "pacing_step": part["pacing_step"].to_numpy()})
    if "n_tokens" in schema.names:
        frame["n_tokens"] = part["n_tokens"].array  # (nullable: no count stored)
    if columns:
        frame = pd.concat([frame, _meta_frame(docs["meta"].to_pylist(), columns)], axis=1)
    rest = pa.Table.from_pandas(frame, schema=pa.schema([f for f in schema if f.name not in ("id", "text")]),
                                preserve_index=False)
    return (rest.add_column(0, schema.field("text"), docs["text"].cast(pa.string()))
                .add_column(0, schema.field("id"), docs["ext_id"].cast(pa.string())))


def _tokens(counts: pd.Series) -> int | None:
    """The shard's tokens; None when a document in it has no stored count."""
    return None if counts.isna().any() else int(counts.sum())


def write_shards(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, out: OutputDir, fmt: str,
                 bounds: list[tuple[int, int]], header: dict, progress=None,
                 batches: list[list[tuple[int, int]]] | None = None) -> dict:
    """Write `rows` (doc_id, position, pacing_step, difficulty, and n_tokens when the corpus has
    token counts: nullable Int64) as shards (the half-open row ranges `bounds`) plus a manifest;
    every metadata field of the documents is a column (see `meta_columns`). Each shard is written batch by batch (`batches`: per shard, row ranges
    within it, of ~ROW_GROUP_BYTES of text each; one Parquet row group per batch), so a shard of
    any size is never held whole (a 318 MB corpus in one shard peaked at 6.3 GB)."""
    old = current_manifest(out)
    columns = meta_columns(con, rows["doc_id"].to_numpy())
    tag = uuid.uuid4().hex[:8]
    stage = out.staging()
    shards = []
    tokens = "n_tokens" in rows.columns
    schema = _schema(columns, tokens)
    # no dictionary and no min/max statistics for the text column: both copy every value (a
    # 130 MB text cost +670 MB to write) and neither helps a column of distinct documents
    others = [n for n in schema.names if n != "text"]
    try:
        for i, (lo, hi) in enumerate(bounds):
            part = rows.iloc[lo:hi]
            name = f"train-{i:05d}-of-{len(bounds):05d}-{tag}.{fmt}"
            path = stage / name
            writer = (pq.ParquetWriter(path, schema, use_dictionary=others, write_statistics=others)
                      if fmt == "parquet" else path.open("w", encoding="utf-8"))
            try:
                for a, b in (batches[i] if batches else [(0, hi - lo)]):
                    batch = part.iloc[a:b]
                    if fmt == "parquet":
                        table = _frame(con, batch, columns, schema)
                        writer.write_table(table, row_group_size=len(table))
                    else:
                        table = _frame(con, batch, columns, schema, long_chars=LONG_CHARS)
                        writer.writelines(_json_lines(con, table, batch["doc_id"].to_numpy()))
                    if progress:
                        progress("write shards", lo + b, len(rows))
            finally:
                writer.close()
            shards.append({"file": name, "rows": len(part), "bytes": path.stat().st_size, "sha256": sha256(path),
                           "difficulty": _range(part["difficulty"]),
                           "pacing_steps": [int(part["pacing_step"].min()), int(part["pacing_step"].max())],
                           "positions": [int(part["position"].min()), int(part["position"].max())],
                           **({"tokens": _tokens(part["n_tokens"])} if tokens else {})})
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

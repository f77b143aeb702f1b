"""Parquet files of a distributed dedup run: the corpus's texts cut into shards, signatures per
shard, and the exchange files between stages (band keys, candidate pairs, verified edges).

The client copies the corpus out of DuckDB once (`export_shards`, a `COPY` per shard into row
groups of `group_docs` documents) and records each shard in the warehouse (`dedup_shards`, with a
fingerprint of its (doc id, content hash) list) and each signed shard (`dedup_shard_signatures`),
so a re-run exports and signs only new or changed shards. Everything else here reads and writes
plain files and is what Dask workers call: **no function a worker calls opens the DuckDB file**.

Files are written to a temporary name and renamed into place (`write_table`), so a worker killed
mid-write leaves no half file, and a task that Dask runs again writes the same bytes. The work
folder carries a marker (`.taomi-work`); Taomi refuses a folder without it that holds anything,
and deletes only the run folders it made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.readers import lit
from warehouse.sql import arrow, numpy, transaction

WORK_MARKER = ".taomi-work"


@dataclass(frozen=True)
class Shard:
    """One Parquet file of texts: doc ids first_id..last_id (ascending), `n_docs` of them, in row
    groups whose first doc ids are `group_first_ids`."""

    shard_no: int
    path: str
    first_id: int
    last_id: int
    n_docs: int
    fingerprint: str
    group_first_ids: tuple[int, ...]


def work_folder(path: str | os.PathLike) -> Path:
    """The work folder, made (with its marker) if missing. A folder that exists, holds files and
    has no marker is the user's: refused, nothing written."""
    folder = Path(path).resolve()
    if folder.exists() and not (folder / WORK_MARKER).is_file() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} exists and is not a Taomi work folder (no {WORK_MARKER} in it); "
                                  "give --work-dir a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WORK_MARKER).touch()
    return folder


def _slug(corpus: str) -> str:
    return hashlib.md5(corpus.encode()).hexdigest()[:12]


def fingerprints(doc_ids: np.ndarray, hashes: np.ndarray, shard_docs: int) -> list[str]:
    """Fingerprint of each run of `shard_docs` documents (ids ascending): what the shard holds."""
    out = []
    for lo in range(0, len(doc_ids), shard_docs):
        digest = hashlib.md5(np.ascontiguousarray(doc_ids[lo:lo + shard_docs], dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(hashes[lo:lo + shard_docs], dtype=np.uint64).tobytes())
        out.append(digest.hexdigest())
    return out


def stored_shards(con: duckdb.DuckDBPyConnection, corpus: str) -> dict[int, Shard]:
    rows = con.execute("""SELECT shard_no, path, first_id, last_id, n_docs, fingerprint, group_first_ids
                          FROM dedup_shards WHERE corpus = ?""", [corpus]).fetchall()
    return {r[0]: Shard(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6])) for r in rows}


def export_shards(con: duckdb.DuckDBPyConnection, corpus: str, folder: Path, doc_ids: np.ndarray,
                  hashes: np.ndarray, shard_docs: int, group_docs: int) -> tuple[list[Shard], int]:
    """(the corpus's shards, how many were written now). Shard k holds documents k*shard_docs ..
    in doc-id order; one whose fingerprint and file are unchanged is reused (appending documents
    rewrites only the last shard)."""
    texts = folder / "texts" / _slug(corpus)
    texts.mkdir(parents=True, exist_ok=True)
    known = stored_shards(con, corpus)
    shards, written = [], 0
    for k, fp in enumerate(fingerprints(doc_ids, hashes, shard_docs)):
        ids = doc_ids[k * shard_docs:(k + 1) * shard_docs]
        old = known.get(k)
        if old is not None and old.fingerprint == fp and Path(old.path).is_file():
            shards.append(old)
            continue
        path = texts / f"s{k:05d}-{fp[:16]}.parquet"
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        con.execute(f"""COPY (SELECT doc_id, text, n_chars FROM documents WHERE corpus = {lit(corpus)}
                              AND doc_id BETWEEN {int(ids[0])} AND {int(ids[-1])} ORDER BY doc_id)
                        TO {lit(str(tmp))} (FORMAT PARQUET, ROW_GROUP_SIZE {int(group_docs)},
                                             COMPRESSION zstd)""").fetchall()
        os.replace(tmp, path)
        shard = Shard(k, str(path), int(ids[0]), int(ids[-1]), len(ids), fp, _group_firsts(path))
        with transaction(con):
            con.execute("DELETE FROM dedup_shards WHERE corpus = ? AND shard_no = ?", [corpus, k]).fetchall()
            con.execute("INSERT INTO dedup_shards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [corpus, k, shard.path, shard.first_id, shard.last_id, shard.n_docs, fp,
                         list(shard.group_first_ids)]).fetchall()
        if old is not None and old.path != shard.path:
            Path(old.path).unlink(missing_ok=True)  # Taomi's own file of the shard's previous contents
        shards.append(shard)
        written += 1
    n = len(shards)
    stale = [s for k, s in known.items() if k >= n]
    if stale:
        con.execute("DELETE FROM dedup_shards WHERE corpus = ? AND shard_no >= ?", [corpus, n]).fetchall()
        for s in stale:
            Path(s.path).unlink(missing_ok=True)
    return shards, written


def _group_firsts(path: Path) -> tuple[int, ...]:
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.names.index("doc_id")
    return tuple(int(meta.row_group(g).column(col).statistics.min) for g in range(meta.num_row_groups))


def signed_shards(con: duckdb.DuckDBPyConnection, corpus: str, sig_key: str) -> dict[str, str]:
    """shard fingerprint -> signature file, for the shards signed under `sig_key` whose file is there."""
    rows = con.execute("SELECT fingerprint, path FROM dedup_shard_signatures WHERE corpus = ? AND sig_key = ?",
                       [corpus, sig_key]).fetchall()
    return {fp: p for fp, p in rows if Path(p).is_file()}


def record_signed(con: duckdb.DuckDBPyConnection, corpus: str, sig_key: str, done: list[tuple[str, str, int]]) -> None:
    """Record signature files (shard fingerprint, path, documents) in the manifest, in one transaction."""
    if not done:
        return
    with transaction(con):
        for fp, path, n in done:
            con.execute("DELETE FROM dedup_shard_signatures WHERE corpus = ? AND sig_key = ? AND fingerprint = ?",
                        [corpus, sig_key, fp]).fetchall()
            con.execute("INSERT INTO dedup_shard_signatures VALUES (?, ?, ?, ?, ?)",
                        [corpus, sig_key, fp, path, n]).fetchall()


def signature_path(folder: Path, sig_key: str, fingerprint: str) -> str:
    return str(folder / "sigs" / sig_key / f"{fingerprint}.parquet")


def run_folder(folder: Path, name: str) -> Path:
    """A fresh folder for one run's exchange files (a killed run's leftovers are removed)."""
    path = folder / "runs" / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def remove_run_folder(path: Path) -> None:
    if path.parent.name == "runs" and (path.parent.parent / WORK_MARKER).is_file():
        shutil.rmtree(path, ignore_errors=True)


# ---- what workers call: plain files only -------------------------------------------------------

def write_table(table: pa.Table, path: str | os.PathLike, row_group_rows: int | None = None,
                hashes: bool = False) -> None:
    """Write `table` as Parquet to a temporary name, then rename it into place. Never with
    dictionary encoding (hashes and ids barely repeat; trying cost half the read time), and
    `hashes` (signatures, band keys: random bits) uncompressed: with zstd a 51 MB signature file
    read in 0.53 s, without in 0.15 s, for 4% more bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp, row_group_size=row_group_rows, compression="none" if hashes else "zstd",
                   use_dictionary=False)
    os.replace(tmp, path)


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)


def text_groups(shard: Shard) -> Iterator[tuple[np.ndarray, pa.Array]]:
    """(doc ids, texts) of each row group of a shard file, in order."""
    f = pq.ParquetFile(shard.path)
    for g in range(f.num_row_groups):
        t = f.read_row_group(g, columns=["doc_id", "text"])
        yield numpy(t.column(0)).astype(np.int64), _one_chunk(t.column(1))


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)


def signature_table(ids: np.ndarray, n_shingles: np.ndarray, sigs: np.ndarray) -> pa.Table:
    width = sigs.shape[1]
    values = arrow(np.ascontiguousarray(sigs, dtype=np.uint32).ravel())
    return pa.table({"doc_id": arrow(ids.astype(np.int64)), "n_shingles": arrow(n_shingles.astype(np.int32)),
                     "sig": pa.FixedSizeListArray.from_arrays(values, width)})


def signature_batches(path: str, batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(doc ids, n_shingles, sigs (n, num_perm) uint32) batches of a signature file."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        sig = batch.column(2)
        width = sig.type.list_size
        flat = numpy(sig.flatten())
        yield (numpy(batch.column(0)).astype(np.int64), numpy(batch.column(1)).astype(np.int64),
               flat.reshape(len(sig), width))


def values_for(path: str, ids: np.ndarray, column: str) -> np.ndarray:
    """`column` of the rows of a file sorted by doc_id whose doc ids are `ids` (sorted, all
    present), reading only the row groups whose doc-id range holds one of them."""
    f = pq.ParquetFile(path)
    meta = f.metadata
    at = meta.schema.names.index("doc_id")
    out = np.empty(len(ids), dtype=np.float64)
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(at).statistics
        lo, hi = np.searchsorted(ids, st.min, "left"), np.searchsorted(ids, st.max, "right")
        if lo == hi:
            continue
        t = f.read_row_group(g, columns=["doc_id", column])
        got = numpy(t.column(0))
        out[lo:hi] = numpy(t.column(1))[np.searchsorted(got, ids[lo:hi])]
    return out


def read_sets(paths: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc ids, flat values, offsets) of the (doc_id, set) files given, in file order."""
    ids, lists = [], []
    for p in paths:
        t = pq.read_table(p)
        ids.append(numpy(t.column(0)).astype(np.int64))
        lists.append(_one_chunk(t.column(1)))
    if not ids:
        return np.empty(0, np.int64), np.empty(0, np.uint64), np.zeros(1, np.int64)
    doc = np.concatenate(ids)
    col = pa.concat_arrays(lists) if len(lists) > 1 else lists[0]
    offs = numpy(col.offsets).astype(np.int64)
    values = numpy(col.values)[offs[0]:offs[-1]]
    return doc, values, offs - offs[0]


def int_columns(path: str, names: list[str]) -> list[np.ndarray]:
    t = pq.read_table(path, columns=names)
    return [numpy(t.column(c)) for c in names]


class ShardTexts:
    """Texts (or lengths) of any documents of the shards, read from their Parquet row groups: a
    call reads only the row groups that hold the documents asked for, one at a time."""

    def __init__(self, shards: list[Shard]):
        self.shards = shards
        self.firsts = np.array([g for s in shards for g in s.group_first_ids], dtype=np.int64)
        self.where = [(k, g) for k, s in enumerate(shards) for g in range(len(s.group_first_ids))]
        self._files: dict[int, pq.ParquetFile] = {}

    def _file(self, k: int) -> pq.ParquetFile:
        if k not in self._files:
            self._files[k] = pq.ParquetFile(self.shards[k].path)
        return self._files[k]

    def _take(self, doc_ids: np.ndarray, column: str) -> pa.Array:
        doc_ids = np.asarray(doc_ids, dtype=np.int64)
        if len(doc_ids) == 0:
            return pa.array([], type=pa.large_string() if column == "text" else pa.int64())
        group = np.searchsorted(self.firsts, doc_ids, "right") - 1
        order = np.argsort(group, kind="stable")
        parts, at = [], []
        for g in np.unique(group).tolist():
            want = order[group[order] == g]
            k, rg = self.where[g]
            t = self._file(k).read_row_group(rg, columns=["doc_id", column])
            ids = numpy(t.column(0))
            pos = np.searchsorted(ids, doc_ids[want])
            if (pos >= len(ids)).any() or (ids[np.minimum(pos, len(ids) - 1)] != doc_ids[want]).any():
                raise KeyError(f"{self.shards[k].path}: documents asked for are not in this shard")
            parts.append(_one_chunk(t.column(1)).take(arrow(pos)))
            at.append(want)
        col = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        back = np.empty(len(doc_ids), dtype=np.int64)
        back[np.concatenate(at)] = np.arange(len(doc_ids))
        return col.take(arrow(back))

    def texts(self, doc_ids: np.ndarray) -> pa.Array:
        """Texts of the documents, in the order given (an Arrow string column)."""
        return self._take(doc_ids, "text")

    def chars(self, doc_ids: np.ndarray) -> np.ndarray:
        return numpy(self._take(doc_ids, "n_chars")).astype(np.int64)

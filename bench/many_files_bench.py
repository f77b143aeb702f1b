"""Many small files against the same rows in one file (issue 28, item 4; target: within 2x).

    .venv/bin/python bench/many_files_bench.py [--files 1500] [--file-kb 130] [--repeats 1]

The rows: files that ship inside this venv's site-packages (sources, READMEs, licences, docs; one
document per file, up to 1 MB), cycled with a fresh id when the folder needs more than there
are, written as `--files` JSON-lines shards of ~`--file-kb` KB (what a Hub or datatrove dataset
folder looks like) and as one file of the same lines. Timed in fresh processes:
`taomi ingest --tokenizer none` of the folder, of the one file, and DuckDB's own
`CREATE TABLE AS SELECT *, md5(text) FROM read_json('folder/*.jsonl')` (no checks, no line
numbers, no quarantine) for scale. The two Taomi databases must hold the same documents.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_real_bench import taomi


def build(folder: Path, n_files: int, file_bytes: int) -> tuple[Path, Path, int]:
    site = Path(sysconfig.get_paths()["purelib"])
    files = sorted(p for p in site.rglob("*") if p.suffix in {".py", ".md", ".rst", ".txt", ".pyi"} and p.is_file()
                   and 40 < p.stat().st_size < 1 << 20)
    random.Random(0).shuffle(files)
    shards, one = folder / "shards", folder / "one.jsonl"
    shards.mkdir()
    rows = 0
    with open(one, "w") as whole:
        source = ((f, cycle) for cycle in itertools.count() for f in files)
        for k in range(n_files):
            lines, size = [], 0
            while size < file_bytes:
                f, cycle = next(source)
                rel = str(f.relative_to(site))
                line = json.dumps({"id": f"{rel}#{cycle}", "text": f.read_text(encoding="utf-8", errors="replace"),
                                   "metadata": {"source": rel.split("/")[0]}}) + "\n"
                lines.append(line)
                size += len(line)
            (shards / f"train-{k:05d}-of-{n_files:05d}.jsonl").write_text("".join(lines))
            whole.write("".join(lines))
            rows += len(lines)
    return shards, one, rows


def duckdb_ctas(db: Path, source: str) -> tuple[float, str]:
    """(seconds, cap) of DuckDB's own CTAS: at 4 GB first, then 8 GB when 4 GB runs out of memory."""
    for cap in ("4GB", "8GB"):
        db.unlink(missing_ok=True)
        con = duckdb.connect(str(db))
        con.execute(f"SET memory_limit = '{cap}'")
        t = time.perf_counter()
        try:
            con.execute(f"CREATE TABLE d AS SELECT *, md5(text) AS h FROM {source}")
            con.execute("CHECKPOINT")
            return time.perf_counter() - t, cap
        except duckdb.OutOfMemoryException:
            print(f"DuckDB CTAS over the glob: out of memory at {cap}")
        finally:
            con.close()
    return float("nan"), "none"


def same_documents(a: Path, b: Path) -> bool:
    q = "SELECT ext_id, content_hash, n_chars, meta::VARCHAR FROM documents ORDER BY ext_id"
    ca, cb = duckdb.connect(str(a), read_only=True), duckdb.connect(str(b), read_only=True)
    try:
        return ca.execute(q).fetchall() == cb.execute(q).fetchall()
    finally:
        ca.close()
        cb.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1500)
    ap.add_argument("--file-kb", type=int, default=130)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        shards, one, rows = build(t, args.files, args.file_kb * 1000)
        print(f"{args.files:,} files of ~{args.file_kb} KB ({sum(p.stat().st_size for p in shards.iterdir()) / 1e6:.0f}"
              f" MB, {rows:,} real documents) and the same lines in one file")
        many, single, ref = [], [], []
        for rep in range(args.repeats):
            a, b, c = t / f"many{rep}.duckdb", t / f"one{rep}.duckdb", t / f"duck{rep}.duckdb"
            many.append(taomi(a, "ingest", "-c", "real", str(shards), "--tokenizer", "none"))
            single.append(taomi(b, "ingest", "-c", "real", str(one), "--tokenizer", "none"))
            ref.append(duckdb_ctas(c, f"read_json('{shards}/*.jsonl', format = 'newline_delimited', "
                                      "maximum_object_size = 1073741824)"))
            assert same_documents(a, b), "the folder and the one file gave different documents"
            for p in (a, b, c):
                p.unlink(missing_ok=True)
        m, s = statistics.median(x[0] for x in many), statistics.median(x[0] for x in single)
        print(f"taomi ingest FOLDER: {m:.2f} s (peak RSS {max(x[1] for x in many)} MB)")
        print(f"taomi ingest ONE FILE: {s:.2f} s (peak RSS {max(x[1] for x in single)} MB)")
        print(f"ratio folder / one file: {m / s:.2f}x (target 2x); fixed cost per file "
              f"{(m - s) / args.files * 1000:.1f} ms")
        d = statistics.median(x[0] for x in ref)
        print(f"DuckDB CTAS over the folder's glob ({ref[-1][1]} cap, no checks): {d:.2f} s; "
              f"taomi folder / DuckDB {m / d:.2f}x")


if __name__ == "__main__":
    main()

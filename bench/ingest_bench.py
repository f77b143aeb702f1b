"""Ingest speed: `taomi ingest` path vs a plain `duckdb.read_json` of the same file, same run.

    python bench/ingest_bench.py [--docs 200000] [--workdir bench/out]

Target (issue 2): our ingest within 2x of the plain read (which keeps no line numbers, checks
nothing, quarantines nothing and writes no run log).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from taomi.demo_data import DemoConfig, generate
from warehouse.db import connect, one
from warehouse.ingest import IngestConfig, ingest_paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--workdir", default="bench/out")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.workdir)
    data_dir = work / f"corpus-{args.docs}"
    corpus = data_dir / "corpus.jsonl"
    if not corpus.exists():
        t = time.perf_counter()
        generate(data_dir, DemoConfig(docs=args.docs, seed=1))
        print(f"generated {args.docs:,} docs in {time.perf_counter() - t:.1f} s")
    mb = corpus.stat().st_size / 1e6
    plain_s, ours_s = [], []
    for rep in range(args.repeats):
        db = work / f"plain-{rep}.duckdb"
        db.unlink(missing_ok=True)
        t = time.perf_counter()
        with duckdb.connect(str(db)) as con:
            con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited', "
                        "ignore_errors=true)", [str(corpus)])
            plain_rows = one(con, "SELECT count(*) FROM t")[0]
        plain_s.append(time.perf_counter() - t)
        db.unlink()
        db = work / f"ours-{rep}.duckdb"
        db.unlink(missing_ok=True)
        t = time.perf_counter()
        con = connect(db)
        res = ingest_paths(con, [corpus], IngestConfig("bench"))[0]
        con.close()
        ours_s.append(time.perf_counter() - t)
        db.unlink()
    p, o = min(plain_s), min(ours_s)
    print(f"file: {corpus} ({mb:,.1f} MB)")
    print(f"plain duckdb read_json -> table: {plain_rows:,} rows in {p:.2f} s = "
          f"{plain_rows / p:,.0f} rows/s, {mb / p:,.1f} MB/s")
    print(f"taomi ingest (checked, quarantined, hashed, logged): {res.rows_new:,} rows "
          f"(+{res.rows_quarantined} quarantined) in {o:.2f} s = {res.rows_new / o:,.0f} rows/s, {mb / o:,.1f} MB/s")
    print(f"ratio taomi / plain time: {o / p:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()

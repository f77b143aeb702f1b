"""Ingest of real text in its real shape, beside DuckDB's own readers in the same run (issue 23).

    .venv/bin/python bench/ingest_real_bench.py [--docs 12000] [--shards 4] [--repeats 2]
                                                [--tail-mb 150 --huge-mb 30] [--cjk-copies 10]

The corpus: files that ship inside this venv's site-packages (sources, READMEs, licences, docs;
one document per file, lengths from 40 bytes to ~1 MB), written as datatrove writes them (JSON
lines with a nested `metadata` object: source package, suffix) and as Parquet shards; and a long-tailed corpus (`bench/stage_memory.py`'s: lognormal
lengths cut from real text, plus one 10 MB and one `--huge-mb` MB document; `--tail-mb 0` leaves
it out); and real text with no spaces between words (Debian's zh_CN, zh_TW, ja, ko and th
catalogues and manual pages, one document each, `--cjk-copies` times). Timed:

- `taomi ingest --tokenizer none` with its defaults (memory limit: a quarter of RAM, at most 1 GB),
  then `taomi tokens` (the cl100k_base counts that `ingest` adds by default), timed apart;
- `ingest_paths` as the CLI calls it, timed in its process after Python has started and imported
  Taomi (~0.4 s the CLI figure includes), as DuckDB's CTAS below is timed;
- DuckDB `CREATE TABLE AS SELECT *, md5(text) FROM read_json(...)` / `read_parquet('*.parquet')`
  (no line numbers, no checks, no quarantine, no run log; at DuckDB's default 488 MB cap it runs
  out of memory on this corpus, so it gets 4 GB), which is the key Taomi stores, timed in process
  and as a command (a fresh `python -c` that imports duckdb and runs it, timed as `taomi` is); the
  same with the
  folded key (case, whitespace and NFC folded before the md5, the stored key before schema 19) in
  place of `md5(text)`: what that key costs DuckDB alone; and the md5 CTAS into a file attached
  with the 4,096-row groups that `taomi ingest` writes (`ROW_GROUP_SIZE`), which spares DuckDB
  too its log and checkpoint.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from warehouse.db import BULK_ROW_GROUP_SIZE
from warehouse.ingest import folded_key_sql


def build(folder: Path, n: int, shards: int) -> tuple[Path, Path, int]:
    site = Path(sysconfig.get_paths()["purelib"])
    files = [p for p in site.rglob("*") if p.suffix in {".py", ".md", ".rst", ".txt", ".pyi"} and p.is_file()
             and p.stat().st_size > 40]
    random.Random(0).shuffle(files)
    rows = [{"id": str(f.relative_to(site)), "text": f.read_text(encoding="utf-8", errors="replace"),
             "metadata": {"source": f.relative_to(site).parts[0], "suffix": f.suffix}} for f in files[:n]]
    jsonl = folder / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pdir = folder / "parquet"
    pdir.mkdir()
    per = -(-len(rows) // shards)
    for k in range(shards):
        part = rows[k * per:(k + 1) * per]
        pq.write_table(pa.table({"id": [r["id"] for r in part], "text": [r["text"] for r in part],
                                 "source": [r["metadata"]["source"] for r in part]}),
                       pdir / f"train-{k:05d}-of-{shards:05d}.parquet")
    return jsonl, pdir, len(rows)


def cjk_corpus(path: Path, copies: int) -> int:
    """Real text with no spaces between words: every translated message of each Debian catalogue
    for zh_CN, zh_TW, ja, ko and th as one document (a few KB to ~1 MB), and each zh/ja/ko manual
    page as one, written `copies` times over (as mirrored data is; fresh ids)."""
    import gzip

    sys.path.insert(0, str(ROOT / "bench"))
    from realtext import catalogue

    docs = []
    for lang in ("zh_CN", "zh_TW", "ja", "ko", "th"):
        for mo in sorted(Path(f"/usr/share/locale/{lang}/LC_MESSAGES").glob("*.mo")):
            text = "\n".join(v for v in catalogue(mo).values() if isinstance(v, str) and v.strip())
            if text:
                docs.append({"text": text, "metadata": {"lang": lang, "source": mo.name}})
        for page in sorted(Path(f"/usr/share/man/{lang}").rglob("*.gz")) if Path(f"/usr/share/man/{lang}").is_dir() else []:
            docs.append({"text": gzip.decompress(page.read_bytes()).decode("utf-8", "replace"),
                         "metadata": {"lang": lang, "source": page.name}})
    with path.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for i, d in enumerate(docs):
                fh.write(json.dumps({"id": f"{c}-{i}", **d}, ensure_ascii=False) + "\n")
    return copies * len(docs)


def timed_command(*argv: str) -> tuple[float, int]:
    """(seconds, peak RSS MB) of one command in a fresh process, timed by a probe process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:], "
             "capture_output=True); print(r.returncode, time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.split()
    assert out[0] == "0", out
    return float(out[1]), int(out[2]) // 1024


def taomi(db: Path, *args: str) -> tuple[float, int]:
    """(seconds, peak RSS MB) of one `taomi` command in a fresh process."""
    return timed_command(sys.executable, "-m", "taomi", "--db", str(db), *args)


IN_PROCESS = """
import sys, time
from dedup.config import Resources
from warehouse.db import bulk_session
from warehouse.ingest import IngestConfig, ingest_paths
from warehouse.readers import expand_inputs
t = time.perf_counter()
with bulk_session(sys.argv[1]) as con:
    ingest_paths(con, expand_inputs([sys.argv[2]]), IngestConfig("real"), None, Resources.default(1, None).duckdb_mb)
print(time.perf_counter() - t)
"""


def taomi_in_process(db: Path, target: str) -> float:
    """Seconds of `ingest_paths` alone, as `taomi ingest` calls it (same memory limit), timed after
    the interpreter has started and imported Taomi: what DuckDB's CTAS is timed on."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(db), target], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split()
    return float(out[-1])


def duckdb_ctas(db: Path, source: str, key: str = "md5(text)", row_group_size: int | None = None) -> float:
    """DuckDB alone: the table written with its defaults, or (`row_group_size`) attached with the
    row groups Taomi's ingest writes (warehouse.db.BULK_ROW_GROUP_SIZE)."""
    if row_group_size:
        con = duckdb.connect()
        con.execute(f"ATTACH '{db}' AS d (ROW_GROUP_SIZE {row_group_size})")
        con.execute("USE d")
    else:
        con = duckdb.connect(str(db))
    con.execute("SET memory_limit = '4GB'")
    t = time.perf_counter()
    con.execute(f"CREATE TABLE d AS SELECT *, {key} AS h FROM {source}")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t


DUCKDB_PROCESS = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET memory_limit = '4GB'")
con.execute(f"CREATE TABLE d AS SELECT *, md5(text) AS h FROM {sys.argv[2]}")
con.execute("CHECKPOINT")
con.close()
"""


def duckdb_process(db: Path, source: str) -> float:
    """DuckDB's md5 CTAS as a command, timed as `taomi` is: a fresh Python process that imports
    duckdb and runs the statement (what the CLI figure is fairly compared with)."""
    return timed_command(sys.executable, "-c", DUCKDB_PROCESS, str(db), source)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=12_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tail-mb", type=float, default=150, help="long-tailed corpus size (0: left out)")
    ap.add_argument("--cjk-copies", type=int, default=10, help="copies of the CJK/Thai corpus (0: left out)")
    ap.add_argument("--huge-mb", type=float, default=30, help="its largest document")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        jsonl, pdir, n = build(t, args.docs, args.shards)
        print(f"{n:,} real files, JSON lines {jsonl.stat().st_size / 1e6:.1f} MB, Parquet "
              f"{sum(p.stat().st_size for p in pdir.iterdir()) / 1e6:.1f} MB in {args.shards} shards")
        cases = [("JSON lines", str(jsonl), (f"read_json('{jsonl}', format = 'newline_delimited', "
                                            "maximum_object_size = 1073741824)")),
                 ("Parquet shards (a folder)", str(pdir), f"read_parquet('{pdir}/*.parquet')")]
        if args.cjk_copies:
            cjk = t / "cjk.jsonl"
            n_cjk = cjk_corpus(cjk, args.cjk_copies)
            print(f"CJK/Thai: {n_cjk:,} documents, {cjk.stat().st_size / 1e6:.1f} MB of JSON lines")
            cases.append(("CJK/Thai JSON lines", str(cjk), (f"read_json('{cjk}', format = 'newline_delimited', "
                                                            "maximum_object_size = 1073741824)")))
        if args.tail_mb:
            sys.path.insert(0, str(ROOT / "bench"))
            from stage_memory import tail_corpus

            tail = t / "tail.jsonl"
            docs = tail_corpus(tail, args.tail_mb, args.huge_mb, 0)[0]
            print(f"long-tailed: {docs:,} documents, {tail.stat().st_size / 1e6:.1f} MB of JSON lines "
                  f"(largest {args.huge_mb:g} MB)")
            cases.append(("Long-tailed JSON lines", str(tail), (f"read_json('{tail}', format = 'newline_delimited', "
                                                                "maximum_object_size = 1073741824)")))
        for name, target, source in cases:
            ours, inproc, theirs, small, keyed, rss, tok, proc = [], [], [], [], [], [], [], []
            for rep in range(args.repeats):
                a, b = t / f"t{rep}.duckdb", t / f"d{rep}.duckdb"
                s, r = taomi(a, "ingest", "-c", "real", target, "--tokenizer", "none")
                ours.append(s)
                rss.append(r)
                tok.append(taomi(a, "tokens", "real", "--quiet")[0])
                a.unlink()
                inproc.append(taomi_in_process(a, target))
                theirs.append(duckdb_ctas(b, source))
                b.unlink()
                proc.append(duckdb_process(b, source))
                b.unlink()
                small.append(duckdb_ctas(b, source, row_group_size=BULK_ROW_GROUP_SIZE))
                b.unlink()
                keyed.append(duckdb_ctas(b, source, folded_key_sql("text")))
                a.unlink()
                b.unlink()
            o, d, k = statistics.median(ours), statistics.median(theirs), statistics.median(keyed)
            i, g, p = statistics.median(inproc), statistics.median(small), statistics.median(proc)
            print(f"{name}: taomi ingest {o:.2f} s (peak RSS {max(rss)} MB, process start included), "
                  f"ingest_paths in process {i:.2f} s; DuckDB CTAS {d:.2f} s: ratio {o / d:.2f}x CLI, {i / d:.2f}x in "
                  f"process (target 1.5x); DuckDB CTAS as a process (python -c, import included) {p:.2f} s: ratio "
                  f"{o / p:.2f}x CLI; DuckDB CTAS with the folded key (stored before schema 19) {k:.2f} s: "
                  f"ratio {o / k:.2f}x CLI, "
                  f"{i / k:.2f}x in process; DuckDB CTAS md5 with Taomi's {BULK_ROW_GROUP_SIZE:,}-row groups {g:.2f} s: "
                  f"ratio {o / g:.2f}x CLI, {i / g:.2f}x in process; then `taomi tokens` (cl100k_base) "
                  f"{statistics.median(tok):.2f} s")


if __name__ == "__main__":
    main()

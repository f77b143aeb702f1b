"""Distributed dedup on a local Dask cluster beside the single-process path, at 1M and 3M documents.

    .venv/bin/python bench/dask_dedup_bench.py                                  # 1M and 3M, ~120 words
    .venv/bin/python bench/dask_dedup_bench.py --sizes 100000 --single-at 100000  # a quick look
    .venv/bin/python bench/dask_dedup_bench.py --real                           # real text, real shapes

For each size: one generated corpus (bench/dedup_scale.py's, cached), ingested by `taomi ingest`
into a fresh DuckDB file, then copied; `taomi dedup c` runs on one copy (the single-process path,
at the sizes in --single-at) and `taomi dedup c --cluster local --workers 2 --memory-per-worker
1.5GB` on the other, each as a child process (wall time and the client's peak RSS from wait4).
The workers' own peak RSS, restarts, shuffle volume and time per stage come from the run's
report. Where both paths ran, their decisions and pairs are compared row by row (a digest of
the sorted tables) and the time ratio printed: the target is dask <= 3x single at 1M documents,
and no worker restart at 3M.

`--real`: instead of generated text, a folder of JSONL shards (as datatrove writes them) holding
~`--real-mb` MB of real files shipped in this machine's packages (one file per document, up to
MBs), a long tail cut from the same text (lognormal lengths, one 10 MB and one `--huge-mb` MB
document), and real Chinese, Japanese, Korean and Thai paragraphs (Debian's translated manuals,
Thai message catalogs) each with a planted edited copy (bench/multilingual_bench.py). Both paths
run with word units and with `--char-ngrams`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dedup_scale import TAOMI, run_rusage


def in_child(call: str) -> object:
    """The JSON result of `call` (an expression over this module) in a fresh Python process: this
    process stays small, and a child started after it would inherit its peak RSS in wait4's
    figure (Linux carries the high-water mark across posix_spawn's exec)."""
    code = f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.dask_dedup_bench import *; print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def corpus_path(work: str, n: int, largest: int, words: int) -> str:
    from bench.dedup_scale import corpus

    return str(corpus(Path(work), n, largest, words))


def digest(db: str) -> tuple[str, int, int]:
    """(digest of the sorted decision and pair rows, decisions, pairs)."""
    from warehouse.db import connect

    con = connect(db, read_only=True)
    h = hashlib.sha256()
    counts = []
    for t in ("dedup_decisions", "dedup_pairs"):
        rel = con.sql(f"SELECT * EXCLUDE (corpus) FROM {t} ORDER BY ALL")
        n = 0
        with rel.to_arrow_reader(batch_size=200_000) as reader:
            for batch in reader:
                h.update(repr(batch.to_pylist()).encode())
                n += batch.num_rows
        counts.append(n)
    con.close()
    return h.hexdigest()[:16], counts[0], counts[1]


def real_folder(work: Path, mb: float, huge_mb: float) -> tuple[Path, int]:
    """(folder of JSONL shards, documents): real files, a long tail, CJK and Thai with copies."""
    sys.path.insert(0, str(ROOT / "bench"))
    from multilingual_bench import build
    from stage_memory import real_corpus, tail_corpus

    folder = work / f"real-{mb:g}-{huge_mb:g}"
    marker = folder / "n.json"
    if marker.exists():
        return folder, json.loads(marker.read_text())["docs"]
    folder.mkdir(parents=True, exist_ok=True)
    n_real, _ = real_corpus(folder / "real-00000.jsonl", mb, 0)
    n_tail, _ = tail_corpus(folder / "tail-00000.jsonl", mb / 4, huge_mb, 1)
    n_lang = 0
    with open(folder / "langs-00000.jsonl", "w", encoding="utf-8") as fh:
        for lang in ("zh_CN", "zh_TW", "ja", "ko", "th"):
            texts, _ = build(lang, 150, 0)
            for i, t in enumerate(texts):
                fh.write(json.dumps({"id": f"{lang}-{i}", "text": t, "metadata": {"lang": lang}}, ensure_ascii=False)
                         + "\n")
                n_lang += 1
    docs = n_real + n_tail + n_lang
    marker.write_text(json.dumps({"docs": docs}))
    return folder, docs


def base_db(base: Path, source: Path) -> float | None:
    """Ingest `source` into the cached database `base` once (under a temporary name, renamed when
    done); the ingest's seconds, or None when `base` was there already."""
    if base.exists():
        return None
    tmp = base.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    t_ing, _, _ = run_rusage([TAOMI, "--db", str(tmp), "ingest", str(source), "--corpus", "c", "--json",
                              "--tokenizer", "none"], None)
    tmp.replace(base)
    return t_ing


def real(args, work: Path) -> None:
    folder, n = in_child(f"[str(x) for x in real_folder(Path({str(work)!r}), {args.real_mb}, {args.huge_mb})]")
    folder, n = Path(folder), int(n)
    base = work / f"base-real-{args.real_mb:g}-{args.huge_mb:g}.duckdb"
    t_ing = base_db(base, folder)
    if t_ing is not None:
        print(json.dumps({"real_docs": n, "bytes": sum(f.stat().st_size for f in folder.glob("*.jsonl")),
                          "ingest_s": round(t_ing, 1)}), flush=True)
    for mode in ([], ["--char-ngrams"]):
        row: dict = {"corpus": "real", "mode": "char" if mode else "words"}
        for name, extra in (("single", []), ("dask", ["--cluster", "local", "--workers", str(args.workers),
                                                      "--memory-per-worker", args.memory_per_worker,
                                                      "--work-dir", "WORK", "--shard-docs", str(args.real_shard_docs)])):
            db = work / f"{name}-real.duckdb"
            shutil.copy(base, db)
            wd = work / f"work-{name}-real"
            shutil.rmtree(wd, ignore_errors=True)
            cmd = [TAOMI, "--db", str(db), "dedup", "c", "--json", *mode, *[str(wd) if c == "WORK" else c for c in extra]]
            wall, rss, out = run_rusage(cmd, None)
            rep = json.loads(out)
            row[name] = {"wall_s": round(wall, 1), "client_peak_mb": round(rss), "docs_out": rep["docs_out"],
                         "near_dropped": rep["near_dropped"], "verified_pairs": rep["verified_pairs"],
                         "stage_s": rep["seconds"]}
            if name == "dask":
                row[name].update({k: rep[k] for k in ("worker_peak_mb", "worker_restarts", "shards", "partitions")})
            row[name]["digest"] = in_child(f"digest({str(db)!r})")[0]
            row[name]["zh_ja_ko_th_dropped"] = in_child(f"cjk_dropped({str(db)!r})")
            db.unlink()
            shutil.rmtree(wd, ignore_errors=True)
        row["equal"] = row["single"]["digest"] == row["dask"]["digest"]
        row["dask_over_single"] = round(row["dask"]["wall_s"] / row["single"]["wall_s"], 2)
        print(json.dumps({"summary": row}), flush=True)


def cjk_dropped(db: str) -> int:
    """Near copies dropped among the CJK and Thai paragraphs (150 planted per language)."""
    from warehouse.db import connect

    con = connect(db, read_only=True)
    n = con.execute("""SELECT count(*) FROM dedup_decisions x JOIN documents d USING (doc_id)
                       WHERE NOT x.keep AND regexp_matches(d.ext_id, '^(zh_CN|zh_TW|ja|ko|th)-')""").fetchall()[0][0]
    con.close()
    return int(n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    ap.add_argument("--single-at", type=int, nargs="*", default=[1_000_000, 3_000_000])
    ap.add_argument("--words", type=int, default=120)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-per-worker", default="1.5GB")
    ap.add_argument("--workdir", default="bench/out/dask")
    ap.add_argument("--shard-docs", type=int, nargs="+", default=[100_000], help="dask runs, one per value")
    ap.add_argument("--partitions", type=int, default=0)
    ap.add_argument("--components", default="auto")
    ap.add_argument("--real", action="store_true", help="real text in real shapes instead of generated documents")
    ap.add_argument("--real-mb", type=float, default=100)
    ap.add_argument("--huge-mb", type=float, default=30)
    ap.add_argument("--real-shard-docs", type=int, default=5000)
    args = ap.parse_args()
    work = ROOT / args.workdir
    work.mkdir(parents=True, exist_ok=True)
    if args.real:
        real(args, work)
        return
    largest = max(args.sizes)
    for n in sorted(args.sizes):
        src = in_child(f"corpus_path({str(work)!r}, {n}, {largest}, {args.words})")
        base = work / f"base-{n}.duckdb"
        t_ing = base_db(base, src)
        if t_ing is not None:
            print(json.dumps({"docs": n, "ingest_s": round(t_ing, 1)}), flush=True)
        row: dict = {"docs": n, "words": args.words}
        runs = {f"dask-{sd}" if len(args.shard_docs) > 1 else "dask":
                [TAOMI, "--db", "DB", "dedup", "c", "--json", "--cluster", "local", "--workers", str(args.workers),
                 "--memory-per-worker", args.memory_per_worker, "--work-dir", "WORK", "--shard-docs", str(sd),
                 "--partitions", str(args.partitions), "--components", args.components] for sd in args.shard_docs}
        if n in args.single_at:
            runs = {"single": [TAOMI, "--db", "DB", "dedup", "c", "--json"], **runs}
        for name, cmd in runs.items():
            db = work / f"{name}-{n}.duckdb"
            shutil.copy(base, db)
            wd = work / f"work-{name}-{n}"
            shutil.rmtree(wd, ignore_errors=True)
            cmd = [str(db) if c == "DB" else str(wd) if c == "WORK" else c for c in cmd]
            wall, rss, out = run_rusage(cmd, None)
            rep = json.loads(out)
            row[name] = {"wall_s": round(wall, 1), "client_peak_mb": round(rss), "docs_out": rep["docs_out"],
                         "near_dropped": rep["near_dropped"], "verified_pairs": rep["verified_pairs"],
                         "stage_s": rep["seconds"]}
            if name.startswith("dask"):
                row[name].update({k: rep[k] for k in ("worker_peak_mb", "worker_restarts", "partitions", "shards",
                                                      "components", "component_rounds", "shuffle_bytes")})
                row[name]["shuffle_bytes_per_doc"] = round(rep["shuffle_bytes"] / n, 1)
                row[name]["work_dir_bytes_per_doc"] = round(sum(f.stat().st_size for f in wd.rglob("*") if f.is_file())
                                                            / n, 1)
            row[name]["digest"], row[name]["decisions"], row[name]["pairs"] = in_child(f"digest({str(db)!r})")
            print(json.dumps({"docs": n, name: row[name]}), flush=True)
            db.unlink()
            shutil.rmtree(wd, ignore_errors=True)
        if "single" in row:
            row["equal"] = row["single"]["digest"] == row["dask"]["digest"]
            row["dask_over_single"] = round(row["dask"]["wall_s"] / row["single"]["wall_s"], 2)
        print(json.dumps({"summary": row}), flush=True)


if __name__ == "__main__":
    main()

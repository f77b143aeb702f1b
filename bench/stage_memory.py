"""Peak memory and time of every stage on corpora of real shape (issue 28, item 1).

    .venv/bin/python bench/stage_memory.py [--real-mb 300] [--tail-mb 150] [--huge-mb 100]
                                           [--corpora real tail] [--stages ...]
                                           [--tail-docs N --tail-median CHARS --tail-sigma S]

Two corpora, both real text (files that ship in this venv's site-packages and under /usr/share,
/usr/include, /usr/lib/python3; labelled by the package or folder they come from):

- `real`: ~`--real-mb` MB, one document per file (40 bytes to 5 MB: sources, docs, man pages).
- `tail`: ~`--tail-mb` MB of documents whose lengths follow a lognormal (median ~4 KB, sigma 1.6,
  cut from the same files laid end to end), plus one 10 MB and one `--huge-mb` MB document.

Every stage runs as `taomi` in a fresh process with its defaults (memory budget: a quarter of
RAM, at most 1 GB); the peak of the summed RSS of the process and its children is sampled every
0.1 s. The eval set: 300 paragraphs, half cut from corpus documents (contaminated), half from
files left out; predictions right for two thirds. Rows lost: documents in the file minus stored
minus quarantined (must be 0). Prints one JSON line per (corpus, stage) and a table.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from labels_scale_bench import _read, package_files, system_files, tree_peak_rss

TAOMI = str(ROOT / ".venv" / "bin" / "taomi")
BUDGET_MB = 1024  # the default --memory-limit on this machine (a quarter of RAM, at most 1 GB)
STAGES = ("ingest", "dedup", "dedup-char", "labels", "curriculum", "export-jsonl", "export-parquet", "eval")


def pool(seed: int) -> list[dict]:
    """Every file, labelled by its package or folder when that has 150 files or more, else
    'other' (a label check needs classes with examples: thousands of one-file classes left it
    nothing to do)."""
    import collections

    rows = package_files(min_files=1) + system_files()
    sizes = collections.Counter(r["label"] for r in rows)
    rows = [{**r, "label": r["label"] if sizes[r["label"]] >= 150 else "other"} for r in rows]
    random.Random(seed).shuffle(rows)
    return rows


def real_corpus(path: Path, mb: float, seed: int) -> tuple[int, list[dict]]:
    """Write ~mb MB of one-file documents; return (documents, files left out for the eval set)."""
    total, n, left = 0, 0, []
    with path.open("w", encoding="utf-8") as fh:
        for r in pool(seed):
            t = _read(Path(r["path"]))
            if not t or not t.strip():
                continue
            if total >= mb * 1e6:
                left.append({"text": t, "label": r["label"]})
                if len(left) >= 400:
                    break
                continue
            fh.write(json.dumps({"id": f"d{n}", "text": t, "label": r["label"],
                                 "metadata": {"source": r["label"].split("/")[0]}}) + "\n")
            total += len(t.encode())
            n += 1
    return n, left


def tail_corpus(path: Path, mb: float, huge_mb: float, seed: int, docs: int = 0, median: float = 4000,
                sigma: float = 1.6) -> tuple[int, list[dict]]:
    """Lognormal lengths cut from real text laid end to end, plus a 10 MB and a huge document. With
    `docs`, that many documents of lognormal lengths (median, sigma), the real text read again from
    another offset when it runs out (so later cuts are shifted, not exact, copies)."""
    import math

    rng = random.Random(seed)
    stream, left = [], []
    size = 0
    want = (mb + 10 + huge_mb) * 1e6 * 1.05 if not docs else 600e6 + (10 + huge_mb) * 1e6
    for r in pool(seed + 1):
        t = _read(Path(r["path"]))
        if not t or not t.strip():
            continue
        if size >= want:
            left.append({"text": t, "label": r["label"]})
            if len(left) >= 400:
                break
            continue
        stream.append((t, r["label"]))
        size += len(t)
    text = "\n".join(t for t, _ in stream)
    labels = [lab for _, lab in stream]
    n, pos = 0, 0
    with path.open("w", encoding="utf-8") as fh:
        for big in (10e6, huge_mb * 1e6):
            fh.write(json.dumps({"id": f"big{int(big / 1e6)}mb", "text": text[pos:pos + int(big)], "label": "big"})
                     + "\n")
            pos += int(big)
            n += 1
        end = pos + int(mb * 1e6)
        mu = math.log(median) if docs else 8.3
        while (n < docs + 2) if docs else (pos < end):
            k = max(20, min(int(rng.lognormvariate(mu, sigma if docs else 1.6)), 2_000_000))
            if pos + k > len(text):  # docs mode: read the text again, shifted
                pos = rng.randrange(0, 997)
            fh.write(json.dumps({"id": f"t{n}", "text": text[pos:pos + k],
                                 "label": labels[int(pos / len(text) * len(labels))]}) + "\n")
            pos += k
            n += 1
    return n, left


def eval_files(work: Path, corpus: Path, left: list[dict], seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    inside = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            if rng.random() < 0.02 and len(inside) < 150:
                d = json.loads(line)
                if len(d["text"]) > 400:
                    inside.append(d)
    items = []
    for i, d in enumerate(inside + left[:300 - len(inside)]):
        start = rng.randrange(0, max(1, len(d["text"]) - 400))
        items.append({"id": f"q{i}", "input": d["text"][start:start + 400], "target": d["label"].split("/")[0]})
    labels = sorted({it["target"] for it in items})
    eset, preds = work / "eval_set.jsonl", work / "predictions.jsonl"
    eset.write_text("".join(json.dumps(it) + "\n" for it in items))
    preds.write_text("".join(json.dumps({"id": it["id"], "prediction": it["target"] if rng.random() < 0.67
                                         else rng.choice(labels)}) + "\n" for it in items))
    return eset, preds


def run(work: Path, name: str, *args: str) -> dict:
    out, err = work / f"{name}.out", work / f"{name}.err"
    t = time.perf_counter()
    with out.open("w") as so, err.open("w") as se:  # files, not pipes: a big report must not block it
        proc = subprocess.Popen([TAOMI, *args], stdout=so, stderr=se, cwd=work)
        peak = tree_peak_rss(proc, every=0.1)
    secs = time.perf_counter() - t
    tail = err.read_text()[-400:]
    return {"stage": name, "rc": proc.returncode, "seconds": round(secs, 1), "peak_rss_mb": round(peak / 2 ** 20),
            "traceback": "Traceback" in err.read_text(), "error": tail.strip().splitlines()[-1] if proc.returncode
            and tail.strip() else None}


def stages(work: Path, corpus: Path, eset: Path, preds: Path, which: set[str]) -> list[dict]:
    db = str(work / "w.duckdb")
    plan = [("ingest", ["--db", db, "ingest", "-c", "c", str(corpus)]),
            ("dedup", ["--db", db, "dedup", "c"]),
            ("dedup-char", ["--db", db, "dedup", "c", "--char-ngrams"]),
            ("labels", ["--db", db, "labels", "c", "--bootstrap", "0", "--json"]),
            ("curriculum", ["--db", db, "curriculum", "c", "--quiet"]),
            ("export-jsonl", ["--db", db, "export", "c", str(work / "shards-jsonl"), "--format", "jsonl", "--quiet"]),
            ("export-parquet", ["--db", db, "export", "c", str(work / "shards-parquet"), "--quiet"]),
            ("eval", ["--db", db, "eval", str(eset), str(preds), "--train-corpus", "c", "--out", str(work / "report"),
                      "--quiet"])]
    out = []
    for name, args in plan:
        if name in which or name == "ingest":
            out.append(run(work, name, *args))
    return out


def rows_lost(db: Path, n: int) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        docs = con.execute("SELECT count(*) FROM documents").fetchall()[0][0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    finally:
        con.close()
    return n - docs - quarantined


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real-mb", type=float, default=300)
    ap.add_argument("--tail-mb", type=float, default=150)
    ap.add_argument("--huge-mb", type=float, default=100)
    ap.add_argument("--corpora", nargs="+", default=["real", "tail"])
    ap.add_argument("--stages", nargs="+", default=list(STAGES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tail-docs", type=int, default=0,
                    help="tail corpus of this many documents (lognormal lengths) instead of --tail-mb")
    ap.add_argument("--tail-median", type=float, default=4000, help="with --tail-docs: median length (chars)")
    ap.add_argument("--tail-sigma", type=float, default=1.6, help="with --tail-docs: lognormal sigma")
    args = ap.parse_args()
    table = []
    for kind in args.corpora:
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            corpus = work / f"{kind}.jsonl"
            if kind == "real":
                n, left = real_corpus(corpus, args.real_mb, args.seed)
            else:
                n, left = tail_corpus(corpus, args.tail_mb, args.huge_mb, args.seed, args.tail_docs,
                                      args.tail_median, args.tail_sigma)
            eset, preds = eval_files(work, corpus, left, args.seed)
            size = corpus.stat().st_size / 1e6
            print(f"# {kind}: {n:,} documents, {size:.0f} MB of JSON lines", flush=True)
            for r in stages(work, corpus, eset, preds, set(args.stages)):
                r.update(corpus=kind, docs=n, mb=round(size))
                if r["stage"] == "ingest":
                    r["rows_lost"] = rows_lost(work / "w.duckdb", n)
                print(json.dumps(r), flush=True)
                table.append(r)
    print(f"\n| corpus | stage | seconds | peak RSS MB | over budget ({BUDGET_MB} MB) | rc | traceback |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['corpus']} ({r['docs']:,} docs, {r['mb']} MB) | {r['stage']} | {r['seconds']} | "
              f"{r['peak_rss_mb']:,} | {r['peak_rss_mb'] - BUDGET_MB:+,} | {r['rc']} | {r['traceback']} |")


if __name__ == "__main__":
    main()

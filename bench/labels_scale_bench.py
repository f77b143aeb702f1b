"""Label checks at real length and real scale (issue 28, item 2): time and peak RSS of
`taomi labels` at 2k, 25k (and 100k) documents, with precision/recall/F1 on planted flips.

Corpus: whole files (source, docs, text; 200 B - 5 MB, real long tail) of the installed Python
packages with >= 150 such files, each labelled with its package (24 classes, torch ~47%: real
imbalance). 100k documents: those files plus the files of /usr/share/man (decompressed),
/usr/share/doc, /usr/include and /usr/lib/python3, each labelled by its top folder, and, to reach
the count, every file over 40 KB cut into its 40 KB pieces (said in the output). Seeded uniform
flips of 8%. Each run is a fresh `taomi ingest` + `taomi labels` in its own process; peak RSS is
the sampled sum over that process and its fold workers.

    .venv/bin/python bench/labels_scale_bench.py --docs 2000 25000 [--flips 0.08] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAOMI = str(Path(sys.executable).parent / "taomi")
EXTS = {".py", ".pyi", ".rst", ".md", ".txt", ".c", ".h", ".cpp", ".hpp", ".json", ".html", ".js", ".css", ".yaml",
        ".toml", ".cfg"}


def _read(f: Path) -> str | None:
    try:
        raw = f.read_bytes()
        if f.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None


def package_files(min_files: int = 150) -> list[dict]:
    import site

    sp = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    by = collections.defaultdict(list)
    for f in sorted(sp.rglob("*")):
        if f.suffix in EXTS and f.is_file() and 200 < f.stat().st_size < 5_000_000:
            by[f.relative_to(sp).parts[0]].append(f)
    rows = []
    for label, files in sorted(by.items()):
        if len(files) >= min_files:
            rows += [{"path": str(f), "label": label} for f in files]
    return rows


def system_files() -> list[dict]:
    rows = []
    for root in ("/usr/share/man", "/usr/share/doc", "/usr/include", "/usr/lib/python3"):
        p = Path(root)
        if not p.exists():
            continue
        for f in sorted(p.rglob("*")):
            if f.is_file() and not f.is_symlink() and 200 < f.stat().st_size < 5_000_000:
                rows.append({"path": str(f), "label": f"{p.name}/{f.relative_to(p).parts[0]}"})
    return rows


def corpus(n: int, seed: int) -> tuple[list[dict], str]:
    pool = package_files()
    note = "package files"
    if n > len(pool):
        pool += system_files()
        note = "package + system files"
    docs = []
    for r in pool:
        t = _read(Path(r["path"]))
        if t and t.strip():
            docs.append({"text": t, "label": r["label"]})
    if n > len(docs):  # cut long files into 40 KB pieces to reach the count
        pieces = []
        for d in docs:
            t = d["text"]
            if len(t) > 40_000:
                pieces += [{"text": t[i:i + 40_000], "label": d["label"]} for i in range(0, len(t), 40_000)]
            else:
                pieces.append(d)
        docs, note = pieces, note + ", files over 40 KB cut into 40 KB pieces"
    counts = collections.Counter(d["label"] for d in docs)
    docs = [d for d in docs if counts[d["label"]] >= 20]
    rng = random.Random(seed)
    docs = rng.sample(docs, min(n, len(docs)))
    return docs, note


def run(n: int, flips: float, seed: int, work: Path) -> dict:
    docs, note = corpus(n, seed)
    rng = random.Random(seed + 1)
    classes = sorted({d["label"] for d in docs})
    flipped = set(rng.sample(range(len(docs)), round(flips * len(docs))))
    path = work / f"labels-{n}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, d in enumerate(docs):
            given = rng.choice([c for c in classes if c != d["label"]]) if i in flipped else d["label"]
            fh.write(json.dumps({"id": f"d{i}", "text": d["text"], "label": given}) + "\n")
    truth = work / f"truth-{n}.json"
    truth.write_text(json.dumps({"noisy_labels": [f"d{i}" for i in sorted(flipped)]}))
    db = work / f"labels-{n}.duckdb"
    sizes = sorted(len(d["text"].encode()) for d in docs)
    subprocess.run([TAOMI, "--db", str(db), "ingest", str(path), "--corpus", "c", "--memory-limit", "2GB"],
                   check=True, capture_output=True)
    del docs
    t = time.perf_counter()
    out_f, err_f = work / f"out-{n}.json", work / f"err-{n}.txt"
    with out_f.open("w") as so, err_f.open("w") as se:  # files, not pipes: a big report must not block it
        proc = subprocess.Popen([TAOMI, "--db", str(db), "labels", "c", "--truth", str(truth), "--bootstrap", "0",
                                 "--json"], stdout=so, stderr=se, text=True)
        peak = tree_peak_rss(proc)
    secs = time.perf_counter() - t
    stdout, stderr = out_f.read_text(), err_f.read_text()
    if proc.returncode:
        return {"docs": n, "error": stderr[-500:], "seconds": secs}
    rss_mb = peak / 2 ** 20
    out = json.loads(stdout)
    tc = out["truth_check"]
    prec, rec = tc["precision"] or 0.0, tc["recall"] or 0.0
    return {"docs": n, "classes": len(classes), "mb": sum(sizes) / 2 ** 20,
            "median_kb": sizes[len(sizes) // 2] / 1024, "max_kb": sizes[-1] / 1024, "corpus": note,
            "seconds": secs, "peak_rss_mb": rss_mb, "flagged": tc["flagged"], "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def tree_peak_rss(proc: subprocess.Popen, every: float = 0.2) -> int:
    """Peak of the summed RSS of a process and all its descendants (the fold workers), sampled."""
    import psutil

    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
        except psutil.Error:
            total = 0
        peak = max(peak, total)
        time.sleep(every)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, nargs="+", default=[2000, 25000])
    ap.add_argument("--flips", type=float, default=0.08)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for n in args.docs:
            r = run(n, args.flips, args.seed, Path(d))
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()

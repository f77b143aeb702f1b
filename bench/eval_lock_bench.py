"""Does `taomi eval --train-corpus` let other commands in while it scans? (issue 29, item 4)

    .venv/bin/python bench/eval_lock_bench.py [--docs 8000] [--items 300] [--root OTHER_CHECKOUT]

Real text in its real shape: source files, READMEs, licences and docs that ship inside the
installed packages of this venv (lengths from a few words to hundreds of KB), one document per
file, ingested into a fresh warehouse. The eval set is real docstrings of other files; a tenth of
them are planted into corpus documents (the scan must find them) and half the predictions are
wrong (the tracing pass runs). While `taomi eval` runs in one process, another runs `taomi corpora`
in a loop (read-only open, lock wait 30 s) and times every call. Before this change the eval held
the lock for its whole run, and `taomi corpora` exited 75 after 30 s; `--root` runs every
`taomi` of the benchmark from another checkout (e.g. `git worktree add /tmp/old 840ffe2`) to show it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realtext import file_docstrings  # bench/ is not a package: found through sys.path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".pyi"}


def corpus_files(limit: int, seed: int) -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    files = [p for p in site.rglob("*") if p.suffix in SUFFIXES and p.is_file() and p.stat().st_size > 40]
    random.Random(seed).shuffle(files)
    return files[:limit]


def docstrings(files: list[Path], n: int) -> list[str]:
    out = []
    for f in files:
        if f.suffix != ".py":
            continue
        out += [" ".join(doc.split()[:120]) for _, doc in file_docstrings(f) if len(doc.split()) >= 25]
        if len(out) >= n:
            break
    return out[:n]


CODE = ROOT  # the checkout whose `taomi` runs (--root)


def taomi(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taomi", *args], capture_output=True, text=True, cwd=CODE,
                          env={**os.environ, "PYTHONPATH": str(CODE), **(env or {})}, check=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=8000)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose taomi runs (default: this one)")
    args = ap.parse_args()
    global CODE
    CODE = args.root.resolve()
    files = corpus_files(args.docs + 2000, args.seed)
    train, held = files[:args.docs], files[args.docs:]
    items = docstrings(held, args.items)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        planted = set(rng.sample(range(len(items)), len(items) // 10))
        texts = []
        for i, f in enumerate(train):
            text = f.read_text(encoding="utf-8", errors="replace")
            if i < len(planted):  # a leaked item inside a real file
                text += "\n" + items[sorted(planted)[i]]
            texts.append({"id": str(f.relative_to(f.parents[len(f.parents) - 4])), "text": text})
        (t / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in texts))
        mb = (t / "corpus.jsonl").stat().st_size / 1e6
        lengths = sorted(len(x["text"]) for x in texts)
        (t / "set.jsonl").write_text("".join(json.dumps({"id": f"i{k}", "input": x, "target": "ok"}) + "\n"
                                             for k, x in enumerate(items)))
        (t / "pred.jsonl").write_text("".join(json.dumps({"id": f"i{k}", "prediction": "ok" if k % 2 else "no"})
                                              + "\n" for k in range(len(items))))
        db = str(t / "w.duckdb")
        r = taomi("--db", db, "ingest", "-c", "real", str(t / "corpus.jsonl"), "--memory-limit", "4GB", "--json")
        assert r.returncode == 0, r.stderr
        print(f"corpus: {len(texts):,} real files from site-packages, {mb:.1f} MB, length median "
              f"{statistics.median(lengths):,.0f} chars, max {lengths[-1]:,}; eval set {len(items)} real docstrings, "
              f"{len(planted)} planted")
        latencies, codes, done = [], [], threading.Event()

        def poll():
            while not done.is_set():
                t0 = time.perf_counter()
                c = taomi("--db", db, "corpora", "--json")
                latencies.append(time.perf_counter() - t0)
                codes.append(c.returncode)

        poller = threading.Thread(target=poll)
        t0 = time.perf_counter()
        ev = subprocess.Popen([sys.executable, "-m", "taomi", "--db", db, "eval", str(t / "set.jsonl"),
                               str(t / "pred.jsonl"), "--train-corpus", "real", "--out", str(t / "rep"), "--json"],
                              cwd=CODE, env={**os.environ, "PYTHONPATH": str(CODE)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(2)  # past its start-up and its first short session
        poller.start()
        out, err = ev.communicate()
        wall = time.perf_counter() - t0
        done.set()
        poller.join()
        assert ev.returncode in (0, 3), err
        rep = json.loads(out)
        c = rep["contamination"]
        print(f"eval --train-corpus: {wall:.1f} s; contamination {c['contaminated']} of {c['checked']} items "
              f"({len(planted)} planted); {len(rep['failures'])} failures traced")
        print(f"code: {CODE}; meanwhile `taomi corpora` ran {len(latencies)} times: exit codes "
              f"{dict(sorted((k, codes.count(k)) for k in set(codes)))}, latency median "
              f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")


if __name__ == "__main__":
    main()

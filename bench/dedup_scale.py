"""How dedup's cost grows: ingest and dedup through the CLI at 10k .. 1M generated documents.

    .venv/bin/python bench/dedup_scale.py                       # 10k 30k 100k 300k 1M, ~250 words
    .venv/bin/python bench/dedup_scale.py --sizes 10000 30000 --repeats 3 --workers 1

Each size is a fresh DuckDB file. `taomi ingest` and `taomi dedup` run as separate processes;
their wall time and peak RSS come from the kernel (wait4). The log-log slope of time against
documents is fitted from the sizes given, and the per-document cost of the largest run is
projected to 10^8 and 10^9 documents (time per core, disk for signatures and band keys). The
plot goes to docs/scale.png (README "Scale").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.dedup_bench import reset

TAOMI = str(Path(sys.executable).parent / "taomi")


def corpus(workdir: Path, n: int, largest: int, words: int) -> Path:
    """The first n documents of one generated corpus of `largest` documents (cached)."""
    from taomi.demo_data import DemoConfig, generate

    base = workdir / f"corpus-{largest}-w{words}"
    src = base / "corpus.jsonl"
    if not src.exists():
        t = time.perf_counter()
        generate(base, DemoConfig(docs=largest, seed=1, words_mean=words))
        print(f"generated {largest:,} documents in {time.perf_counter() - t:.0f} s", flush=True)
    if n == largest:
        return src
    out = workdir / f"prefix-{n}-w{words}.jsonl"
    if not out.exists():
        with open(src, "rb") as fh, open(out.with_suffix(".tmp"), "wb") as dst:
            for i, line in enumerate(fh):
                if i >= n:
                    break
                dst.write(line)
        out.with_suffix(".tmp").replace(out)
    return out


def run_rusage(cmd: list[str], cpus: str | None) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one child process, its own RSS from wait4."""
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        out_path = Path(f"/tmp/taomi-scale-{os.getpid()}.out")
        with open(out_path, "wb") as out_fh:
            # TAOMI_KERNEL=numba: every size runs the compiled kernel (jobs under 30k documents would
            # take the numpy path, a different per-document cost) and pays the same set-up
            env = {**os.environ, "TAOMI_KERNEL": "numba"}
            pid = os.posix_spawn(cmd[0] if os.path.isabs(cmd[0]) else shutil.which(cmd[0]), cmd, env,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, out_fh.fileno(), 1),
                                               (os.POSIX_SPAWN_DUP2, null.fileno(), 2)])
            _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    out = out_path.read_text()
    out_path.unlink()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_maxrss / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    ap.add_argument("--probe", type=int, default=100, help="documents of the start-up probe (0: none)")
    ap.add_argument("--words", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=1, help="dedup runs per size (median)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cpus", default="0", help="taskset CPU list for the children ('' for none)")
    ap.add_argument("--memory-limit", default=None, help="passed to taomi dedup (default: its own)")
    ap.add_argument("--workdir", default="bench/out/scale")
    ap.add_argument("--plot", default="docs/scale.png")
    ap.add_argument("--rows", help="report and plot the JSON rows a previous run printed (no new runs)")
    args = ap.parse_args()
    if args.rows:
        rows = [json.loads(line) for line in Path(args.rows).read_text().splitlines() if line.startswith("{")]
        report(rows, args)
        return
    work = ROOT / args.workdir
    work.mkdir(parents=True, exist_ok=True)
    largest = max(args.sizes)
    rows = []
    for n in ([args.probe] if args.probe else []) + sorted(args.sizes):
        path = corpus(work, n, largest, args.words)
        db = work / f"scale-{n}.duckdb"
        for p in (db, db.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        t_ing, rss_ing, _ = run_rusage([TAOMI, "--db", str(db), "ingest", str(path), "--corpus", "c", "--json"],
                                       args.cpus or None)
        size_docs = db.stat().st_size
        dd = [TAOMI, "--db", str(db), "dedup", "c", "--json", "--workers", str(args.workers)]
        if args.memory_limit:
            dd += ["--memory-limit", args.memory_limit]
        runs = []
        for k in range(max(args.repeats, 3 if n == args.probe else 1)):
            if k:
                reset(db)
            wall, rss, out = run_rusage(dd, args.cpus or None)
            runs.append((wall, rss, json.loads(out)))
        runs.sort(key=lambda r: r[0])
        wall, rss, rep = runs[len(runs) // 2]
        sig_bytes = db.stat().st_size - size_docs
        row = {"docs": n, "ingest_s": round(t_ing, 2), "ingest_rss_mb": round(rss_ing), "dedup_s": round(wall, 2),
               "dedup_rss_mb": round(rss), "stage_s": rep["seconds"], "docs_out": rep["docs_out"],
               "near_dropped": rep["near_dropped"], "exact_dropped": rep["exact_dropped"],
               "band_grouping": rep["band_grouping"], "bands": rep["bands"], "memory_limit_mb": rep["memory_limit_mb"],
               "db_bytes_per_doc_dedup": round(sig_bytes / n, 1), "db_bytes_per_doc_ingest": round(size_docs / n, 1),
               "probe": n == args.probe}
        rows.append(row)
        print(json.dumps(row), flush=True)
    report(rows, args)


def slope(rows: list[dict], key: str) -> float:
    x = np.log([r["docs"] for r in rows])
    y = np.log([r[key] for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def report(all_rows: list[dict], args) -> None:
    probe = next((r for r in all_rows if r.get("probe")), None)
    rows = [r for r in all_rows if not r.get("probe")]
    if probe:
        print(f"start-up probe: {probe['docs']} documents, dedup {probe['dedup_s']:.2f} s, ingest "
              f"{probe['ingest_s']:.2f} s (imports, the kernel cache, DuckDB open, run log)")
    print(f"\n{'docs':>10} {'ingest s':>9} {'ingest RSS':>11} {'dedup s':>8} {'dedup RSS':>10} {'docs/s':>9}  stages (s)")
    for r in rows:
        st = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_s"].items())
        print(f"{r['docs']:>10,} {r['ingest_s']:>9.1f} {r['ingest_rss_mb']:>8,} MB {r['dedup_s']:>8.1f} "
              f"{r['dedup_rss_mb']:>7,} MB {r['docs'] / r['dedup_s']:>9,.0f}  {st}")
    if len(rows) >= 2:
        s_d, s_i = slope(rows, "dedup_s"), slope(rows, "ingest_s")
        print(f"\nlog-log slope of wall time against documents: dedup {s_d:.2f}, ingest {s_i:.2f} (target 0.9-1.1)")
        for key in ("dedup_s", "ingest_s"):  # time = start-up + cost x documents: the slope of the second term
            n = np.array([r["docs"] for r in rows], dtype=float)
            t = np.array([r[key] for r in rows])
            b, a = np.polyfit(n, t, 1)
            line = (f"  {key[:-2]}: linear fit {a:.2f} s + {b * 1e6:.1f} us/doc (max residual "
                    f"{np.max(np.abs(t - (a + b * n))):.2f} s)")
            if probe:
                work = [dict(r, work=r[key] - probe[key]) for r in rows if r[key] > probe[key]]
                line += f"; slope of (time - start-up probe) {slope(work, 'work'):.2f}"
            print(line)
        big = rows[-2:]  # marginal cost between the two largest runs: start-up cancels
        per_doc = (big[1]["dedup_s"] - big[0]["dedup_s"]) / (big[1]["docs"] - big[0]["docs"])
        per_doc_ing = (big[1]["ingest_s"] - big[0]["ingest_s"]) / (big[1]["docs"] - big[0]["docs"])
        bands = rows[-1]["bands"]
        # signatures are random uint32s (no compression): 4 B x num_perm + ids/counts/offsets. The file
        # growth measured beside it is a check (a file can reuse free blocks ingest left, so it reads low)
        sig_b = 4.0 * 128 + 16
        print(f"marginal cost: dedup {per_doc * 1e6:.1f} us/doc ({1 / per_doc:,.0f} docs/s per {args.workers} "
              f"worker(s)), ingest {per_doc_ing * 1e6:.1f} us/doc; signatures {sig_b:.0f} B/doc (file growth "
              f"in dedup: " + ", ".join(f"{r['db_bytes_per_doc_dedup']:.0f}" for r in rows) + " B/doc)")
        for n in (1e8, 1e9):
            core_h = per_doc * n / 3600 * args.workers
            print(f"projection {n:.0e} docs: dedup {core_h:,.1f} core-hours ({core_h / 16:,.2f} h on 16 cores), "
                  f"ingest {per_doc_ing * n / 3600:,.0f} h; signatures {sig_b * n / 1e9:,.0f} GB on disk, "
                  f"out-of-core band keys {n * bands * 18 / 1e9:,.0f} GB of temp space")
    if args.plot:
        plot(rows, ROOT / args.plot)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r.get("probe")]
    n = np.array([r["docs"] for r in rows], dtype=float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("dedup_s", "taomi dedup"), ("ingest_s", "taomi ingest")):
        y = np.array([r[key] for r in rows])
        ax1.loglog(n, y, "o-", label=f"{label} (slope {slope(rows, key):.2f})" if len(rows) > 1 else label)
    ax1.loglog(n, n / n[-1] * rows[-1]["dedup_s"], ":", color="grey", label="linear")
    ax1.set_xlabel("documents (~250 words)")
    ax1.set_ylabel("wall time (s), one core")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.semilogx(n, [r["dedup_rss_mb"] for r in rows], "o-", label="taomi dedup")
    ax2.semilogx(n, [r["ingest_rss_mb"] for r in rows], "s-", label="taomi ingest")
    ax2.axhline(2048, color="red", ls="--", lw=1, label="2 GB target")
    ax2.set_xlabel("documents")
    ax2.set_ylabel("peak RSS (MB)")
    ax2.set_ylim(0, max(2300, max(r["dedup_rss_mb"] for r in rows) * 1.1))
    ax2.legend()
    ax2.grid(True, alpha=0.3)
    fig.suptitle("Taomi dedup at scale (this machine; bench/dedup_scale.py)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()

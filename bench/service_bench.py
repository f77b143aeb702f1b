"""HTTP service latency and throughput on loopback: /plan vs /health, 1 and 32 clients, same run.

    python bench/service_bench.py [--seconds 5]

Targets (issue 6): p99 < 10 ms with one client; at 32 clients /plan keeps >= 70% of the
requests/s of /health, with no errors. Clients are threads with keep-alive connections
(http.client), so the client side costs little next to the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = json.dumps({"flops": 1e22}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port: int, method: str, path: str, stop: float, lat: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json"}
    while time.perf_counter() < stop:
        t = time.perf_counter()
        try:
            conn.request(method, path, body=PLAN if method == "POST" else None, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
        except Exception as exc:  # noqa: BLE001 - any client failure is counted, then we reconnect
            errors.append(type(exc).__name__)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        lat.append(time.perf_counter() - t)


def run(port: int, method: str, path: str, clients: int, seconds: float) -> dict:
    stop = time.perf_counter() + seconds
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors: list = []
    threads = [threading.Thread(target=client, args=(port, method, path, stop, lats[i], errors)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    all_l = sorted(x for lst in lats for x in lst)
    n = len(all_l)
    return {"endpoint": f"{method} {path}", "clients": clients, "requests": n, "rps": n / wall,
            "p50_ms": all_l[n // 2] * 1e3 if n else None, "p99_ms": all_l[int(n * 0.99)] * 1e3 if n else None,
            "errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    port = free_port()
    db = ROOT / "bench" / "out" / "service.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "taomi", "--db", str(db), "serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
            if time.time() > deadline:
                raise SystemExit("server did not start")
        run(port, "POST", "/plan", 4, 1.0)  # warm-up
        rows = []
        for clients in (1, 32):
            rows.append(run(port, "GET", "/health", clients, args.seconds))
            rows.append(run(port, "POST", "/plan", clients, args.seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{'endpoint':16} {'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in rows:
        print(f"{r['endpoint']:16} {r['clients']:>7} {r['requests']:>9} {r['rps']:>8.0f} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['errors']:>6}")
    h32, p32 = rows[2], rows[3]
    print(f"\n/plan p99 with one client: {rows[1]['p99_ms']:.2f} ms (target < 10 ms)")
    print(f"/plan at 32 clients keeps {p32['rps'] / h32['rps']:.0%} of /health's requests/s (target >= 70%), "
          f"errors: {sum(r['errors'] for r in rows)}")


if __name__ == "__main__":
    main()

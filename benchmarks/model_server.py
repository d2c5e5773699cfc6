"""Benchmark: the model served by the real KServe server on loopback, against its floor.

Prints V1 single-request latency p50/p99 (one client, keep-alive), throughput with
concurrent clients, and the raw `model.predict` time for the same three words. Run with
the model virtualenv's python:

    "$(bash scripts/model_env.sh | tail -1)" benchmarks/model_server.py [--requests 2000] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import joblib  # noqa: E402

from tools.model_server import model_file  # noqa: E402

BODY = json.dumps({"instances": ["sparrow", "elephant", "sunflower"]}).encode()
PATH = "/v1/models/model:predict"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def call(conn: http.client.HTTPConnection) -> float:
    start = time.perf_counter()
    conn.request("POST", PATH, BODY, {"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200 or json.loads(payload) != {"predictions": [1, 0, 2]}:
        raise SystemExit(f"unexpected answer {response.status}: {payload[:200]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    model = joblib.load(model_file(ROOT / "model"))
    words = ["sparrow", "elephant", "sunflower"]
    for _ in range(200):
        model.predict(words)
    raw = []
    for _ in range(args.requests):
        start = time.perf_counter()
        model.predict(words)
        raw.append(time.perf_counter() - start)

    port, grpc = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tools.model_server", "--model_dir", str(ROOT / "model"),
         "--model_name", "model", "--http_port", str(port), "--grpc_port", str(grpc), "--workers", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                call(conn)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start") from None
                time.sleep(0.2)
        for _ in range(200):
            call(conn)
        latencies = [call(conn) for _ in range(args.requests)]

        per_client = args.requests // args.clients
        done: list[int] = []

        def client() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(per_client):
                call(c)
            done.append(per_client)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=20)

    ms = 1000
    print(f"raw model.predict (3 words): p50 {statistics.median(raw) * ms:.3f} ms  "
          f"p99 {percentile(raw, 0.99) * ms:.3f} ms")
    print(f"V1 over HTTP, 1 client:      p50 {statistics.median(latencies) * ms:.3f} ms  "
          f"p99 {percentile(latencies, 0.99) * ms:.3f} ms  ({len(latencies)} requests)")
    print(f"server overhead at p50:      {(statistics.median(latencies) - statistics.median(raw)) * ms:.3f} ms")
    print(f"throughput, {args.clients} clients:      {sum(done) / wall:.0f} requests/s ({sum(done)} requests)")


if __name__ == "__main__":
    main()

"""Demo latency under load: a 16-face grid requested by 1 and 8 concurrent gradio_client clients (p50, p95),
cold start to ready, and 500 requests from 16 clients with their error count. JSON output.

    python benchmarks/bench_demo.py [--endpoint /faces] [--out benchmarks/results/demo.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from demo_server import DemoServer, missing_weights, stand_in_weights

ARGS = {"/faces": ("dcgan-faces", 0, 16, 1.0), "/digits": ("cgan-digits-mlp", "all digits", 0, 16)}


def load(url: str, endpoint: str, clients: int, requests: int, download: bool = False) -> dict:
    """``requests`` predictions spread over ``clients`` concurrent clients. Latency = until the result event
    (file URLs in hand), unless ``download``: then also until the client fetched every output file itself."""
    pool = [Client(url, verbose=False, download_files=download) for _ in range(clients)]

    messages: list[str] = []

    def work(i: int) -> tuple[float, bool]:
        client = pool[i % clients]
        args = list(ARGS[endpoint])
        args[1 if endpoint == "/faces" else 2] = i
        start = time.perf_counter()
        try:
            client.predict(*args, api_name=endpoint)
            ok = True
        except Exception as exc:  # reported with the results, never hidden
            messages.append(f"{type(exc).__name__}: {exc}"[:300])
            ok = False
        return (time.perf_counter() - start) * 1000, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        results = list(ex.map(work, range(requests)))
    wall = time.perf_counter() - start
    lat = sorted(ms for ms, ok in results if ok)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return {
        "clients": clients, "requests": requests, "errors": sum(not ok for _, ok in results),
        "error_messages": messages[:3], "downloads": download,
        "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "throughput_rps": round(requests / wall, 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", default="/faces", choices=sorted(ARGS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/demo.json"))
    parser.add_argument("--soak", type=int, default=500)
    args = parser.parse_args()
    model_id = ARGS[args.endpoint][0]
    # latency depends on the architecture, not on the trained values: without bundled weights, measure an
    # untrained checkpoint of the same model (and say so in the output)
    weights = "bundled" if not missing_weights(model_id) else "untrained stand-in (same architecture)"
    env = stand_in_weights(Path(tempfile.mkdtemp(prefix="bench-demo-")))
    server = DemoServer(env=env)
    try:
        url = server.url
        cold_start = server.ready_after
        first = Client(url, verbose=False, download_files=False)
        start = time.perf_counter()
        first.predict(*ARGS[args.endpoint], api_name=args.endpoint)  # loads the model lazily
        first_request = (time.perf_counter() - start) * 1000
        result = {
            "benchmark": "demo_latency",
            "endpoint": args.endpoint,
            "model": model_id,
            "weights": weights,
            "cpu_threads": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "cold_start_to_ready_s": round(cold_start, 2),
            "first_request_ms": round(first_request, 1),
            "one_client": load(url, args.endpoint, 1, 40),
            "one_client_with_downloads": load(url, args.endpoint, 1, 20, download=True),
            "eight_clients": load(url, args.endpoint, 8, 80),
            "soak": load(url, args.endpoint, 16, args.soak),
            "goals": {"p50_ms_8_clients": 150, "p95_ms_8_clients": 600, "cold_start_s": 10, "soak_errors": 0},
        }
    finally:
        server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Ingest benchmark: price history for 500 markets from the simulator's HTTP server.

The server runs in its own process on 127.0.0.1 with 50 ms added latency and enforces the CLOB
``/prices-history`` limit (1000 requests per 10 s). We fetch one 30-day history per market with the
project's clients (transport, rate limiter, bounded concurrency, validation) and with a plain
sequential httpx loop, in the same run, and print:

- wall time of ours, and its ratio to the rate-limit bound (500 requests at 100/s = 5 s; target <= 1.25),
- the speed-up over the sequential loop (target >= 10x),
- 429 answers and server-side rate-limit violations (target 0).

Two workloads are measured: the scheduled fetch (each token since its last point; here one day of
catch-up, 96 points per answer) and the first-run backfill (30 days, 2880 points per answer), where
decoding and validating 1.44 million points in one Python process is the limit.

Run: ``python bench/ingest.py`` (about two minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import httpx

from kaizen_pipeline.ingest.clients import build_clients
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.ingest.transport import gather_bounded
from kaizen_pipeline.settings import load_settings

N_MARKETS = 500
LATENCY_MS = 50
LIMIT_PER_10S = 1000
HISTORY_DAYS = 30
BOUND_SECONDS = N_MARKETS / (LIMIT_PER_10S / 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_stats", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"simulator server at {url} did not start")


def run_ours(url: str, tokens: list[str], start: int, end: int) -> tuple[float, int, int]:
    settings = load_settings(
        source="live",
        polymarket={
            "gamma_url": url,
            "clob_url": url,
            "data_url": url,
            "prices_history_rate_limit": LIMIT_PER_10S,
        },
        twitter={"api_url": url},
    )

    async def go() -> tuple[int, int]:
        async with build_clients(settings) as clients:
            results = await gather_bounded(
                [lambda t=t: clients.clob.price_history(t, start, end) for t in tokens],
                settings.data_collection.max_concurrency,
            )
            return sum(len(points) for points, _ in results), clients.stats.rate_limited

    t0 = time.perf_counter()
    points, rate_limited = asyncio.run(go())
    return time.perf_counter() - t0, points, rate_limited


def run_sequential(url: str, tokens: list[str], start: int, end: int) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    points = rate_limited = 0
    with httpx.Client(timeout=30) as client:
        for token in tokens:
            response = client.get(
                f"{url}/prices-history",
                params={"market": token, "startTs": start, "endTs": end, "fidelity": 15},
            )
            rate_limited += response.status_code == 429
            points += len(response.json()["history"])
    return time.perf_counter() - t0, points, rate_limited


def measure(url: str, tokens: list[str], window_days: float) -> dict[str, object]:
    end = int(time.time())
    start = end - int(window_days * 86400)
    # Untimed pass: the server renders and caches each history once, so both timed runs
    # measure the client side against the same server work.
    run_ours(url, tokens, start, end)
    time.sleep(10.5)  # let the server's rate-limit window empty
    ours_s, ours_points, ours_429 = run_ours(url, tokens, start, end)
    time.sleep(10.5)
    seq_s, seq_points, seq_429 = run_sequential(url, tokens, start, end)
    time.sleep(10.5)
    if ours_points != seq_points:
        raise SystemExit(f"record count mismatch: ours {ours_points}, sequential {seq_points}")
    return {
        "window_days": window_days,
        "points_per_run": ours_points,
        "ours_wall_s": round(ours_s, 2),
        "ratio_to_bound": round(ours_s / BOUND_SECONDS, 3),
        "sequential_wall_s": round(seq_s, 2),
        "speedup_vs_sequential": round(seq_s / ours_s, 1),
        "answers_429": ours_429 + seq_429,
    }


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaizen_pipeline.ingest.simulator.server",
            "--port",
            str(port),
            "--markets",
            str(N_MARKETS),
            "--latency-ms",
            str(LATENCY_MS),
            "--prices-history-limit",
            str(LIMIT_PER_10S),
            "--warm",
        ],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(url)
        tokens = [m.yes_token for m in DemoWorld(n_markets=N_MARKETS).markets[:N_MARKETS]]
        # The 15-minute schedule fetches each token since its last stored point (here: the last day,
        # a catch-up after a missed day); the first run backfills data_collection.history_days (30).
        scheduled = measure(url, tokens, 1)
        backfill = measure(url, tokens, HISTORY_DAYS)
        stats = httpx.get(f"{url}/_stats").json()
    finally:
        server.terminate()
        server.wait(10)
    result = {
        "markets": N_MARKETS,
        "latency_ms": LATENCY_MS,
        "rate_limit_bound_s": BOUND_SECONDS,
        "scheduled_fetch": scheduled,
        "first_run_backfill": backfill,
        "server_rate_limit_violations": stats["rate_limit_violations"],
    }
    print(json.dumps(result, indent=2))
    for name, r in (("scheduled_fetch", scheduled), ("first_run_backfill", backfill)):
        ok = r["ratio_to_bound"] <= 1.25 and r["speedup_vs_sequential"] >= 10 and r["answers_429"] == 0
        print(
            f"{name}: "
            + ("targets met" if ok else "TARGETS MISSED")
            + " (ratio_to_bound <= 1.25, >= 10x sequential, zero 429)"
        )


if __name__ == "__main__":
    main()

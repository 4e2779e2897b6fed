"""Serve the demo world over real HTTP on 127.0.0.1, with added latency, rate limits and injected faults.

Used by the fault-injection tests and the ingest benchmark; also handy for pointing a live-mode
configuration at it::

    python -m kaizen_pipeline.ingest.simulator.server --port 8900 --latency-ms 50

Faults are consumed in order per path suffix (e.g. ``/prices-history``): ``500``, ``502``,
``429`` (no header), ``429-retry-after`` (Retry-After: 0), ``429-reset`` (x-rate-limit-reset),
``timeout`` (answers after the client gave up), ``truncated`` (a 200 with half the JSON body),
``reset`` (the connection is dropped without an answer).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from kaizen_pipeline.ingest.simulator.world import DemoWorld

FAULT_KINDS = ("500", "502", "429", "429-retry-after", "429-reset", "timeout", "truncated", "reset")


@dataclass
class EndpointLimit:
    """Server-side enforcement of a documented limit: over it, answer 429 and count a violation."""

    max_calls: int
    period: float
    arrivals: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        while self.arrivals and self.arrivals[0] <= now - self.period:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.max_calls:
            return False
        self.arrivals.append(now)
        return True


@dataclass
class ServerStats:
    requests: int = 0
    served: int = 0
    faults_injected: int = 0
    rate_limit_violations: int = 0
    per_path: dict[str, int] = field(default_factory=dict)


class SimulatorServer:
    """A threaded HTTP server in front of ``DemoWorld.handle``; use as a context manager."""

    def __init__(
        self,
        world: DemoWorld,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        limits: dict[str, EndpointLimit] | None = None,
        faults: dict[str, list[str]] | None = None,
        timeout_fault_s: float = 2.0,
    ) -> None:
        self.world = world
        self.latency_s = latency_s
        self.limits = limits or {}
        self.faults = {k: deque(v) for k, v in (faults or {}).items()}
        for kinds in self.faults.values():
            for kind in kinds:
                if kind not in FAULT_KINDS:
                    raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        self.timeout_fault_s = timeout_fault_s
        self.stats = ServerStats()
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[int, bytes, dict[str, str]]] = {}
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_faults(self, path_suffix: str, kinds: list[str]) -> None:
        with self._lock:
            self.faults.setdefault(path_suffix, deque()).extend(kinds)

    def _next_fault(self, path: str) -> str | None:
        with self._lock:
            for suffix, queue in self.faults.items():
                if path.endswith(suffix) and queue:
                    self.stats.faults_injected += 1
                    return queue.popleft()
        return None

    def _admit(self, path: str) -> bool:
        with self._lock:
            self.stats.requests += 1
            self.stats.per_path[path] = self.stats.per_path.get(path, 0) + 1
            now = time.monotonic()
            for suffix, limit in self.limits.items():
                if path.endswith(suffix) and not limit.admit(now):
                    self.stats.rate_limit_violations += 1
                    return False
            return True

    def _answer(
        self, raw_path: str, headers: dict[str, str], method: str = "GET", body: bytes = b""
    ) -> tuple[int, bytes, dict[str, str]]:
        # Price histories are immutable within a bucket: answer repeats from a cache so the
        # server's own CPU does not limit the clients under test.
        key = (raw_path, self.world.now_bucket()) if "/prices-history" in raw_path else None
        if key is not None:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
        request = httpx.Request(method, f"http://simulator{raw_path}", headers=headers, content=body or None)
        response = self.world.handle(request)
        answer = (
            response.status_code,
            response.content,
            {k: v for k, v in response.headers.items() if k.lower().startswith("x-rate-limit")},
        )
        if key is not None and response.status_code == 200:
            with self._lock:
                if len(self._cache) > 5000:
                    self._cache.clear()
                self._cache[key] = answer
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the test output clean
                return

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                # Status line, headers and body in one write: split writes stall on Nagle + delayed ACK.
                lines = [
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                ]
                lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
                self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("GET", b"")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _serve(self, method: str, body: bytes) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/_stats":
                    self._send(200, json.dumps(asdict(server.stats)).encode())
                    return
                if server.latency_s:
                    time.sleep(server.latency_s)
                if not server._admit(path):
                    self._send(
                        429, json.dumps({"errors": [{"code": 88, "message": "Rate limit exceeded"}]}).encode()
                    )
                    return
                fault = server._next_fault(path)
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault in ("500", "502"):
                    self._send(int(fault), b'{"error": "injected"}')
                    return
                if fault == "429":
                    self._send(429, b'{"errors": [{"code": 88, "message": "Rate limit exceeded"}]}')
                    return
                if fault == "429-retry-after":
                    self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                    return
                if fault == "429-reset":
                    self._send(429, b'{"error": "slow down"}', {"x-rate-limit-reset": str(int(time.time()))})
                    return
                if fault == "timeout":
                    time.sleep(server.timeout_fault_s)
                status, answer, headers = server._answer(self.path, dict(self.headers), method, body)
                if fault == "truncated":
                    answer = answer[: max(1, len(answer) // 2)]
                with server._lock:
                    server.stats.served += 1
                # After a timeout fault the client has already gone away.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(status, answer, headers)

        return Handler

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="simulator-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--prices-history-limit", type=int, default=1000, help="requests per 10 s (0: unlimited)"
    )
    parser.add_argument("--book-limit", type=int, default=1500, help="GET /book per 10 s (0: unlimited)")
    parser.add_argument("--books-limit", type=int, default=500, help="POST /books per 10 s (0: unlimited)")
    parser.add_argument("--warm", action="store_true", help="build every market's series before serving")
    args = parser.parse_args(argv)
    documented = {
        "/prices-history": args.prices_history_limit,
        "/book": args.book_limit,
        "/books": args.books_limit,
    }
    limits = {path: EndpointLimit(n, 10.0) for path, n in documented.items() if n}
    world = DemoWorld(seed=args.seed, n_markets=args.markets)
    if args.warm:
        now_k = world.now_bucket()
        for market in world.markets:
            world.series(market, now_k)
    server = SimulatorServer(world, port=args.port, latency_s=args.latency_ms / 1000, limits=limits)
    print(f"demo simulator on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()

"""The transport against hostile HTTP servers on 127.0.0.1: trickling bodies, HTML pages, echoed tokens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from kaizen_pipeline.ingest.clients import GAMMA_MARKETS, X_SEARCH_RECENT, build_clients
from kaizen_pipeline.ingest.transport import ApiError
from kaizen_pipeline_tests.ingest.conftest import live_settings

TOKEN = "AAAAsecretBearerValue1234567890zz"


@dataclass
class RawServer:
    """A raw-socket HTTP server: ``reply(conn)`` writes whatever bytes it likes to each connection."""

    reply: Callable[[socket.socket, threading.Event], None]
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            self.requests.append(data)
            with contextlib.suppress(OSError):  # the client hung up: that is its right
                self.reply(conn, self._stop)

    def __enter__(self) -> RawServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for t in self._threads:
            t.join(5)
        self._sock.close()


def _head(status: str, content_type: str, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _gamma_call(url: str, **transport: object) -> object:
    settings = live_settings(url, transport={"backoff_base_seconds": 0.01, **transport})

    async def go() -> object:
        async with build_clients(settings) as clients:
            return await clients.transport.get_json(GAMMA_MARKETS, f"{url}/markets/keyset", {"limit": 1})

    return asyncio.run(go())


@pytest.fixture
def trickle_server() -> Iterator[RawServer]:
    def reply(conn: socket.socket, stop: threading.Event) -> None:
        # Headers at once, then one body byte every 0.3 s: every read is well within the read timeout.
        conn.sendall(_head("200 OK", "application/json", 10_000))
        for _ in range(200):
            if stop.wait(0.3):
                return
            conn.sendall(b" ")

    with RawServer(reply) as srv:
        yield srv


def test_a_trickling_server_cannot_hold_a_request_past_the_deadline(trickle_server: RawServer) -> None:
    with pytest.raises(ApiError) as err:
        _gamma_call(trickle_server.url, timeout_seconds=2, request_deadline_seconds=1, max_retries=1)
    assert err.value.endpoint == GAMMA_MARKETS
    assert err.value.attempts == 2 and len(trickle_server.requests) == 2
    assert "request deadline" in str(err.value) and "gamma:/markets/keyset" in str(err.value)


def test_request_deadline_must_be_positive() -> None:
    with pytest.raises(Exception, match="request_deadline_seconds"):
        live_settings("http://127.0.0.1:1", transport={"request_deadline_seconds": 0})


@pytest.fixture
def html_server() -> Iterator[RawServer]:
    page = (
        b"<!DOCTYPE html>\x1b[31m<html><title>Just a moment...</title>\x00<body>"
        + b"x" * 5000
        + b"</body></html>"
    )

    def reply(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head("200 OK", "text/html; charset=utf-8", len(page)) + page)

    with RawServer(reply) as srv:
        yield srv


def test_an_html_page_is_a_protocol_error_retried_at_most_once(html_server: RawServer) -> None:
    with pytest.raises(ApiError) as err:
        _gamma_call(html_server.url)
    assert len(html_server.requests) <= 2
    message = str(err.value)
    assert "text/html" in message and "HTTP 200" in message and "<!DOCTYPE html>" in message
    assert "\x1b" not in message and "\x00" not in message and "truncated" not in message
    assert len(message) < 600


@pytest.fixture
def truncated_json_server() -> Iterator[RawServer]:
    def reply(conn: socket.socket, stop: threading.Event) -> None:
        body = b'{"markets": [{"id": "1"'
        conn.sendall(_head("200 OK", "application/json", len(body)) + body)

    with RawServer(reply) as srv:
        yield srv


def test_truncated_json_is_still_retried_to_the_budget(truncated_json_server: RawServer) -> None:
    with pytest.raises(ApiError) as err:
        _gamma_call(truncated_json_server.url, max_retries=3)
    assert len(truncated_json_server.requests) == 4
    assert "truncated" in str(err.value)


def _echo_server(body: bytes, content_type: str) -> RawServer:
    def reply(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head("401 Unauthorized", content_type, len(body)) + body)

    return RawServer(reply)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b'{"title": "Unauthorized", "detail": "bad token", "sent": "Bearer ' + TOKEN.encode() + b'"}',
            "application/json",
        ),
        (b"invalid credential " + TOKEN.encode() + b" rejected", "text/plain"),
        (b"token=" + TOKEN.encode(), "text/plain"),
    ],
)
def test_an_echoed_bearer_token_never_reaches_the_error(body: bytes, content_type: str) -> None:
    with _echo_server(body, content_type) as srv:
        settings = live_settings(srv.url, twitter={"bearer_token": TOKEN})

        async def go() -> object:
            async with build_clients(settings) as clients:
                return await clients.x.search_recent("polymarket", start_time=datetime.now(UTC))

        with pytest.raises(ApiError) as err:
            asyncio.run(go())
    assert err.value.endpoint == X_SEARCH_RECENT and err.value.status == 401
    assert TOKEN not in str(err.value) and TOKEN[:12] not in str(err.value)
    assert "HTTP 401" in str(err.value)


def test_the_mock_transport_sees_the_token_the_server_echoes() -> None:
    """Sanity check of the setup: the X client does send the token the server echoes."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"data": [], "meta": {}})

    settings = live_settings("http://x.test", twitter={"bearer_token": TOKEN})

    async def go() -> None:
        async with build_clients(settings, httpx.MockTransport(handler)) as clients:
            await clients.x.search_recent("q", start_time=datetime.now(UTC))

    asyncio.run(go())
    assert seen == [f"Bearer {TOKEN}"]

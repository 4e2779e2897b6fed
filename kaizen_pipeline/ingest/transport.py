"""The one HTTP transport every client uses: timeouts, retries with backoff, rate limits, concurrency.

Retries: connect errors, timeouts, dropped connections, 5xx, 429 and undecodable (truncated) JSON
are retried (``transport.max_retries`` times) with exponential backoff
``transport.backoff_base_seconds * 2**attempt``, capped at ``transport.backoff_max_seconds``, plus up
to 10% jitter, then the call fails with :class:`ApiError`. A 429 waits at least as long as the server
asks (``Retry-After`` seconds or HTTP date, or X's ``x-rate-limit-reset`` unix time).
Deadlines: each attempt (connect, headers and the whole body) must finish within
``request_deadline`` seconds, so a server trickling bytes cannot hold a request; a deadline hit is a
retryable timeout. A whole call, retries and backoff included, gives up once it would outlast
``call_deadline``. A 200 answer that is well-formed but not JSON (an HTML page) is a protocol error,
retried at most once; a JSON answer cut short is retried like any other transient failure.
Every string taken from a server answer passes through :func:`redact` with the request's own secrets.
Rate limits: a sliding-window limiter per endpoint keeps each request in the window from when it is
sent until ``period`` after its answer, so the server never counts more than the documented limit.
Any :class:`RateLimiter` fits: this module's per-process one, or the Redis one that every process
shares (:mod:`kaizen_pipeline.ingest.ratelimit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from kaizen_pipeline.ops.redact import redact

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A well-formed non-JSON answer will not change on retry; one retry covers a proxy's transient error page.
PROTOCOL_ERROR_RETRIES = 1
_JSON_CONTENT_TYPES = ("application/json", "+json", "text/json")


class ApiError(RuntimeError):
    """A request failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, endpoint: str, message: str, status: int | None = None, attempts: int = 1) -> None:
        # Credential-shaped text is masked here too, whoever built the message.
        super().__init__(
            redact(f"{endpoint}: {message} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        )
        self.endpoint = endpoint
        self.status = status
        self.attempts = attempts


@dataclass
class CallStats:
    """Counters for one run, written to ``ingestion_runs`` and the asset metadata."""

    api_calls: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    per_endpoint: dict[str, int] = field(default_factory=dict)

    def count_call(self, endpoint: str) -> None:
        self.api_calls += 1
        self.per_endpoint[endpoint] = self.per_endpoint.get(endpoint, 0) + 1

    def as_dict(self) -> dict[str, int]:
        return {
            "api_calls": self.api_calls,
            "retries": self.retries,
            "errors": self.errors,
            "rate_limited": self.rate_limited,
        }


class RateLimiter(Protocol):
    """What the transport needs of a rate limiter: a slot per request and a pause for a spent quota."""

    max_calls: int
    period: float

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one request's slot from sending until ``period`` after its answer."""
        ...

    async def paused_seconds(self) -> float:
        """Seconds before the limiter admits anything again (0 when not paused)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (the server said the quota is spent)."""
        ...


class SlidingWindowRateLimiter:
    """At most ``max_calls`` requests in any ``period`` seconds, as the server counts them.

    A request occupies its slot from the moment it is sent until ``period`` after its answer came
    back. The server saw it before we saw the answer, so however late requests reach the server,
    it never counts more than ``max_calls`` in a window.
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        margin: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("rate limit needs max_calls >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self.margin = margin
        self._clock = clock
        self._in_flight = 0
        self._released: deque[float] = deque()  # answer times of finished requests, ascending
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._freed = asyncio.Event()

    def paused_for(self) -> float:
        """Seconds left before the limiter admits anything again (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def pause_until_monotonic(self, until: float) -> None:
        """Admit nothing before ``until`` (the server said the quota is spent)."""
        self._paused_until = max(self._paused_until, until)

    async def paused_seconds(self) -> float:
        """:meth:`paused_for`, as the :class:`RateLimiter` protocol asks (a shared limiter must ask Redis)."""
        return self.paused_for()

    async def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now."""
        self.pause_until_monotonic(self._clock() + seconds)

    async def acquire(self) -> None:
        """Wait for a free slot and occupy it; pair with :meth:`release` when the answer arrives."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                horizon = now - self.period - self.margin
                while self._released and self._released[0] <= horizon:
                    self._released.popleft()
                if self._in_flight + len(self._released) < self.max_calls:
                    self._in_flight += 1
                    return
                self._freed.clear()
                if self._released:
                    await asyncio.sleep(self._released[0] - horizon)
                else:  # every slot is still in flight: wait for an answer
                    await self._freed.wait()

    def release(self) -> None:
        """The request's answer (or failure) arrived: its slot frees ``period`` from now."""
        self._in_flight -= 1
        self._released.append(self._clock())
        self._freed.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_rate_limit_wait: float = 900.0
    jitter: float = 0.1
    request_deadline: float | None = None  # seconds for one attempt's whole exchange
    call_deadline: float | None = None  # seconds for one call, retries and waits included

    def total_deadline(self) -> float | None:
        """The call deadline; by default every attempt's deadline, the longest backoff and one rate-limit wait."""
        if self.call_deadline is not None:
            return self.call_deadline
        if self.request_deadline is None:
            return None
        backoffs = sum(min(self.backoff_max, self.backoff_base * 2**a) for a in range(self.max_retries))
        return (
            (self.max_retries + 1) * self.request_deadline
            + (1 + self.jitter) * backoffs
            + self.max_rate_limit_wait
        )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay + rng.uniform(0, self.jitter * delay)


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``Retry-After`` or ``x-rate-limit-reset``."""
    now = time.time() if now is None else now
    retry_after = headers.get("retry-after")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(retry_after)
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    reset = headers.get("x-rate-limit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


class Transport:
    """GET (and POST read-only queries) JSON through per-endpoint rate limits with retries; one per run and loop."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        limiters: Mapping[str, RateLimiter],
        *,
        stats: CallStats | None = None,
        seed: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.policy = policy
        self.limiters = dict(limiters)
        self.stats = stats or CallStats()
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._clock = clock

    async def get_json(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        wait_on_rate_limit: bool = True,
    ) -> tuple[Any, httpx.Headers]:
        """GET ``url`` and decode JSON, retrying transient failures; ``endpoint`` names the rate limit.

        With ``wait_on_rate_limit=False`` a 429, or a limiter paused by a spent quota, fails at once
        with an ApiError of status 429 instead of waiting for the window to reset.
        """
        return await self._request_json(
            "GET", endpoint, url, params, headers, None, wait_on_rate_limit=wait_on_rate_limit
        )

    async def post_json(
        self,
        endpoint: str,
        url: str,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """POST ``body`` as JSON and decode the JSON answer, with the same limits and retries as GET.

        Only for read-only batch queries (CLOB ``POST /books``): a retry re-sends the same query.
        """
        return await self._request_json("POST", endpoint, url, None, headers, body)

    async def _request_json(
        self,
        method: str,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        body: Any,
        *,
        wait_on_rate_limit: bool = True,
    ) -> tuple[Any, httpx.Headers]:
        limiter = self.limiters.get(endpoint)
        secrets = _header_secrets(headers)
        last_problem = "no attempt made"
        last_status: int | None = None
        attempts = self.policy.max_retries + 1
        protocol_errors = 0
        total = self.policy.total_deadline()
        started = self._clock()
        attempt = 0
        for attempt in range(attempts):
            if not wait_on_rate_limit and limiter is not None and await limiter.paused_seconds() > 0:
                raise ApiError(endpoint, "rate-limit window spent; not waiting for its reset", 429, attempt)
            if attempt:
                self.stats.retries += 1
            self.stats.count_call(endpoint)
            wait: float | None = None
            try:
                async with limiter.slot() if limiter is not None else contextlib.nullcontext():
                    # The deadline starts once the request may be sent: a rate-limit wait is not the server's.
                    async with asyncio.timeout(self.policy.request_deadline):
                        if method == "GET":
                            response = await self.client.get(url, params=params, headers=headers)
                        else:
                            response = await self.client.request(method, url, json=body, headers=headers)
            except TimeoutError:
                last_problem, last_status = (
                    f"no complete answer within the {self.policy.request_deadline:g} s request deadline"
                    " (transport.request_deadline_seconds)",
                    None,
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem, last_status = f"{type(exc).__name__} talking to the server", None
            else:
                last_status = response.status_code
                if response.status_code == 429:
                    self.stats.rate_limited += 1
                    wait = rate_limit_wait(response.headers)
                    last_problem = "HTTP 429 Too Many Requests"
                    if not wait_on_rate_limit:
                        self.stats.errors += 1
                        raise ApiError(endpoint, "HTTP 429: rate limited; not waiting", 429, attempt + 1)
                elif response.status_code in RETRYABLE_STATUS:
                    last_problem = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    self.stats.errors += 1
                    raise ApiError(
                        endpoint,
                        f"HTTP {response.status_code}: {_short(response, secrets)}",
                        response.status_code,
                        attempt + 1,
                    )
                else:
                    try:
                        payload = orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        if _looks_like_json(response):
                            last_problem = "response body is not valid JSON (truncated?)"
                        else:
                            protocol_errors += 1
                            last_problem = (
                                f"protocol error: expected JSON, got {_describe(response, secrets)}"
                            )
                            if protocol_errors > PROTOCOL_ERROR_RETRIES:
                                self.stats.errors += 1
                                raise ApiError(
                                    endpoint, last_problem, response.status_code, attempt + 1
                                ) from None
                    else:
                        await self._respect_quota(limiter, response.headers)
                        return payload, response.headers
            self.stats.errors += 1
            if attempt + 1 >= attempts:
                break
            delay = self.policy.backoff(attempt, self._rng)
            if wait is not None:
                if wait > self.policy.max_rate_limit_wait:
                    raise ApiError(
                        endpoint, f"rate limited for {wait:.0f} s, longer than allowed", 429, attempt + 1
                    )
                delay = max(delay, wait)
            if total is not None and self._clock() - started + delay > total:
                raise ApiError(
                    endpoint,
                    f"gave up: {last_problem}; retrying would outlast the call's {total:g} s budget",
                    last_status,
                    attempt + 1,
                )
            await self._sleep(delay)
        raise ApiError(endpoint, f"gave up: {last_problem}", last_status, attempt + 1)

    async def _respect_quota(self, limiter: RateLimiter | None, headers: httpx.Headers) -> None:
        if limiter is None or headers.get("x-rate-limit-remaining") != "0":
            return
        wait = rate_limit_wait({"x-rate-limit-reset": headers.get("x-rate-limit-reset", "")})
        if wait:
            await limiter.pause(min(wait, self.policy.max_rate_limit_wait))


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _header_secrets(headers: Mapping[str, str] | None) -> list[str]:
    """The credentials this request carries (an Authorization token), to mask wherever the server echoes them."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() in ("authorization", "proxy-authorization", "x-api-key", "cookie") and value:
            found.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():
                found.append(credential.strip())
    return found


def sanitize(text: str, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """Server-supplied ``text`` made safe for messages: secrets masked, control characters dropped, bounded."""
    text = redact(_CONTROL_CHARS.sub(" ", text), secrets)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _short(response: httpx.Response, secrets: Iterable[str] = (), limit: int = 200) -> str:
    # Redact the whole body before cutting it, so a token split at the limit cannot leak its first half.
    return sanitize(response.content.decode("utf-8", "replace"), secrets, limit)


def _looks_like_json(response: httpx.Response) -> bool:
    """True when the server says (or the body starts as if) this is JSON: a cut body then means truncation."""
    content_type = response.headers.get("content-type", "").lower()
    if any(marker in content_type for marker in _JSON_CONTENT_TYPES):
        return True
    if content_type:
        return False
    return response.content.lstrip()[:1] in (b"{", b"[")


def _describe(response: httpx.Response, secrets: Iterable[str]) -> str:
    content_type = sanitize(response.headers.get("content-type", "") or "no content type", secrets, 80)
    return (
        f"HTTP {response.status_code} with content type {content_type!r}, body starts"
        f" {_short(response, secrets, 120)!r}"
    )


async def gather_bounded(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run coroutine factories with at most ``limit`` in flight; results in input order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    return list(await asyncio.gather(*(run(f) for f in factories)))

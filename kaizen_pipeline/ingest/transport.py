"""The one HTTP transport every client uses: timeouts, retries with backoff, rate limits, concurrency.

Retries: connect errors, timeouts, dropped connections, 5xx, 429 and undecodable (truncated) JSON
are retried with exponential backoff ``base * 2**attempt`` (1, 2, 4, 8, 16 s by default) plus up to
10% jitter, then the call fails with :class:`ApiError`. A 429 waits at least as long as the server
asks (``Retry-After`` seconds or HTTP date, or X's ``x-rate-limit-reset`` unix time).
Rate limits: a sliding-window limiter per endpoint keeps each request in the window from when it is
sent until ``period`` after its answer, so the server never counts more than the documented limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(RuntimeError):
    """A request failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, endpoint: str, message: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(f"{endpoint}: {message} (after {attempts} attempt{'s' if attempts != 1 else ''})")
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

    def pause_until_monotonic(self, until: float) -> None:
        """Admit nothing before ``until`` (the server said the quota is spent)."""
        self._paused_until = max(self._paused_until, until)

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
    """GET JSON through per-endpoint rate limits with retries; one instance per run and event loop."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        limiters: Mapping[str, SlidingWindowRateLimiter],
        *,
        stats: CallStats | None = None,
        seed: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy
        self.limiters = dict(limiters)
        self.stats = stats or CallStats()
        self._rng = random.Random(seed)
        self._sleep = sleep

    async def get_json(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """GET ``url`` and decode JSON, retrying transient failures; ``endpoint`` names the rate limit."""
        limiter = self.limiters.get(endpoint)
        last_problem = "no attempt made"
        last_status: int | None = None
        attempts = self.policy.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
            self.stats.count_call(endpoint)
            wait: float | None = None
            try:
                async with limiter.slot() if limiter is not None else contextlib.nullcontext():
                    response = await self.client.get(url, params=params, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem, last_status = f"{type(exc).__name__} talking to the server", None
            else:
                last_status = response.status_code
                if response.status_code == 429:
                    self.stats.rate_limited += 1
                    wait = rate_limit_wait(response.headers)
                    last_problem = "HTTP 429 Too Many Requests"
                elif response.status_code in RETRYABLE_STATUS:
                    last_problem = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    self.stats.errors += 1
                    raise ApiError(
                        endpoint,
                        f"HTTP {response.status_code}: {_short(response)}",
                        response.status_code,
                        attempt + 1,
                    )
                else:
                    try:
                        payload = orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        last_problem = "response body is not valid JSON (truncated?)"
                    else:
                        self._respect_quota(limiter, response.headers)
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
            await self._sleep(delay)
        raise ApiError(endpoint, f"gave up: {last_problem}", last_status, attempts)

    def _respect_quota(self, limiter: SlidingWindowRateLimiter | None, headers: httpx.Headers) -> None:
        if limiter is None or headers.get("x-rate-limit-remaining") != "0":
            return
        wait = rate_limit_wait({"x-rate-limit-reset": headers.get("x-rate-limit-reset", "")})
        if wait:
            limiter.pause_until_monotonic(time.monotonic() + min(wait, self.policy.max_rate_limit_wait))


def _short(response: httpx.Response, limit: int = 200) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


async def gather_bounded(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run coroutine factories with at most ``limit`` in flight; results in input order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    return list(await asyncio.gather(*(run(f) for f in factories)))

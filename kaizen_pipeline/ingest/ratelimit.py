"""API rate limits shared by every process that calls an endpoint, kept in Redis.

Dagster runs each step in its own process, and several runs (or workers) can call the same API at
once; a per-process limiter lets each of them spend the whole quota. :class:`RedisRateLimiter`
keeps the same guarantee as :class:`~kaizen_pipeline.ingest.transport.SlidingWindowRateLimiter`
across processes: a request holds its slot from sending until ``period`` after its answer, so the
server never counts more than ``max_calls`` in any window, whatever the network delay.

Why not the ``limits`` package: its moving window (Redis storage included) records a hit when it
is taken, with the caller's clock, and has no way to move that hit to the answer's time. A hit
expires ``period`` after the request was *sent*, but the server counted it when it *arrived*, up to
one request deadline later: a slow old request and a fast new one can then land in one server
window with ``max_calls + 1`` requests. Keeping the guarantee with it would mean a window of
``period + request deadline`` (70 s for a 10 s limit: a seventh of the throughput). So this is a
small sorted-set limiter in Lua scripts, one atomic step each:

- key ``<prefix>:{<endpoint>}``, a sorted set: member = one request, score = when its slot frees
  (milliseconds, Redis server time, so every host uses one clock);
- *acquire*: drop freed members; if fewer than ``max_calls`` remain, add one scored
  ``now + lease``, where ``lease = period + request deadline + slack`` (a crashed process's slot
  frees by itself, never before the server's window of that request has passed);
- *release* (the answer or failure arrived): re-score the member ``now + period + margin``;
- key ``<prefix>:{<endpoint>}:paused``: X said the quota is spent, nothing is admitted before it.

A waiter sleeps until the earliest score, at most ``period + margin``: a slot still in flight frees
no earlier than that after its release, so the wait never oversleeps a free slot and needs no
polling. Redis calls run in a worker thread through one synchronous client per URL and process
(fork-safe, not tied to an event loop, nothing to close per run).

Configuration: ``transport.shared_limiter_url`` (empty: per-process limiters, said once in the log)
and ``transport.shared_limiter_prefix``. A configured Redis that does not answer when the run
starts fails the run with :class:`SharedLimiterError` naming the key: silently counting per process
would let N workers send N times the limit. Redis failing mid-run fails the request the same way;
a failed release only keeps the slot until its lease ends (safe, just slower).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import redis

from kaizen_pipeline.ingest.transport import RateLimiter, SlidingWindowRateLimiter
from kaizen_pipeline.ops.redact import redact
from kaizen_pipeline.settings.ingest import TransportSettings

log = logging.getLogger(__name__)

URL_KEY = "transport.shared_limiter_url"
# Extra lease beyond period + request deadline: connect and the release's own round trip.
LEASE_SLACK_SECONDS = 5.0
# Held beyond period after an answer: clock granularity and the Redis round trip of the release.
DEFAULT_MARGIN_SECONDS = 0.05
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0

# ms since the epoch on the Redis server's clock; integers so Lua's %.14g number formatting keeps them exact.
_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

_ACQUIRE = (
    _NOW
    + """
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {0, paused - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max_calls = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) < max_calls then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], lease + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(first[2]) - now
if wait > hold then
  wait = hold
end
return {0, wait}
"""
)

_RELEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
return 1
"""
)

_PAUSE = (
    _NOW
    + """
local till = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if till > current then
  redis.call('SET', KEYS[1], till, 'PX', tonumber(ARGV[1]) + 1000)
end
return 1
"""
)

_PAUSED_FOR = (
    _NOW
    + """
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then
  return paused - now
end
return 0
"""
)


class SharedLimiterError(RuntimeError):
    """The shared rate limiter's Redis failed; the message names the setting and the redacted URL."""

    def __init__(self, url: str, action: str, exc: BaseException) -> None:
        super().__init__(
            redact(
                f"{URL_KEY}: Redis at {redact_url(url)} failed while {action} ({type(exc).__name__}: {exc}); "
                "start it, or empty the key to count rate limits per process"
            )
        )


def redact_url(url: str) -> str:
    """The URL with any password masked (``redis://:***@host:6379/0``), fit for logs and errors."""
    return redact(url)


def limiter_key(prefix: str, endpoint: str) -> str:
    """The sorted set of ``endpoint``'s slots; the braces keep both keys in one Redis Cluster slot."""
    return f"{prefix}:{{{endpoint}}}"


def pause_key(prefix: str, endpoint: str) -> str:
    """When ``endpoint`` admits requests again after its quota was spent (ms, Redis time)."""
    return f"{limiter_key(prefix, endpoint)}:paused"


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_logged: set[str] = set()


def _client(url: str) -> redis.Redis:
    # One pool per URL and process: redis-py pools reset themselves in a forked child.
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                health_check_interval=30,
            )
            _clients[url] = client
        return client


def _log_once(key: str, level: int, message: str) -> None:
    with _clients_lock:
        if key in _logged:
            return
        _logged.add(key)
    log.log(level, message)


class RedisRateLimiter:
    """At most ``max_calls`` requests in any ``period`` seconds over every process sharing ``key``."""

    def __init__(
        self,
        client: redis.Redis,
        url: str,
        key: str,
        paused_key: str,
        max_calls: int,
        period: float,
        *,
        max_request_seconds: float,
        margin: float = DEFAULT_MARGIN_SECONDS,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("rate limit needs max_calls >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self.key = key
        self.paused_key = paused_key
        self._url = url
        self._hold_ms = int((period + margin) * 1000) + 1
        self._lease_ms = int((period + margin + max_request_seconds + LEASE_SLACK_SECONDS) * 1000) + 1
        self._acquire_script = client.register_script(_ACQUIRE)
        self._release_script = client.register_script(_RELEASE)
        self._pause_script = client.register_script(_PAUSE)
        self._paused_script = client.register_script(_PAUSED_FOR)
        # One waiter per process asks Redis; the others queue here, as with the in-process limiter.
        self._lock = asyncio.Lock()

    async def _run(self, action: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await asyncio.to_thread(script, keys=keys, args=args)
        except redis.RedisError as exc:
            raise SharedLimiterError(self._url, action, exc) from None

    async def acquire(self) -> str:
        """Wait for a free slot and occupy it; returns the slot's id for :meth:`release`."""
        member = uuid.uuid4().hex
        async with self._lock:
            while True:
                granted, wait_ms = await self._run(
                    f"taking a slot of {self.key}",
                    self._acquire_script,
                    [self.key, self.paused_key],
                    [self.max_calls, self._lease_ms, self._hold_ms, member],
                )
                if int(granted):
                    return member
                await asyncio.sleep(max(int(wait_ms), 1) / 1000)

    async def release(self, member: str) -> None:
        """The answer (or failure) arrived: the slot frees ``period`` from now."""
        try:
            await self._run(
                f"releasing a slot of {self.key}",
                self._release_script,
                [self.key],
                [member, self._hold_ms, self._lease_ms],
            )
        except SharedLimiterError as exc:
            # The slot keeps its lease (sent + period + deadline): later than needed, never too early.
            log.warning("%s; the slot frees when its lease ends", exc)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        member = await self.acquire()
        try:
            yield
        finally:
            await self.release(member)

    async def paused_seconds(self) -> float:
        ms = await self._run(f"reading {self.paused_key}", self._paused_script, [self.paused_key], [])
        return int(ms) / 1000

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._run(
                f"pausing {self.key}", self._pause_script, [self.paused_key], [int(seconds * 1000) + 1]
            )


def shared_limiters(
    limiters: Mapping[str, SlidingWindowRateLimiter], transport: TransportSettings
) -> dict[str, RateLimiter]:
    """``limiters`` as configured: unchanged without ``transport.shared_limiter_url``, else shared in Redis.

    Same endpoints, limits and periods either way. Raises :class:`SharedLimiterError` when the
    configured Redis does not answer.
    """
    url = transport.shared_limiter_url.strip()
    if not url:
        _log_once(
            "",
            logging.INFO,
            f"{URL_KEY} is empty: API rate limits are counted per process; concurrent runs or workers "
            "can together exceed them (set it to a Redis URL to share them)",
        )
        return dict(limiters)
    try:
        client = _client(url)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise SharedLimiterError(url, "connecting", exc) from None
    prefix = transport.shared_limiter_prefix
    _log_once(
        url + "\0" + prefix,
        logging.INFO,
        f"API rate limits shared through Redis at {redact_url(url)} (keys {prefix}:{{<endpoint>}})",
    )
    return {
        endpoint: RedisRateLimiter(
            client,
            url,
            limiter_key(prefix, endpoint),
            pause_key(prefix, endpoint),
            local.max_calls,
            local.period,
            max_request_seconds=transport.request_deadline_seconds,
        )
        for endpoint, local in limiters.items()
    }

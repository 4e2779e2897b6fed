"""Rate limits shared through Redis: four processes together never exceed the server's limit.

Needs the Redis on 127.0.0.1:6379 (skipped with the reason when it does not answer). Every test
uses its own key prefix and deletes its keys. The multi-process test forks four worker processes,
each running the project's clients against simulator servers on 127.0.0.1.
"""

import asyncio
import logging
import multiprocessing
import socket
import time
import traceback
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection

import httpx
import pytest
import redis

from kaizen_pipeline.ingest import ratelimit
from kaizen_pipeline.ingest.clients import build_clients
from kaizen_pipeline.ingest.ratelimit import (
    RedisRateLimiter,
    SharedLimiterError,
    limiter_key,
    pause_key,
    shared_limiters,
)
from kaizen_pipeline.ingest.simulator.server import EndpointLimit, SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.ingest.transport import (
    ApiError,
    RetryPolicy,
    SlidingWindowRateLimiter,
    Transport,
    gather_bounded,
)
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.settings.ingest import TransportSettings

REDIS_URL = "redis://127.0.0.1:6379/0"
WORKERS = 4
PER_WORKER = 6
SERVER_LIMIT = 12  # /prices-history per 10 s, on the server and in every client's settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test alone; skips when the local Redis does not answer."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis on 127.0.0.1:6379 for the shared rate limiter ({type(exc).__name__})")
    prefix = f"kaizen-test:{uuid.uuid4().hex}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
    client.close()


def _shared(prefix: str, max_calls: int, period: float, deadline: float = 1.0) -> RedisRateLimiter:
    transport = TransportSettings(
        shared_limiter_url=REDIS_URL, shared_limiter_prefix=prefix, request_deadline_seconds=deadline
    )
    limiter = shared_limiters(
        {"clob:/prices-history": SlidingWindowRateLimiter(max_calls, period)}, transport
    )["clob:/prices-history"]
    assert isinstance(limiter, RedisRateLimiter)
    return limiter


# --- unit tests of the limiter ---------------------------------------------------------------------


def test_without_a_url_the_in_process_limiters_stay_and_say_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ratelimit, "_logged", set())
    local = {"clob:/prices-history": SlidingWindowRateLimiter(5, 10.0)}
    with caplog.at_level(logging.INFO, logger=ratelimit.__name__):
        first = shared_limiters(local, TransportSettings())
        second = shared_limiters(local, TransportSettings(shared_limiter_url="  "))
    assert first == local and second == local
    assert first["clob:/prices-history"] is local["clob:/prices-history"]
    said = [r.getMessage() for r in caplog.records if r.name == ratelimit.__name__]
    assert len(said) == 1 and "transport.shared_limiter_url is empty" in said[0]
    assert "per process" in said[0]


def test_key_names_and_a_slot_leased_until_its_answer(redis_prefix: str) -> None:
    assert limiter_key("kz", "clob:/prices-history") == "kz:{clob:/prices-history}"
    assert pause_key("kz", "x:/2/tweets/search/recent") == "kz:{x:/2/tweets/search/recent}:paused"
    limiter = _shared(redis_prefix, 3, 10.0, deadline=2.0)
    assert (limiter.max_calls, limiter.period) == (3, 10.0)
    assert limiter.key == f"{redis_prefix}:{{clob:/prices-history}}"
    client = redis.Redis.from_url(REDIS_URL)

    member = asyncio.run(limiter.acquire())
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    # In flight: held for period + margin + request deadline + slack, so a crashed process frees it.
    lease_ms = client.zscore(limiter.key, member) - now_ms
    assert (10.0 + 2.0 + ratelimit.LEASE_SLACK_SECONDS) * 1000 - 200 < lease_ms <= 17_100
    assert 0 < client.pttl(limiter.key) <= 18_100  # the key never outlives its slots

    asyncio.run(limiter.release(member))
    seconds, micros = client.time()
    held_ms = client.zscore(limiter.key, member) - (seconds * 1000 + micros // 1000)
    assert 9_900 < held_ms <= 10_100  # answered: held one period (plus margin) from now


def test_a_slot_frees_one_period_after_the_answer_not_after_sending(redis_prefix: str) -> None:
    """What a window counted at send time (the ``limits`` package) does not give: a slow answer holds the slot."""
    period = 0.3
    first, second = _shared(redis_prefix, 1, period), _shared(redis_prefix, 1, period)  # two "processes"

    async def go() -> tuple[float, float]:
        start = time.monotonic()
        member = await first.acquire()
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.5)  # the server answers slowly, longer than the period
        assert not waiting.done()
        await first.release(member)
        answered = time.monotonic() - start
        await asyncio.wait_for(waiting, 5)
        return answered, time.monotonic() - start

    answered, admitted = asyncio.run(go())
    assert admitted >= answered + period


def test_a_spent_quota_pauses_every_process(redis_prefix: str) -> None:
    one, other = _shared(redis_prefix, 100, 1.0), _shared(redis_prefix, 100, 1.0)

    async def go() -> tuple[float, float]:
        await one.pause(0.4)
        paused = await other.paused_seconds()
        start = time.monotonic()
        async with other.slot():
            pass
        return paused, time.monotonic() - start

    paused, waited = asyncio.run(go())
    assert 0.2 < paused <= 0.41 and waited >= 0.3


def test_transport_fails_at_once_when_another_process_spent_the_quota(redis_prefix: str) -> None:
    limiter = _shared(redis_prefix, 10, 1.0)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    async def go() -> None:
        await _shared(redis_prefix, 10, 1.0).pause(5)  # another process saw x-rate-limit-remaining: 0
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            transport = Transport(client, RetryPolicy(max_retries=0), {"clob:/prices-history": limiter})
            await transport.get_json("clob:/prices-history", "http://api.test/x", wait_on_rate_limit=False)

    with pytest.raises(ApiError) as caught:
        asyncio.run(go())
    assert caught.value.status == 429 and sent == []


def test_unreachable_redis_fails_naming_the_key_and_masking_the_password() -> None:
    url = f"redis://:hunter2secret@127.0.0.1:{_free_port()}/0"
    transport = TransportSettings(shared_limiter_url=url)
    with pytest.raises(SharedLimiterError) as caught:
        shared_limiters({"clob:/prices-history": SlidingWindowRateLimiter(5, 10.0)}, transport)
    message = str(caught.value)
    assert message.startswith("transport.shared_limiter_url: Redis at redis://:***@127.0.0.1:")
    assert "hunter2secret" not in message and "connecting" in message


def test_redis_failing_mid_run_fails_the_request_naming_the_key() -> None:
    url = f"redis://user:hunter2secret@127.0.0.1:{_free_port()}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client, url, "kz:{e}", "kz:{e}:paused", 5, 10.0, max_request_seconds=1.0)
    with pytest.raises(SharedLimiterError) as caught:
        asyncio.run(limiter.acquire())
    assert "transport.shared_limiter_url" in str(caught.value) and "kz:{e}" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_the_log_line_masks_the_redis_password(
    redis_prefix: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The local Redis has no password: hand the limiter a client that reaches it whatever the URL says.
    monkeypatch.setattr(ratelimit, "_logged", set())
    monkeypatch.setattr(ratelimit, "_client", lambda url: redis.Redis.from_url(REDIS_URL))
    url = "redis://default:hunter2secret@127.0.0.1:6379/0"
    transport = TransportSettings(shared_limiter_url=url, shared_limiter_prefix=redis_prefix)
    with caplog.at_level(logging.INFO, logger=ratelimit.__name__):
        shared_limiters({"clob:/prices-history": SlidingWindowRateLimiter(5, 10.0)}, transport)
    said = " ".join(r.getMessage() for r in caplog.records if r.name == ratelimit.__name__)
    assert "redis://default:***@127.0.0.1:6379/0" in said and "hunter2secret" not in said
    assert ratelimit.redact_url(url) == "redis://default:***@127.0.0.1:6379/0"


def test_every_ingest_step_runs_in_the_pool_of_the_api_it_calls() -> None:
    from kaizen_pipeline.ingest.assets import INGEST_ASSETS

    pools = {a.key.to_user_string(): a.op.pool for a in INGEST_ASSETS}
    assert pools == {
        "polymarket_markets": "polymarket_api",
        "market_prices": "polymarket_api",
        "trade_volumes": "polymarket_api",
        "order_books": "polymarket_api",
        "whale_trades": "polymarket_api",
        "tweets": "x_api",
    }


# --- four processes against one server -------------------------------------------------------------


def _settings(url: str, limiter_url: str, prefix: str) -> Settings:
    return load_settings(
        source="live",
        polymarket={
            "gamma_url": url,
            "clob_url": url,
            "data_url": url,
            "prices_history_rate_limit": SERVER_LIMIT,
        },
        twitter={"api_url": url},
        # No retries: a request the server refuses counts as failed instead of being sent again.
        transport={
            "max_retries": 0,
            "timeout_seconds": 5,
            "request_deadline_seconds": 5,
            "shared_limiter_url": limiter_url,
            "shared_limiter_prefix": prefix,
        },
    )


async def _burst(settings: Settings, tokens: list[str]) -> dict[str, float]:
    """One price-history request per token, all at once, through the project's clients and transport."""
    end = int(time.time())
    start = time.monotonic()
    async with build_clients(settings) as clients:

        async def one(token: str) -> int:
            try:
                await clients.clob.price_history(token, end - 86400, end)
                return 1
            except ApiError:
                return 0

        ok = sum(await gather_bounded([lambda t=t: one(t) for t in tokens], len(tokens)))
    return {"ok": ok, "failed": len(tokens) - ok, "seconds": time.monotonic() - start}


def _worker(conn: Connection, prefix: str, tokens: list[str]) -> None:
    """One process: the same burst through the shared limiter and, at once, through a per-process one."""
    try:
        shared_url, control_url = conn.recv()  # the servers' addresses, and the signal to start together

        async def both() -> dict[str, dict[str, float]]:
            shared, control = await asyncio.gather(
                _burst(_settings(shared_url, REDIS_URL, prefix), tokens),
                _burst(_settings(control_url, "", prefix), tokens),
            )
            return {"shared": shared, "control": control}

        conn.send(asyncio.run(both()))
    except BaseException:  # report anything to the test instead of hanging it
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


@pytest.mark.slow  # four worker processes, each importing the pipeline
def test_four_processes_sharing_the_redis_limit_never_exceed_the_server_limit(redis_prefix: str) -> None:
    world = DemoWorld(n_markets=12)
    world.handle(httpx.Request("GET", "http://warm-up/markets/keyset?limit=100"))  # build the series up front
    tokens = [m.yes_token for m in world.markets[:PER_WORKER]]
    # Forked before the servers' threads start (a fork copies no running thread's locks) and after
    # every import, so the workers start at once.
    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe() for _ in range(WORKERS)]
    workers = [
        context.Process(target=_worker, args=(child, redis_prefix, tokens), daemon=True) for _, child in pipes
    ]
    for worker in workers:
        worker.start()

    def limits() -> dict[str, EndpointLimit]:
        return {"/prices-history": EndpointLimit(SERVER_LIMIT, 10.0)}

    try:
        with (
            SimulatorServer(world, latency_s=0.03, limits=limits()) as shared_srv,
            SimulatorServer(world, latency_s=0.03, limits=limits()) as control_srv,
        ):
            started = time.monotonic()
            for parent, _ in pipes:
                parent.send((shared_srv.url, control_srv.url))
            results = []
            for parent, _ in pipes:
                assert parent.poll(60), "a worker did not answer within 60 s"
                results.append(parent.recv())
            elapsed = time.monotonic() - started
            shared_violations = shared_srv.stats.rate_limit_violations
            control_violations = control_srv.stats.rate_limit_violations
    finally:
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
    errors = [r["error"] for r in results if "error" in r]
    assert errors == [], errors[0] if errors else ""

    total = WORKERS * PER_WORKER  # twice the limit: the shared limiter must wait for a second window
    assert shared_violations == 0
    assert sum(r["shared"]["ok"] for r in results) == total
    assert elapsed >= 10.0 and max(r["shared"]["seconds"] for r in results) >= 10.0
    # Control: each process alone stays under the limit, together they exceed it, and the server says so.
    assert control_violations == total - SERVER_LIMIT
    assert sum(r["control"]["failed"] for r in results) == total - SERVER_LIMIT

"""The transport against a real HTTP server on 127.0.0.1 that injects faults and enforces rate limits."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from kaizen_pipeline.ingest.clients import CLOB_PRICES_HISTORY, build_clients
from kaizen_pipeline.ingest.simulator.server import EndpointLimit, SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.ingest.transport import (
    ApiError,
    RetryPolicy,
    SlidingWindowRateLimiter,
    Transport,
    gather_bounded,
    rate_limit_wait,
)
from kaizen_pipeline_tests.ingest.conftest import live_settings

NOW_TS = int(datetime(2026, 11, 20, 12, 5, tzinfo=UTC).timestamp())


def _fetch_all_histories(url: str, tokens: list[str], **overrides: object):
    settings = live_settings(url, **overrides)

    async def go():
        async with build_clients(settings) as clients:
            results = await gather_bounded(
                [lambda t=t: clients.clob.price_history(t, NOW_TS - 2 * 86400, NOW_TS) for t in tokens], 4
            )
            return results, clients.stats

    return asyncio.run(go())


def test_every_record_arrives_exactly_once_through_injected_faults(
    server: SimulatorServer, small_world: DemoWorld
) -> None:
    tokens = [m.yes_token for m in small_world.markets[:6]]
    clean, clean_stats = _fetch_all_histories(server.url, tokens)
    assert clean_stats.retries == 0
    faults = ["500", "502", "429", "429-retry-after", "429-reset", "truncated", "reset", "timeout"]
    server.add_faults("/prices-history", faults)
    faulty, stats = _fetch_all_histories(server.url, tokens)
    assert server.stats.faults_injected == len(faults)
    assert [list(zip(h.t, h.p, strict=True)) for h, _ in faulty] == [
        list(zip(h.t, h.p, strict=True)) for h, _ in clean
    ]
    for history, _ in faulty:
        assert len(set(history.t)) == len(history) == 2 * 96  # two days at 15 minutes, no duplicates
    assert stats.retries == len(faults)
    assert stats.rate_limited == 3
    assert stats.api_calls == len(tokens) + len(faults)


def test_gamma_pagination_survives_faults_without_duplicates(server: SimulatorServer) -> None:
    settings = live_settings(
        server.url, polymarket={"page_size": 3}, data_collection={"min_volume_24h": 0, "max_markets": 100}
    )

    async def go():
        async with build_clients(settings) as clients:
            return await clients.gamma.open_markets(
                min_volume_24h=0, min_liquidity=0, max_markets=100
            ), clients.stats

    (clean, clean_rejects), _ = asyncio.run(go())
    server.add_faults("/markets/keyset", ["502", "reset", "truncated"])
    (markets, rejects), stats = asyncio.run(go())
    assert [m.id for m in markets] == [m.id for m in clean]
    assert len({m.id for m in markets}) == len(markets) >= 12
    assert len(rejects) == len(clean_rejects) == 2  # the two planted malformed markets
    assert stats.retries == 3


def test_gives_up_after_the_retry_budget_and_names_the_endpoint(
    server: SimulatorServer, small_world: DemoWorld
) -> None:
    server.add_faults("/prices-history", ["500"] * 10)
    with pytest.raises(ApiError) as err:
        _fetch_all_histories(server.url, [small_world.markets[0].yes_token], transport={"max_retries": 2})
    assert err.value.endpoint == CLOB_PRICES_HISTORY and err.value.attempts == 3
    assert "gave up: HTTP 500" in str(err.value)


def test_client_errors_are_not_retried(server: SimulatorServer) -> None:
    with pytest.raises(ApiError) as err:
        _fetch_all_histories(server.url, ["no-such-token"])
    assert err.value.status == 400 and err.value.attempts == 1
    assert server.stats.requests == 1


def test_rate_limiter_never_exceeds_the_server_limit() -> None:
    world = DemoWorld(seed=3, n_markets=4, history_days=1)
    token = world.markets[0].yes_token
    limit, period, n_requests = 20, 2.0, 50

    async def burst(url: str, limiter: SlidingWindowRateLimiter | None) -> tuple[int, float]:
        async with httpx.AsyncClient(timeout=5) as client:
            transport = Transport(client, RetryPolicy(max_retries=0), {"clob": limiter} if limiter else {})
            start = time.monotonic()
            params = {"market": token, "startTs": int(time.time()) - 3600, "endTs": int(time.time())}

            async def one() -> int:
                try:
                    await transport.get_json("clob", f"{url}/prices-history", params)
                    return 0
                except ApiError:
                    return 1

            failures = sum(await gather_bounded([one] * n_requests, 16))
            return failures, time.monotonic() - start

    with SimulatorServer(world, limits={"/prices-history": EndpointLimit(limit, period)}) as srv:
        failures, elapsed = asyncio.run(burst(srv.url, SlidingWindowRateLimiter(limit, period)))
        assert failures == 0 and srv.stats.rate_limit_violations == 0
        assert elapsed >= (n_requests // limit) * period  # it really had to wait for the later windows
    with SimulatorServer(world, limits={"/prices-history": EndpointLimit(limit, period)}) as srv:
        failures, _ = asyncio.run(burst(srv.url, None))
        assert srv.stats.rate_limit_violations > 0 and failures > 0  # the server does enforce the limit


def test_rate_limit_wait_reads_retry_after_and_x_reset() -> None:
    now = 1_800_000_000.0
    assert rate_limit_wait({"retry-after": "7"}, now) == 7
    http_date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert rate_limit_wait({"retry-after": http_date}, now) == pytest.approx(30)
    assert rate_limit_wait({"x-rate-limit-reset": str(int(now) + 12)}, now) == 12
    assert rate_limit_wait({}, now) is None


def test_backoff_doubles_from_the_base_with_bounded_jitter() -> None:
    import random

    policy = RetryPolicy(backoff_base=1.0, jitter=0.1)
    rng = random.Random(0)
    delays = [policy.backoff(a, rng) for a in range(5)]
    for attempt, delay in enumerate(delays):
        assert 2**attempt <= delay <= 2**attempt * 1.1


def test_exhausted_x_quota_pauses_the_limiter() -> None:
    limiter = SlidingWindowRateLimiter(450, 900.0)

    async def acquire_after_pause() -> None:
        limiter.pause_until_monotonic(time.monotonic() + 0.3)
        task = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.1)
        assert not task.done()  # the server said the quota is spent: nothing goes out
        await asyncio.wait_for(task, 5)

    asyncio.run(acquire_after_pause())

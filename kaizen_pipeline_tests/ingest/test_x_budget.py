"""X searches within a per-run request budget: prioritized, deferred to later runs, never waiting out a window."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kaizen_pipeline.ingest import transport as transport_module
from kaizen_pipeline.ingest.collect import (
    VOLUME_PRIORITY_PERIODS,
    collect_markets,
    collect_tweets,
    current_markets,
    run_collection,
    x_request_budget,
)
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import x_search_state
from kaizen_pipeline_tests.ingest.conftest import FROZEN_NOW

RATE_LIMIT = 20
PAGES = 2


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        source="demo",
        demo={"frozen_now": FROZEN_NOW, "n_markets": 30, "history_days": 1, "seed": 5},
        data_collection={"max_markets": 30, "history_days": 1, "trade_history_days": 1, "max_concurrency": 4},
        twitter={"rate_limit": RATE_LIMIT, "max_pages_per_query": PAGES},
        database={"path": str(tmp_path / "warehouse.sqlite")},
    )


class XCounter:
    """The demo world as an httpx transport that counts X requests and can answer 429 after ``allow`` of them."""

    def __init__(self, world: DemoWorld, allow: int | None = None, remaining: int | None = None) -> None:
        self.world, self.allow, self.remaining, self.x_requests = world, allow, remaining, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/2/tweets/search/recent"):
            self.x_requests += 1
            if self.allow is not None and self.x_requests > self.allow:
                reset = int(self.world.clock()) + 900
                return httpx.Response(
                    429, json={"title": "Too Many Requests"}, headers={"x-rate-limit-reset": str(reset)}
                )
            if self.remaining is not None:  # a window another client already spent most of
                response = self.world.handle(request)
                left = max(0, self.remaining - self.x_requests)
                response.headers["x-rate-limit-remaining"] = str(left)
                response.headers["x-rate-limit-reset"] = str(int(time.time()) + 600)
                return response
        return self.world.handle(request)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every asyncio sleep the transport or its limiters ask for, recorded and skipped."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: object = None) -> object:
        asked.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(transport_module.asyncio, "sleep", fake_sleep)
    return asked


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    """One world for the module: building its series is the slow part."""
    d = _settings(tmp_path_factory.mktemp("w")).demo
    assert d.frozen_now is not None
    return DemoWorld(d.seed, d.n_markets, d.history_days, d.epoch, clock=d.frozen_now.timestamp)


def _prepare(tmp_path: Path, world: DemoWorld) -> tuple[Settings, Warehouse]:
    settings = _settings(tmp_path)
    warehouse = Warehouse(settings.database.sqlalchemy_url())
    run_collection(
        collect_markets,
        settings,
        warehouse,
        "markets",
        asset="polymarket_markets",
        http_transport=world.transport(),
    )
    return settings, warehouse


@pytest.mark.slow
def test_runs_stay_within_the_budget_and_cover_every_market(
    tmp_path: Path, world: DemoWorld, sleeps: list[float]
) -> None:
    settings, warehouse = _prepare(tmp_path, world)
    market_ids = set(current_markets(warehouse)["market_id"])
    budget = x_request_budget(RATE_LIMIT, settings.data_collection.frequency_minutes)
    assert budget < len(market_ids)  # one run cannot search them all
    per_run = (budget - PAGES) // PAGES  # market queries a run can afford at worst (every query paging fully)
    runs = math.ceil(len(market_ids) / per_run) + VOLUME_PRIORITY_PERIODS + 1
    start = datetime.fromisoformat(FROZEN_NOW.replace("Z", "+00:00")).replace(tzinfo=None)
    for i in range(runs):
        counter = XCounter(world)
        result = _search(settings, warehouse, counter, f"tweets-{i}", now=start + timedelta(minutes=15 * i))
        assert counter.x_requests <= budget
        assert result.details["request_budget"] == budget
        assert result.details["searched_queries"] + result.details["deferred_queries"] == len(market_ids) + 1
        assert result.details["deferred_queries"] > 0 and result.degraded is False
    searched = set(warehouse.read_frame(sa.select(x_search_state.c.market_id))["market_id"])
    assert market_ids <= searched
    assert all(s < 1 for s in sleeps)


def _search(
    settings: Settings, warehouse: Warehouse, counter: XCounter, run_id: str = "tweets", **kw: Any
) -> Any:
    """One tweets collection against the counting X server."""
    return run_collection(
        collect_tweets,
        settings,
        warehouse,
        run_id,
        asset="tweets",
        http_transport=httpx.MockTransport(counter),
        **kw,
    )


def test_a_429_mid_run_stops_searching_keeps_the_results_and_never_waits(
    tmp_path: Path, world: DemoWorld, sleeps: list[float]
) -> None:
    settings, warehouse = _prepare(tmp_path, world)
    counter = XCounter(world, allow=5)
    result = _search(settings, warehouse, counter)
    assert result.details["stopped_by_rate_limit"] is True
    assert 1 <= result.details["searched_queries"] <= 5 and result.new_rows > 0
    assert result.details["deferred_queries"] >= len(current_markets(warehouse)) + 1 - 5
    assert counter.x_requests <= 5 + settings.data_collection.max_concurrency
    assert all(s < 1 for s in sleeps)


def test_the_budget_honours_what_the_window_has_left(tmp_path: Path, world: DemoWorld) -> None:
    settings, warehouse = _prepare(tmp_path, world)
    settings = settings.model_copy(
        update={"data_collection": settings.data_collection.model_copy(update={"max_concurrency": 1})}
    )
    counter = XCounter(world, remaining=4)
    result = _search(settings, warehouse, counter)
    assert counter.x_requests <= 4
    assert result.details["deferred_queries"] >= len(current_markets(warehouse)) + 1 - 4
    assert result.details["stopped_by_rate_limit"] is False

"""Hostile record shapes through the real clients and a 127.0.0.1 server: quarantined, never fatal, never silent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.ingest import quality
from kaizen_pipeline.ingest.collect import (
    collect_markets,
    collect_prices,
    collect_trade_volumes,
    run_collection,
)
from kaizen_pipeline.ingest.queries import X_MAX_QUERY_LENGTH, keyword_query, market_search_query
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.ingest.conftest import live_settings

Rewrite = Callable[[httpx.Request, Any], Any]


class HostileWorld:
    """The demo world behind the real HTTP server, with chosen endpoints' JSON bodies rewritten."""

    def __init__(self, inner: DemoWorld, rewrites: dict[str, Rewrite]) -> None:
        self.inner = inner
        self.rewrites = rewrites

    def now_bucket(self) -> int:
        return self.inner.now_bucket()

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle(request)
        for suffix, rewrite in self.rewrites.items():
            if request.url.path.endswith(suffix) and response.status_code == 200:
                body = rewrite(request, response.json())
                return httpx.Response(200, json=body, headers=dict(response.headers))
        return response


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    yield wh
    wh.dispose()


def settings_for(url: str, **overrides: Any) -> Any:
    # A generous per-read timeout: the first request builds the world's series on a shared CPU.
    return live_settings(url, transport={"timeout_seconds": 30}, **overrides)


def serve(world: DemoWorld, rewrites: dict[str, Rewrite]) -> SimulatorServer:
    return SimulatorServer(HostileWorld(world, rewrites), timeout_fault_s=1.0)  # type: ignore[arg-type]


def _gamma_defects(request: httpx.Request, body: dict[str, Any]) -> dict[str, Any]:
    markets = body["markets"]
    if "after_cursor" in request.url.params:
        return body
    first = markets[0]
    markets[1]["outcomePrices"] = "[null, null]"
    markets[2]["volume"] = {"nested": 1}
    markets[3]["events"] = ["weekly"]
    markets[4]["events"] = [{"series": ["weekly"], "slug": 7}]  # wrong nesting one level down
    markets[5]["id"] = "9" * 300
    markets[6]["oneDayPriceChange"] = "-Infinity"
    markets[7]["question"] = "Will " + "q" * 5_000_000 + "?"
    categorical = {
        **first,
        "id": "777001",
        "conditionId": "0x" + "7" * 64,
        "outcomes": json.dumps(["Trump", "Harris", "Other"]),
        "outcomePrices": json.dumps(["0.55", "0.4", "0.05"]),
        "clobTokenIds": json.dumps(["71", "72", "73"]),
    }
    return {**body, "markets": [categorical, *markets]}


def test_malformed_gamma_records_are_quarantined_and_the_run_goes_on(
    small_world: DemoWorld, warehouse: Warehouse
) -> None:
    with serve(small_world, {"/markets/keyset": _gamma_defects}) as server:
        settings = settings_for(server.url, data_collection={"max_markets": 40, "min_volume_24h": 0})
        result = run_collection(collect_markets, settings, warehouse, "run-1", asset="polymarket_markets")
    reasons = {r.record_key: r.reason for r in result.rejects}
    by_field = " | ".join(reasons.values())
    assert "outcomePrices: Value error, missing price (null or empty)" in by_field or (
        "outcomePrices: missing price (null or empty)" in by_field
    )
    assert "volume: expected a decimal string or number, got dict" in by_field
    assert "events.0: Input should be a valid dictionary" in by_field
    assert "oneDayPriceChange: Input should be a finite number" in by_field
    long_id = next(r for r in result.rejects if r.payload["id"] == "9" * 300)
    assert long_id.reason == "market_id: 300 characters, longer than the column's limit of 64"
    # the series-of-strings market is valid apart from its odd nesting: stored, category from its title
    assert warehouse.scalar("SELECT count(*) FROM market_snapshots WHERE length(market_id) > 64") == 0
    # a categorical market is stored with its outcomes, and the metadata says research skips it
    outcomes = warehouse.read_frame(
        "SELECT outcome, token_id, price, outcome_count FROM market_outcomes WHERE market_id = '777001'"
    )
    assert outcomes.to_dict("list") == {
        "outcome": ["Trump", "Harris", "Other"],
        "token_id": ["71", "72", "73"],
        "price": [0.55, 0.4, 0.05],
        "outcome_count": [3, 3, 3],
    }
    assert warehouse.scalar("SELECT count(*) FROM market_snapshots WHERE market_id = '777001'") == 0
    assert result.details["non_binary_markets"] == 1 and "skip" in result.details["non_binary_note"]
    # the 5 MB question is stored, but the preview (event log metadata) stays small
    assert warehouse.scalar("SELECT max(length(question)) FROM market_snapshots") > 5_000_000
    assert len(markdown_table(result.preview)) < 25_000
    stored = warehouse.count("rejected_records")
    assert (
        stored == len(result.rejects)
        and max(len(r) for r in warehouse.read_frame("SELECT reason FROM rejected_records")["reason"]) <= 503
    )
    status = warehouse.scalar("SELECT status FROM ingestion_runs")
    assert status == "success"


def _setup_markets(world: DemoWorld, warehouse: Warehouse) -> None:
    with serve(world, {}) as server:
        run_collection(
            collect_markets, settings_for(server.url), warehouse, "run-0", asset="polymarket_markets"
        )


def test_data_api_ms_timestamps_and_non_finite_sizes_are_rejects(
    small_world: DemoWorld, warehouse: Warehouse
) -> None:
    _setup_markets(small_world, warehouse)

    def poison(request: httpx.Request, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if trades:
            trades[0] = {**trades[0], "timestamp": trades[0]["timestamp"] * 1000}
        if len(trades) > 1:
            trades[1] = {**trades[1], "size": "Infinity"}
        return trades

    with serve(small_world, {"/trades": poison}) as server:
        result = run_collection(
            collect_trade_volumes, settings_for(server.url), warehouse, "run-1", asset="trade_volumes"
        )
    reasons = [r.reason for r in result.rejects]
    assert any(r.startswith("timestamp: ") and "milliseconds" in r for r in reasons)
    assert any(r.startswith("size: Input should be a finite number") for r in reasons)


def test_data_api_that_ignores_offset_is_deduplicated_and_degrades(
    small_world: DemoWorld, warehouse: Warehouse
) -> None:
    _setup_markets(small_world, warehouse)
    first_pages: dict[str, list[dict[str, Any]]] = {}

    # live mode runs on the wall clock: the repeated trades are recent, so pagination would go on
    now_ts = int(pipeline_now(settings_for("http://127.0.0.1")).replace(tzinfo=UTC).timestamp())

    def same_page(request: httpx.Request, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        market = request.url.params["market"]
        # every offset answers the first page again (recent trades, so pagination would go on)
        recent = [{**t, "timestamp": now_ts - 60 * (i + 1)} for i, t in enumerate(trades)]
        return first_pages.setdefault(market, recent)

    with serve(small_world, {"/trades": same_page}) as server:
        settings = settings_for(server.url, polymarket={"trades_page_size": 5})
        result = run_collection(collect_trade_volumes, settings, warehouse, "run-1", asset="trade_volumes")
        calls = server.stats.per_path.get("/trades", 0)
    markets = warehouse.count("market_snapshots")
    assert calls <= 2 * markets  # stops at the first repeated page, not after max_pages
    assert result.degraded and "repeats the previous page" in str(result.degraded_reason)
    assert warehouse.scalar("SELECT status FROM ingestion_runs WHERE run_id = 'run-1'") == "degraded"
    # volume counts each fill of the served page once (a page may name several markets)
    served = sum(t["size"] * t["price"] for page in first_pages.values() for t in page)
    stored = warehouse.scalar("SELECT sum(volume_usd) FROM trade_volumes")
    assert stored == pytest.approx(served)


def test_clob_ms_timestamps_and_conflicting_repeats_are_reported(warehouse: Warehouse) -> None:
    wall_world = DemoWorld(seed=11, n_markets=12, history_days=3)  # live mode asks for wall-clock windows
    _setup_markets(wall_world, warehouse)

    def poison(request: httpx.Request, body: dict[str, Any]) -> dict[str, Any]:
        history = body["history"]
        if len(history) > 3:
            history[0] = {"t": history[0]["t"] * 1000, "p": history[0]["p"]}
            history.append({"t": history[2]["t"], "p": round(1 - history[2]["p"], 3) or 0.5})
        return body

    with serve(wall_world, {"/prices-history": poison}) as server:
        settings = settings_for(server.url)
        result = run_collection(collect_prices, settings, warehouse, "run-1", asset="market_prices")
    tokens = result.details["tokens"]
    reasons = [r.reason for r in result.rejects]
    assert sum("is not unix seconds (milliseconds?)" in r for r in reasons) == tokens
    assert result.details["timestamp_conflicts"] == tokens
    assert all(r.startswith(("t: ", "p: repeated timestamp")) for r in reasons)
    since = pipeline_now(settings).replace(tzinfo=None) - timedelta(days=3)
    check = quality.price_timestamp_conflicts(warehouse, since)
    assert not check.passed and check.summary["conflicting_points"] == tokens


def test_x_queries_respect_the_query_length_limit() -> None:
    huge_word = "Will " + "a" * 5_000_000 + " happen in Paris by Friday?"
    assert len(market_search_query(huge_word)) <= X_MAX_QUERY_LENGTH
    assert "paris" in market_search_query(huge_word)
    keywords = [f"keyword number {i}" for i in range(200)]
    query = keyword_query(keywords)
    assert len(query) <= X_MAX_QUERY_LENGTH and query.startswith('("keyword number 0" OR')
    assert query.endswith(") -is:retweet")


def test_metadata_previews_are_bounded() -> None:
    import pandas as pd

    frame = pd.DataFrame({"market_id": ["1", "2"], "question": ["q" * 5_000_000, "short"]})
    table = markdown_table(frame)
    assert len(table) < 1_000 and "(5000000 chars)" in table and "| 2 | short |" in table
    wide = pd.DataFrame({"text": ["w" * 190] * 500})
    assert len(markdown_table(wide, max_rows=500)) <= 21_000
    assert markdown_table(wide, max_rows=500).endswith("more rows_")

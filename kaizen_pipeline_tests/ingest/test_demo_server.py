"""The demo source answered by a long-lived simulator server (demo.server_url) stores what the in-process
world stores; price history written a few tokens at a time stores what one write stores."""

from pathlib import Path

import pandas as pd
import pytest

from kaizen_pipeline.ingest import collect
from kaizen_pipeline.ingest.collect import (
    collect_markets,
    collect_prices,
    collect_trade_volumes,
    run_collection,
)
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.ingest.conftest import FROZEN_NOW

TABLES = {
    "price_points": "SELECT token_id, ts, market_id, outcome, price FROM price_points ORDER BY 1, 2",
    "trade_volumes": "SELECT market_id, bucket_ts, volume_usd, buy_volume_usd, trade_count FROM trade_volumes "
    "ORDER BY 1, 2",
}


def _demo(server_url: str | None = None) -> Settings:
    return load_settings(
        demo={
            "seed": 11,
            "n_markets": 12,
            "history_days": 3,
            "frozen_now": FROZEN_NOW,
            "server_url": server_url,
        },
        data_collection={
            "max_markets": 12,
            "history_days": 3,
            "trade_history_days": 2,
            "min_volume_24h": 50000,
        },
    )


def _collect(settings: Settings, path: Path) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse(f"sqlite:///{path}")
    now = pd.Timestamp(FROZEN_NOW).tz_convert(None).to_pydatetime()
    try:
        for collector, asset in (
            (collect_markets, "polymarket_markets"),
            (collect_prices, "market_prices"),
            (collect_trade_volumes, "trade_volumes"),
        ):
            result = run_collection(collector, settings, warehouse, f"run-{asset}", asset=asset, now=now)
            assert not result.degraded, result.degraded_reason
        return {name: warehouse.read_frame(query) for name, query in TABLES.items()}
    finally:
        warehouse.dispose()


def test_a_simulator_server_answers_the_demo_source_like_the_in_process_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process = _collect(_demo(), tmp_path / "in_process.sqlite")
    frozen = _demo().demo.frozen_now
    assert frozen is not None
    world = DemoWorld(seed=11, n_markets=12, history_days=3, clock=frozen.timestamp)
    # 3 tokens, 5 markets per write: chunks that split a market's two tokens store the same rows
    monkeypatch.setattr(collect, "PRICE_TOKENS_PER_WRITE", 3)
    monkeypatch.setattr(collect, "TRADE_MARKETS_PER_WRITE", 5)
    with SimulatorServer(world) as server:
        served = _collect(_demo(server.url), tmp_path / "served.sqlite")
        assert server.stats.per_path.get("/prices-history", 0) > 0  # the server, not a world in this process
    assert len(in_process["price_points"]) > 1000
    for name in TABLES:
        pd.testing.assert_frame_equal(served[name], in_process[name])


def test_a_server_url_that_is_not_http_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="demo.server_url: not an http"):
        load_settings(demo={"server_url": "127.0.0.1:8900"})

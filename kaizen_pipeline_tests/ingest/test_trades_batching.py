"""Data API /trades naming several markets per request: the same tables as one request per market, fewer calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kaizen_pipeline.ingest.collect import (
    collect_markets,
    collect_trade_volumes,
    collect_whale_trades,
    run_collection,
)
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.ingest.conftest import live_settings


def _collect(
    world: DemoWorld, now: datetime, path: Path, **polymarket: Any
) -> tuple[dict[str, pd.DataFrame], int]:
    """trade_volumes and whale_trades of a fresh warehouse, and the /trades requests they took."""
    warehouse = Warehouse(f"sqlite:///{path}")
    try:
        with SimulatorServer(world, timeout_fault_s=1.0) as server:
            settings = live_settings(
                server.url,
                transport={"timeout_seconds": 30},
                polymarket={"trades_page_size": 50, **polymarket},
                data_collection={"whale_trade_usd": 500},
            )
            run_collection(collect_markets, settings, warehouse, "run-0", asset="polymarket_markets", now=now)
            before = server.stats.per_path.get("/trades", 0)
            # the history, then a catch-up from the newest stored bucket (the 15-minute cycle's request shape)
            for attempt in ("history", "catch-up"):
                for collector, asset in (
                    (collect_trade_volumes, "trade_volumes"),
                    (collect_whale_trades, "whale_trades"),
                ):
                    run_id = f"run-{asset}-{attempt}"
                    result = run_collection(collector, settings, warehouse, run_id, asset=asset, now=now)
                    assert not result.degraded, result.degraded_reason
            calls = server.stats.per_path.get("/trades", 0) - before
        tables = {
            "trade_volumes": warehouse.read_frame(
                "SELECT market_id, bucket_ts, volume_usd, buy_volume_usd, trade_count FROM trade_volumes "
                "ORDER BY market_id, bucket_ts"
            ),
            "whale_trades": warehouse.read_frame("SELECT * FROM whale_trades ORDER BY 1, 2, 3, 4"),
        }
        return tables, calls
    finally:
        warehouse.dispose()


@pytest.mark.parametrize(("max_pages", "batch_history"), [(200, False), (2, True)])
def test_batched_trades_store_what_one_request_per_market_stores(
    tmp_path: Path, max_pages: int, batch_history: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catch-ups share requests; histories go per market. Batching the histories too (max_pages 2), a
    batch runs out of pages before its earliest market: those are fetched alone, to the same tables."""
    from kaizen_pipeline.ingest import clients, collect

    if batch_history:
        monkeypatch.setattr(collect, "TRADES_BATCH_HORIZON", timedelta(days=365))

    original = clients.DataApiClient.__init__

    def capped(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.max_pages = max_pages if self.max_pages == 200 else self.max_pages

    monkeypatch.setattr(clients.DataApiClient, "__init__", capped)
    # live mode: one fixed instant for the server's world and the collectors, so both runs see the same data
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    world = DemoWorld(seed=11, n_markets=12, history_days=5, clock=now.replace(tzinfo=UTC).timestamp)
    single, single_calls = _collect(world, now, tmp_path / "single.sqlite", trades_markets_per_request=1)
    batched, batched_calls = _collect(world, now, tmp_path / "batched.sqlite", trades_markets_per_request=20)
    assert len(single["trade_volumes"]) > 100 and len(single["whale_trades"]) > 10
    for name in single:
        stable = [c for c in single[name].columns if c not in ("ingested_at", "run_id", "collected_at")]
        pd.testing.assert_frame_equal(batched[name][stable], single[name][stable])
    if max_pages == 200:
        assert batched_calls < single_calls

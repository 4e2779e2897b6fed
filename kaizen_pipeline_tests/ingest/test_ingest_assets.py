"""End-to-end ingest on an ephemeral Dagster instance: demo mode, repeat runs, degraded X, failing Polymarket."""

import dagster as dg
import pytest
import sqlalchemy as sa

from kaizen_pipeline.ingest.assets import INGEST_ASSETS
from kaizen_pipeline.ingest.checks import INGEST_CHECKS
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline_tests.ingest.conftest import FROZEN_NOW

SMALL_DEMO = {
    "KAIZEN_DEMO__FROZEN_NOW": FROZEN_NOW,
    "KAIZEN_DATA_COLLECTION__MAX_MARKETS": "8",
    "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "4",
    "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "2",
}


def configure(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def materialize(
    settings: Settings, instance: dg.DagsterInstance, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*INGEST_ASSETS, *INGEST_CHECKS],
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=raise_on_error,
    )


def metadata_by_asset(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_demo_ingest_fills_the_warehouse_and_repeats_without_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure(monkeypatch, SMALL_DEMO)
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(settings, instance)
    meta = metadata_by_asset(first)
    assert meta["polymarket_markets"]["new_rows"] == 8
    assert meta["polymarket_markets"]["rejects"] == 2  # the planted malformed markets, quarantined
    assert meta["market_prices"]["new_rows"] == 8 * 2 * 4 * 96  # both tokens, 4 days of 15-minute points
    assert meta["market_prices"]["rejects"] == 0 and meta["market_prices"]["timestamp_conflicts"] == 0
    assert meta["trade_volumes"]["rejects"] == 0 and meta["trade_volumes"]["duplicate_trades"] == 0
    assert meta["trade_volumes"]["new_rows"] > 8 * 2 * 96
    assert meta["tweets"]["new_rows"] > 100 and meta["tweets"]["degraded"] is False
    assert "| market_id | question |" in str(meta["polymarket_markets"]["preview"])

    checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
    for name in (
        "prices_in_unit_interval",
        "binary_prices_sum_to_one",
        "price_history_gaps",
        "price_timestamp_conflicts",
        "price_data_fresh",
        "market_snapshot_fresh",
        "no_duplicate_keys",
        "tweets_within_window",
    ):
        assert checks[name].passed, name

    wh = warehouse_for(settings.database.sqlalchemy_url())
    rejects = wh.read_frame("SELECT source, record_key, reason, payload FROM rejected_records")
    assert len(rejects) == 2 and set(rejects["source"]) == {"gamma:/markets/keyset"}
    # three outcome names but two token ids: malformed, not categorical
    assert any("3 names but 3 outcomePrices and 2 clobTokenIds" in r for r in rejects["reason"])
    assert wh.count("market_outcomes") == 2 * 8
    assert any("outcomePrices: price 1.7 outside [0, 1]" in r for r in rejects["reason"])
    counts = wh.table_row_counts()

    second = materialize(settings, instance)
    assert all(m["new_rows"] == 0 for m in metadata_by_asset(second).values())
    counts_after = wh.table_row_counts()
    for table in (
        "market_snapshots",
        "market_outcomes",
        "price_points",
        "trade_volumes",
        "tweets",
        "tweet_authors",
        "rejected_records",
        "order_book_snapshots",
        "whale_trades",
    ):
        assert counts_after[table] == counts[table], table
    runs = wh.read_frame("SELECT asset, status, api_calls, new_rows FROM ingestion_runs")
    assert len(runs) == 2 * len(INGEST_ASSETS) and set(runs["status"]) == {"success"}
    assert runs["api_calls"].min() >= 1


@pytest.fixture
def live_env(live_server: SimulatorServer) -> dict[str, str]:
    server = live_server
    return {
        **SMALL_DEMO,
        "KAIZEN_SOURCE": "live",
        "KAIZEN_POLYMARKET__GAMMA_URL": server.url,
        "KAIZEN_POLYMARKET__CLOB_URL": server.url,
        "KAIZEN_POLYMARKET__DATA_URL": server.url,
        "KAIZEN_TWITTER__API_URL": server.url,
        "KAIZEN_TRANSPORT__BACKOFF_BASE_SECONDS": "0.01",
        "KAIZEN_TRANSPORT__MAX_RETRIES": "2",
        "KAIZEN_TRANSPORT__TIMEOUT_SECONDS": "10",
    }


def test_without_x_token_tweets_degrade_and_polymarket_data_still_lands(
    monkeypatch: pytest.MonkeyPatch, live_env: dict[str, str]
) -> None:
    settings = configure(monkeypatch, live_env)
    result = materialize(settings, dg.DagsterInstance.ephemeral())
    assert result.success
    meta = metadata_by_asset(result)
    assert meta["tweets"]["degraded"] is True and meta["tweets"]["api_calls"] == 0
    assert "KAIZEN_TWITTER__BEARER_TOKEN" in str(meta["tweets"]["degraded_reason"])
    assert meta["market_prices"]["new_rows"] > 0
    wh = warehouse_for(settings.database.sqlalchemy_url())
    status = wh.scalar("SELECT status FROM ingestion_runs WHERE asset = 'tweets'")
    assert status == "degraded"


def test_x_failures_degrade_without_leaking_the_token(
    monkeypatch: pytest.MonkeyPatch,
    live_env: dict[str, str],
    live_server: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = live_server
    secret = "bearer-secret-5f2c9a"
    # One query at a time, so the three faults all hit the first query and exhaust its retries.
    settings = configure(
        monkeypatch,
        {**live_env, "KAIZEN_TWITTER__BEARER_TOKEN": secret, "KAIZEN_DATA_COLLECTION__MAX_CONCURRENCY": "1"},
    )
    server.add_faults("/2/tweets/search/recent", ["500"] * 3)
    result = materialize(settings, dg.DagsterInstance.ephemeral())
    assert result.success
    meta = metadata_by_asset(result)
    assert meta["tweets"]["degraded"] is True
    assert "1 of 9 X queries failed" in str(meta["tweets"]["degraded_reason"])
    assert meta["tweets"]["new_rows"] > 0  # the other queries' posts are kept
    everything = str(meta) + caplog.text + str([e for e in result.all_events])
    assert secret not in everything


def test_polymarket_down_fails_the_run_clearly_and_records_it(
    monkeypatch: pytest.MonkeyPatch, live_env: dict[str, str], live_server: SimulatorServer
) -> None:
    server = live_server
    settings = configure(monkeypatch, live_env)
    server.add_faults("/markets/keyset", ["502"] * 3)
    result = materialize(settings, dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "gamma:/markets/keyset: gave up: HTTP 502 (after 3 attempts)" in str(failure.event_specific_data)
    wh = warehouse_for(settings.database.sqlalchemy_url())
    row = wh.read_frame(sa.text("SELECT status, api_calls, retries FROM ingestion_runs")).iloc[0]
    assert (row["status"], row["api_calls"], row["retries"]) == ("failed", 3, 2)

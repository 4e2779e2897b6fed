"""Data-quality asset checks on the ingest assets (blocking where downstream must not run on bad data)."""

from datetime import datetime, timedelta

import dagster as dg

from kaizen_pipeline.clock import as_naive_utc, pipeline_now
from kaizen_pipeline.ingest import quality
from kaizen_pipeline.ingest.assets import market_prices, order_books, polymarket_markets, tweets
from kaizen_pipeline.ingest.quality import QualityResult
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse.schema import market_snapshots, price_points


def _price_check_since(context: dg.AssetCheckExecutionContext, s: Settings) -> datetime:
    """Where the price checks start reading: the run's partitions (the cycle's day, a backfilled range),
    from the hour before them (gaps and jumps need the point before); else quality.check_window_hours."""
    if context.has_partition_key or context.has_partition_key_range:
        return as_naive_utc(context.partition_time_window.start) - timedelta(hours=1)
    return pipeline_now(s) - timedelta(hours=s.quality.check_window_hours)


def _result(outcome: QualityResult, severity: dg.AssetCheckSeverity, description: str) -> dg.AssetCheckResult:
    metadata: dict[str, dg.MetadataValue] = {
        k: dg.MetadataValue.float(float(v))
        if isinstance(v, float)
        else dg.MetadataValue.int(v)
        if isinstance(v, int)
        else dg.MetadataValue.text(str(v))
        for k, v in outcome.summary.items()
    }
    metadata["description"] = dg.MetadataValue.text(description)
    if not outcome.offenders.empty:
        metadata["offenders"] = dg.MetadataValue.md(markdown_table(outcome.offenders))
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=metadata)


@dg.asset_check(asset=market_prices, blocking=True)
def prices_in_unit_interval(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every stored outcome price lies in [0, 1]; anything else is corrupt data."""
    return _result(
        quality.prices_in_unit_interval(warehouse.get()),
        dg.AssetCheckSeverity.ERROR,
        "prices must lie in [0, 1]",
    )


@dg.asset_check(asset=market_prices)
def binary_prices_sum_to_one(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.AssetCheckResult:
    """YES and NO prices at the same time sum to about 1 (within quality.binary_sum_tolerance)."""
    s = settings.get()
    since = _price_check_since(context, s)
    return _result(
        quality.binary_prices_sum_to_one(warehouse.get(), since, s.quality.binary_sum_tolerance),
        dg.AssetCheckSeverity.WARN,
        f"|YES + NO - 1| <= {s.quality.binary_sum_tolerance}",
    )


@dg.asset_check(asset=market_prices)
def price_history_gaps(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.AssetCheckResult:
    """No gap in a token's price history longer than quality.gap_factor x polymarket.fidelity_minutes."""
    s = settings.get()
    since = _price_check_since(context, s)
    outcome = quality.price_history_gaps(
        warehouse.get(), since, s.polymarket.fidelity_minutes, s.quality.gap_factor
    )
    return _result(
        outcome,
        dg.AssetCheckSeverity.WARN,
        f"gaps longer than {s.quality.gap_factor:g} x {s.polymarket.fidelity_minutes} min",
    )


@dg.asset_check(asset=market_prices)
def price_jumps(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.AssetCheckResult:
    """Consecutive YES prices that move by more than quality.max_jump_ratio, listed for review."""
    s = settings.get()
    since = _price_check_since(context, s)
    return _result(
        quality.price_jumps(warehouse.get(), since, s.quality.max_jump_ratio),
        dg.AssetCheckSeverity.WARN,
        f"relative move > {s.quality.max_jump_ratio:.0%} between consecutive points",
    )


@dg.asset_check(asset=market_prices)
def price_timestamp_conflicts(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.AssetCheckResult:
    """No CLOB point repeated a timestamp with a different price in the checked window (quality.check_window_hours
    or the run's partitions)."""
    s = settings.get()
    since = _price_check_since(context, s)
    return _result(
        quality.price_timestamp_conflicts(warehouse.get(), since),
        dg.AssetCheckSeverity.WARN,
        "a repeated timestamp with a different price is quarantined (the first price is kept)",
    )


@dg.asset_check(asset=market_prices, blocking=True)
def price_data_fresh(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """The newest price point is at most quality.stale_after_minutes old."""
    s = settings.get()
    outcome = quality.freshness(
        warehouse.get(), price_points.c.ts, pipeline_now(s), s.quality.stale_after_minutes
    )
    return _result(
        outcome, dg.AssetCheckSeverity.ERROR, f"newest price within {s.quality.stale_after_minutes:g} min"
    )


@dg.asset_check(asset=polymarket_markets, blocking=True)
def market_snapshot_fresh(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """The newest market snapshot is at most quality.stale_after_minutes old."""
    s = settings.get()
    outcome = quality.freshness(
        warehouse.get(), market_snapshots.c.snapshot_ts, pipeline_now(s), s.quality.stale_after_minutes
    )
    return _result(
        outcome, dg.AssetCheckSeverity.ERROR, f"newest snapshot within {s.quality.stale_after_minutes:g} min"
    )


@dg.asset_check(asset=market_prices, blocking=True)
def no_duplicate_keys(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.AssetCheckResult:
    """No market snapshotted twice per bucket under two ids, no two prices per market, outcome and time, in the
    checked window (the run's partitions or quality.check_window_hours)."""
    return _result(
        quality.duplicate_natural_keys(warehouse.get(), _price_check_since(context, settings.get())),
        dg.AssetCheckSeverity.ERROR,
        "natural keys are unique",
    )


@dg.asset_check(asset=tweets)
def tweets_within_window(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """Posts of the latest collection were created inside the recent-search window (twitter.window_days)."""
    s = settings.get()
    return _result(
        quality.tweets_within_window(warehouse.get(), s),
        dg.AssetCheckSeverity.WARN,
        "created_at within the recent-search window",
    )


@dg.asset_check(asset=order_books)
def crossed_order_books(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No token's newest order book is crossed (best bid at or above best ask): such a book is stale or corrupt."""
    return _result(
        quality.crossed_books(warehouse.get()),
        dg.AssetCheckSeverity.WARN,
        "best bid below best ask in every token's newest book",
    )


@dg.asset_check(asset=order_books)
def empty_order_books(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every token's newest order book has bids and asks; a one-sided book has no mid and no spread."""
    return _result(
        quality.empty_books(warehouse.get()),
        dg.AssetCheckSeverity.WARN,
        "bids and asks in every token's newest book",
    )


@dg.asset_check(asset=order_books)
def stale_order_books(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """Every tracked token has an order book at most quality.book_stale_after_minutes old."""
    s = settings.get()
    limit = s.quality.book_stale_after_minutes
    return _result(
        quality.stale_books(warehouse.get(), pipeline_now(s), limit),
        dg.AssetCheckSeverity.WARN,
        f"newest book of every tracked token within {limit:g} min",
    )


INGEST_CHECKS = [
    prices_in_unit_interval,
    binary_prices_sum_to_one,
    price_history_gaps,
    price_jumps,
    price_timestamp_conflicts,
    price_data_fresh,
    market_snapshot_fresh,
    no_duplicate_keys,
    tweets_within_window,
    crossed_order_books,
    empty_order_books,
    stale_order_books,
]

"""Ingest assets: thin wiring of the collection steps into Dagster with run metadata."""

import traceback
from functools import partial

import dagster as dg
from dagster import AssetExecutionContext

from kaizen_pipeline.flags.checks import flags_evaluated_result, flags_evaluated_spec
from kaizen_pipeline.ingest.collect import (
    Collector,
    CollectResult,
    collect_markets,
    collect_order_books,
    collect_prices,
    collect_trade_volumes,
    collect_tweets,
    collect_whale_trades,
    run_collection,
)
from kaizen_pipeline.ops.logs import install_log_redaction
from kaizen_pipeline.ops.redact import redact, redacted_exception, secret_values
from kaizen_pipeline.partitions import DAILY_BACKFILL_POLICY, DAILY_PARTITIONS, partition_window
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings

GROUP = "ingest"

# Every process that loads this code location redacts its kaizen_pipeline log records.
install_log_redaction()


def _materialize(
    context: AssetExecutionContext,
    collector: Collector,
    warehouse: WarehouseResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    """Run one collector; its log lines, metadata and any exception leave here redacted.

    Dagster stores an asset's exception text in the event log and prints it on stderr; an API error
    can echo the request's credentials, so the original exception is replaced, not chained.
    """
    # transport knobs and collection frequency are per-run parameters (flags may vary them)
    unit = settings.resolve_units("run", [context.run_id])[context.run_id]
    secrets = secret_values(unit.settings)
    asset = context.asset_key.to_user_string()
    errors = settings.flag_errors()
    if errors:
        context.log.warning("flags fell back to config values: " + "; ".join(errors))
    try:
        result = _collect_and_describe(context, collector, warehouse, unit.settings, secrets, unit.variants)
        return dg.MaterializeResult(
            metadata={**(result.metadata or {}), "variants": dg.MetadataValue.json(unit.variants)},
            check_results=[flags_evaluated_result(asset, errors)],
        )
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:
        trace = redact("".join(traceback.format_exception(exc, chain=False)), secrets)
        error = redacted_exception(exc, secrets)
        context.log.error(f"{context.asset_key.to_user_string()} failed:\n{trace}")
        raise error from None


def _windowed(context: AssetExecutionContext, collector: Collector) -> Collector:
    """The collector bound to the run's partition window (a day or a range of days).

    An unpartitioned run (a job launched without a partition) still works, in catch-up mode from the
    newest stored point, but fills no partition: the warning says how to launch a range instead.
    """
    window = partition_window(context)
    if window is None:
        context.log.warning(
            f"{context.asset_key.to_user_string()}: unpartitioned run, collected in catch-up mode; no daily "
            "partition is marked filled. Launch a partition or a range instead (`kaizen backfill --days 30`, "
            "or pick partitions in the UI): docs/ingest.md#partitions-and-backfills"
        )
    return partial(collector, window=window)  # type: ignore[call-arg]


def _collect_and_describe(
    context: AssetExecutionContext,
    collector: Collector,
    warehouse: WarehouseResource,
    settings: Settings,
    secrets: list[str],
    variants: dict[str, str],
) -> dg.MaterializeResult:
    asset = context.asset_key.to_user_string()
    result: CollectResult = run_collection(
        collector, settings, warehouse.get(), context.run_id, asset=asset, variants=variants
    )
    if result.degraded:
        context.log.warning(redact(f"{asset} degraded: {result.degraded_reason}", secrets))
    if result.rejects:
        context.log.warning(f"{asset}: {len(result.rejects)} records quarantined in rejected_records")
    metadata: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.int(result.rows_written),
        "new_rows": dg.MetadataValue.int(result.new_rows),
        "rejects": dg.MetadataValue.int(len(result.rejects)),
        "new_rejects": dg.MetadataValue.int(result.new_rejects),
        "api_calls": dg.MetadataValue.int(result.stats.api_calls),
        "retries": dg.MetadataValue.int(result.stats.retries),
        "errors": dg.MetadataValue.int(result.stats.errors),
        "rate_limited": dg.MetadataValue.int(result.stats.rate_limited),
        "degraded": dg.MetadataValue.bool(result.degraded),
        "source": dg.MetadataValue.text(settings.source),
        "preview": dg.MetadataValue.md(redact(markdown_table(result.preview), secrets)),
    }
    if result.degraded_reason:
        metadata["degraded_reason"] = dg.MetadataValue.text(redact(result.degraded_reason, secrets))
    if result.rejects:
        # Reasons quote wire values: bounded, so a hostile record cannot bloat the event log.
        reasons = sorted({r.reason[:300] for r in result.rejects})[:10]
        metadata["reject_reasons"] = dg.MetadataValue.md(
            redact("\n".join(f"- {r}" for r in reasons), secrets)
        )
    for key, value in result.details.items():
        metadata[key] = (
            dg.MetadataValue.int(value)
            if isinstance(value, int)
            else dg.MetadataValue.text(redact(str(value), secrets))
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    kinds={"polymarket"},
    check_specs=[flags_evaluated_spec("polymarket_markets")],
    pool="polymarket_api",
)
def polymarket_markets(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Open Polymarket markets (Gamma keyset API), top data_collection.max_markets by 24 h volume, per bucket.

    Binary markets go to market_snapshots (what research reads); every market's outcomes to market_outcomes.
    """
    return _materialize(context, collect_markets, warehouse, settings)


@dg.asset(
    group_name=GROUP,
    kinds={"polymarket"},
    deps=[polymarket_markets],
    check_specs=[flags_evaluated_spec("market_prices")],
    pool="polymarket_api",
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=DAILY_BACKFILL_POLICY,
)
def market_prices(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """CLOB price history of both outcome tokens of every tracked market, per UTC day (partitions from
    data_collection.history_start); a range is one run, one request per token."""
    return _materialize(context, _windowed(context, collect_prices), warehouse, settings)


@dg.asset(
    group_name=GROUP,
    kinds={"polymarket"},
    deps=[polymarket_markets],
    check_specs=[flags_evaluated_spec("trade_volumes")],
    pool="polymarket_api",
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=DAILY_BACKFILL_POLICY,
)
def trade_volumes(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Traded USD volume per market and bucket from the Data API trades feed (for relative volume), per UTC
    day (partitions from data_collection.history_start); a range is one run, one paged fetch per market."""
    return _materialize(context, _windowed(context, collect_trade_volumes), warehouse, settings)


@dg.asset(
    group_name=GROUP,
    kinds={"x"},
    deps=[polymarket_markets],
    check_specs=[flags_evaluated_spec("tweets")],
    pool="x_api",
)
def tweets(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """X posts about the tracked markets and keywords (recent search over twitter.window_days); degrades, never fails."""
    return _materialize(context, collect_tweets, warehouse, settings)


@dg.asset(
    group_name=GROUP,
    kinds={"polymarket"},
    deps=[polymarket_markets],
    check_specs=[flags_evaluated_spec("order_books")],
    pool="polymarket_api",
)
def order_books(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """CLOB order books of both outcome tokens of every tracked market, one snapshot per token and book time."""
    return _materialize(context, collect_order_books, warehouse, settings)


@dg.asset(
    group_name=GROUP,
    kinds={"polymarket"},
    deps=[polymarket_markets],
    check_specs=[flags_evaluated_spec("whale_trades")],
    pool="polymarket_api",
)
def whale_trades(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Large trades (at least data_collection.whale_trade_usd) of every tracked market, one row per fill."""
    return _materialize(context, collect_whale_trades, warehouse, settings)


INGEST_ASSETS = [polymarket_markets, market_prices, trade_volumes, tweets, order_books, whale_trades]

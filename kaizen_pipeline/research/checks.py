"""Research asset checks: exposure caps and risk gating (blocking), correlation sample sizes (warning)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource

_TOL = 1e-9


def _allocation(warehouse: WarehouseResource) -> pd.DataFrame:
    return warehouse.get().read_frame("SELECT market_id, category, target_weight FROM portfolio_allocation")


@dg.asset_check(asset="portfolio_allocation", blocking=True)
def position_cap(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """No market's target weight exceeds its signals.max_position_pct (resolved per market)."""
    alloc = _allocation(warehouse)
    alloc["cap"] = [
        settings.for_unit("market", m).signals.max_position_pct / 100.0 for m in alloc["market_id"]
    ]
    over = alloc[alloc["target_weight"] > alloc["cap"] + _TOL]
    cap = settings.get().signals.max_position_pct / 100.0
    return dg.AssetCheckResult(
        passed=over.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "cap": dg.MetadataValue.float(cap),
            "max_weight": dg.MetadataValue.float(
                float(alloc["target_weight"].max()) if not alloc.empty else 0.0
            ),
            "violations": dg.MetadataValue.md(markdown_table(over)),
        },
    )


@dg.asset_check(asset="portfolio_allocation", blocking=True)
def category_cap(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """No category's summed target weight exceeds research.max_category_pct."""
    cap = settings.get().research.max_category_pct / 100.0
    alloc = _allocation(warehouse)
    by_cat = alloc.groupby(alloc["category"].fillna("(none)"))["target_weight"].sum().reset_index()
    over = by_cat[by_cat["target_weight"] > cap + _TOL]
    return dg.AssetCheckResult(
        passed=over.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "cap": dg.MetadataValue.float(cap),
            "by_category": dg.MetadataValue.md(markdown_table(by_cat)),
        },
    )


@dg.asset_check(asset="portfolio_allocation", blocking=True)
def total_exposure_cap(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """The summed target weight stays within signals.max_exposure_pct."""
    cap = settings.get().signals.max_exposure_pct / 100.0
    total = float(_allocation(warehouse)["target_weight"].sum())
    return dg.AssetCheckResult(
        passed=total <= cap + _TOL,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"cap": dg.MetadataValue.float(cap), "total_exposure": dg.MetadataValue.float(total)},
    )


@dg.asset_check(asset="trading_signals", blocking=True)
def no_signals_while_halted(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No signal was emitted in a bucket where a loss limit or the circuit breaker was tripped."""
    bad = warehouse.get().read_frame(
        """
        SELECT s.market_id, s.bucket_ts, r.state, r.reason
        FROM trading_signals s JOIN risk_state r ON r.bucket_ts = s.bucket_ts
        WHERE r.state <> 'ok'
        """
    )
    breaker = int((bad["state"] == "circuit_breaker").sum()) if not bad.empty else 0
    return dg.AssetCheckResult(
        passed=bad.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "signals_while_halted": dg.MetadataValue.int(len(bad)),
            "signals_while_circuit_breaker": dg.MetadataValue.int(breaker),
            "violations": dg.MetadataValue.md(markdown_table(bad)),
        },
    )


@dg.asset_check(asset="hype_price_correlations", blocking=False)
def correlation_sample_size(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
    """Warns about markets whose correlation rests on fewer than research.corr_min_samples buckets."""
    minimum = settings.get().research.corr_min_samples
    few = warehouse.get().read_frame(
        "SELECT market_id, n_samples FROM hype_price_correlations WHERE n_samples < :m ORDER BY n_samples",
        {"m": minimum},
    )
    return dg.AssetCheckResult(
        passed=few.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "min_samples": dg.MetadataValue.int(minimum),
            "markets_below": dg.MetadataValue.int(len(few)),
            "markets": dg.MetadataValue.md(markdown_table(few)),
        },
    )


RESEARCH_CHECKS = [
    position_cap,
    category_cap,
    total_exposure_cap,
    no_signals_while_halted,
    correlation_sample_size,
]

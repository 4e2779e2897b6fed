"""Warehouse tables documented in the Dagster UI: each asset that writes a table carries its columns.

``ASSET_TABLES`` maps an asset key to the warehouse tables it writes, its own table first. The
first table becomes the asset's ``dagster/column_schema`` (names, types and the column comments
of warehouse/schema.py) and ``dagster/table_name``; further tables it also writes (ingestion_runs,
backtest_trades, ...) are attached as ``table_schema/<table>`` entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa

from kaizen_pipeline.kaizen.reports import CADENCES
from kaizen_pipeline.warehouse.schema import metadata

INGEST_RUN_TABLES = ("ingestion_runs", "rejected_records")

ASSET_TABLES: Mapping[str, tuple[str, ...]] = {
    # ingest: every collection also records its run and quarantines bad records
    "polymarket_markets": ("market_snapshots", "market_outcomes", *INGEST_RUN_TABLES),
    "market_prices": ("price_points", *INGEST_RUN_TABLES),
    "trade_volumes": ("trade_volumes", *INGEST_RUN_TABLES),
    "tweets": ("tweets", "tweet_authors", "tweet_mentions", "x_search_state", *INGEST_RUN_TABLES),
    "order_books": ("order_book_snapshots", *INGEST_RUN_TABLES),
    "whale_trades": ("whale_trades", *INGEST_RUN_TABLES),
    # research
    "hype_scores": ("hype_scores",),
    "market_features": ("market_features",),
    "hype_price_correlations": ("hype_price_correlations",),
    "trading_signals": ("trading_signals", "hype_lead_estimates"),
    "signal_calibration": ("signal_calibration",),
    "risk_state": ("risk_state",),
    "portfolio_allocation": ("portfolio_allocation",),
    # backtest
    "backtest_results": ("backtest_results", "backtest_trades"),
    "monte_carlo": ("monte_carlo",),
    "stress_tests": ("stress_tests",),
    "sensitivity_analysis": ("sensitivity_analysis",),
    "walk_forward": ("walk_forward",),
    "parameter_tuning": ("parameter_tuning", "tuning_trials", "tuning_proposals"),
    "trade_journal": ("trade_journal",),
    "performance_attribution": ("performance_attribution",),
    # flags and experiments
    "feature_flags": ("feature_flags", "flag_changes", "flag_assignments"),
    "experiments": ("experiments", "decision_log", "loop_state"),
    "deployments": ("deployments", "deployment_steps"),
    "experiment_results": ("experiment_looks",),
    # kaizen
    "kaizen_metrics": ("kaizen_metrics",),
    "metric_trends": ("metric_trends",),
    "improvement_impact": ("improvement_impact",),
    "metric_forecasts": ("metric_forecasts", "metric_forecast_summary", "metric_anomalies"),
    "bottleneck": ("bottleneck",),
    "learning_velocity": ("learning_velocity",),
    "recommendations": ("recommendations",),
    "resource_plan": ("resource_plan",),
    "feedback_summary": ("feedback_summary",),
    **{f"kaizen_{cadence}_report": ("kaizen_reports",) for cadence in CADENCES},
    # ops
    "health_report": ("health_report",),
    "database_backup": ("database_backup",),
    "warehouse_maintenance": ("warehouse_maintenance",),
    "alert_history": ("alert_history",),
    "daily_ops_summary": ("daily_ops_summary",),
}


def table_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns with their SQL types, nullability and schema.py comments, and its primary key."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=str(c.type),
                description=c.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(c.nullable)),
            )
            for c in table.columns
        ],
        constraints=dg.TableConstraints(
            other=[f"primary key ({', '.join(c.name for c in table.primary_key.columns)})"]
        ),
    )


def table_metadata(tables: tuple[str, ...]) -> dict[str, object]:
    """``dagster/column_schema`` and ``dagster/table_name`` of the first table, schemas of the others."""
    own, *others = (metadata.tables[name] for name in tables)
    meta: dict[str, object] = {
        "dagster/column_schema": table_schema(own),
        "dagster/table_name": own.name,
    }
    for table in others:
        meta[f"table_schema/{table.name}"] = dg.MetadataValue.table_schema(table_schema(table))
    return meta


def _document(spec: dg.AssetSpec) -> dg.AssetSpec:
    tables = ASSET_TABLES.get(spec.key.to_user_string())
    return spec.merge_attributes(metadata=table_metadata(tables)) if tables else spec


def document_tables(assets: Iterable[Any]) -> list[Any]:
    """The assets, each one in ``ASSET_TABLES`` with the columns of the tables it writes in its metadata."""
    return list(dg.map_asset_specs(_document, assets))

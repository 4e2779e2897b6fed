"""End to end on a real ephemeral Dagster instance: simulated days of metrics, a logged improvement, its impact."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.kaizen.assets import ANALYSIS_ASSETS, REPORT_ASSETS, kaizen_metrics
from kaizen_pipeline.kaizen.defs import build_defs
from kaizen_pipeline.partitions import day_key, range_tags
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

DAYS = 14
SHIP_DAY = 7  # days 0..6 before shipping, 7..13 after


def _ingestion_rows(now: datetime) -> tuple[list[dict], pd.DataFrame]:
    """One ingestion run per simulated UTC day (the last is today, before ``now``): 1000 API calls, error
    rate ~5% before shipping, ~2% after."""
    rng = np.random.default_rng(3)
    rows, truth = [], []
    today = now.replace(hour=0, minute=0, second=0)
    for k in range(DAYS):
        # halfway to now's time of day: inside day k's partition, and before now on today's
        finished = today - timedelta(days=DAYS - 1 - k) + (now - today) / 2
        base = 50 if k < SHIP_DAY else 20
        errors = int(base + rng.integers(-3, 4))
        retries = int(70 + rng.integers(-5, 6))
        rows.append(
            {"run_id": f"sim-{k}", "asset": "market_prices", "source": "demo", "started_at": finished - timedelta(minutes=5),
             "finished_at": finished, "status": "degraded" if k == 3 else "success", "api_calls": 1000,
             "retries": retries, "errors": errors, "rate_limited": 0, "rows_written": 100, "new_rows": 100,
             "rejects": 0, "degraded": k == 3, "degraded_reason": "simulated" if k == 3 else None}
        )  # fmt: skip
        truth.append({"k": k, "error_rate": errors / 1000, "retry_rate": retries / 1000})
    return rows, pd.DataFrame(truth)


def test_simulated_days_logged_improvement_and_measured_impact(
    kaizen_settings: Settings, warehouse: Warehouse, resources: dict
) -> None:
    settings = kaizen_settings
    instance = dg.DagsterInstance.ephemeral()
    now = pipeline_now(settings).replace(microsecond=0)
    rows, truth = _ingestion_rows(now)
    warehouse.upsert("ingestion_runs", rows)

    # The earlier days in one single-run range backfill, then day by day like the daily schedule.
    first = dg.materialize(
        [kaizen_metrics], instance=instance, resources=resources,
        tags=range_tags(day_key(now - timedelta(days=DAYS - 1)), day_key(now - timedelta(days=2))),
    )  # fmt: skip
    assert first.success
    for back in (1, 0):
        result = dg.materialize(
            [kaizen_metrics], instance=instance, resources=resources, partition_key=day_key(now - timedelta(days=back))
        )  # fmt: skip
        assert result.success

    history = warehouse.read_frame(
        "SELECT metric, ts, value FROM kaizen_metrics WHERE scope = '*' AND metric = 'api_error_rate' ORDER BY ts",
        parse_dates=["ts"],
    )
    assert len(history) == DAYS
    np.testing.assert_allclose(history["value"].to_numpy(), truth["error_rate"].to_numpy())

    # Log the improvement through the job the launchpad offers.
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(resources=resources))
    ship_time = history["ts"].iloc[SHIP_DAY].to_pydatetime()
    logged = defs.resolve_job_def("log_improvement").execute_in_process(
        instance=instance,
        run_config={"ops": {"record_improvement": {"config": {
            "title": "Raise the retry budget", "target_metric": "api_error_rate", "predicted_effect": -0.02,
            "cost_hours": 1.0, "cost_money": 20.0, "status": "shipped", "shipped_at": ship_time.isoformat(),
        }}}},
    )  # fmt: skip
    assert logged.success

    result = dg.materialize(
        [kaizen_metrics, *ANALYSIS_ASSETS, REPORT_ASSETS["daily"], REPORT_ASSETS["weekly"]],
        instance=instance,
        resources=resources,
        selection=dg.AssetSelection.assets(*ANALYSIS_ASSETS, REPORT_ASSETS["daily"], REPORT_ASSETS["weekly"]),
    )
    assert result.success

    impact = warehouse.read_frame("SELECT * FROM improvement_impact")
    assert len(impact) == 1
    row = impact.iloc[0]
    before = truth["error_rate"].iloc[:SHIP_DAY]
    after = truth["error_rate"].iloc[SHIP_DAY:]
    actual = after.mean() - before.mean()
    assert row["verdict"] == "improved"
    assert row["actual_effect"] == pytest.approx(actual)
    assert row["ci_low"] < actual < row["ci_high"] < 0
    value = -actual * 5000  # api_error_rate is worth 5000 USD per unit of reduction by default
    cost = 1.0 * 100 + 20.0
    assert row["value_usd"] == pytest.approx(value)
    assert row["roi"] == pytest.approx((value - cost) / cost)
    assert row["error"] == pytest.approx(-0.02 - actual)
    assert row["abs_pct_error"] == pytest.approx(abs(-0.02 - actual) / abs(actual))

    mats = result.asset_materializations_for_node("improvement_impact")
    meta = mats[0].metadata
    assert meta["validated"].value == 1
    assert "raise_the_retry_budget" in meta["impacts"].value

    # The loop learned: the next recommendation for this metric is corrected by the measured bias.
    recs = warehouse.read_frame("SELECT * FROM recommendations")
    retry = recs[recs["catalogue_key"] == "raise_retry_budget"].iloc[0]
    bias = (0.02 - (-actual)) / 0.02  # over-promise relative to the prediction, in the better direction
    assert retry["bias_factor"] == pytest.approx(1 - bias)
    assert retry["corrected_effect"] == pytest.approx(-0.01 * (1 - bias))

    # Forecasts with what-ifs, rolling-origin accuracy and a chart for the metrics closest to deviating.
    forecasts = warehouse.read_frame("SELECT * FROM metric_forecasts WHERE metric = 'api_error_rate'")
    assert (forecasts["scenario"] == "baseline").sum() == 14
    assert "whatif:raise_retry_budget" in set(forecasts["scenario"])
    summary = warehouse.read_frame("SELECT * FROM metric_forecast_summary WHERE metric = 'api_error_rate'")
    assert summary["mase"].iloc[0] > 0 and summary["n_points"].iloc[0] == DAYS
    chart = result.asset_materializations_for_node("metric_forecasts")[0].metadata["chart"].value
    assert "data:image/png;base64," in chart

    # Idempotent: the same cycle again changes no row counts (the bottleneck's step ranking grows with
    # the runs just made, but its day is replaced, not appended).
    counts = warehouse.table_row_counts()
    counts.pop("bottleneck")
    again = dg.materialize(
        [kaizen_metrics, *ANALYSIS_ASSETS, REPORT_ASSETS["daily"], REPORT_ASSETS["weekly"]],
        instance=instance,
        resources=resources,
        run_config={"ops": {"kaizen_metrics": {"config": {"as_of": now.isoformat()}}}},
    )
    assert again.success
    after = warehouse.table_row_counts()
    after.pop("bottleneck")
    assert after == counts
    assert warehouse.scalar("SELECT COUNT(DISTINCT as_of) FROM bottleneck") == 1

    report = warehouse.read_frame("SELECT * FROM kaizen_reports WHERE cadence = 'weekly'")
    assert len(report) == 1
    assert "## The constraint" in report["markdown"].iloc[0]
    velocity = warehouse.read_frame("SELECT * FROM learning_velocity")
    assert velocity["validated"].sum() == 1

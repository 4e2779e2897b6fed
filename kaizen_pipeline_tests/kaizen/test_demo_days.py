"""The whole loop on demo data: several replayed days of ingest, research and backtest feed the kaizen
metrics; an improvement logged through the job gets its measured impact, ROI and accuracy."""

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from kaizen_pipeline.backtest.assets import backtest_results
from kaizen_pipeline.ingest.assets import INGEST_ASSETS
from kaizen_pipeline.kaizen.assets import improvement_impact, kaizen_metrics
from kaizen_pipeline.kaizen.defs import build_defs
from kaizen_pipeline.research.assets import RESEARCH_ASSETS
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings

DAYS = 5
SHIP_DAY = 3  # shipped at the start of the fourth replayed day
FIRST_DAY = datetime(2026, 11, 16, 12, 5)
SMALL_DEMO = {
    "KAIZEN_DATA_COLLECTION__MAX_MARKETS": "6",
    "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "3",
    "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "2",
    "KAIZEN_KAIZEN__IMPACT_WINDOW_DAYS": "2",
    "KAIZEN_KAIZEN__IMPACT_MIN_POINTS": "2",
}


def replay_day(monkeypatch: pytest.MonkeyPatch, now: datetime) -> Settings:
    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", now.isoformat() + "Z")
    return load_settings()


@pytest.mark.slow
def test_replayed_demo_days_measure_a_logged_improvement(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SMALL_DEMO.items():
        monkeypatch.setenv(key, value)
    instance = dg.DagsterInstance.ephemeral()
    pipeline = [*INGEST_ASSETS, *RESEARCH_ASSETS, backtest_results, kaizen_metrics]
    for day in range(DAYS):
        now = FIRST_DAY + timedelta(days=day)
        settings = replay_day(monkeypatch, now)
        day_end = now.replace(hour=0, minute=0) + timedelta(
            days=1
        )  # the daily schedule measures the day just ended
        result = dg.materialize(
            pipeline,
            instance=instance,
            resources=build_resources(settings),
            run_config={"ops": {"kaizen_metrics": {"config": {"as_of": day_end.isoformat()}}}},
        )
        assert result.success

    wh = warehouse_for(settings.database.sqlalchemy_url())
    metrics = wh.read_frame(
        "SELECT metric, ts, value FROM kaizen_metrics WHERE scope = '*'", parse_dates=["ts"]
    )
    per_metric = metrics.groupby("metric")["ts"].nunique()
    for name in ("api_retry_rate", "api_error_rate", "degraded_runs", "backtest_max_drawdown"):
        assert per_metric.get(name) == DAYS, f"{name} was not recorded on every replayed day"
    # The first day has no signal history yet, so signal metrics start on the second day.
    for name in ("signals_per_day", "backtest_sharpe"):
        assert per_metric.get(name) >= DAYS - 1, f"{name} was not recorded on the replayed days"

    ship_time = FIRST_DAY.replace(hour=0, minute=0) + timedelta(days=SHIP_DAY)
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(resources=build_resources(settings)))
    logged = defs.resolve_job_def("log_improvement").execute_in_process(
        instance=instance,
        run_config={"ops": {"record_improvement": {"config": {
            "title": "Lower the RVR threshold", "target_metric": "signals_per_day", "predicted_effect": 2.0,
            "cost_hours": 2.0, "cost_money": 0.0, "status": "shipped", "shipped_at": ship_time.isoformat(),
        }}}},
    )  # fmt: skip
    assert logged.success
    measured = dg.materialize(
        [kaizen_metrics, improvement_impact],
        instance=instance,
        resources=build_resources(settings),
        selection=dg.AssetSelection.assets(improvement_impact),
    )
    assert measured.success

    impact = wh.read_frame("SELECT * FROM improvement_impact").iloc[0]
    signals = metrics[metrics["metric"] == "signals_per_day"].set_index("ts")["value"].sort_index()
    window = timedelta(days=settings.kaizen.impact_window_days)  # the days either side the impact compares
    before = signals[(signals.index >= ship_time - window) & (signals.index < ship_time)]
    after = signals[(signals.index >= ship_time) & (signals.index < ship_time + window)]
    assert len(before) >= 2 and len(after) >= 2
    actual = after.mean() - before.mean()
    assert impact["actual_effect"] == pytest.approx(actual)
    cost = 2.0 * settings.kaizen.hourly_rate_usd
    value_per_unit = next(m.value_per_unit for m in settings.kaizen.metrics if m.name == "signals_per_day")
    assert impact["roi"] == pytest.approx((actual * value_per_unit - cost) / cost)
    assert impact["error"] == pytest.approx(2.0 - actual)
    assert np.isfinite(impact["abs_pct_error"]) or actual == 0
    meta = measured.asset_materializations_for_node("improvement_impact")[0].metadata
    assert "lower_the_rvr_threshold" in meta["impacts"].value

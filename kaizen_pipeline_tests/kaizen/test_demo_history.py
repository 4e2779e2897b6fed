"""The demo kaizen history: what is planted in it is what the kaizen analyses recover, for every seed tried
(not one lucky draw), and seeding is idempotent and never overwrites a recorded reading."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.kaizen import demo_history as dh
from kaizen_pipeline.kaizen import loop, store
from kaizen_pipeline.kaizen.assets import (
    feedback_summary,
    improvement_impact,
    kaizen_metrics,
    metric_forecasts,
    metric_trends,
)
from kaizen_pipeline.kaizen.feedback import rating_trend
from kaizen_pipeline.partitions import day_key
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse

END = datetime(2026, 3, 1)
SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture
def seeded(tmp_path: Path, settings: Settings, request: pytest.FixtureRequest) -> tuple[Warehouse, Settings]:
    wh = Warehouse(f"sqlite:///{tmp_path / 'history.sqlite'}")
    dh.seed(wh, settings.kaizen, END, 90, request.param, END)
    yield wh, settings
    wh.dispose()


@pytest.mark.parametrize("seeded", SEEDS, indirect=True)
def test_trends_find_the_planted_slowdown_and_the_improvement(seeded: tuple[Warehouse, Settings]) -> None:
    wh, settings = seeded
    trends = loop.compute_trends(wh, settings).frame.set_index("metric")
    duration = trends.loc[dh.TREND_METRIC]
    assert duration["verdict"] == "worsening" and duration["n_points"] == 90
    assert duration["slope_per_day"] == pytest.approx(dh.TREND_PER_DAY, rel=0.15)
    assert trends.loc[dh.SHIFT_METRIC, "verdict"] == "improving"
    flat = [
        m
        for m in ("run_success_rate", "backtest_sharpe", "signal_hit_rate")
        if trends.loc[m, "verdict"] != "flat"
    ]
    assert len(flat) <= 1  # no invented trends (alpha 0.05 on three flat series)


@pytest.mark.parametrize("seeded", SEEDS, indirect=True)
def test_impact_measures_the_shift_after_the_logged_improvement(seeded: tuple[Warehouse, Settings]) -> None:
    wh, settings = seeded
    impacts = loop.compute_impacts(wh, settings).frame.set_index("improvement_id")
    row = impacts.loc[dh.IMPROVEMENT_ID]
    assert row["verdict"] == "improved"
    assert row["ci_low"] <= dh.SHIFT <= row["ci_high"]  # the planted shift lies in its interval
    assert row["predicted_effect"] == dh.PREDICTED_EFFECT


@pytest.mark.parametrize("seeded", SEEDS[:3], indirect=True)
def test_forecasts_find_the_anomaly_day_and_the_weekly_season(seeded: tuple[Warehouse, Settings]) -> None:
    wh, settings = seeded
    result = loop.compute_forecasts(wh, settings)
    anomalies = result.anomalies
    errors = anomalies[anomalies["metric"] == dh.ANOMALY_METRIC]
    assert list(errors["ts"]) == [END - timedelta(days=dh.ANOMALY_DAYS_AGO)]  # that day, and only it
    models = result.frame.set_index("metric")["model"]
    assert "season(7)" in models[dh.SEASONAL_METRIC]
    assert set(result.frame["metric"]) == {m.name for m in settings.kaizen.metrics}  # all 12 forecast


@pytest.mark.parametrize("seeded", SEEDS, indirect=True)
def test_feedback_recovers_after_the_improvement(seeded: tuple[Warehouse, Settings]) -> None:
    wh, _ = seeded
    feedback = wh.read_frame("SELECT * FROM feedback", parse_dates=["submitted_at"])
    assert len(feedback) == 12
    shipped = END - timedelta(days=dh.SHIFT_DAYS_AGO)
    before = feedback[feedback["submitted_at"] < shipped]
    after = feedback[feedback["submitted_at"] >= shipped]
    assert after["rating"].mean() - before["rating"].mean() >= 0.5
    assert after["sentiment"].mean() > 0 > before["sentiment"].mean()  # the texts say so too
    trend = rating_trend(feedback)
    assert trend is not None and trend["slope_per_week"] > 0


def test_seeding_is_once_and_keeps_recorded_readings(warehouse: Warehouse, settings: Settings) -> None:
    recorded = {"metric": "run_success_rate", "scope": "*", "ts": END - timedelta(days=3), "value": 0.5,
                "sample_size": 3, "source": "dagster", "as_of": END - timedelta(days=2), "collected_at": END}  # fmt: skip
    warehouse.upsert("kaizen_metrics", [recorded])
    assert dh.seed(warehouse, settings.kaizen, END, 90, 7, END) == 90 * 12 - 1
    assert dh.seed(warehouse, settings.kaizen, END + timedelta(days=1), 90, 7, END) == 0  # once only
    history = store.metric_history(warehouse)
    kept = history[(history["metric"] == "run_success_rate") & (history["ts"] == END - timedelta(days=3))]
    assert list(kept["value"]) == [0.5]
    assert len(store.read_improvements(warehouse)) == 1
    assert dh.seed(warehouse, settings.kaizen, END, 0, 7, END) == 0


def test_after_the_demo_s_first_run_every_kaizen_analysis_has_content(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kaizen_metrics seeds the history in a demo, and the analyses downstream of it all produce rows."""
    monkeypatch.setenv("KAIZEN_DEMO__KAIZEN_HISTORY_DAYS", "90")
    settings = load_settings()
    now = pipeline_now(settings)
    assets = [kaizen_metrics, metric_trends, metric_forecasts, improvement_impact, feedback_summary]
    result = dg.materialize(
        assets,
        resources=build_resources(settings),
        partition_key=day_key(now),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    seeded = result.asset_materializations_for_node("kaizen_metrics")[0].metadata["demo_history_rows"].value
    assert seeded >= 90 * 11  # every metric but those the day itself recorded, 90 days each
    trends = warehouse.read_frame("SELECT metric, verdict FROM metric_trends")
    assert len(trends) == 12 and "worsening" in set(trends["verdict"])
    forecasts = warehouse.read_frame("SELECT DISTINCT metric FROM metric_forecasts")
    assert len(forecasts) == 12
    impact = warehouse.read_frame("SELECT improvement_id, verdict FROM improvement_impact")
    assert list(impact["improvement_id"]) == [dh.IMPROVEMENT_ID] and list(impact["verdict"]) == ["improved"]
    assert warehouse.count("feedback_summary") > 0

"""kaizen_metrics per UTC day partition on a frozen clock: one reading per metric and day, idempotent
re-runs, a single-run range equal to its days run one by one, and the daily schedule's day."""

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from kaizen_pipeline.kaizen.assets import kaizen_metrics, metric_window_ends
from kaizen_pipeline.kaizen.defs import build_defs
from kaizen_pipeline.partitions import range_tags
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings

NOW = datetime(2026, 11, 20, 12, 5)
DAYS = ["2026-11-17", "2026-11-18", "2026-11-19"]


def frozen(db: str) -> Settings:
    return load_settings(demo={"frozen_now": NOW.isoformat() + "Z"}, database={"path": db})


def ingestion_rows() -> list[dict]:
    """One ingestion run at 06:00 of each day, its error count the day of the month (a known value per day)."""
    rows = []
    for day in pd.date_range("2026-11-16", "2026-11-20"):
        finished = day.to_pydatetime() + timedelta(hours=6)
        rows.append(
            {"run_id": f"sim-{day:%d}", "asset": "market_prices", "source": "demo", "started_at": finished - timedelta(minutes=5),
             "finished_at": finished, "status": "success", "api_calls": 1000, "retries": 0, "errors": day.day,
             "rate_limited": 0, "rows_written": 1, "new_rows": 1, "rejects": 0, "degraded": False, "degraded_reason": None}
        )  # fmt: skip
    return rows


def readings(settings: Settings) -> pd.DataFrame:
    wh = warehouse_for(settings.database.sqlalchemy_url())
    frame = wh.read_frame("SELECT metric, scope, ts, value FROM kaizen_metrics", parse_dates=["ts"])
    return frame.sort_values(["metric", "scope", "ts"]).reset_index(drop=True)


def materialize(settings: Settings, **kwargs: object) -> dg.ExecuteInProcessResult:
    warehouse_for(settings.database.sqlalchemy_url()).upsert("ingestion_runs", ingestion_rows())
    result = dg.materialize(
        [kaizen_metrics],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )  # type: ignore[arg-type]
    assert result.success
    return result


def test_window_ends_stop_at_the_clock() -> None:
    window = (datetime(2026, 11, 19), datetime(2026, 11, 22))
    assert metric_window_ends(window, NOW) == [datetime(2026, 11, 20), NOW]


def test_each_partition_measures_its_day_and_a_rerun_adds_nothing(tmp_path) -> None:
    settings = frozen(str(tmp_path / "wh.sqlite"))
    result = materialize(settings, partition_key="2026-11-18")
    [event] = result.get_asset_materialization_events()
    assert event.materialization.partition == "2026-11-18"
    first = readings(settings)
    assert set(first["ts"]) == {pd.Timestamp("2026-11-18")}
    error_rate = first[(first["metric"] == "api_error_rate") & (first["scope"] == "*")]["value"]
    assert error_rate.tolist() == [pytest.approx(18 / 1000)]  # only the run of its own day
    materialize(settings, partition_key="2026-11-18")
    pd.testing.assert_frame_equal(readings(settings), first)


def test_a_range_is_one_run_equal_to_its_days(tmp_path) -> None:
    ranged = frozen(str(tmp_path / "ranged.sqlite"))
    result = materialize(ranged, tags=range_tags(DAYS[0], DAYS[-1]))
    assert sorted(e.materialization.partition for e in result.get_asset_materialization_events()) == DAYS
    daily = frozen(str(tmp_path / "daily.sqlite"))
    for key in DAYS:
        materialize(daily, partition_key=key)
    one, three = readings(ranged), readings(daily)
    assert set(one["ts"]) == {pd.Timestamp(d) for d in DAYS}
    # pipeline-health readings count this run's own instance: compare what the warehouse determines

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["metric"].isin(["api_error_rate", "api_retry_rate"])].reset_index(drop=True)

    pd.testing.assert_frame_equal(keep(one), keep(three))
    assert len(keep(one)) >= len(DAYS)


def test_daily_schedule_targets_the_day_the_frozen_clock_ended(tmp_path) -> None:
    settings = frozen(str(tmp_path / "wh.sqlite"))
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(resources=build_resources(settings)))
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def("kaizen_daily_schedule")
    tick = datetime(2026, 12, 4, 0, 0)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo) as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-19"

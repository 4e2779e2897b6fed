"""Dagster wiring: deviation checks (severity, metadata), the hourly check job, cadence schedules, the feedback job."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pytest

from kaizen_pipeline.kaizen.defs import build_defs
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse, utcnow


def _write(warehouse: Warehouse, values: dict[str, float], day: datetime = datetime(2026, 3, 9)) -> None:
    warehouse.upsert(
        "kaizen_metrics",
        [
            {"metric": m, "scope": "*", "ts": day, "value": v, "sample_size": 1, "source": "test", "as_of": day,
             "collected_at": utcnow()}
            for m, v in values.items()
        ],
    )  # fmt: skip


def _defs(settings: Settings, resources: dict) -> dg.Definitions:
    return dg.Definitions.merge(build_defs(settings), dg.Definitions(resources=resources))


def test_hourly_job_evaluates_one_check_per_metric_exactly_at_the_line(
    kaizen_settings: Settings, warehouse: Warehouse, resources: dict
) -> None:
    # run_success_rate (critical, higher): line 0.855, value just below; api_error_rate (warning, lower):
    # line 0.0222..., value on the line; signals_per_day: target met.
    _write(warehouse, {"run_success_rate": 0.8549, "api_error_rate": 0.02 / 0.9, "signals_per_day": 6})
    defs = _defs(kaizen_settings, resources)
    result = defs.resolve_job_def("metric_deviation_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == len(kaizen_settings.kaizen.metrics)

    failed = evaluations["run_success_rate_deviation"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in failed.metadata.items()}
    assert meta["value"] == 0.8549 and meta["target"] == 0.95 and meta["severity"] == "critical"
    assert meta["priority"] == "critical" and meta["deviation"] == pytest.approx((0.8549 - 0.95) / 0.95)

    on_line = evaluations["api_error_rate_deviation"]
    assert on_line.passed and on_line.severity == dg.AssetCheckSeverity.WARN
    assert evaluations["signals_per_day_deviation"].passed
    assert evaluations["backtest_sharpe_deviation"].passed
    assert evaluations["backtest_sharpe_deviation"].metadata["status"].value == "no value recorded yet"


def test_cadence_schedules_pass_their_tick_and_use_the_configured_timezone(
    kaizen_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIZEN_KAIZEN__TIMEZONE", "Europe/Berlin")
    defs = build_defs(load_settings())
    schedules = {s.name: s for s in defs.schedules}
    expected = {
        "kaizen_daily_schedule": "0 0 * * *",
        "kaizen_weekly_schedule": "0 0 * * 1",
        "kaizen_monthly_schedule": "0 0 1 * *",
        "kaizen_quarterly_schedule": "0 0 1 1,4,7,10 *",
        "kaizen_yearly_schedule": "0 0 1 1 *",
        "metric_deviation_schedule": "0 * * * *",
    }
    assert {n: s.cron_schedule for n, s in schedules.items()} == expected
    assert all(s.execution_timezone == "Europe/Berlin" for s in schedules.values())
    tick = datetime.fromisoformat("2026-04-01T00:00:00+02:00")
    repo = _defs(load_settings(), build_resources(load_settings())).get_repository_def()
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo) as context:
        data = schedules["kaizen_daily_schedule"].evaluate_tick(context)
    [request] = data.run_requests
    assert "kaizen_metrics" not in request.run_config["ops"]  # the partition says which day
    assert request.partition_key == "2026-03-30"  # the last UTC day ended by 00:00 Berlin (22:00 UTC)
    assert request.run_config["ops"]["kaizen_daily_report"]["config"]["as_of"] == tick.isoformat()


def test_feedback_job_stores_rating_and_sentiment(
    kaizen_settings: Settings, warehouse: Warehouse, resources: dict
) -> None:
    defs = _defs(kaizen_settings, resources)
    job = defs.resolve_job_def("submit_feedback")
    config = {
        "ops": {"record_feedback": {"config": {"rating": 2, "text": "The alerts are noisy and confusing"}}}
    }
    assert job.execute_in_process(run_config=config, instance=dg.DagsterInstance.ephemeral()).success
    row = warehouse.read_frame("SELECT * FROM feedback").iloc[0]
    assert row["rating"] == 2 and row["sentiment_label"] == "negative" and row["source"] == "job"
    bad = {"ops": {"record_feedback": {"config": {"rating": 7, "text": ""}}}}
    failed = job.execute_in_process(
        run_config=bad, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not failed.success
    assert "rating" in failed.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert warehouse.count("feedback") == 1


def test_unknown_metric_in_the_improvement_job_fails_with_the_field_name(
    kaizen_settings: Settings, resources: dict
) -> None:
    defs = _defs(kaizen_settings, resources)
    config = {
        "ops": {
            "record_improvement": {"config": {"title": "x", "target_metric": "nope", "predicted_effect": 1}}
        }
    }
    result = defs.resolve_job_def("log_improvement").execute_in_process(
        run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "target_metric: 'nope' is not a registered metric" in failure.event_specific_data.error.to_string()

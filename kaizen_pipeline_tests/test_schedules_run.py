"""After the quickstart's main_job, every schedule's job and every sensor (and its target jobs) runs once and succeeds.

The schedules and sensors are enumerated from the Definitions object, so a new one is covered
without editing this test.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.partitions import backfill_range, range_tags
from kaizen_pipeline.settings import load_settings


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Every failed step (with its error) and a failed run, as lines for the assertion message."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            # the user's exception is the innermost cause of Dagster's step-execution wrapper
            while (error.cause or error.context) is not None:
                error = error.cause or error.context
            lines.append(f"{event.step_key}: {error.cls_name}: {error.message.strip()[:500]}")
    if not result.success and not lines:
        lines.append("run failed")
    return lines


def _execute(
    repo: dg.RepositoryDefinition,
    instance: dg.DagsterInstance,
    job_name: str,
    run_config: dict | dg.RunConfig | None = None,
    tags: dict[str, str] | None = None,
) -> list[str]:
    job = repo.get_job(job_name)
    result = job.execute_in_process(
        run_config=run_config or {}, instance=instance, tags=tags or {}, raise_on_error=False
    )
    return _failures(result)


def _tick_sensors(
    defs: dg.Definitions, repo: dg.RepositoryDefinition, instance: dg.DagsterInstance, failures: dict
) -> None:
    """One tick of every sensor, then its run requests and its target jobs."""
    for sensor in repo.sensor_defs:
        # The UI's daemon binds the code location's resources; build_sensor_context does not by itself.
        context = dg.build_sensor_context(
            instance=instance,
            definitions=defs,
            sensor_name=sensor.name,
            resources=repo.get_top_level_resources(),
        )
        try:
            data = sensor.evaluate_tick(context)
        except Exception as exc:  # a failed tick is a failure like a failed run
            failures[f"sensor {sensor.name}"] = [f"{type(exc).__name__}: {exc}"]
            continue
        jobs = {t.job_name for t in sensor.targets} if sensor.has_jobs else set()
        for request in data.run_requests or []:
            name = request.job_name or (sensor.job_name if sensor.has_jobs else None)
            if name:
                jobs.discard(name)
                errors = _execute(repo, instance, name, request.run_config, dict(request.tags))
                if errors:
                    failures[f"sensor {sensor.name} -> {name}"] = errors
        for name in sorted(jobs):
            errors = _execute(repo, instance, name)
            if errors:
                failures[f"sensor {sensor.name} -> {name}"] = errors


@pytest.mark.slow
def test_every_schedule_and_sensor_job_succeeds_after_main_job() -> None:
    defs = build_defs(load_settings())
    repo = defs.get_repository_def()
    assert load_settings().source == "demo"
    assert repo.schedule_defs, "no schedules found: the enumeration is broken"
    with dg.DagsterInstance.ephemeral() as instance:
        # the quickstart's `kaizen backfill --days 30`: main_job over 30 daily partitions in one run
        settings = load_settings()
        days = backfill_range(pipeline_now(settings), 30, settings.data_collection.history_start)
        assert _execute(repo, instance, "main_job", tags=range_tags(*days)) == []
        failures: dict[str, list[str]] = {}
        # The sensors first: the alert sensor turns the demo's failing checks into alerts (never
        # emailed: no recipients), which the health and summary jobs' alert_history then stores.
        _tick_sensors(defs, repo, instance, failures)
        for schedule in repo.schedule_defs:
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime.now(UTC), repository_def=repo
            )
            data = schedule.evaluate_tick(context)
            requests = data.run_requests or []
            assert requests, f"schedule {schedule.name} requested no run: {data.skip_message}"
            for request in requests:
                errors = _execute(
                    repo,
                    instance,
                    request.job_name or schedule.job_name,
                    request.run_config,
                    dict(request.tags),
                )
                if errors:
                    failures[f"schedule {schedule.name} -> {schedule.job_name}"] = errors
        # And once more, now that the schedules' runs (and their checks) are on the instance.
        _tick_sensors(defs, repo, instance, failures)
    assert failures == {}

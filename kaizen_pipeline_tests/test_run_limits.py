"""Every job carries its maximum runtime from config (so UI, schedule and sensor runs do), retries only where safe."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from kaizen_pipeline.definitions import RETRY_SAFE_JOBS, build_defs
from kaizen_pipeline.settings import load_settings


def test_every_job_and_schedule_run_has_the_configured_max_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_OPS__MAX_RUNTIME_SECONDS", "900")
    repo = build_defs(load_settings()).get_repository_def()
    jobs = [j for j in repo.get_all_jobs() if not j.name.startswith("__")]
    assert {j.name: j.run_tags.get("dagster/max_runtime") for j in jobs} == {j.name: "900" for j in jobs}
    with dg.DagsterInstance.ephemeral() as instance:
        for schedule in repo.schedule_defs:
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime.now(UTC), repository_def=repo
            )
            for request in schedule.evaluate_tick(context).run_requests or []:
                tags = {**repo.get_job(schedule.job_name).run_tags, **request.tags}
                assert tags.get("dagster/max_runtime") == "900", schedule.name
    retried = {j.name for j in jobs if "dagster/max_retries" in j.run_tags}
    assert retried == set(RETRY_SAFE_JOBS)
    assert {"log_improvement", "submit_feedback", "database_backup_job"}.isdisjoint(retried)
    # the jobs' own tags survive
    assert repo.get_job("database_backup_job").run_tags["kaizen/alert_priority"] == "critical"
    assert repo.get_job("log_improvement").run_tags["kaizen"] == "input"


def test_each_job_runs_on_the_executor_it_chose_and_config_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """auto: backtest_job's studies in parallel processes, every other job in one process; the key wins."""
    defs = build_defs(load_settings())
    executors = {job.name: job.executor_def.name for job in defs.resolve_all_job_defs()}
    assert executors["backtest_job"] == "multiprocess"
    assert {executors[j] for j in ("main_job", "cycle_job", "ingest_job", "log_improvement")} == {
        "in_process"
    }
    monkeypatch.setenv("KAIZEN_EXECUTION__EXECUTOR", "multiprocess")
    monkeypatch.setenv("KAIZEN_EXECUTION__MAX_CONCURRENT_STEPS", "2")
    defs = build_defs(load_settings())
    jobs = [job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]  # not Dagster's own
    assert {job.executor_def.name for job in jobs} == {"multiprocess"}

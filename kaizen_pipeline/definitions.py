"""The one Definitions object: each domain's defs merged, resources from the settings."""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg

from kaizen_pipeline.backtest import defs as backtest_defs
from kaizen_pipeline.experiments import defs as experiments_defs
from kaizen_pipeline.flags import defs as flags_defs
from kaizen_pipeline.ingest import defs as ingest_defs
from kaizen_pipeline.kaizen import defs as kaizen_defs
from kaizen_pipeline.ops import defs as ops_defs
from kaizen_pipeline.ops.executors import celery_executor_config
from kaizen_pipeline.research import defs as research_defs
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import ConfigError, Settings, get_settings
from kaizen_pipeline.table_docs import document_tables

DOMAINS = (ingest_defs, research_defs, backtest_defs, kaizen_defs, flags_defs, experiments_defs, ops_defs)

main_job = dg.define_asset_job(
    "main_job",
    # parameter_tuning (Optuna studies, minutes) runs on its own weekly schedule, parameter_tuning_job
    selection=dg.AssetSelection.groups("ingest", "research", "backtest", "kaizen", "flags", "experiments")
    - dg.AssetSelection.assets("parameter_tuning"),
    description="The whole pipeline: ingest, research, backtests, the kaizen cycle and its experiments, with their checks.",
)


# Jobs whose steps run in other processes: backtest_job's analyses are independent and CPU-bound, so
# two cores run two at once. Every other job runs in one process: its steps are seconds long or wait
# on the network, and a process per step (start-up and imports: 60% of main_job's wall time when
# measured) costs more than running steps side by side saves.
MULTIPROCESS_JOBS = frozenset({"backtest_job"})


def job_executor(job_name: str, settings: Settings) -> dg.ExecutorDefinition | None:
    """The executor of ``job_name``: config execution.executor, or each job's own choice (auto)."""
    choice = settings.execution.executor
    if choice == "auto":
        choice = "multiprocess" if job_name in MULTIPROCESS_JOBS else "in_process"
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "celery":
        return celery_executor_def(settings)
    limit = settings.execution.max_concurrent_steps
    return (
        dg.multiprocess_executor.configured({"max_concurrent": limit}) if limit else dg.multiprocess_executor
    )


def celery_executor_def(settings: Settings) -> dg.ExecutorDefinition:
    """dagster-celery's ``celery_executor`` configured from ``settings.execution`` (execution.executor: celery)."""
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ConfigError(
            'execution.executor: celery needs the celery extra: pip install -e ".[celery]" '
            f"(dagster-celery could not be imported: {exc})"
        ) from None
    return celery_executor.configured(celery_executor_config(settings), name="celery")


MAX_RUNTIME_TAG = "dagster/max_runtime"
MAX_RETRIES_TAG = "dagster/max_retries"
# Jobs whose rerun after a crashed or timed-out run is harmless: idempotent upserts, recomputed
# tables, checks. dagster.yaml retries crashes only (retry_on_asset_or_op_failure: false). Not the
# launchpad jobs that record user input, nor the backup (a failure there must alert, not repeat).
RETRY_SAFE_JOBS = frozenset(
    {
        "ingest_job",
        "ops_health_job",
        "metric_deviation_job",
        "daily_ops_summary_job",
        "warehouse_maintenance_job",
    }
)


def run_limit_tags(job_name: str, settings: Settings) -> dict[str, str]:
    """Tags every run of ``job_name`` carries: ops.max_runtime_seconds, and one retry when safe."""
    tags = {MAX_RUNTIME_TAG: str(settings.ops.max_runtime_seconds)}
    if job_name in RETRY_SAFE_JOBS:
        tags[MAX_RETRIES_TAG] = "1"
    return tags


def _tagged(job: Any, settings: Settings) -> Any:
    """The job with the run-limit tags (its own tags win)."""
    tags = {**run_limit_tags(job.name, settings), **job.tags}
    executor = job_executor(job.name, settings)
    if isinstance(job, dg.JobDefinition):
        # the launchpad jobs: plain op graphs, their resources are bound by the Definitions
        return job.graph.to_job(name=job.name, description=job.description, tags=tags, executor_def=executor)
    return dg.define_asset_job(
        job.name,
        selection=job.selection,
        config=job.config,
        description=job.description,
        tags=tags,
        run_tags=None if job.run_tags is None else {**run_limit_tags(job.name, settings), **job.run_tags},
        metadata=job.metadata,
        partitions_def=job.partitions_def,
        executor_def=executor,
        hooks=job.hooks,
        op_retry_policy=job.op_retry_policy,
    )


def with_run_limits(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """Every job tagged with its run limits, and the schedules and sensors retargeted at the tagged jobs.

    Dagster has no instance-wide per-job tags, so they go on the job definitions: runs launched
    from the UI, a schedule or a sensor all carry them.
    """
    jobs = {job.name: _tagged(job, settings) for job in defs.jobs or []}
    schedules = [
        s.with_updated_job(jobs[s.job_name]) if s.job_name in jobs else s for s in defs.schedules or []
    ]
    with warnings.catch_warnings():
        # Dagster copies every field, its beta `owners` too, and warns once per retargeted sensor
        warnings.simplefilter("ignore", dg.BetaWarning)
        sensors = [
            s.with_updated_jobs([jobs.get(j.name, j) for j in s.jobs]) if s.has_jobs else s
            for s in defs.sensors or []
        ]
    return rebuilt(defs, jobs=list(jobs.values()), schedules=schedules, sensors=sensors)


def rebuilt(defs: dg.Definitions, **changes: Any) -> dg.Definitions:
    """A copy of ``defs`` with some of its fields replaced."""
    fields = dict(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=defs.resources,
        loggers=defs.loggers,
        executor=defs.executor,
        metadata=defs.metadata,
    )
    return dg.Definitions(**(fields | changes))


def with_table_docs(defs: dg.Definitions) -> dg.Definitions:
    """Every asset that writes warehouse tables documents their columns (see kaizen_pipeline.table_docs)."""
    return rebuilt(defs, assets=document_tables(defs.assets or []))


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """Merge every domain's definitions and bind the shared resources (settings validated first).

    Without ``settings`` (the code location) runs read config.yaml and the environment when they
    start; with them (tests, benches) every run gets exactly those settings.
    """
    pinned = settings is not None
    settings = settings or get_settings()
    merged = dg.Definitions.merge(*(domain.build_defs(settings) for domain in DOMAINS))
    merged = dg.Definitions.merge(
        merged, dg.Definitions(jobs=[main_job], resources=build_resources(settings, pinned=pinned))
    )
    return with_run_limits(with_table_docs(merged), settings)


defs = build_defs()

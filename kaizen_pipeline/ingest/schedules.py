"""The ingest job, the 15-minute cycle job, and the schedule that runs the cycle (every
data_collection.frequency_minutes; data_collection.schedules_running)."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from kaizen_pipeline.clock import as_naive_utc, pipeline_now
from kaizen_pipeline.partitions import day_key
from kaizen_pipeline.settings import Settings

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Collect Polymarket markets, prices, trade volume and X posts, then run the data-quality checks.",
)


cycle_job = dg.define_asset_job(
    "cycle_job",
    selection=dg.AssetSelection.groups("ingest", "research"),
    description="The 15-minute cycle: ingest, then hype, features, correlations, signals with the risk "
    "gate, calibration and sizing, with their checks.",
)


def frequency_cron(minutes: int, key: str = "data_collection.frequency_minutes") -> str:
    """Cron expression firing every ``minutes`` minutes, aligned to the hour or the day.

    ``key`` names the config key in the error when the period has no cron form.
    """
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *" if minutes < 1440 else "0 0 * * *"
    raise ValueError(f"{key}={minutes} has no cron form: use a divisor of 60, or whole hours dividing 24")


def schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    """Default status of every schedule: data_collection.schedules_running (empty: on live, off in a demo)."""
    return dg.DefaultScheduleStatus.RUNNING if settings.schedules_on else dg.DefaultScheduleStatus.STOPPED


def sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    """Default status of every sensor: data_collection.schedules_running (empty: on live, off in a demo)."""
    return dg.DefaultSensorStatus.RUNNING if settings.schedules_on else dg.DefaultSensorStatus.STOPPED


def schedule_now(settings: Settings, tick: datetime) -> datetime:
    """Naive-UTC 'now' of a tick: the frozen demo clock when set (demo.frozen_now), else the tick's time,
    so a late tick still files its run under the day it was due."""
    frozen = settings.source == "demo" and settings.demo.frozen_now is not None
    return pipeline_now(settings) if frozen else as_naive_utc(tick)


def build_ingest_schedule(settings: Settings) -> dg.ScheduleDefinition:
    def today(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        # the day partition of the pipeline clock: a frozen demo clock keeps filling its own day
        return dg.RunRequest(partition_key=day_key(schedule_now(settings, context.scheduled_execution_time)))

    return dg.ScheduleDefinition(
        name="ingest_schedule",
        job=cycle_job,
        cron_schedule=frequency_cron(settings.data_collection.frequency_minutes),
        execution_fn=today,
        default_status=schedule_status(settings),
        description="Runs the cycle (ingest, then research: signals, risk, sizing) every "
        "data_collection.frequency_minutes into today's daily partition (demo.frozen_now's day when set); starts as data_collection.schedules_running says (empty: on live, off in a demo).",
    )

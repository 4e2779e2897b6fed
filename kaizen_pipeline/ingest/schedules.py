"""The ingest job and its schedule (every data_collection.frequency_minutes; data_collection.schedules_running)."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.settings import Settings

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Collect Polymarket markets, prices, trade volume and X posts, then run the data-quality checks.",
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
    """Default status of every schedule that runs by default: config data_collection.schedules_running."""
    running = settings.data_collection.schedules_running
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    """Default status of every sensor that runs by default: config data_collection.schedules_running."""
    running = settings.data_collection.schedules_running
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def build_ingest_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="ingest_schedule",
        job=ingest_job,
        cron_schedule=frequency_cron(settings.data_collection.frequency_minutes),
        default_status=schedule_status(settings),
        description="Runs ingestion every data_collection.frequency_minutes; "
        "on unless data_collection.schedules_running is false.",
    )

"""Kaizen cadence: hourly deviation checks; daily, weekly, monthly, quarterly and yearly cycles.

Times are in kaizen.timezone; every schedule starts as data_collection.schedules_running says (empty: on live, off in a demo).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from kaizen_pipeline.ingest.schedules import schedule_now, schedule_status
from kaizen_pipeline.kaizen.reports import CADENCES
from kaizen_pipeline.partitions import day_key
from kaizen_pipeline.settings import Settings

_CONFIG_NOTE = "Times in kaizen.timezone; starts as data_collection.schedules_running says (empty: on live, off in a demo)."

CRONS: dict[str, str] = {
    "daily": "0 0 * * *",  # 00:00 every day
    "weekly": "0 0 * * 1",  # Monday 00:00
    "monthly": "0 0 1 * *",  # 1st of the month 00:00
    "quarterly": "0 0 1 1,4,7,10 *",  # 1st of each quarter 00:00
    "yearly": "0 0 1 1 *",  # 1 January 00:00
}
DESCRIPTIONS: dict[str, str] = {
    "daily": "Collects the day's kaizen metrics at 00:00 and runs the kaizen cycle and daily report.",
    "weekly": "Monday 00:00: weekly analysis (trends, forecasts, constraint, impacts) and its report.",
    "monthly": "1st of the month 00:00: monthly review of improvements, ROI, feedback and the resource plan.",
    "quarterly": "1st of each quarter 00:00: quarterly strategy report (constraint history, return by metric).",
    "yearly": "1 January 00:00: yearly planning report (targets review, learning velocity).",
}


def cadence_schedule(cadence: str, job: Any, settings: Settings) -> dg.ScheduleDefinition:
    """The tick's time becomes the report's as_of, so a late tick reports the right period; the daily
    run measures the kaizen_metrics partition of the last UTC day ended by the tick (demo.frozen_now's clock when set)."""
    report = f"kaizen_{cadence}_report"

    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = context.scheduled_execution_time
        config = dg.RunConfig(ops={report: {"config": {"as_of": tick.isoformat()}}})
        if cadence != "daily":
            return dg.RunRequest(run_config=config)
        # 00:00 in kaizen.timezone may fall inside a UTC day: the day before the tick's UTC day has ended
        ended = day_key(schedule_now(settings, tick) - timedelta(days=1))
        return dg.RunRequest(run_config=config, partition_key=ended)

    return dg.ScheduleDefinition(
        name=f"kaizen_{cadence}_schedule",
        cron_schedule=CRONS[cadence],
        job=job,
        execution_fn=request,
        execution_timezone=settings.kaizen.timezone,
        default_status=schedule_status(settings),
        description=f"{DESCRIPTIONS[cadence]} {_CONFIG_NOTE}",
    )


def deviation_schedule(job: Any, settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="metric_deviation_schedule",
        cron_schedule="0 * * * *",
        job=job,
        execution_timezone=settings.kaizen.timezone,
        default_status=schedule_status(settings),
        description="Evaluates the metric-deviation checks every hour (failed checks become alert emails via ops). "
        + _CONFIG_NOTE,
    )


__all__ = ["CADENCES", "CRONS", "cadence_schedule", "deviation_schedule"]

"""Ops jobs and schedules: health every few minutes, backups, weekly maintenance, the daily summary.

Every schedule starts as data_collection.schedules_running says (empty: on live, off in a demo).
"""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.ingest.schedules import frequency_cron, schedule_status
from kaizen_pipeline.instance import ALERT_PRIORITY_TAG
from kaizen_pipeline.settings import Settings

ops_health_job = dg.define_asset_job(
    "ops_health_job",
    selection=["health_report", "alert_history"],
    description="Health probes and their checks, then the alert_history table.",
)
database_backup_job = dg.define_asset_job(
    "database_backup_job",
    selection=["database_backup"],
    description="Verified warehouse backup with retention (a failure alerts as critical).",
    tags={ALERT_PRIORITY_TAG: "critical"},
)
warehouse_maintenance_job = dg.define_asset_job(
    "warehouse_maintenance_job",
    selection=["warehouse_maintenance"],
    description="Weekly VACUUM/ANALYZE of the warehouse.",
)
daily_ops_summary_job = dg.define_asset_job(
    "daily_ops_summary_job",
    selection=["daily_ops_summary", "alert_history"],
    description="Daily operations summary (runs, failures, alerts, data volume).",
)
OPS_JOBS = [ops_health_job, database_backup_job, warehouse_maintenance_job, daily_ops_summary_job]


def hours_cron(hours: int, minute: int = 15) -> str:
    """Cron for 'every N hours' at ``minute`` past (whole days when N is a multiple of 24)."""
    if hours % 24 == 0:
        days = hours // 24
        return f"{minute} 2 * * *" if days == 1 else f"{minute} 2 */{days} * *"
    step = max(d for d in range(1, hours + 1) if 24 % d == 0)
    return f"{minute} * * * *" if step == 1 else f"{minute} */{step} * * *"


def build_ops_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    status = schedule_status(settings)
    on = " Starts as data_collection.schedules_running says (empty: on live, off in a demo)."
    return [
        dg.ScheduleDefinition(
            name="ops_health_schedule",
            job=ops_health_job,
            cron_schedule=frequency_cron(settings.ops.health_interval_minutes, "ops.health_interval_minutes"),
            execution_timezone="UTC",
            default_status=status,
            description=f"health_report every {settings.ops.health_interval_minutes} minutes (ops.health_interval_minutes)."
            + on,
        ),
        dg.ScheduleDefinition(
            name="database_backup_schedule",
            job=database_backup_job,
            cron_schedule=hours_cron(settings.database.backup_interval_hours),
            execution_timezone="UTC",
            default_status=status,
            description=f"Verified backup every {settings.database.backup_interval_hours} h (database.backup_interval_hours)."
            + on,
        ),
        dg.ScheduleDefinition(
            name="warehouse_maintenance_schedule",
            job=warehouse_maintenance_job,
            cron_schedule=settings.ops.maintenance_cron,
            execution_timezone="UTC",
            default_status=status,
            description="Weekly VACUUM/ANALYZE (ops.maintenance_cron)." + on,
        ),
        dg.ScheduleDefinition(
            name="daily_ops_summary_schedule",
            job=daily_ops_summary_job,
            cron_schedule=settings.ops.daily_summary_cron,
            execution_timezone="UTC",
            default_status=status,
            description="Daily operations summary (ops.daily_summary_cron)." + on,
        ),
    ]

"""Jobs and schedules of the backtest domain beyond main_job: the weekly parameter tuning."""

import dagster as dg

from kaizen_pipeline.backtest.assets import parameter_tuning
from kaizen_pipeline.ingest.schedules import schedule_status
from kaizen_pipeline.settings import Settings

parameter_tuning_job = dg.define_asset_job(
    "parameter_tuning_job",
    selection=dg.AssetSelection.assets(parameter_tuning),
    description="Optuna tuning of the signal parameters per category and market (weekly; not in main_job: slow).",
)


def parameter_tuning_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Sunday 22:00 UTC, so Monday's kaizen cycle ranks fresh proposals; on as data_collection.schedules_running says."""
    return dg.ScheduleDefinition(
        name="parameter_tuning_schedule",
        cron_schedule="0 22 * * 0",
        job=parameter_tuning_job,
        execution_timezone="UTC",
        default_status=schedule_status(settings),
        description="Sunday 22:00 UTC: tune the signal parameters (backtest.tuning) on the newest data. "
        "Starts as data_collection.schedules_running says (empty: on live, off in a demo).",
    )

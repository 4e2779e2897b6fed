"""Dagster definitions of the backtest domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.backtest.assets import BACKTEST_ASSETS, TUNING_ASSETS, backtest_job
from kaizen_pipeline.backtest.schedules import parameter_tuning_job, parameter_tuning_schedule
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*BACKTEST_ASSETS, *TUNING_ASSETS],
        jobs=[backtest_job, parameter_tuning_job],
        schedules=[parameter_tuning_schedule(settings)],
    )

"""Dagster definitions of the backtest domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.backtest.assets import BACKTEST_ASSETS, backtest_job
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=BACKTEST_ASSETS, jobs=[backtest_job])

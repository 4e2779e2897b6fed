"""Dagster definitions of the ingest domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.ingest.assets import INGEST_ASSETS
from kaizen_pipeline.ingest.checks import INGEST_CHECKS
from kaizen_pipeline.ingest.schedules import build_ingest_schedule, cycle_job, ingest_job
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=INGEST_ASSETS,
        asset_checks=INGEST_CHECKS,
        jobs=[ingest_job, cycle_job],
        schedules=[build_ingest_schedule(settings)],
    )

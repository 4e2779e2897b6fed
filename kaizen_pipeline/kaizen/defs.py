"""Dagster definitions of the kaizen domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.kaizen.assets import ANALYSIS_ASSETS, REPORT_ASSETS, kaizen_metrics
from kaizen_pipeline.kaizen.checks import build_deviation_checks
from kaizen_pipeline.kaizen.jobs import cadence_job, log_improvement, submit_feedback
from kaizen_pipeline.kaizen.reports import CADENCES
from kaizen_pipeline.kaizen.schedules import cadence_schedule, deviation_schedule
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    ks = settings.kaizen
    checks = build_deviation_checks(ks)
    deviation_job = dg.define_asset_job(
        "metric_deviation_job",
        selection=dg.AssetSelection.checks(checks),
        description="Evaluate every metric-deviation check against the newest kaizen_metrics values.",
    )
    jobs = {cadence: cadence_job(cadence) for cadence in CADENCES}
    return dg.Definitions(
        assets=[kaizen_metrics, *ANALYSIS_ASSETS, *REPORT_ASSETS.values()],
        asset_checks=[checks],
        jobs=[log_improvement, submit_feedback, deviation_job, *jobs.values()],
        schedules=[
            deviation_schedule(deviation_job, settings),
            *(cadence_schedule(c, jobs[c], settings) for c in CADENCES),
        ],
    )

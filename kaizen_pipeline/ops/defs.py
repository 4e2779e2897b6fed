"""Dagster definitions of the ops domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.ops.assets import OPS_ASSETS
from kaizen_pipeline.ops.schedules import OPS_JOBS, build_ops_schedules
from kaizen_pipeline.ops.sensors import build_alert_sensor
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=OPS_ASSETS,
        jobs=OPS_JOBS,
        schedules=build_ops_schedules(settings),
        sensors=[build_alert_sensor(settings)],
    )

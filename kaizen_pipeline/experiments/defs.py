"""Dagster definitions of the experiments domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.experiments.assets import EXPERIMENT_ASSETS
from kaizen_pipeline.experiments.sensors import build_experiment_sensor, build_rollout_sensor, experiments_job
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=EXPERIMENT_ASSETS,
        jobs=[experiments_job],
        sensors=[build_experiment_sensor(settings), build_rollout_sensor(settings)],
    )

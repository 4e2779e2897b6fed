"""experiment_sensor and rollout_sensor: request a look when a running experiment or a ramping rollout is due."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dagster as dg

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.experiments.runner import due_for_look
from kaizen_pipeline.ingest.schedules import sensor_status
from kaizen_pipeline.loop.runner import rollouts_due
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

experiments_job = dg.define_asset_job(
    "experiments_job",
    selection=dg.AssetSelection.groups("research", "flags", "experiments"),
    description="Recompute signals under each unit's flag variant, draft and start experiments, and look at the running ones.",
)


def _look_sensor(
    settings: Settings,
    *,
    name: str,
    due: Callable[[Warehouse, Settings, datetime], bool],
    nothing_due: str,
    description: str,
) -> dg.SensorDefinition:
    """A sensor running experiments_job when ``due``; its default status follows data_collection.schedules_running."""

    @dg.sensor(
        name=name,
        job=experiments_job,
        minimum_interval_seconds=600,
        default_status=sensor_status(settings),
        description=description,
    )
    def look_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource, settings: SettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        """Requests a look every experiments.look_interval_hours while something is due (see description)."""
        current = settings.get()
        now = pipeline_now(current)
        if not due(warehouse.get(), current, now):
            return dg.SkipReason(nothing_due)
        bucket = int(now.timestamp() // (current.experiments.look_interval_hours * 3600))
        return dg.RunRequest(run_key=f"{name}-look-{bucket}")

    return look_sensor


def build_experiment_sensor(settings: Settings) -> dg.SensorDefinition:
    """experiment_sensor: a look at the running experiments."""
    return _look_sensor(
        settings, name="experiment_sensor", due=due_for_look, nothing_due="no running experiment is due for a look",
        description="Runs experiments_job when a running experiment's last look is older than "
        "experiments.look_interval_hours; starts as data_collection.schedules_running says (empty: on live, off in a demo).",
    )  # fmt: skip


def build_rollout_sensor(settings: Settings) -> dg.SensorDefinition:
    """rollout_sensor: a look at the ramping rollouts."""
    return _look_sensor(
        settings, name="rollout_sensor", due=rollouts_due, nothing_due="no ramping rollout is due for a look",
        description="Runs experiments_job when a ramping rollout's last look is older than "
        "experiments.look_interval_hours; its deployments asset advances, widens, holds or rolls back.",
    )  # fmt: skip

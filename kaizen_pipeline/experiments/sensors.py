"""experiment_sensor and rollout_sensor: request a look when a running experiment or a ramping rollout is due."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.experiments.runner import due_for_look
from kaizen_pipeline.ingest.schedules import sensor_status
from kaizen_pipeline.loop.runner import rollouts_due
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings

experiments_job = dg.define_asset_job(
    "experiments_job",
    selection=dg.AssetSelection.groups("research", "flags", "experiments"),
    description="Recompute signals under each unit's flag variant, draft and start experiments, and look at the running ones.",
)


def build_experiment_sensor(settings: Settings) -> dg.SensorDefinition:
    """The sensor; its default status follows data_collection.schedules_running."""
    status = sensor_status(settings)

    @dg.sensor(
        name="experiment_sensor",
        job=experiments_job,
        minimum_interval_seconds=600,
        default_status=status,
        description="Runs experiments_job when a running experiment's last look is older than "
        "experiments.look_interval_hours; on unless data_collection.schedules_running is false.",
    )
    def experiment_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource, settings: SettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        """Requests a look at the running experiments every experiments.look_interval_hours."""
        current = settings.get()
        now = pipeline_now(current)
        if not due_for_look(warehouse.get(), current, now):
            return dg.SkipReason("no running experiment is due for a look")
        bucket = int(now.timestamp() // (current.experiments.look_interval_hours * 3600))
        return dg.RunRequest(run_key=f"experiment-look-{bucket}")

    return experiment_sensor


def build_rollout_sensor(settings: Settings) -> dg.SensorDefinition:
    """The rollout sensor; its default status follows data_collection.schedules_running."""

    @dg.sensor(
        name="rollout_sensor",
        job=experiments_job,
        minimum_interval_seconds=600,
        default_status=sensor_status(settings),
        description="Runs experiments_job when a ramping rollout's last look is older than "
        "experiments.look_interval_hours; its deployments asset advances, holds or rolls back.",
    )
    def rollout_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource, settings: SettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        """Requests a look at the ramping rollouts every experiments.look_interval_hours."""
        current = settings.get()
        now = pipeline_now(current)
        if not rollouts_due(warehouse.get(), current, now):
            return dg.SkipReason("no ramping rollout is due for a look")
        bucket = int(now.timestamp() // (current.experiments.look_interval_hours * 3600))
        return dg.RunRequest(run_key=f"rollout-look-{bucket}")

    return rollout_sensor

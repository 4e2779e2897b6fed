"""One key starts or stops every schedule and sensor; left empty, a demo starts with all of them stopped."""

import dagster as dg
import pytest

from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.settings import load_settings


def _statuses(**overrides: object) -> set[str]:
    repo = build_defs(load_settings(**overrides)).get_repository_def()
    schedules = {s.default_status.value for s in repo.schedule_defs}
    sensors = {s.default_status.value for s in repo.sensor_defs}
    assert schedules and sensors
    return schedules | sensors


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {dg.DefaultScheduleStatus.STOPPED.value}),  # the demo source, key empty
        ({"source": "live"}, {dg.DefaultScheduleStatus.RUNNING.value}),
        ({"data_collection": {"schedules_running": True}}, {dg.DefaultScheduleStatus.RUNNING.value}),
        (
            {"source": "live", "data_collection": {"schedules_running": False}},
            {dg.DefaultScheduleStatus.STOPPED.value},
        ),
    ],
)
def test_every_schedule_and_sensor_follows_schedules_running(overrides: dict, expected: set[str]) -> None:
    assert _statuses(**overrides) == expected

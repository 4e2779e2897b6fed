"""The loop's steps return typed, frozen results: callers read named attributes, never string keys."""

from __future__ import annotations

import dataclasses

import pytest

from kaizen_pipeline.kaizen import loop
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse


def test_every_step_result_is_a_frozen_dataclass_without_an_untyped_bag() -> None:
    results = [c for c in vars(loop).values() if isinstance(c, type) and issubclass(c, loop.StepResult)]
    assert len(results) >= 10
    for cls in results:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls
        assert "extra" not in {f.name for f in dataclasses.fields(cls)}, cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        loop.MetricsResult().rows = 1  # type: ignore[misc]


def test_steps_on_an_empty_warehouse_say_why_in_their_typed_results(
    warehouse: Warehouse, settings: Settings
) -> None:
    trends = loop.compute_trends(warehouse, settings)
    assert isinstance(trends, loop.TrendsResult) and trends.notes == [loop.NO_METRICS]
    forecasts = loop.compute_forecasts(warehouse, settings)
    assert isinstance(forecasts, loop.ForecastsResult)
    assert forecasts.charts == [] and forecasts.anomalies.empty
    bottleneck = loop.compute_bottleneck(warehouse, settings, loop.InstanceHistory().steps)
    assert isinstance(bottleneck, loop.BottleneckResult) and bottleneck.constraint is None
    plan = loop.compute_resource_plan(warehouse, settings)
    assert isinstance(plan, loop.ResourcePlanResult) and plan.plan is None
    report = loop.build_report(warehouse, settings, "weekly")
    assert isinstance(report, loop.ReportResult) and report.markdown is None and report.headline is None
    feedback = loop.compute_feedback_summary(warehouse)
    assert (
        isinstance(feedback, loop.FeedbackResult)
        and feedback.responses == 0
        and feedback.rating_trend is None
    )
    velocity = loop.compute_velocity(warehouse)
    assert isinstance(velocity, loop.VelocityResult) and velocity.error_trend is None

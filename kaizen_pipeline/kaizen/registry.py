"""The metric registry and the deviation rule (pure: no Dagster).

A metric deviates when it is on the wrong side of its deviation line:
higher-is-better metrics below ``factor x target``, lower-is-better metrics above
``target / factor`` (factor = ``kaizen.deviation_factor``, 0.9 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kaizen_pipeline.settings import KaizenMetricSettings, KaizenSettings

MetricSpec = KaizenMetricSettings


def deviation_line(spec: MetricSpec, factor: float) -> float:
    """The value beyond which ``spec`` deviates from its target."""
    if not 0 < factor <= 1:
        raise ValueError(f"deviation_factor: must be in (0, 1], got {factor}")
    return spec.target * factor if spec.direction == "higher" else spec.target / factor


def better_sign(spec: MetricSpec) -> int:
    """+1 when a larger value is better, -1 when a smaller one is."""
    return 1 if spec.direction == "higher" else -1


def is_deviation(spec: MetricSpec, value: float, factor: float) -> bool:
    """True exactly when ``value`` is strictly beyond the deviation line (the line itself passes)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{spec.name}: value is missing; a deviation needs a number")
    line = deviation_line(spec, factor)
    return value < line if spec.direction == "higher" else value > line


def relative_gap(spec: MetricSpec, value: float) -> float:
    """Shortfall against the target as a share of the target, in the better direction (>0: short of it).

    0 when the target is met; a metric with target 0 uses an absolute gap (any bad value counts fully).
    """
    shortfall = (spec.target - value) * better_sign(spec)
    if shortfall <= 0:
        return 0.0
    return shortfall / abs(spec.target) if spec.target else shortfall


@dataclass(frozen=True)
class DeviationResult:
    """Outcome of one metric-deviation check."""

    metric: str
    value: float
    target: float
    line: float
    deviates: bool
    deviation: float  # signed relative distance from target, positive = better than target
    severity: str

    def as_metadata(self) -> dict[str, float | str | bool]:
        return {
            "value": self.value,
            "target": self.target,
            "deviation_line": self.line,
            "deviation": self.deviation,
            "deviates": self.deviates,
            "severity": self.severity,
        }


def evaluate(spec: MetricSpec, value: float, factor: float) -> DeviationResult:
    """Deviation verdict with the signed relative deviation from target ((value - target) / target, better-signed)."""
    deviates = is_deviation(spec, value, factor)
    diff = (value - spec.target) * better_sign(spec)
    relative = diff / abs(spec.target) if spec.target else diff
    return DeviationResult(
        metric=spec.name,
        value=float(value),
        target=spec.target,
        line=deviation_line(spec, factor),
        deviates=deviates,
        deviation=float(relative),
        severity=spec.severity,
    )


def registry(settings: KaizenSettings) -> dict[str, MetricSpec]:
    """Registered metrics by name, in config order."""
    return {spec.name: spec for spec in settings.metrics}

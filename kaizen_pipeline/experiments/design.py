"""Drafting an experiment from a recommendation: hypothesis, metrics, minimum detectable effect, sample size.

Pure module (no Dagster). Sample size uses statsmodels' power functions through
:func:`kaizen_pipeline.kaizen.experiment_stats.sequential_sample_size_per_arm` (the fixed-horizon
size times the factor that keeps the always-valid test's power).

- **market** experiments have a fixed number of units (the tracked markets) and gain precision by
  running longer: with between-market variance ``s_b^2`` and within-market day-to-day variance
  ``s_w^2`` (one-way random effects, estimated on the pre-period's market-days), a market's mean
  over ``D`` days has variance ``s_b^2 + s_w^2 / D``. The expected duration is the smallest ``D``
  whose required markets per arm fit in today's markets. The between-market part is reduced by
  the variance CUPED removes, estimated on the pre-period itself (its first half predicting its second).
- **run** experiments gain units as runs happen: the duration is the runs needed over today's
  runs per day.

A draft whose duration exceeds ``experiments.max_days`` is marked underpowered and is not started.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.experiments.metrics import TARGET_TO_UNIT_METRIC, UNIT_METRICS
from kaizen_pipeline.flags.parameters import FLAGGABLE, FlagValueError, config_value, validated_value
from kaizen_pipeline.kaizen.experiment_stats import sequential_sample_size_per_arm
from kaizen_pipeline.warehouse.store import is_missing


@dataclass(frozen=True)
class Plan:
    """How long the experiment needs: per-unit sd, units per arm, expected days, and whether it fits."""

    unit_sd: float | None
    units_per_arm: int | None
    units_available: float
    expected_days: float | None
    underpowered: bool
    note: str


def variance_components(daily: pd.DataFrame) -> tuple[float, float, float]:
    """(between-unit variance, within-unit variance, mean days per unit) of ``daily`` (unit, value rows)."""
    data = daily.dropna(subset=["value"])
    if data.empty:
        return 0.0, 0.0, 0.0
    by_unit = data.groupby("unit")["value"]
    counts = by_unit.count()
    within = float((by_unit.var(ddof=1).fillna(0.0) * (counts - 1)).sum() / max(int((counts - 1).sum()), 1))
    mean_days = float(counts.mean())
    between = (
        max(float(by_unit.mean().var(ddof=1)) - within / max(mean_days, 1.0), 0.0) if len(counts) > 1 else 0.0
    )
    return between, within, mean_days


def cuped_gain(daily: pd.DataFrame) -> float:
    """Share of the per-unit variance CUPED should remove: the first half of the pre-period predicting the second.

    0 when the pre-period is too short or the halves are unrelated.
    """
    data = daily.dropna(subset=["value"])
    if data.empty or "day" not in data:
        return 0.0
    days = np.sort(data["day"].unique())
    if len(days) < 4:
        return 0.0
    cut = days[len(days) // 2]
    first = data[data["day"] < cut].groupby("unit")["value"].mean()
    second = data[data["day"] >= cut].groupby("unit")["value"].mean()
    both = pd.concat([first, second], axis=1, join="inner").dropna()
    if len(both) < 4 or both.iloc[:, 0].var() == 0 or both.iloc[:, 1].var() == 0:
        return 0.0
    r = float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1])
    return max(r, 0.0) ** 2


def plan_markets(
    daily: pd.DataFrame, *, mde: float, alpha: float, power: float, markets: int, share: float, max_days: int
) -> Plan:
    """Duration of a market experiment from the pre-period's market-day values (module docstring).

    The variance is reduced by the CUPED gain the pre-period itself shows (:func:`cuped_gain`).
    """
    between, within, _ = variance_components(daily)
    gain = cuped_gain(daily)
    between *= 1.0 - gain
    per_arm = math.floor(markets * min(share, 1.0 - share))
    if between + within <= 0 or mde <= 0:
        why = (
            "the pre-period shows no variation in the metric"
            if between + within <= 0
            else "no effect to detect"
        )
        return Plan(None, None, markets, None, True, f"{why}: nothing an experiment could decide")
    needed = None
    for days in range(1, max_days + 1):
        sd = math.sqrt(between + within / days)
        needed = sequential_sample_size_per_arm(mde, sd, alpha=alpha, power=power)
        if needed <= per_arm:
            return Plan(
                sd,
                needed,
                markets,
                float(days),
                False,
                f"{needed} of {per_arm} markets per arm for {days} days",
            )
    sd = math.sqrt(between + within / max_days)
    return Plan(
        sd, needed, markets, None, True,
        f"needs {needed} markets per arm even after {max_days} days; {per_arm} available",
    )  # fmt: skip


def plan_runs(
    values: pd.Series,
    *,
    mde: float,
    alpha: float,
    power: float,
    runs_per_day: float,
    share: float,
    max_days: int,
) -> Plan:
    """Duration of a run experiment from past runs' values and today's runs per day."""
    data = values.dropna()
    sd = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    if sd <= 0 or mde <= 0:
        why = "past runs show no variation in the metric" if sd <= 0 else "no effect to detect"
        return Plan(None, None, runs_per_day, None, True, f"{why}: nothing an experiment could decide")
    needed = sequential_sample_size_per_arm(mde, sd, alpha=alpha, power=power)
    arm_rate = runs_per_day * min(share, 1.0 - share)
    days = needed / arm_rate if arm_rate > 0 else math.inf
    if days > max_days:
        return Plan(sd, needed, runs_per_day, None, True,
                    f"needs {needed} runs per arm: {days:.0f} days at {runs_per_day:.0f} runs/day > {max_days}")  # fmt: skip
    return Plan(
        sd,
        needed,
        runs_per_day,
        days,
        False,
        f"{needed} runs per arm: {days:.1f} days at {runs_per_day:.0f} runs/day",
    )


@dataclass(frozen=True)
class Candidate:
    """A recommendation that can be tested: its parameter is flaggable and its metric measurable per unit."""

    catalogue_key: str
    title: str
    parameter: str
    unit_kind: str
    control_value: Any
    treatment_value: Any
    target_metric: str
    primary_metric: str
    corrected_effect: float


def candidate(rec: dict[str, Any], settings: Any) -> Candidate | str:
    """The testable candidate of a recommendation row, or why it cannot be tested."""
    parameter, proposed = rec.get("parameter"), rec.get("proposed_value")
    if is_missing(parameter) or is_missing(proposed) or not parameter:
        return "names no parameter and value"
    if parameter not in FLAGGABLE:
        return f"{parameter} cannot be flagged per unit (see docs/experiments.md)"
    target = rec["target_metric"]
    if target not in TARGET_TO_UNIT_METRIC:
        return f"{target} has no per-unit measurement"
    primary, _ = TARGET_TO_UNIT_METRIC[target]
    unit_kind = FLAGGABLE[parameter].unit_kind
    if UNIT_METRICS[primary].unit_kind != unit_kind:
        return (
            f"{target} is measured per {UNIT_METRICS[primary].unit_kind}, {parameter} varies per {unit_kind}"
        )
    try:
        treatment = validated_value(settings, parameter, proposed, field="proposed_value")
    except FlagValueError as exc:
        return str(exc)
    control = config_value(settings, parameter)
    if treatment == control:
        return f"{parameter} is already {control!r}"
    return Candidate(
        rec["catalogue_key"], rec["title"], parameter, unit_kind, control, treatment, target, primary,
        float(rec["corrected_effect"]),
    )  # fmt: skip


def experiment_id(catalogue_key: str, now: datetime) -> str:
    return f"{catalogue_key}-{now:%Y%m%d}"


def draft_row(
    cand: Candidate, plan: Plan, *, mde: float, settings: Any, guardrails: list[str], now: datetime
) -> dict[str, Any]:
    """The experiments row of a new draft."""
    exp = settings.experiments
    metric = UNIT_METRICS[cand.primary_metric]
    hypothesis = (
        f"Setting {cand.parameter} from {cand.control_value!r} to {cand.treatment_value!r} ({cand.title}) "
        f"moves {cand.primary_metric} ({metric.description}) {metric.direction} by at least {mde:.4g} "
        f"per {'market-day' if cand.unit_kind == 'market' else 'run'} without harming {', '.join(guardrails) or 'any guardrail'}."
    )
    return {
        "experiment_id": experiment_id(cand.catalogue_key, now),
        "catalogue_key": cand.catalogue_key,
        "parameter": cand.parameter,
        "unit_kind": cand.unit_kind,
        "control_value": json.dumps(cand.control_value),
        "treatment_value": json.dumps(cand.treatment_value),
        "hypothesis": hypothesis,
        "primary_metric": cand.primary_metric,
        "target_metric": cand.target_metric,
        "predicted_effect": cand.corrected_effect,
        "direction": metric.direction,
        "guardrails": json.dumps(guardrails),
        "mde": mde,
        "alpha": exp.alpha,
        "power": exp.power,
        "unit_sd": plan.unit_sd,
        "units_per_arm": plan.units_per_arm,
        "units_available": int(round(plan.units_available)),
        "expected_days": plan.expected_days,
        "max_days": exp.max_days,
        "underpowered": plan.underpowered,
        "status": "draft",
        "flag_key": None,
        "decision": "underpowered" if plan.underpowered else None,
        "decision_reason": plan.note,
        "created_at": now,
        "started_at": None,
        "ended_at": None,
        "updated_at": now,
    }


def guardrails_for(unit_kind: str, configured: list[str], primary: str) -> list[str]:
    """The configured guardrails measurable for this unit kind, the primary metric left out."""
    return [g for g in configured if UNIT_METRICS[g].unit_kind == unit_kind and g != primary]


def daily_sd(daily: pd.DataFrame) -> float:
    data = daily["value"].dropna()
    return float(np.std(data, ddof=1)) if len(data) > 1 else 0.0

"""Recommendations and the resource plan (pure).

Recommendations rank catalogue entries: each entry's predicted effect is multiplied by the
bias factor learned from past predictions (see improvements.bias_factor: experiments on the same
parameter first, then the metric's experiments and before/after impacts), valued with the
metric's ``value_per_unit`` and set against its cost. Entries aimed at the current
constraint's metric come first.

The resource plan is an exact 0/1 knapsack with two capacities (hours and money per
period): maximise the summed expected return (value - cost) of the chosen improvements,
solved as a mixed-integer program (scipy.optimize.milp / HiGHS).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from kaizen_pipeline.kaizen.improvements import bias_factor, effect_value, improvement_cost, roi
from kaizen_pipeline.kaizen.registry import MetricSpec
from kaizen_pipeline.settings import KaizenImprovementCandidate

RECOMMENDATION_COLUMNS = [
    "rank", "catalogue_key", "title", "target_metric", "addresses_constraint", "parameter", "proposed_value",
    "predicted_effect", "bias_factor", "bias_basis", "corrected_effect", "value_usd", "cost_hours", "cost_money",
    "cost_usd", "expected_return", "expected_roi",
]  # fmt: skip


def recommend(
    catalogue: Iterable[KaizenImprovementCandidate],
    specs: Mapping[str, MetricSpec],
    impacts: pd.DataFrame,
    *,
    constraint_metric: str | None,
    hourly_rate: float,
    min_validated: int,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:
    """Rank catalogue entries (those in ``exclude``, e.g. already logged, are skipped)."""
    skip = set(exclude)
    rows = []
    for entry in catalogue:
        if entry.key in skip:
            continue
        spec = specs[entry.target_metric]
        factor, _, basis = bias_factor(impacts, entry.target_metric, min_validated, entry.parameter)
        corrected = entry.predicted_effect * factor
        value = effect_value(corrected, spec)
        cost = improvement_cost(entry.cost_hours, entry.cost_money, hourly_rate)
        rows.append(
            {
                "catalogue_key": entry.key,
                "title": entry.title,
                "target_metric": entry.target_metric,
                "addresses_constraint": entry.target_metric == constraint_metric,
                "parameter": entry.parameter,
                "proposed_value": entry.proposed_value,
                "predicted_effect": entry.predicted_effect,
                "bias_factor": factor,
                "bias_basis": basis,
                "corrected_effect": corrected,
                "value_usd": value,
                "cost_hours": entry.cost_hours,
                "cost_money": entry.cost_money,
                "cost_usd": cost,
                "expected_return": value - cost,
                "expected_roi": roi(value, cost),
            }
        )
    if not rows:
        return pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    frame = pd.DataFrame(rows)
    frame["_roi"] = frame["expected_roi"].fillna(np.inf * np.sign(frame["value_usd"]))
    frame = frame.sort_values(
        ["addresses_constraint", "_roi", "expected_return", "catalogue_key"],
        ascending=[False, False, False, True],
    )
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame[RECOMMENDATION_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class Plan:
    """The chosen improvements and what capacity is left."""

    selected: tuple[str, ...]
    expected_return: float
    hours_used: float
    money_used: float
    hours_left: float
    money_left: float


def knapsack(
    keys: list[str],
    returns: np.ndarray,
    hours: np.ndarray,
    money: np.ndarray,
    budget_hours: float,
    budget_money: float,
) -> Plan:
    """Exact 0/1 knapsack with two capacities: maximise sum(returns) s.t. hours and money fit the budgets.

    Items with a non-positive return are never chosen (they cannot raise the optimum).
    """
    returns, hours, money = (np.asarray(a, dtype=float) for a in (returns, hours, money))
    if not (len(keys) == len(returns) == len(hours) == len(money)):
        raise ValueError("knapsack: keys, returns, hours and money must have the same length")
    if budget_hours < 0 or budget_money < 0:
        raise ValueError("knapsack: budgets must be >= 0")
    if (hours < 0).any() or (money < 0).any():
        raise ValueError("knapsack: costs must be >= 0")
    candidates = [i for i in range(len(keys)) if returns[i] > 0]
    chosen: list[int] = []
    if candidates:
        idx = np.array(candidates)
        result = milp(
            c=-returns[idx],
            constraints=LinearConstraint(
                np.vstack([hours[idx], money[idx]]), ub=[budget_hours, budget_money]
            ),
            integrality=np.ones(len(idx)),
            bounds=Bounds(0, 1),
        )
        if not result.success:
            raise RuntimeError(f"knapsack: the solver failed: {result.message}")
        chosen = [int(i) for i, x in zip(idx, result.x, strict=True) if x > 0.5]
    used_h = float(hours[chosen].sum()) if chosen else 0.0
    used_m = float(money[chosen].sum()) if chosen else 0.0
    return Plan(
        selected=tuple(keys[i] for i in chosen),
        expected_return=float(returns[chosen].sum()) if chosen else 0.0,
        hours_used=used_h,
        money_used=used_m,
        hours_left=float(budget_hours - used_h),
        money_left=float(budget_money - used_m),
    )


def resource_plan(
    recommendations: pd.DataFrame, budget_hours: float, budget_money: float
) -> tuple[Plan, pd.DataFrame]:
    """Knapsack over the recommendations; returns the plan and the recommendations with a ``selected`` column."""
    frame = recommendations.copy()
    if frame.empty:
        plan = Plan((), 0.0, 0.0, 0.0, float(budget_hours), float(budget_money))
        frame["selected"] = pd.Series(dtype=bool)
        return plan, frame
    plan = knapsack(
        frame["catalogue_key"].tolist(),
        frame["expected_return"].to_numpy(dtype=float),
        frame["cost_hours"].to_numpy(dtype=float),
        frame["cost_money"].to_numpy(dtype=float),
        budget_hours,
        budget_money,
    )
    frame["selected"] = frame["catalogue_key"].isin(plan.selected)
    return plan, frame

"""Recommendations learn from past bias; the resource plan is the exact knapsack optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.kaizen.planning import knapsack, recommend, resource_plan
from kaizen_pipeline.kaizen.registry import registry
from kaizen_pipeline.settings import load_settings


def brute_force(returns, hours, money, budget_hours, budget_money) -> float:
    best = 0.0
    for pick in itertools.product([0, 1], repeat=len(returns)):
        chosen = np.array(pick, dtype=bool)
        if hours[chosen].sum() <= budget_hours + 1e-9 and money[chosen].sum() <= budget_money + 1e-9:
            best = max(best, returns[chosen].sum())
    return best


@pytest.mark.parametrize("seed", range(12))
def test_knapsack_optimum_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 9
    returns = np.round(rng.normal(200, 300, n), 1)  # some negative: never worth doing
    hours = np.round(rng.uniform(0, 10, n), 1)
    money = np.round(rng.uniform(0, 300, n), 0)
    budget_hours, budget_money = 16.0, 500.0
    plan = knapsack([f"k{i}" for i in range(n)], returns, hours, money, budget_hours, budget_money)
    assert plan.expected_return == pytest.approx(
        brute_force(returns, hours, money, budget_hours, budget_money)
    )
    chosen = [int(k[1:]) for k in plan.selected]
    assert hours[chosen].sum() <= budget_hours + 1e-9 and money[chosen].sum() <= budget_money + 1e-9
    assert plan.hours_left == pytest.approx(budget_hours - hours[chosen].sum())
    assert plan.money_left == pytest.approx(budget_money - money[chosen].sum())
    assert all(returns[i] > 0 for i in chosen)


def test_knapsack_small_case_by_hand() -> None:
    # best is b + c (return 9, 5 h) rather than a alone (return 8, 5 h) or a + c over budget
    plan = knapsack(
        ["a", "b", "c"], np.array([8.0, 5.0, 4.0]), np.array([5.0, 3.0, 2.0]), np.zeros(3), 5.0, 0.0
    )
    assert set(plan.selected) == {"b", "c"} and plan.expected_return == 9.0 and plan.hours_left == 0.0


def test_knapsack_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="budgets"):
        knapsack(["a"], np.array([1.0]), np.array([1.0]), np.array([1.0]), -1, 0)


def test_recommendations_put_the_constraint_first_and_correct_predictions_by_measured_bias() -> None:
    ks = load_settings().kaizen
    specs = registry(ks)
    no_history = recommend(
        ks.catalogue,
        specs,
        pd.DataFrame(),
        constraint_metric="signal_hit_rate",
        hourly_rate=100,
        min_validated=1,
    )
    assert set(no_history["target_metric"].iloc[:2]) == {"signal_hit_rate"}
    assert (
        no_history["addresses_constraint"].iloc[:2].all()
        and not no_history["addresses_constraint"].iloc[2:].any()
    )
    assert (no_history["bias_factor"] == 1.0).all()
    hype = no_history.set_index("catalogue_key").loc["raise_hype_threshold"]
    assert hype["value_usd"] == pytest.approx(0.03 * 20000)  # 600 USD
    assert hype["expected_roi"] == pytest.approx((600 - 200) / 200)

    # Past hit-rate predictions over-promised by half: the same entry is now worth half as much.
    impacts = pd.DataFrame(
        [{"target_metric": "signal_hit_rate", "verdict": "improved", "relative_bias": 0.5}]
    )
    learned = recommend(
        ks.catalogue, specs, impacts, constraint_metric="signal_hit_rate", hourly_rate=100, min_validated=1
    )
    hype = learned.set_index("catalogue_key").loc["raise_hype_threshold"]
    assert hype["bias_factor"] == 0.5 and hype["corrected_effect"] == pytest.approx(0.015)
    assert hype["expected_roi"] == pytest.approx((300 - 200) / 200)

    skipped = recommend(
        ks.catalogue, specs, impacts, constraint_metric=None, hourly_rate=100, min_validated=1,
        exclude=["raise_hype_threshold"],
    )  # fmt: skip
    assert "raise_hype_threshold" not in skipped["catalogue_key"].tolist()


def test_resource_plan_marks_the_selection() -> None:
    ks = load_settings().kaizen
    recs = recommend(
        ks.catalogue, registry(ks), pd.DataFrame(), constraint_metric=None, hourly_rate=100, min_validated=1
    )
    plan, frame = resource_plan(recs, budget_hours=3, budget_money=0)
    assert frame.loc[frame["selected"], "cost_hours"].sum() <= 3
    assert frame.loc[frame["selected"], "cost_money"].sum() == 0
    assert plan.expected_return == pytest.approx(frame.loc[frame["selected"], "expected_return"].sum())
    best = brute_force(
        recs["expected_return"].to_numpy(), recs["cost_hours"].to_numpy(), recs["cost_money"].to_numpy(), 3, 0
    )
    assert plan.expected_return == pytest.approx(best)

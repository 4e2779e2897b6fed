"""Experiment design and analysis on simulated unit data: variance, duration, CUPED, decisions, and
the false-winner rate of daily looks at clustered market-days."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.experiments.analysis import MetricLook, analyse_metric, decide, with_holm
from kaizen_pipeline.experiments.design import plan_markets, plan_runs, variance_components

MARKETS, DAYS = 50, 28


def market_days(
    rng: np.random.Generator, *, effect: float = 0.0, days: int = DAYS
) -> tuple[pd.DataFrame, dict[int, float]]:
    """Demo-like market-day values: heavy tails (t, 3 df) plus a market effect; half the markets treated."""
    market = rng.normal(0.0, 0.5, MARKETS)
    arm = np.array(["control", "treatment"] * (MARKETS // 2))
    rng.shuffle(arm)
    values = (
        rng.standard_t(3, size=(MARKETS, days)) + market[:, None] + (arm == "treatment")[:, None] * effect
    )
    pre = (rng.standard_t(3, size=(MARKETS, 14)) + market[:, None]).mean(axis=1)
    frame = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(MARKETS), days),
            "day": np.tile(np.arange(days), MARKETS),
            "arm": np.repeat(arm, days),
            "value": values.reshape(-1),
        }
    )
    return frame, dict(enumerate(pre))


def test_variance_components_recover_the_planted_ones() -> None:
    rng = np.random.default_rng(7)
    units, days = 400, 30
    values = rng.normal(0.0, 0.8, size=(units, days)) + rng.normal(0.0, 0.5, units)[:, None]
    daily = pd.DataFrame({"unit": np.repeat(np.arange(units), days), "value": values.reshape(-1)})
    between, within, mean_days = variance_components(daily)
    assert between == pytest.approx(0.25, rel=0.2)
    assert within == pytest.approx(0.64, rel=0.05)
    assert mean_days == days


def test_a_larger_effect_needs_fewer_days_and_a_tiny_one_is_underpowered() -> None:
    frame, _ = market_days(np.random.default_rng(1), days=14)
    kwargs = dict(alpha=0.05, power=0.8, markets=MARKETS, share=0.5, max_days=28)
    large, larger = plan_markets(frame, mde=0.8, **kwargs), plan_markets(frame, mde=1.2, **kwargs)
    assert not large.underpowered and not larger.underpowered
    assert larger.expected_days <= large.expected_days
    tiny = plan_markets(frame, mde=0.05, **kwargs)
    assert tiny.underpowered and tiny.expected_days is None and "markets per arm" in tiny.note


def test_run_duration_is_the_runs_needed_over_the_runs_per_day() -> None:
    values = pd.Series(np.random.default_rng(2).binomial(1, 0.9, 2000).astype(float))
    plan = plan_runs(values, mde=0.05, alpha=0.05, power=0.8, runs_per_day=96, share=0.5, max_days=28)
    assert not plan.underpowered
    assert plan.expected_days == pytest.approx(plan.units_per_arm / 48)
    slow = plan_runs(values, mde=0.01, alpha=0.05, power=0.8, runs_per_day=96, share=0.5, max_days=28)
    assert slow.underpowered and "days at 96 runs/day" in slow.note


def test_cuped_reduces_variance_when_the_pre_period_predicts_and_reports_it() -> None:
    frame, pre = market_days(np.random.default_rng(3), effect=0.0)
    with_pre = analyse_metric(frame, metric="pnl", role="primary", direction="higher", alpha=0.05,
                              n_star=MARKETS * DAYS, clustered=True, pre_period=pre)  # fmt: skip
    unrelated = dict(zip(pre, np.random.default_rng(4).normal(size=len(pre)), strict=True))
    without = analyse_metric(frame, metric="pnl", role="primary", direction="higher", alpha=0.05,
                             n_star=MARKETS * DAYS, clustered=True, pre_period=unrelated)  # fmt: skip
    assert with_pre.cuped_reduction > 0.2
    assert without.cuped_reduction < 0.1
    assert (with_pre.upper - with_pre.lower) < (without.upper - without.lower)


def test_too_few_units_per_arm_gives_no_data_not_a_decision() -> None:
    frame, _ = market_days(np.random.default_rng(5))
    few = frame[frame["unit"] < 6]
    look = analyse_metric(few, metric="pnl", role="primary", direction="higher", alpha=0.05, n_star=100,
                          clustered=True, min_units_per_arm=5)  # fmt: skip
    assert look.outcome == "no_data" and look.estimate is None


def _look(metric: str, outcome: str, role: str = "guardrail", p: float = 0.001) -> MetricLook:
    return MetricLook(metric, role, "higher", 25, 25, 0.0, 0.0, -1.0 if outcome == "loses" else 1.0,
                      -2.0, 2.0, p, None, 0.0, outcome)  # fmt: skip


def test_decisions_follow_their_order() -> None:
    wins, loses, neutral = (
        _look("pnl", "wins", "primary"),
        _look("pnl", "loses", "primary"),
        _look("pnl", "neutral", "primary"),
    )
    harm = with_holm([_look("drawdown", "loses"), _look("api", "neutral", p=0.5)], 0.05)
    common = dict(srm_threshold=0.001, days=3.0, max_days=28)
    assert decide(wins, harm, srm_p=0.0001, **common).status == "invalid"
    assert decide(wins, harm, srm_p=0.5, **common).decision == "stop_guardrail"
    assert decide(loses, [], srm_p=0.5, **common).decision == "stop_primary_loses"
    assert decide(wins, [_look("drawdown", "neutral")], srm_p=0.5, **common).decision == "ship"
    assert decide(neutral, [], srm_p=0.5, **common) is None
    # a win ships only once every guardrail with a margin is shown within it (non-inferiority)
    near = MetricLook(
        "pnl_per_market_day", "guardrail", "higher", 20, 20, 0.0, -0.001, -0.001, -0.004, 0.002, 0.5
    )
    wide = replace(near, lower=-0.03)
    margins = {"pnl_per_market_day": 0.005}
    assert decide(wins, [near], srm_p=0.5, margins=margins, **common).decision == "ship"
    assert decide(wins, [wide], srm_p=0.5, margins=margins, **common) is None
    ended = decide(wins, [wide], srm_p=0.5, srm_threshold=0.001, days=28.0, max_days=28, margins=margins)
    assert ended.decision == "inconclusive" and "not shown within -0.005" in ended.reason
    assert decide(wins, [wide], srm_p=0.5, **common).decision == "ship"  # no margin: only harm blocks
    # a win waits for the minimum duration; harm does not
    assert decide(wins, [], srm_p=0.5, min_days_to_ship=7, **common) is None
    assert decide(wins, harm, srm_p=0.5, min_days_to_ship=7, **common).decision == "stop_guardrail"
    assert decide(wins, [], srm_p=0.5, srm_threshold=0.001, days=7.0, max_days=28,
                  min_days_to_ship=7).decision == "ship"  # fmt: skip
    assert (
        decide(neutral, [], srm_p=0.5, srm_threshold=0.001, days=28.0, max_days=28).decision == "inconclusive"
    )


def test_holm_keeps_a_marginal_guardrail_harm_from_stopping_alone() -> None:
    marginal = [_look("a", "loses", p=0.03), _look("b", "neutral", p=0.04), _look("c", "neutral", p=0.9)]
    adjusted = with_holm(marginal, 0.05)
    assert adjusted[0].p_holm == pytest.approx(0.09) and adjusted[0].outcome == "neutral"


def daily_look_decisions(
    rng: np.random.Generator, experiments: int, effect: float, looks: int = 10, days: int = DAYS
) -> float:
    """Share of experiments decided at any of ``looks`` looks over ``days`` (clustered market-days, CUPED)."""
    decided = 0
    for _ in range(experiments):
        frame, pre = market_days(rng, effect=effect, days=days)
        for day in np.unique(np.linspace(days / looks, days, looks).round().astype(int)):
            look = analyse_metric(frame[frame["day"] < day], metric="pnl", role="primary", direction="higher",
                                  alpha=0.05, n_star=MARKETS * days, clustered=True, pre_period=pre)  # fmt: skip
            if look.outcome != "neutral":
                decided += 1
                break
    return decided / experiments


def test_daily_looks_at_clustered_market_days_keep_false_winners_under_alpha() -> None:
    # 150 A/A experiments, 10 looks each; bench/experiments.py runs 2,000
    assert daily_look_decisions(np.random.default_rng(11), 150, effect=0.0) <= 0.05


def test_a_planted_effect_equal_to_the_mde_is_found_within_the_planned_duration() -> None:
    frame, _ = market_days(np.random.default_rng(12), days=14)
    plan = plan_markets(frame, mde=0.8, alpha=0.05, power=0.8, markets=MARKETS, share=0.5, max_days=28)
    assert not plan.underpowered and plan.expected_days is not None
    days = int(plan.expected_days)
    assert daily_look_decisions(np.random.default_rng(13), 100, effect=0.8, days=days) >= 0.8

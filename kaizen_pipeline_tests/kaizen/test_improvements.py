"""Impact (Welch), ROI, prediction accuracy, bias correction and learning velocity on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kaizen_pipeline.kaizen.improvements import (
    accuracy_summary,
    bias_factor,
    effect_value,
    error_trend,
    improvement_cost,
    learning_velocity,
    measure_impact,
    prediction_error,
    roi,
    welch,
)
from kaizen_pipeline.settings import KaizenMetricSettings

ERROR_RATE = KaizenMetricSettings(
    name="api_error_rate", direction="lower", target=0.02, category="pipeline", value_per_unit=5000
)


def test_welch_matches_the_textbook_formula() -> None:
    before = np.array([5.0, 6.0, 7.0, 6.0])  # mean 6, var 2/3
    after = np.array([8.0, 9.0, 10.0, 9.0, 9.0, 9.0])  # mean 9, var 0.4
    result = welch(before, after, alpha=0.05)
    se = math.sqrt((2 / 3) / 4 + 0.4 / 6)
    df = se**4 / (((2 / 3) / 4) ** 2 / 3 + (0.4 / 6) ** 2 / 5)
    assert result.diff == 3.0
    assert result.t_stat == pytest.approx(3.0 / se)
    assert result.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * se
    assert (result.ci_low, result.ci_high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    reference = stats.ttest_ind(after, before, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_welch_needs_two_points_each_side() -> None:
    with pytest.raises(ValueError, match="at least 2 points"):
        welch(np.array([1.0]), np.array([1.0, 2.0]))


def test_roi_value_and_cost_hand_computed() -> None:
    cost = improvement_cost(cost_hours=2, cost_money=50, hourly_rate=100)  # 250 USD
    value = effect_value(-0.03, ERROR_RATE)  # error rate down 0.03 x 5000 USD = 150 USD
    assert cost == 250 and value == pytest.approx(150)
    assert roi(value, cost) == pytest.approx((150 - 250) / 250)
    assert roi(1000, 400) == pytest.approx(1.5)
    assert math.isnan(roi(100, 0))
    assert effect_value(+0.01, ERROR_RATE) == pytest.approx(-50)  # worse is negative value


def test_prediction_error_and_bias() -> None:
    assert prediction_error(-0.02, -0.01) == {
        "error": pytest.approx(-0.01), "abs_pct_error": pytest.approx(1.0), "relative_bias": pytest.approx(-0.5)
    }  # fmt: skip


def _history(
    before: float, after: float, days: int = 28, ship: int = 14, noise: float = 0.002
) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-01-01", periods=days, freq="D")
    values = np.where(np.arange(days) < ship, before, after) + rng.normal(0, noise, days)
    return pd.DataFrame({"ts": ts, "value": values})


def test_measure_impact_of_a_step_change() -> None:
    history = _history(0.05, 0.02)
    row = measure_impact(
        history, pd.Timestamp("2026-01-15"), spec=ERROR_RATE, predicted_effect=-0.02, cost_usd=250,
        window_days=14, min_points=5, alpha=0.05,
    )  # fmt: skip
    values = history["value"].to_numpy()
    actual = values[14:].mean() - values[:14].mean()
    assert row["verdict"] == "improved"
    assert row["actual_effect"] == pytest.approx(actual)
    assert row["ci_low"] < actual < row["ci_high"]
    assert row["value_usd"] == pytest.approx(-actual * 5000)
    assert row["roi"] == pytest.approx((-actual * 5000 - 250) / 250)
    assert row["error"] == pytest.approx(-0.02 - actual)
    assert row["relative_bias"] == pytest.approx((0.02 - (-actual)) / 0.02)
    assert row["validated_at"] == pd.Timestamp("2026-01-29")


def test_impact_stays_pending_until_the_after_window_closes() -> None:
    history = _history(0.05, 0.02, days=20, ship=14)
    row = measure_impact(
        history, pd.Timestamp("2026-01-15"), spec=ERROR_RATE, predicted_effect=-0.02, cost_usd=250,
        window_days=14, min_points=5, alpha=0.05,
    )  # fmt: skip
    assert row["verdict"] == "pending" and "actual_effect" not in row


def test_no_effect_when_the_metric_did_not_move() -> None:
    row = measure_impact(
        _history(0.05, 0.05), pd.Timestamp("2026-01-15"), spec=ERROR_RATE, predicted_effect=-0.02, cost_usd=100,
        window_days=14, min_points=5, alpha=0.05,
    )  # fmt: skip
    assert row["verdict"] == "no_effect"


def _impacts() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"target_metric": "api_error_rate", "verdict": "improved", "error": 0.01, "abs_pct_error": 0.5,
             "relative_bias": 0.5, "validated_at": "2026-01-05", "value_usd": 100, "cost_usd": 50, "roi": 1.0},
            {"target_metric": "api_error_rate", "verdict": "no_effect", "error": 0.02, "abs_pct_error": 0.3,
             "relative_bias": 0.3, "validated_at": "2026-01-07", "value_usd": 0, "cost_usd": 50, "roi": -1.0},
            {"target_metric": "signal_hit_rate", "verdict": "improved", "error": -0.01, "abs_pct_error": 0.1,
             "relative_bias": -0.2, "validated_at": "2026-01-14", "value_usd": 300, "cost_usd": 100, "roi": 2.0},
            {"target_metric": "signal_hit_rate", "verdict": "pending", "error": None, "abs_pct_error": None,
             "relative_bias": None, "validated_at": None, "value_usd": None, "cost_usd": 100, "roi": None},
        ]
    )  # fmt: skip


def test_accuracy_summary_over_validated_improvements() -> None:
    summary = accuracy_summary(_impacts())
    assert summary.validated == 3
    assert summary.mape == pytest.approx((0.5 + 0.3 + 0.1) / 3 * 100)
    assert summary.mean_relative_bias == pytest.approx((0.5 + 0.3 - 0.2) / 3)


def test_bias_factor_prefers_the_metric_then_all_then_nothing() -> None:
    impacts = _impacts()
    assert bias_factor(impacts, "api_error_rate", 2) == (
        pytest.approx(0.6),
        2,
        "metric",
    )  # 1 - mean(0.5, 0.3)
    assert bias_factor(impacts, "signal_hit_rate", 2) == (pytest.approx(1 - 0.6 / 3), 3, "all")
    assert bias_factor(impacts, "feedback_score", 4) == (1.0, 0, "none")
    assert bias_factor(pd.DataFrame(), "x", 1) == (1.0, 0, "none")


def test_learning_velocity_per_week_and_error_trend() -> None:
    weekly = learning_velocity(_impacts())
    # 2026-01-05 and -07 fall in the week of Monday 5 January, -14 in the week of Monday 12 January
    assert weekly["week_start"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-05", "2026-01-12"]
    assert weekly["validated"].tolist() == [2, 1]
    assert weekly["improved"].tolist() == [1, 1]
    assert weekly["cumulative_validated"].tolist() == [2, 3]
    assert weekly["mean_abs_pct_error"].tolist() == pytest.approx([0.4, 0.1])
    trend = error_trend(_impacts())
    assert trend["slope_per_week"] < 0  # predictions are getting better

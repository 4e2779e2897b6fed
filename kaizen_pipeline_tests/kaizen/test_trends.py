"""Mann-Kendall trend test, Sen's slope and week-over-week change on synthetic histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kaizen_pipeline.kaizen.trends import mann_kendall, metric_trend_row, week_over_week


def test_mann_kendall_tau_matches_kendall_tau_against_time() -> None:
    x = np.random.default_rng(0).normal(size=40).cumsum()
    mk = mann_kendall(x)
    tau, _ = stats.kendalltau(np.arange(40), x)
    assert mk.tau == pytest.approx(tau)


def test_linear_trend_is_significant_and_sen_slope_recovers_it() -> None:
    rng = np.random.default_rng(1)
    x = 5 + 0.3 * np.arange(60) + rng.normal(0, 1, 60)
    mk = mann_kendall(x)
    assert mk.significant(0.05)
    assert mk.sen_slope == pytest.approx(0.3, abs=0.05)


def test_white_noise_has_no_significant_trend() -> None:
    rejections = sum(
        mann_kendall(np.random.default_rng(s).normal(size=50)).significant(0.01) for s in range(20)
    )
    assert rejections <= 1


def test_ties_reduce_the_variance() -> None:
    x = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3], dtype=float)
    mk = mann_kendall(x)
    # 27 increasing pairs, 9 tied pairs; tie-corrected var = (9*8*23 - 3*(3*2*11)) / 18
    assert mk.s == 27
    assert mk.z == pytest.approx((27 - 1) / np.sqrt((9 * 8 * 23 - 3 * 3 * 2 * 11) / 18))


def test_sen_slope_is_per_unit_of_the_given_times() -> None:
    t = np.array([0.0, 1.0, 3.0, 4.0, 9.0, 10.0])  # irregular days
    assert mann_kendall(2 * t + 1, t=t).sen_slope == pytest.approx(2.0)


def test_week_over_week_hand_computed() -> None:
    ts = pd.date_range("2026-01-01", periods=14, freq="D")
    values = pd.Series([1.0] * 7 + [2.0] * 7)
    wow = week_over_week(pd.Series(ts), values)
    assert wow.last_week_mean == 2.0 and wow.previous_week_mean == 1.0
    assert wow.change == 1.0 and wow.pct_change == 1.0
    assert week_over_week(pd.Series(ts[:5]), values[:5]) is None


def test_trend_row_verdict_follows_the_metric_direction() -> None:
    ts = pd.Series(pd.date_range("2026-01-01", periods=30, freq="D"))
    rising = pd.Series(np.arange(30, dtype=float))
    assert (
        metric_trend_row("lat", ts, rising, better_sign=-1, alpha=0.05, min_points=6)["verdict"]
        == "worsening"
    )
    assert (
        metric_trend_row("hit", ts, rising, better_sign=1, alpha=0.05, min_points=6)["verdict"] == "improving"
    )
    assert metric_trend_row("hit", ts[:4], rising[:4], better_sign=1, alpha=0.05, min_points=6) is None

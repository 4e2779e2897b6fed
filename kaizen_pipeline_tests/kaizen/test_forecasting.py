"""The forecaster on synthetic metric histories: AR(1) recovery, season, intervals, warnings, anomalies, MASE."""

from __future__ import annotations

import numpy as np
import pytest

from kaizen_pipeline.kaizen.forecasting import (
    apply_effect,
    detect_anomalies,
    early_warning,
    fit_forecast,
    fit_model,
    mase,
    rolling_origin_accuracy,
    rolling_robust_z,
    seasonal_profile,
)

WEEK = np.array([0.0, 1.0, 2.0, 1.0, 0.0, -2.0, -2.0])


def ar1(phi: float, n: int, seed: int, sigma: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0, sigma, n + 200)
    x = np.zeros(n + 200)
    for t in range(1, n + 200):
        x[t] = phi * x[t - 1] + e[t]
    return x[200:]


@pytest.mark.parametrize(("phi", "seed"), [(0.5, 1), (0.8, 2)])
def test_recovers_an_ar1_coefficient(phi: float, seed: int) -> None:
    model = fit_model(40 + ar1(phi, 500, seed), season_length=7)
    assert model.choice.order == (1, 0, 0)
    assert not model.choice.seasonal
    assert model.choice.ar_params[0] == pytest.approx(phi, abs=0.08)
    assert [c[0] for c in model.choice.candidates][0] == (1, 0, 0)  # the AIC ranking is exposed


def test_keeps_a_weekly_season_only_when_there_is_one() -> None:
    seasonal = fit_model(10 + np.tile(WEEK, 40) + ar1(0.5, 280, 3, sigma=0.5), season_length=7)
    assert seasonal.choice.seasonal and seasonal.choice.season_length == 7
    np.testing.assert_allclose(seasonal.profile, WEEK - WEEK.mean(), atol=0.25)
    spurious = sum(
        fit_model(10 + ar1(0.5, 280, seed), season_length=7).choice.seasonal for seed in range(10, 20)
    )
    assert spurious <= 1  # the likelihood-ratio test runs at 1%


def test_seasonal_profile_of_an_exact_pattern() -> None:
    np.testing.assert_allclose(seasonal_profile(5 + np.tile(WEEK, 6), 7), WEEK - WEEK.mean(), atol=1e-12)


def test_forecast_continues_the_season_and_intervals_widen() -> None:
    y = 10 + np.tile(WEEK, 30) + ar1(0.6, 210, 5, sigma=0.3)
    fc = fit_forecast(y, 14, season_length=7, alpha=0.05)
    expected = 10 + WEEK[np.arange(210, 224) % 7]
    assert np.abs(fc.mean[7:] - expected[7:]).max() < 0.6  # far out: level + season
    assert np.all(fc.lower < fc.mean) and np.all(fc.mean < fc.upper)
    width = fc.upper - fc.lower
    assert width[-1] > width[0]
    assert fc.horizon == 14


def test_random_walk_with_drift_is_differenced_and_keeps_climbing() -> None:
    y = 0.5 * np.arange(120) + np.random.default_rng(6).normal(0, 1, 120).cumsum()
    model = fit_model(y, season_length=7)
    assert model.choice.order[1] == 1 and model.choice.drift == pytest.approx(0.5, abs=0.3)
    assert model.forecast(10).mean[-1] > y[-1] + 2


def test_trend_stationary_series_is_extrapolated_along_its_line() -> None:
    y = 3 + 0.5 * np.arange(120) + ar1(0.5, 120, 6)
    model = fit_model(y, season_length=7)
    assert model.choice.order[1] == 0 and model.choice.drift == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(model.forecast(14).mean[-1], 3 + 0.5 * 133, atol=1.5)


def test_persistent_level_series_is_neither_differenced_nor_trended() -> None:
    choices = [fit_model(50 + ar1(0.9, 365, seed)).choice for seed in range(6)]
    assert sum(c.order[1] == 0 and c.drift == 0 for c in choices) >= 5


def test_short_history_falls_back_to_the_mean() -> None:
    fc = fit_forecast(np.array([1.0, 2.0, 3.0, 2.0]), 3)
    np.testing.assert_allclose(fc.mean, 2.0)
    assert fc.model.label == "ARIMA(0,0,0)"


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="y: contains NaN"):
        fit_model(np.array([1.0, np.nan, 2.0] * 5))
    with pytest.raises(ValueError, match="horizon"):
        fit_forecast(np.arange(20.0), 0)


def test_early_warning_when_the_forecast_crosses_the_deviation_line() -> None:
    y = 100 - 1.0 * np.arange(60) + np.random.default_rng(7).normal(0, 0.3, 60)  # falling metric
    fc = fit_forecast(y, 14)
    line = y[-1] - 5.5  # about six days of decline away
    warning = early_warning(fc, line, "higher")
    assert warning.crosses and 4 <= warning.first_step <= 8
    assert warning.first_interval_step <= warning.first_step
    assert not early_warning(fc, line - 100, "higher").crosses
    lower_is_better = early_warning(fc, y[-1] + 50, "lower")
    assert not lower_is_better.crosses and lower_is_better.max_probability < 0.01


def test_what_if_shifts_the_forecast_by_the_effect_from_the_start_step() -> None:
    fc = fit_forecast(10 + ar1(0.5, 100, 8), 5)
    shifted = apply_effect(fc, 2.0, start_step=3)
    np.testing.assert_allclose(shifted.mean - fc.mean, [0, 0, 2, 2, 2])
    np.testing.assert_allclose(shifted.upper - shifted.lower, fc.upper - fc.lower)


@pytest.mark.parametrize("seed", range(5))
def test_an_injected_anomaly_is_flagged_and_nothing_else(seed: int) -> None:
    clean = 20 + np.tile(WEEK, 18)[:120] + ar1(0.6, 120, seed)
    assert detect_anomalies(fit_model(clean), threshold=4.0).empty
    spiked = clean.copy()
    spiked[80] += 8.0
    found = detect_anomalies(fit_model(spiked), threshold=4.0)
    assert found["index"].tolist() == [80]  # not the point after it, whose prediction the spike pulled
    assert found["residual_z"].iloc[0] > 4


def test_robust_z_ignores_one_outlier_in_its_window() -> None:
    x = np.r_[np.tile([9.0, 10.0, 11.0], 10), 100.0, 10.0, 25.0]
    z = rolling_robust_z(x, window=30, min_periods=10)
    assert np.isnan(z[:10]).all()
    assert z[30] > 50
    assert z[32] == pytest.approx(
        (25 - 10) * 0.6744897501960817
    )  # MAD 1 x 1/Phi^-1(0.75); the 100 does not inflate it


def test_mase_hand_computed() -> None:
    insample = np.array([1.0, 3.0, 2.0, 4.0])  # naive one-step MAE = (2 + 1 + 2) / 3
    assert mase(np.array([5.0, 5.0]), np.array([4.0, 6.0]), insample) == pytest.approx(1 / (5 / 3))
    assert mase(np.array([1.0]), np.array([1.0]), np.ones(5)) != mase(
        np.array([1.0]), np.array([1.0]), np.ones(5)
    )


def test_rolling_origin_accuracy_beats_the_naive_forecast_on_a_seasonal_series() -> None:
    y = 10 + np.tile(WEEK, 20) + ar1(0.5, 140, 9, sigma=0.4)
    acc = rolling_origin_accuracy(y, 14, 4, season_length=7)
    assert acc.origins == 4 and acc.horizon == 14
    assert acc.mase < acc.naive_mase
    assert 0 < acc.skill < 1
    assert rolling_origin_accuracy(y[:12], 14, 4, min_train=10) is None

"""Walk-forward win-probability calibration: outcomes, shrinkage, and its Brier score by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.research.calibration import (
    CalibrationConfig,
    brier,
    calibrate_walk_forward,
    reliability_table,
    signal_outcomes,
)

T0 = pd.Timestamp("2026-03-02")
CONFIG = CalibrationConfig(refit_hours=24, prior_signals=30, min_signals=10, hold_buckets=4)


def _simulated(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """Signals over 20 days whose tokens pay out with log-odds logit(q) + shift x strength."""
    q = rng.uniform(0.15, 0.85, n)
    strength = rng.uniform(0, 1, n)
    p = 1 / (1 + np.exp(-(np.log(q / (1 - q)) + shift * strength)))
    ts = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 20 * 24 * 60, n)).astype(int), "min")
    return pd.DataFrame(
        {
            "rule": "hype_lead",
            "bucket_ts": ts,
            "signal_price": q,
            "strength": strength,
            "outcome": (rng.random(n) < p).astype(float),  # resolved tokens pay 0 or 1
            "outcome_at": ts + pd.Timedelta(hours=2),
        }
    )


def _brier_gain(signals: pd.DataFrame) -> float:
    scored = calibrate_walk_forward(signals, CONFIG)
    learned = scored[scored["calibration_n"] > 0]
    return brier(learned["signal_price"], learned["outcome"]) - brier(learned["win_prob"], learned["outcome"])


@pytest.mark.slow
def test_with_a_real_edge_the_calibration_beats_the_market_price_in_most_worlds() -> None:
    """200 simulated worlds of 400 signals with a true edge: the out-of-sample Brier beats the price's in >= 90%."""
    gains = [_brier_gain(_simulated(np.random.default_rng(seed), 400, shift=1.2)) for seed in range(200)]
    assert np.mean(np.array(gains) > 0) >= 0.9


@pytest.mark.slow
def test_without_an_edge_the_shrunk_calibration_costs_little() -> None:
    """200 worlds where the price is right: the calibration's Brier is never much worse than the price's."""
    gains = np.array(
        [_brier_gain(_simulated(np.random.default_rng(seed), 400, shift=0.0)) for seed in range(200)]
    )
    # Fitting two parameters to noise costs something (measured: 0.0021 on a Brier score of ~0.2,
    # 1%); the shrinkage toward the price keeps it that small.
    assert np.quantile(gains, 0.05) > -0.006
    assert -0.004 < float(np.mean(gains)) <= 0.0


def test_thin_history_uses_the_price_and_history_after_the_refit_is_not_used() -> None:
    signals = _simulated(np.random.default_rng(1), 200, shift=2.0)
    scored = calibrate_walk_forward(signals, CONFIG)
    first_day = scored["bucket_ts"] < T0 + pd.Timedelta(days=1)
    assert (scored.loc[first_day, "calibration_n"] == 0).all()
    np.testing.assert_allclose(scored.loc[first_day, "win_prob"], scored.loc[first_day, "signal_price"])
    # a day's model learned only from outcomes known by midnight before it
    for day, part in scored[~first_day].groupby(scored["bucket_ts"].dt.floor("D")):
        known = int((signals["outcome_at"] <= day).sum())
        assert (part["calibration_n"] == (known if known >= CONFIG.min_signals else 0)).all()


def test_outcome_is_the_token_price_hold_buckets_after_the_fill() -> None:
    index = pd.date_range(T0, periods=12, freq="15min")
    grid = pd.DataFrame({"m1": np.linspace(0.40, 0.62, 12)}, index=index)
    signals = pd.DataFrame(
        {
            "market_id": ["m1", "m1", "m1"],
            "direction": ["YES", "NO", "YES"],
            "bucket_ts": [index[0], index[2], index[9]],
            "fill_ts": [index[1], index[3], index[10]],
        }
    )
    out = signal_outcomes(signals, grid, CONFIG)
    assert out.loc[0, "outcome"] == pytest.approx(grid["m1"].iloc[5])
    assert out.loc[1, "outcome"] == pytest.approx(1 - grid["m1"].iloc[7])  # the NO token's price
    assert out.loc[0, "outcome_at"] == index[5]
    assert np.isnan(out.loc[2, "outcome"]) and pd.isna(out.loc[2, "outcome_at"])  # not known yet


def test_reliability_table_has_totals_and_bins_per_rule() -> None:
    scored = calibrate_walk_forward(_simulated(np.random.default_rng(2), 300, shift=1.0), CONFIG)
    table = reliability_table(scored)
    totals = table[table["bin"] == -1].set_index("rule")
    assert set(totals.index) == {"*", "hype_lead"}
    assert totals.loc["*", "n"] == len(scored)
    bins = table[(table["rule"] == "hype_lead") & (table["bin"] >= 0)]
    assert bins["n"].sum() == len(scored)
    assert (
        (bins["mean_predicted"] >= bins["bin"] / 10) & (bins["mean_predicted"] <= (bins["bin"] + 1) / 10)
    ).all()

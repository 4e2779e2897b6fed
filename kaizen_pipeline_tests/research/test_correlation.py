"""Hype-price correlation: BH adjustment, lag recovery, Granger, pre-whitening, the sample-size floor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from kaizen_pipeline.research.correlation import (
    CorrelationConfig,
    benjamini_hochberg,
    granger_pvalue,
    hype_price_correlations,
    lagged_correlations,
    lead_lag_recovery,
    winsorize_mad,
)


def test_benjamini_hochberg_hand_computed() -> None:
    adj = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.2 -> x4/rank = 0.04, 0.06, 0.0533, 0.2 -> running min from the top
    assert adj[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(adj[4])


def test_lagged_correlation_peaks_at_the_lead() -> None:
    rng = np.random.default_rng(1)
    hype = rng.standard_normal(600)
    returns = np.concatenate([np.zeros(3), hype[:-3]]) * -0.5 + 0.1 * rng.standard_normal(600)
    table = lagged_correlations(hype, returns, max_lag=5)
    best = table.loc[table["pearson"].abs().idxmax()]
    assert best["lag"] == 3 and best["pearson"] < -0.9
    assert table.set_index("lag").loc[-3, "n"] == 597


def test_granger_detects_a_lead_and_not_noise() -> None:
    rng = np.random.default_rng(2)
    hype = rng.standard_normal(500)
    effect = np.concatenate([np.zeros(2), hype[:-2]]) * 0.3 + rng.standard_normal(500)
    assert granger_pvalue(hype, effect, max_lag=4) < 1e-4
    assert granger_pvalue(hype, rng.standard_normal(500), max_lag=4) > 0.01


def test_winsorize_clips_a_jump_only() -> None:
    x = np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.9])
    w = winsorize_mad(x, 5.0)
    assert w[:5] == pytest.approx(x[:5]) and w[5] < 0.2


def _panel(lags: dict[str, int | None], n: int = 500, seed: int = 3, measured: bool = True) -> pd.DataFrame:
    """Bursty AR(1) hype (seen through Poisson post counts when ``measured``); returns follow it by the lag."""
    rng = np.random.default_rng(seed)
    frames = []
    for market_id, lag in lags.items():
        shocks = np.where(rng.random(n) < 0.03, rng.exponential(10, n), 0.0)
        hype = lfilter([1.0], [1.0, -0.8], shocks)
        ret = 0.02 * rng.standard_normal(n)
        if lag is not None:
            ret += 0.004 * np.concatenate([np.zeros(lag), hype[:-lag]])
        frames.append(
            pd.DataFrame(
                {
                    "market_id": market_id,
                    "bucket_ts": pd.date_range("2026-03-01", periods=n, freq="15min"),
                    "hype": np.log1p(rng.poisson(0.5 * (1 + hype))) if measured else hype,
                    "ret": ret,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_planted_lags_are_recovered_and_nulls_stay_clean() -> None:
    planted = {"a": 2, "b": 5, "c": 8, "d": None, "e": None, "f": None}
    res = hype_price_correlations(_panel(planted), CorrelationConfig(max_lag=8, min_samples=200)).set_index(
        "market_id"
    )
    for m in ("a", "b", "c"):
        assert res.loc[m, "best_lag"] == planted[m]
        assert res.loc[m, "significant"] and res.loc[m, "lead_direction"] == 1
    assert not res.loc[["d", "e", "f"], "significant"].any()
    # adjusted p-values are BH of the raw ones
    assert res["granger_p_adj"].to_numpy() == pytest.approx(benjamini_hochberg(res["granger_p"].to_numpy()))
    by_lag = json.loads(res.loc["b", "pearson_by_lag"])
    assert set(by_lag) == {str(k) for k in range(-8, 9)}


def test_prewhitening_sharpens_the_peak_of_persistent_hype() -> None:
    panel = _panel({"a": 4}, n=700, seed=5, measured=False)

    def peak_ratio(order: int) -> float:
        res = hype_price_correlations(panel, CorrelationConfig(prewhiten_order=order)).iloc[0]
        assert res["best_lag"] == 4
        by_lag = {int(k): abs(v) for k, v in json.loads(res["pearson_by_lag"]).items()}
        return by_lag[4] / max(by_lag[3], by_lag[5])

    assert peak_ratio(0) < 1.5  # persistent hype smears the peak over the neighbouring lags
    assert peak_ratio(1) > 3.0


def test_too_few_samples_is_never_significant() -> None:
    panel = _panel({"short": 2}, n=120)
    res = hype_price_correlations(panel, CorrelationConfig(min_samples=200)).iloc[0]
    assert res["n_samples"] == 120 and not res["enough_samples"]
    assert not res["significant"] and np.isnan(res["granger_p_adj"])


def test_only_the_longest_complete_run_is_used() -> None:
    panel = _panel({"gappy": 3}, n=600)
    panel.loc[100, "hype"] = np.nan
    res = hype_price_correlations(panel, CorrelationConfig()).iloc[0]
    assert res["n_samples"] == 499


def test_lead_lag_recovery_needs_significance_lag_and_direction() -> None:
    found = pd.DataFrame(
        {
            "market_id": ["hit", "wrong_lag", "wrong_sign", "not_sig", "null_ok", "null_false_alarm"],
            "significant": [True, True, True, False, False, True],
            "best_lag": pd.array([4, 3, 4, 4, 1, 2], dtype="Int64"),
            "lead_direction": [1, 1, -1, 1, 1, 1],
            "granger_p_adj": [0.001, 0.01, 0.01, 0.3, 0.8, 0.02],
        }
    )
    lags = {"hit": 4, "wrong_lag": 4, "wrong_sign": 4, "not_sig": 4, "missing_row": 2,
            "null_ok": None, "null_false_alarm": None}  # fmt: skip
    score = lead_lag_recovery(found, lags, {m: 1 for m in lags})
    assert (score.recovered, score.leads, score.clean, score.no_lead) == (1, 5, 1, 2)
    assert score.recovered_share == pytest.approx(0.2) and score.clean_share == pytest.approx(0.5)
    assert sorted(score.misses["market_id"]) == [
        "missing_row", "not_sig", "null_false_alarm", "wrong_lag", "wrong_sign"
    ]  # fmt: skip
    assert "1/5 = 20%" in score.summary() and "1/2 = 50%" in score.summary()

"""Market features: hand-computed RVR, ROC, volatility; the bucket grid, volume coverage and spreads."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.research.features import (
    FeatureConfig,
    build_market_features,
    rate_of_change,
    realized_volatility,
    relative_volume_ratio,
)

T0 = pd.Timestamp("2026-03-02 00:00")


def ts(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=15 * k)


def test_rvr_is_recent_mean_over_the_baseline_before_it() -> None:
    volume = pd.Series([1.0, 2.0, 3.0, 4.0, 10.0])
    rvr = relative_volume_ratio(volume, recent_buckets=2, baseline_buckets=2, min_periods=2)
    # t=4: recent = (4 + 10) / 2 = 7; baseline = buckets 1..2 = (2 + 3) / 2 = 2.5
    assert rvr.iloc[4] == pytest.approx(7 / 2.5)
    # t=3: recent = (3 + 4) / 2 = 3.5; baseline = buckets 0..1 = 1.5
    assert rvr.iloc[3] == pytest.approx(3.5 / 1.5)
    assert rvr.iloc[:3].isna().all()


def test_rvr_single_spike_against_a_flat_day() -> None:
    volume = pd.Series([100.0] * 96 + [500.0])
    rvr = relative_volume_ratio(volume, recent_buckets=1, baseline_buckets=96, min_periods=24)
    assert rvr.iloc[-1] == pytest.approx(5.0)
    assert rvr.iloc[-2] == pytest.approx(1.0)


def test_rvr_undefined_on_zero_baseline_or_short_history() -> None:
    volume = pd.Series([0.0, 0.0, 0.0, 5.0])
    assert math.isnan(relative_volume_ratio(volume, 1, 3, 1).iloc[-1])
    short = pd.Series([1.0, 1.0, 3.0])
    assert math.isnan(relative_volume_ratio(short, 1, 10, 5).iloc[-1])


def test_roc_uses_the_price_k_buckets_back() -> None:
    price = pd.Series([0.50, 0.52, 0.60, 0.45])
    roc = rate_of_change(price, lookback=2)
    assert roc.iloc[2] == pytest.approx((0.60 - 0.50) / 0.50)
    assert roc.iloc[3] == pytest.approx((0.45 - 0.52) / 0.52)
    assert roc.iloc[:2].isna().all()


def test_realized_volatility_is_the_sample_std_of_returns() -> None:
    rets = pd.Series([0.1, -0.1, 0.1, -0.1])
    vol = realized_volatility(rets, window=4)
    assert vol.iloc[-1] == pytest.approx(math.sqrt(4 * 0.01 / 3))


def _inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    prices = pd.DataFrame(
        {
            "market_id": ["m1"] * 5,
            # two points in bucket 0 (the last one counts), a gap at bucket 3
            "ts": [ts(0), ts(0) + pd.Timedelta(minutes=10), ts(1), ts(2), ts(4)],
            "price": [0.40, 0.50, 0.55, 0.60, 0.66],
        }
    )
    volumes = pd.DataFrame(
        {"market_id": ["m1", "m1"], "bucket_ts": [ts(2), ts(4)], "volume_usd": [100.0, 300.0]}
    )
    markets = pd.DataFrame(
        {"market_id": ["m1"], "category": ["Crypto"], "yes_token_id": ["y1"], "no_token_id": ["n1"]}
    )
    snapshots = pd.DataFrame(
        {
            "market_id": ["m1", "m1"],
            "snapshot_ts": [ts(1), ts(3)],
            "best_bid": [0.54, 0.60],
            "best_ask": [0.56, None],
            "spread": [0.02, 0.04],
            "liquidity": [1000.0, 2000.0],
        }
    )
    return prices, volumes, markets, snapshots


def test_build_market_features_grid_and_columns() -> None:
    prices, volumes, markets, snapshots = _inputs()
    hype = pd.DataFrame({"market_id": ["m1"], "bucket_ts": [ts(4)], "hype_index": [80.0]})
    cfg = FeatureConfig(
        rvr_recent_buckets=1, rvr_baseline_buckets=2, rvr_min_periods=2, roc_lookback_buckets=2
    )
    f = build_market_features(prices, volumes, markets, cfg, snapshots=snapshots, hype=hype).set_index(
        "bucket_ts"
    )
    assert list(f.index) == [ts(k) for k in range(5)]
    assert f["yes_price"].tolist() == pytest.approx(
        [0.50, 0.55, 0.60, 0.60, 0.66]
    )  # last in bucket, gap carried
    assert f.loc[ts(1), "ret"] == pytest.approx(0.55 / 0.50 - 1)
    assert f.loc[ts(4), "roc"] == pytest.approx((0.66 - 0.60) / 0.60)
    # trade history starts at bucket 2: before it volume is unknown, inside it a quiet bucket is 0
    assert f["volume_usd"].iloc[:2].isna().all()
    assert f.loc[ts(3), "volume_usd"] == 0.0
    assert f.loc[ts(4), "rvr"] == pytest.approx(300.0 / 50.0)  # baseline = (100 + 0) / 2
    # spread from the book (ask - bid), the reported spread when a side is missing, first snapshot before
    assert f.loc[ts(0), "spread"] == pytest.approx(0.02)
    assert f.loc[ts(2), "spread"] == pytest.approx(0.02)
    assert f.loc[ts(3), "spread"] == pytest.approx(0.04)
    assert f.loc[ts(4), "liquidity"] == 2000.0
    assert f["category"].unique().tolist() == ["Crypto"]
    assert f.loc[ts(4), "hype_index"] == 80.0 and np.isnan(f.loc[ts(3), "hype_index"])


def test_bad_price_is_rejected_with_the_field_named() -> None:
    prices, volumes, markets, _ = _inputs()
    prices.loc[2, "price"] = 1.7
    with pytest.raises(ValueError, match=r"price_points\.price"):
        build_market_features(prices, volumes, markets, FeatureConfig())


def test_missing_column_is_named() -> None:
    prices, volumes, markets, _ = _inputs()
    with pytest.raises(ValueError, match="volume_usd"):
        build_market_features(prices, volumes.drop(columns=["volume_usd"]), markets, FeatureConfig())

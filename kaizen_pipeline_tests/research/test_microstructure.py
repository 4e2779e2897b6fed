"""Order-book and large-trade features: formulas, as-of joins with a staleness limit, NaN for missing books."""

import json

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.research.features import FEATURE_COLUMNS, FeatureConfig, build_market_features
from kaizen_pipeline.research.microstructure import (
    MICROSTRUCTURE_COLUMNS,
    MicrostructureConfig,
    microstructure_features,
    snapshot_features,
)

T0 = pd.Timestamp("2026-03-02 00:00")
CONFIG = MicrostructureConfig(bucket_minutes=15, max_age_buckets=2)


def at(bucket: int, minutes: float = 0.0) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=15 * bucket + minutes)


def book(market: str, ts: pd.Timestamp, bids: list, asks: list, outcome: str = "Yes") -> dict:
    return {
        "market_id": market,
        "outcome": outcome,
        "book_ts": ts,
        "bids": json.dumps(bids),
        "asks": json.dumps(asks),
    }


def grid(market: str = "m1", n: int = 8) -> pd.DataFrame:
    return pd.DataFrame({"market_id": market, "bucket_ts": [at(k) for k in range(n)]})


def test_mid_spread_depth_in_usd_and_imbalance_of_one_book() -> None:
    bids = [[0.50, 100], [0.495, 40], [0.48, 200], [0.44, 1000]]
    asks = [[0.52, 50], [0.53, 10], [0.56, 300], [0.60, 5000]]
    row = snapshot_features(pd.DataFrame([book("m1", at(0), bids, asks)])).iloc[0]
    assert row["book_mid"] == pytest.approx(0.51) and row["book_spread"] == pytest.approx(0.02)
    # within 1 cent of 0.51: bids at 0.50 (0.495 is 1.5 cents away), asks at 0.52
    assert row["depth_1c_usd"] == pytest.approx(0.50 * 100 + 0.52 * 50)
    bid_5c = 0.50 * 100 + 0.495 * 40 + 0.48 * 200  # 0.44 is 7 cents away
    ask_5c = 0.52 * 50 + 0.53 * 10 + 0.56 * 300  # 0.56 is exactly 5 cents away: counted
    assert row["depth_5c_usd"] == pytest.approx(bid_5c + ask_5c)
    assert row["book_imbalance"] == pytest.approx((bid_5c - ask_5c) / (bid_5c + ask_5c))


def test_crossed_and_one_sided_books_give_nan() -> None:
    frame = pd.DataFrame(
        [
            book("m1", at(0), [[0.55, 10]], [[0.53, 10]]),  # crossed
            book("m1", at(1), [], [[0.53, 10]]),  # no bids
            book("m1", at(2), [[0.5, 10]], []),  # no asks
        ]
    )
    assert (
        snapshot_features(frame)[["book_mid", "book_spread", "depth_5c_usd", "book_imbalance"]]
        .isna()
        .all()
        .all()
    )


def test_each_bucket_takes_the_newest_book_at_or_before_it_within_the_staleness_limit() -> None:
    books = pd.DataFrame(
        [
            book("m1", at(1, 3), [[0.40, 10]], [[0.42, 10]]),
            book("m1", at(1, 9), [[0.41, 10]], [[0.43, 10]]),  # newer in the same bucket: wins
            book("m1", at(1, 5), [[0.1, 10]], [[0.9, 10]], outcome="No"),  # NO books are not read
            book("m1", at(6, 14.9), [[0.60, 10]], [[0.62, 10]]),  # late in bucket 6: known at bucket 6
        ]
    )
    out = microstructure_features(grid(), books, None, CONFIG)
    mids = out["book_mid"].round(6).tolist()
    # bucket 0 has no book yet; 1..3 use the bucket-1 book (age 0..2); 4 and 5 are too stale; 6..7 the new one
    assert np.isnan(mids[0]) and mids[1:4] == [0.42, 0.42, 0.42]
    assert np.isnan(mids[4]) and np.isnan(mids[5]) and mids[6:] == [0.61, 0.61]
    assert out["whale_flow_usd"].isna().all()  # no large-trade data at all: unknown, not 0


def test_whale_flow_is_signed_toward_yes_and_zero_only_where_the_feed_is_known() -> None:
    whales = pd.DataFrame(
        {
            "market_id": ["m1", "m1", "m1", "m1", "m1", "m2"],
            "ts": [at(2, 1), at(2, 5), at(3, 1), at(3, 2), at(5, 14), at(1)],
            "outcome": ["Yes", "No", "Yes", "No", "Yes", "Yes"],
            "side": ["BUY", "SELL", "SELL", "BUY", "BUY", "BUY"],
            "usd": [1000.0, 500.0, 2000.0, 300.0, 50.0, 7.0],
        }
    )
    out = microstructure_features(grid(), None, whales, CONFIG)
    flow = out["whale_flow_usd"].tolist()
    # the feed starts at bucket 1 (m2's first trade): before it unknown, after it 0 without trades
    assert np.isnan(flow[0]) and flow[1] == 0.0
    assert flow[2:6] == [1500.0, -2300.0, 0.0, 50.0]
    assert out[MICROSTRUCTURE_COLUMNS[:-1]].isna().all().all()  # no books: NaN, never an error


def test_market_features_carry_the_book_columns_and_nan_without_books() -> None:
    ks = range(10)
    prices = pd.DataFrame(
        {"market_id": "m1", "ts": [at(k) for k in ks], "price": [0.5 + 0.01 * k for k in ks]}
    )
    volumes = pd.DataFrame({"market_id": "m1", "bucket_ts": [at(k) for k in ks], "volume_usd": 100.0})
    markets = pd.DataFrame({"market_id": ["m1"], "category": "X", "yes_token_id": "y", "no_token_id": "n"})
    config = FeatureConfig(rvr_recent_buckets=2, rvr_baseline_buckets=4, rvr_min_periods=2)
    plain = build_market_features(prices, volumes, markets, config)
    assert list(plain.columns) == FEATURE_COLUMNS and plain[MICROSTRUCTURE_COLUMNS].isna().all().all()
    books = pd.DataFrame([book("m1", at(4, 2), [[0.53, 100]], [[0.55, 100]])])
    whales = pd.DataFrame(
        {"market_id": ["m1"], "ts": [at(5)], "outcome": ["No"], "side": ["BUY"], "usd": [4000.0]}
    )
    with_books = build_market_features(prices, volumes, markets, config, books=books, whales=whales)
    by_bucket = with_books.set_index("bucket_ts")
    assert by_bucket.loc[at(4), "book_mid"] == pytest.approx(0.54)
    assert np.isnan(by_bucket.loc[at(3), "book_mid"])  # no back-fill from a later book
    assert np.isnan(by_bucket.loc[at(7), "book_mid"])  # 3 buckets old: stale (default limit 2)
    assert by_bucket.loc[at(5), "whale_flow_usd"] == -4000.0 and by_bucket.loc[at(6), "whale_flow_usd"] == 0.0
    pd.testing.assert_frame_equal(
        with_books.drop(columns=MICROSTRUCTURE_COLUMNS), plain.drop(columns=MICROSTRUCTURE_COLUMNS)
    )

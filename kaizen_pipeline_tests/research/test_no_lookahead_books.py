"""No look-ahead in the order-book and large-trade features: data after bucket t never changes a feature at or before t.

The sibling of test_no_lookahead.py for the microstructure inputs: order book snapshots (YES and
NO books at any time inside a bucket) and large trades, through ``build_market_features``.
"""

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kaizen_pipeline.research.features import FeatureConfig, build_market_features
from kaizen_pipeline.research.microstructure import MICROSTRUCTURE_COLUMNS

T0 = pd.Timestamp("2026-03-02")
N = 40
MARKETS = ["m1", "m2"]
BUCKET = pd.Timedelta(minutes=15)
FEATURES = FeatureConfig(rvr_recent_buckets=2, rvr_baseline_buckets=8, rvr_min_periods=4, roc_lookback_buckets=2,
                         volatility_window_buckets=8, book_max_age_buckets=2)  # fmt: skip


def _levels(rng: np.random.Generator, best: float, step: float) -> str:
    n = int(rng.integers(0, 6))  # sometimes an empty side
    return json.dumps([[round(best + step * i, 3), float(rng.integers(5, 500))] for i in range(n)])


def _world(rng: np.random.Generator, start_bucket: int = 0) -> tuple[pd.DataFrame, ...]:
    """Prices, volumes, books and large trades for buckets start_bucket..N-1."""
    ks = np.arange(start_bucket, N)
    prices, volumes, books, whales = [], [], [], []
    for m in MARKETS:
        p = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, len(ks))), 0.05, 0.95)
        prices.append(pd.DataFrame({"market_id": m, "ts": T0 + ks * BUCKET, "price": p.round(3)}))
        volumes.append(pd.DataFrame({"market_id": m, "bucket_ts": T0 + ks * BUCKET,
                                     "volume_usd": rng.exponential(100, len(ks))}))  # fmt: skip
        for k, price in zip(ks, p, strict=True):
            for _ in range(int(rng.poisson(0.7))):  # some buckets have no book, some several
                bid = round(price - float(rng.uniform(-0.01, 0.03)), 3)  # a few crossed books
                books.append({"market_id": m, "outcome": str(rng.choice(["Yes", "No"])),
                              "book_ts": T0 + k * BUCKET + pd.Timedelta(seconds=float(rng.uniform(0, 899.9))),
                              "bids": _levels(rng, bid, -0.01), "asks": _levels(rng, bid + 0.02, 0.01)})  # fmt: skip
            for _ in range(int(rng.poisson(0.5))):
                whales.append({"market_id": m, "ts": T0 + k * BUCKET + pd.Timedelta(seconds=float(rng.uniform(0, 899))),
                               "outcome": str(rng.choice(["Yes", "No"])), "side": str(rng.choice(["BUY", "SELL"])),
                               "usd": float(rng.uniform(1000, 9000))})  # fmt: skip
    book_cols = ["market_id", "outcome", "book_ts", "bids", "asks"]
    whale_cols = ["market_id", "ts", "outcome", "side", "usd"]
    return (pd.concat(prices), pd.concat(volumes), pd.DataFrame(books, columns=book_cols),
            pd.DataFrame(whales, columns=whale_cols))  # fmt: skip


def _features(
    prices: pd.DataFrame, volumes: pd.DataFrame, books: pd.DataFrame, whales: pd.DataFrame
) -> pd.DataFrame:
    markets = pd.DataFrame({"market_id": MARKETS, "category": "X", "yes_token_id": "y", "no_token_id": "n"})
    return build_market_features(prices, volumes, markets, FEATURES, books=books, whales=whales)


def _cut(frames: tuple[pd.DataFrame, ...], t: pd.Timestamp) -> tuple[pd.DataFrame, ...]:
    prices, volumes, books, whales = frames
    return (
        prices[prices["ts"] <= t],
        volumes[volumes["bucket_ts"] <= t],
        books[books["book_ts"] < t + BUCKET],  # bucket t holds [t, t + bucket)
        whales[whales["ts"] < t + BUCKET],
    )


def _upto(features: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    return features[features["bucket_ts"] <= t].reset_index(drop=True)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), other=st.integers(0, 2**32 - 1), t_bucket=st.integers(3, N - 2))
def test_changing_books_or_trades_after_t_never_changes_features_up_to_t(
    seed: int, other: int, t_bucket: int
) -> None:
    t = T0 + t_bucket * BUCKET
    original = _world(np.random.default_rng(seed))
    replacement = _world(np.random.default_rng(other), start_bucket=t_bucket + 1)
    kept = _cut(original, t)
    changed = tuple(pd.concat([a, b], ignore_index=True) for a, b in zip(kept, replacement, strict=True))
    before = _upto(_features(*original), t)
    pd.testing.assert_frame_equal(before, _upto(_features(*changed), t), check_dtype=False)
    pd.testing.assert_frame_equal(
        before, _upto(_features(*kept), t), check_dtype=False
    )  # no data after t at all


def test_the_book_features_are_not_vacuous_and_later_books_do_move_later_features() -> None:
    original = _world(np.random.default_rng(3))
    t = T0 + 20 * BUCKET
    changed = tuple(
        pd.concat([a, b], ignore_index=True)
        for a, b in zip(_cut(original, t), _world(np.random.default_rng(9), start_bucket=21), strict=True)
    )
    before, after = _features(*original), _features(*changed)
    early = _upto(before, t)
    assert early["book_mid"].notna().sum() > 5 and early["book_mid"].isna().sum() > 0
    assert early["whale_flow_usd"].ne(0).sum() > 3
    later = before["bucket_ts"] > t
    assert not before.loc[later, MICROSTRUCTURE_COLUMNS].equals(after.loc[later, MICROSTRUCTURE_COLUMNS])

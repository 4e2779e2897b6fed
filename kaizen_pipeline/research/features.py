"""Market features per market and bucket: price, return, RVR, ROC, realized volatility, spread, liquidity.

Pure module (no Dagster). Every value at bucket t uses only data up to t, so the signal rule
built on these features has no look-ahead. Formulas (windows in buckets, from config
``research.*``):

- ``yes_price`` p_t: the YES token's last price in the bucket, carried forward at most
  ``price_ffill_limit_buckets`` buckets over gaps.
- ``ret`` r_t = p_t / p_{t-1} - 1 (simple return per bucket of data_collection.frequency_minutes).
- ``rvr`` (relative volume ratio) = mean(v_{t-R+1..t}) / mean(v_{t-R-B+1..t-R}) with R =
  ``rvr_recent_buckets`` and B = ``rvr_baseline_buckets``: recent volume over its trailing
  average, the baseline window ending where the recent one starts. Undefined (NaN) while fewer
  than ``rvr_min_periods`` baseline buckets have volume data or when the baseline is 0.
  Buckets without trades inside the trade-history window count as volume 0; buckets before
  the trade history starts are unknown (NaN).
- ``roc`` (rate of change) = (p_t - p_{t-k}) / p_{t-k}, k = ``roc_lookback_buckets``.
- ``volatility`` (realized volatility) = sample standard deviation of r over the last
  ``volatility_window_buckets`` buckets (per-bucket units, not annualized; at least a quarter
  of the window must be present).
- ``spread`` = best_ask - best_bid (or the reported spread when a side is missing) and
  ``liquidity`` from the market snapshots, as of the latest snapshot at or before t. The
  APIs keep no order-book history, so buckets before a market's first snapshot carry that
  first snapshot's values: they are descriptive columns and the signal rule does not use them.
- ``book_mid``, ``book_spread``, ``depth_1c_usd``, ``depth_5c_usd``, ``book_imbalance``,
  ``whale_flow_usd``: order-book and large-trade features from ``research/microstructure.py``,
  as of the newest YES book at most ``book_max_age_buckets`` old (NaN without one; no back-fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, bucket_freq
from kaizen_pipeline.research.microstructure import (
    MICROSTRUCTURE_COLUMNS,
    MicrostructureConfig,
    microstructure_features,
)

FEATURE_COLUMNS = [
    "market_id",
    "bucket_ts",
    "category",
    "yes_token_id",
    "no_token_id",
    "yes_price",
    "ret",
    "volume_usd",
    "rvr",
    "roc",
    "volatility",
    "spread",
    "liquidity",
    "hype_index",
    *MICROSTRUCTURE_COLUMNS,
]


@dataclass(frozen=True)
class FeatureConfig:
    """Windows of the market features, in buckets of ``bucket_minutes``."""

    bucket_minutes: int = DEFAULT_BUCKET_MINUTES
    rvr_recent_buckets: int = 4
    rvr_baseline_buckets: int = 96
    rvr_min_periods: int = 24
    roc_lookback_buckets: int = 4
    volatility_window_buckets: int = 96
    price_ffill_limit_buckets: int = 8
    book_max_age_buckets: int = 2

    @property
    def freq(self) -> str:
        return bucket_freq(self.bucket_minutes)

    @property
    def lookback_buckets(self) -> int:
        """Buckets of inputs before a bucket that its features can depend on (every window end to end)."""
        return (
            self.rvr_recent_buckets
            + self.rvr_baseline_buckets
            + self.roc_lookback_buckets
            + self.volatility_window_buckets
            + self.price_ffill_limit_buckets
            + self.book_max_age_buckets
            + 2
        )

    @property
    def microstructure(self) -> MicrostructureConfig:
        return MicrostructureConfig(self.bucket_minutes, self.book_max_age_buckets)


def _require(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def relative_volume_ratio(
    volume: pd.Series, recent_buckets: int, baseline_buckets: int, min_periods: int
) -> pd.Series:
    """RVR_t = mean(v over the last ``recent_buckets``) / mean(v over the ``baseline_buckets`` before them)."""
    volume = volume.astype(float)
    recent = volume.rolling(recent_buckets, min_periods=recent_buckets).mean()
    baseline = (
        volume.shift(recent_buckets)
        .rolling(baseline_buckets, min_periods=min(min_periods, baseline_buckets))
        .mean()
    )
    ratio = recent / baseline.where(baseline > 0)
    return ratio.rename("rvr")


def rate_of_change(price: pd.Series, lookback: int) -> pd.Series:
    """ROC_t = (p_t - p_{t-k}) / p_{t-k} with k = ``lookback`` (NaN when p_{t-k} is missing or <= 0)."""
    price = price.astype(float)
    past = price.shift(lookback)
    return ((price - past) / past.where(past > 0)).rename("roc")


def simple_returns(price: pd.Series) -> pd.Series:
    """r_t = p_t / p_{t-1} - 1 (NaN when either price is missing or p_{t-1} <= 0)."""
    price = price.astype(float)
    prev = price.shift(1)
    return (price / prev.where(prev > 0) - 1.0).rename("ret")


def realized_volatility(returns: pd.Series, window: int) -> pd.Series:
    """Sample standard deviation of the last ``window`` returns (at least window/4 of them present)."""
    return returns.rolling(window, min_periods=max(2, window // 4)).std().rename("volatility")


def bucket_last_price(prices: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Price points (market_id, ts, price) -> the last price per market and bucket (bucket_ts, price)."""
    _require(prices, "price_points", ["market_id", "ts", "price"])
    if prices.empty:
        return pd.DataFrame(columns=["market_id", "bucket_ts", "price"])
    frame = prices[["market_id", "ts", "price"]].copy()
    frame["ts"] = pd.to_datetime(frame["ts"])
    bad = frame["price"].isna() | (frame["price"] < 0) | (frame["price"] > 1)
    if bad.any():
        row = frame[bad].iloc[0]
        raise ValueError(
            f"price_points.price: {row['price']!r} for market {row['market_id']} is not in [0, 1]"
        )
    frame["bucket_ts"] = frame["ts"].dt.floor(freq)
    frame = frame.sort_values(["market_id", "ts"])
    return frame.groupby(["market_id", "bucket_ts"], as_index=False)["price"].last()


def _snapshot_values(grid: pd.DataFrame, snapshots: pd.DataFrame | None) -> pd.DataFrame:
    """Spread and liquidity as of the latest snapshot at or before each bucket (first one before it)."""
    out = grid[["market_id", "bucket_ts"]].copy()
    if snapshots is None or snapshots.empty:
        out["spread"] = np.nan
        out["liquidity"] = np.nan
        return out
    snap = snapshots.copy()
    snap["snapshot_ts"] = pd.to_datetime(snap["snapshot_ts"])
    for col in ("best_bid", "best_ask", "spread", "liquidity"):
        if col not in snap:
            snap[col] = np.nan
        snap[col] = pd.to_numeric(snap[col], errors="coerce")
    from_book = snap["best_ask"] - snap["best_bid"]
    snap["spread"] = from_book.where(from_book.notna(), snap["spread"])
    snap = snap[["market_id", "snapshot_ts", "spread", "liquidity"]].sort_values("snapshot_ts")
    merged = pd.merge_asof(
        out.sort_values("bucket_ts"),
        snap,
        left_on="bucket_ts",
        right_on="snapshot_ts",
        by="market_id",
        direction="backward",
    )
    first = snap.groupby("market_id")[["spread", "liquidity"]].first()
    for col in ("spread", "liquidity"):
        merged[col] = merged[col].fillna(merged["market_id"].map(first[col]))
    return merged[["market_id", "bucket_ts", "spread", "liquidity"]]


def build_market_features(
    prices: pd.DataFrame,
    volumes: pd.DataFrame,
    markets: pd.DataFrame,
    config: FeatureConfig,
    snapshots: pd.DataFrame | None = None,
    hype: pd.DataFrame | None = None,
    books: pd.DataFrame | None = None,
    whales: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per market and bucket on a complete bucket grid (see the module docstring for formulas).

    prices: YES price points (market_id, ts, price); volumes: (market_id, bucket_ts, volume_usd);
    markets: one row per market (market_id, category, yes_token_id, no_token_id);
    snapshots: (market_id, snapshot_ts, best_bid, best_ask, spread, liquidity);
    hype: (market_id, bucket_ts, hype_index), joined on the bucket (NaN where unknown);
    books: order_book_snapshots rows (market_id, outcome, book_ts, bids, asks);
    whales: whale_trades rows (market_id, ts, outcome, side, usd). Without them those columns are NaN.
    """
    _require(volumes, "trade_volumes", ["market_id", "bucket_ts", "volume_usd"])
    _require(markets, "markets", ["market_id"])
    bucketed = bucket_last_price(prices, config.freq)
    if bucketed.empty:
        return pd.DataFrame(columns=FEATURE_COLUMNS)
    vol = volumes[["market_id", "bucket_ts", "volume_usd"]].copy()
    vol["bucket_ts"] = pd.to_datetime(vol["bucket_ts"]).dt.floor(config.freq)
    if (vol["volume_usd"] < 0).any():
        bad = vol[vol["volume_usd"] < 0].iloc[0]
        raise ValueError(
            f"trade_volumes.volume_usd: negative ({bad['volume_usd']}) for market {bad['market_id']}"
        )
    vol = vol.groupby(["market_id", "bucket_ts"], as_index=False)["volume_usd"].sum()
    # Trades are fetched for a recent window only: inside it, a bucket without trades had volume 0.
    volume_since = vol["bucket_ts"].min() if not vol.empty else None
    end = max(
        bucketed["bucket_ts"].max(), vol["bucket_ts"].max() if not vol.empty else bucketed["bucket_ts"].max()
    )

    pieces = []
    vol_by_market = {m: g.set_index("bucket_ts")["volume_usd"] for m, g in vol.groupby("market_id")}
    for market_id, group in bucketed.groupby("market_id", sort=True):
        grid = pd.date_range(group["bucket_ts"].min(), end, freq=config.freq)
        price = group.set_index("bucket_ts")["price"].reindex(grid)
        price = (
            price.ffill(limit=config.price_ffill_limit_buckets) if config.price_ffill_limit_buckets else price
        )
        volume = vol_by_market.get(market_id, pd.Series(dtype=float)).reindex(grid)
        if volume_since is not None:
            volume = volume.where(~((grid >= volume_since) & volume.isna()), 0.0)
        ret = simple_returns(price)
        piece = pd.DataFrame(
            {
                "market_id": market_id,
                "bucket_ts": grid,
                "yes_price": price.to_numpy(),
                "ret": ret.to_numpy(),
                "volume_usd": volume.to_numpy(dtype=float),
                "rvr": relative_volume_ratio(
                    volume, config.rvr_recent_buckets, config.rvr_baseline_buckets, config.rvr_min_periods
                ).to_numpy(),
                "roc": rate_of_change(price, config.roc_lookback_buckets).to_numpy(),
                "volatility": realized_volatility(ret, config.volatility_window_buckets).to_numpy(),
            }
        )
        pieces.append(piece)
    features = pd.concat(pieces, ignore_index=True)

    meta_cols = [c for c in ("category", "yes_token_id", "no_token_id") if c in markets.columns]
    meta = markets.drop_duplicates("market_id", keep="last").set_index("market_id")[meta_cols]
    for col in ("category", "yes_token_id", "no_token_id"):
        features[col] = features["market_id"].map(meta[col]) if col in meta else None

    snap = _snapshot_values(features, snapshots)
    features = features.merge(snap, on=["market_id", "bucket_ts"], how="left")
    if hype is not None and not hype.empty:
        _require(hype, "hype_scores", ["market_id", "bucket_ts", "hype_index"])
        h = hype[["market_id", "bucket_ts", "hype_index"]].copy()
        h["bucket_ts"] = pd.to_datetime(h["bucket_ts"])
        features = features.merge(h, on=["market_id", "bucket_ts"], how="left")
    else:
        features["hype_index"] = np.nan
    features["hype_index"] = features["hype_index"].astype(float)
    micro = microstructure_features(
        features[["market_id", "bucket_ts"]], books, whales, config.microstructure
    )
    for col in MICROSTRUCTURE_COLUMNS:
        features[col] = micro[col].to_numpy(dtype=float)
    return features[FEATURE_COLUMNS].sort_values(["market_id", "bucket_ts"]).reset_index(drop=True)

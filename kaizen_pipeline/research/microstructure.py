"""Order-book and large-trade features per market and bucket: mid, spread, depth, imbalance, whale flow.

Pure module (no Dagster). Inputs are the warehouse tables ``order_book_snapshots`` (the YES token's
books) and ``whale_trades``; buckets are ``data_collection.frequency_minutes`` wide (the clock
module's grid). A bucket t holds the data of [t, t + bucket), and every value at t uses only data
at or before the end of its own bucket, so the features never look ahead. Formulas:

- As-of book: the newest YES snapshot whose bucket is at or before t and at most
  ``max_age_buckets`` buckets older than t; none (or a one-sided or crossed book): NaN.
- ``book_mid`` m = (best bid + best ask) / 2; ``book_spread`` = best ask - best bid.
- ``depth_1c_usd`` / ``depth_5c_usd``: USD notional (price x size, summed over bid and ask levels)
  priced within 1 / 5 cents of m. Only the stored levels count (``polymarket.book_levels`` per side).
- ``book_imbalance`` = (B - A) / (B + A), B and A the bid and ask USD depth within 5 cents of m
  (+1: depth near the mid only on the bid side, -1: only on the ask side; NaN when both are 0).
- ``whale_flow_usd``: the bucket's large trades signed toward YES: BUY of YES and SELL of NO count +usd,
  SELL of YES and BUY of NO count -usd. 0 in buckets without large trades from the first stored large
  trade on; NaN before it (the feed's history is unknown there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, bucket_freq, buckets

MICROSTRUCTURE_COLUMNS = [
    "book_mid",
    "book_spread",
    "depth_1c_usd",
    "depth_5c_usd",
    "book_imbalance",
    "whale_flow_usd",
]
BOOK_COLUMNS = MICROSTRUCTURE_COLUMNS[:-1]
NEAR_BAND = 0.01  # 1 cent
WIDE_BAND = 0.05  # 5 cents
# Levels are decimal prices: 0.55 - 0.5 is 0.05000000000000004, still "within 5 cents".
_BAND_EPS = 1e-9


@dataclass(frozen=True)
class MicrostructureConfig:
    """The bucket width and how old an order book may be and still describe a bucket."""

    bucket_minutes: int = DEFAULT_BUCKET_MINUTES
    max_age_buckets: int = 2


def _ns(values: pd.Series) -> pd.Series:
    """Timestamps at one resolution: merge_asof and index lookups fail across us and ns columns."""
    return pd.to_datetime(values).astype("datetime64[ns]")


def _levels(value: Any) -> list[tuple[float, float]]:
    """Stored levels (JSON text or a list) as (price, size) pairs, best first."""
    raw = json.loads(value) if isinstance(value, str) else value
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return []
    return [(float(p), float(s)) for p, s in raw]


def band_depth_usd(levels: list[tuple[float, float]], mid: float, band: float) -> float:
    """USD notional (price x size) of the levels priced within ``band`` of ``mid``."""
    return float(sum(p * s for p, s in levels if abs(p - mid) <= band + _BAND_EPS))


def snapshot_features(books: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot: market_id, book_ts and the book columns (NaN for one-sided or crossed books)."""
    missing = [c for c in ("market_id", "book_ts", "bids", "asks") if c not in books.columns]
    if missing:
        raise ValueError(f"order_book_snapshots: missing column(s) {', '.join(missing)}")
    rows = []
    for market_id, book_ts, bids_raw, asks_raw in books[["market_id", "book_ts", "bids", "asks"]].itertuples(
        index=False
    ):
        bids, asks = _levels(bids_raw), _levels(asks_raw)
        values = dict.fromkeys(BOOK_COLUMNS, np.nan)
        if bids and asks and bids[0][0] < asks[0][0]:
            mid = (bids[0][0] + asks[0][0]) / 2
            bid_5c, ask_5c = band_depth_usd(bids, mid, WIDE_BAND), band_depth_usd(asks, mid, WIDE_BAND)
            values = {
                "book_mid": mid,
                "book_spread": asks[0][0] - bids[0][0],
                "depth_1c_usd": band_depth_usd(bids, mid, NEAR_BAND) + band_depth_usd(asks, mid, NEAR_BAND),
                "depth_5c_usd": bid_5c + ask_5c,
                "book_imbalance": (bid_5c - ask_5c) / (bid_5c + ask_5c) if bid_5c + ask_5c > 0 else np.nan,
            }
        rows.append({"market_id": market_id, "book_ts": book_ts, **values})
    return pd.DataFrame(rows, columns=["market_id", "book_ts", *BOOK_COLUMNS])


def book_features(
    grid: pd.DataFrame, books: pd.DataFrame | None, config: MicrostructureConfig
) -> pd.DataFrame:
    """The book columns on ``grid`` (market_id, bucket_ts), as of the newest fresh YES snapshot."""
    out = grid[["market_id", "bucket_ts"]].copy()
    out["bucket_ts"] = _ns(out["bucket_ts"])
    if books is None or books.empty:
        return out.assign(**dict.fromkeys(BOOK_COLUMNS, np.nan))
    if "outcome" in books.columns:
        books = books[books["outcome"].astype(str).str.lower() == "yes"]
    snaps = snapshot_features(books)
    snaps["book_ts"] = _ns(snaps["book_ts"])
    snaps["book_bucket"] = snaps["book_ts"].dt.floor(bucket_freq(config.bucket_minutes))
    # the newest snapshot of each bucket describes it
    snaps = snaps.sort_values("book_ts").drop_duplicates(["market_id", "book_bucket"], keep="last")
    snaps["market_id"] = snaps["market_id"].astype(str)
    out["market_id"] = out["market_id"].astype(str)
    merged = pd.merge_asof(
        out.reset_index().sort_values("bucket_ts"),
        snaps.drop(columns="book_ts").sort_values("book_bucket"),
        left_on="bucket_ts",
        right_on="book_bucket",
        by="market_id",
        direction="backward",
        tolerance=buckets(config.max_age_buckets, config.bucket_minutes),
    )
    merged = merged.sort_values("index").set_index("index")
    merged.index.name = None
    return merged[["market_id", "bucket_ts", *BOOK_COLUMNS]]


def signed_whale_usd(whales: pd.DataFrame) -> pd.Series:
    """Each large trade's USD signed toward YES: +usd for YES buys and NO sells, -usd for YES sells and NO buys."""
    missing = [c for c in ("outcome", "side", "usd") if c not in whales.columns]
    if missing:
        raise ValueError(f"whale_trades: missing column(s) {', '.join(missing)}")
    outcome = whales["outcome"].astype(str).str.lower()
    side = whales["side"].astype(str).str.upper()
    sign = np.where(outcome == "yes", 1.0, np.where(outcome == "no", -1.0, np.nan))
    sign = sign * np.where(side == "BUY", 1.0, np.where(side == "SELL", -1.0, np.nan))
    return pd.Series(sign * whales["usd"].astype(float).to_numpy(), index=whales.index, name="signed_usd")


def whale_flow(grid: pd.DataFrame, whales: pd.DataFrame | None, config: MicrostructureConfig) -> pd.Series:
    """``whale_flow_usd`` on ``grid``: summed signed large-trade USD of each bucket (see the module docstring)."""
    bucket_ts = _ns(grid["bucket_ts"])
    if whales is None or whales.empty:
        return pd.Series(np.nan, index=grid.index, name="whale_flow_usd")
    frame = whales.assign(signed_usd=signed_whale_usd(whales)).dropna(subset=["signed_usd"])
    frame["bucket_ts"] = _ns(frame["ts"]).dt.floor(bucket_freq(config.bucket_minutes))
    frame["market_id"] = frame["market_id"].astype(str)
    flow = frame.groupby(["market_id", "bucket_ts"])["signed_usd"].sum()
    keys = pd.MultiIndex.from_arrays([grid["market_id"].astype(str), bucket_ts])
    values = flow.reindex(keys).to_numpy()
    covered = (bucket_ts >= _ns(whales["ts"]).min().floor(bucket_freq(config.bucket_minutes))).to_numpy()
    values = np.where(np.isnan(values) & covered, 0.0, values)
    return pd.Series(values, index=grid.index, name="whale_flow_usd")


def microstructure_features(
    grid: pd.DataFrame,
    books: pd.DataFrame | None,
    whales: pd.DataFrame | None,
    config: MicrostructureConfig,
) -> pd.DataFrame:
    """market_id, bucket_ts and MICROSTRUCTURE_COLUMNS for every row of ``grid``; missing data gives NaN.

    books: order_book_snapshots rows (market_id, book_ts, bids, asks, optionally outcome: only YES
    books count); whales: whale_trades rows (market_id, ts, outcome, side, usd).
    """
    out = book_features(grid, books, config)
    out["whale_flow_usd"] = whale_flow(grid, whales, config).to_numpy()
    return out

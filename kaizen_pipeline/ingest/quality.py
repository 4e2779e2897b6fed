"""Data-quality rules for the ingest tables; each returns a QualityResult the asset checks report.

Pure: reads the warehouse, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.ingest.clients import CLOB_PRICES_HISTORY
from kaizen_pipeline.ingest.collect import current_markets, staleness_minutes
from kaizen_pipeline.ingest.parsers import CONFLICT_REASON
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import (
    market_snapshots,
    order_book_snapshots,
    price_points,
    rejected_records,
    tweets,
)


@dataclass
class QualityResult:
    passed: bool
    summary: dict[str, Any] = field(default_factory=dict)
    offenders: pd.DataFrame = field(default_factory=pd.DataFrame)


_SINCE = sa.bindparam("since", type_=sa.DateTime)


def _recent_prices(warehouse: Warehouse, since: datetime) -> pd.DataFrame:
    # Text SQL skips SQLAlchemy's per-row DateTime processing: 10x faster on a month of prices.
    query = sa.text(
        "SELECT token_id, market_id, outcome, ts, price FROM price_points WHERE ts >= :since ORDER BY token_id, ts"
    ).bindparams(_SINCE)
    return warehouse.read_frame(query, {"since": since}, parse_dates=["ts"], raw=True)


def prices_in_unit_interval(warehouse: Warehouse) -> QualityResult:
    """Every stored price lies in [0, 1]."""
    bad = warehouse.read_frame(
        sa.select(price_points).where(sa.or_(price_points.c.price < 0, price_points.c.price > 1)).limit(50)
    )
    count = warehouse.count(price_points, sa.or_(price_points.c.price < 0, price_points.c.price > 1))
    return QualityResult(count == 0, {"out_of_range": count}, bad)


def binary_prices_sum_to_one(warehouse: Warehouse, since: datetime, tolerance: float) -> QualityResult:
    """YES + NO prices of a market at the same timestamp sum to 1 within ``tolerance``."""
    frame = _recent_prices(warehouse, since)
    yes = frame[frame["outcome"] == "Yes"][["market_id", "ts", "price"]]
    no = frame[frame["outcome"] == "No"][["market_id", "ts", "price"]]
    pairs = yes.merge(no, on=["market_id", "ts"], suffixes=("_yes", "_no"))
    if pairs.empty:
        return QualityResult(True, {"pairs_checked": 0})
    pairs["abs_deviation"] = (pairs["price_yes"] + pairs["price_no"] - 1).abs()
    bad = pairs[pairs["abs_deviation"] > tolerance].sort_values("abs_deviation", ascending=False)
    return QualityResult(
        bad.empty,
        {
            "pairs_checked": len(pairs),
            "violations": len(bad),
            "max_abs_deviation": float(pairs["abs_deviation"].max()),
        },
        bad.head(50),
    )


def price_history_gaps(
    warehouse: Warehouse, since: datetime, fidelity_minutes: int, gap_factor: float
) -> QualityResult:
    """No gap between consecutive points of a token longer than ``gap_factor`` x the fidelity."""
    frame = _recent_prices(warehouse, since)
    if frame.empty:
        return QualityResult(True, {"gaps": 0})
    frame["gap_minutes"] = frame.groupby("token_id")["ts"].diff().dt.total_seconds() / 60
    gaps = frame[frame["gap_minutes"] > gap_factor * fidelity_minutes]
    out = gaps[["market_id", "outcome", "ts", "gap_minutes"]].rename(columns={"ts": "gap_end"})
    return QualityResult(
        gaps.empty, {"gaps": len(gaps), "tokens_checked": int(frame["token_id"].nunique())}, out.head(50)
    )


def price_jumps(warehouse: Warehouse, since: datetime, max_jump_ratio: float) -> QualityResult:
    """No relative move above ``max_jump_ratio`` between consecutive points (YES token)."""
    frame = _recent_prices(warehouse, since)
    frame = frame[frame["outcome"] == "Yes"].copy()
    if frame.empty:
        return QualityResult(True, {"jumps": 0})
    prev = frame.groupby("token_id")["price"].shift()
    frame["prev_price"] = prev
    frame["jump_ratio"] = (frame["price"] - prev).abs() / prev.where(prev > 0)
    jumps = frame[frame["jump_ratio"] > max_jump_ratio]
    out = jumps[["market_id", "ts", "prev_price", "price", "jump_ratio"]].sort_values(
        "jump_ratio", ascending=False
    )
    return QualityResult(jumps.empty, {"jumps": len(jumps)}, out.head(50))


def freshness(
    warehouse: Warehouse, column: sa.Column, now: datetime, stale_after_minutes: float
) -> QualityResult:
    """The newest value of ``column`` is at most ``stale_after_minutes`` old."""
    newest = warehouse.scalar(sa.select(sa.func.max(column)))
    newest_dt = pd.Timestamp(newest).to_pydatetime() if newest is not None else None
    age = staleness_minutes(newest_dt, now)
    return QualityResult(
        age <= stale_after_minutes,
        {
            "newest": str(newest_dt) if newest_dt else "none",
            "age_minutes": round(age, 1) if age != float("inf") else -1,
            "limit_minutes": stale_after_minutes,
        },
    )


def duplicate_natural_keys(warehouse: Warehouse, since: datetime) -> QualityResult:
    """One snapshot per condition and bucket; one price per market, outcome and timestamp (from ``since``)."""
    snap = warehouse.read_frame(
        sa.select(
            market_snapshots.c.condition_id, market_snapshots.c.snapshot_ts, sa.func.count().label("copies")
        )
        .where(market_snapshots.c.snapshot_ts >= since)
        .group_by(market_snapshots.c.condition_id, market_snapshots.c.snapshot_ts)
        .having(sa.func.count() > 1)
    )
    prices = warehouse.read_frame(
        sa.select(
            price_points.c.market_id,
            price_points.c.outcome,
            price_points.c.ts,
            sa.func.count().label("copies"),
        )
        .where(price_points.c.ts >= since)
        .group_by(price_points.c.market_id, price_points.c.outcome, price_points.c.ts)
        .having(sa.func.count() > 1)
    )
    offenders = pd.concat(
        [snap.assign(table="market_snapshots"), prices.assign(table="price_points")], ignore_index=True
    )
    return QualityResult(
        offenders.empty,
        {"duplicate_snapshots": len(snap), "duplicate_prices": len(prices)},
        offenders.head(50),
    )


def tweets_within_window(warehouse: Warehouse, settings: Settings) -> QualityResult:
    """Posts from the latest collection were created inside the requested recent-search window."""
    latest = warehouse.scalar(sa.select(sa.func.max(tweets.c.ingested_at)))
    if latest is None:
        return QualityResult(True, {"checked": 0})
    latest = pd.Timestamp(latest).to_pydatetime()
    slack = timedelta(minutes=settings.quality.tweet_window_slack_minutes)
    lower = latest - timedelta(days=settings.twitter.window_days) - slack
    batch = tweets.c.ingested_at == latest
    outside = sa.or_(tweets.c.created_at < lower, tweets.c.created_at > latest + slack)
    count = warehouse.count(tweets, sa.and_(batch, outside))
    sample = warehouse.read_frame(
        sa.select(tweets.c.tweet_id, tweets.c.created_at, tweets.c.ingested_at)
        .where(batch, outside)
        .limit(20)
    )
    return QualityResult(
        count == 0, {"checked": warehouse.count(tweets, batch), "outside_window": count}, sample
    )


def price_timestamp_conflicts(warehouse: Warehouse, since: datetime) -> QualityResult:
    """CLOB points that repeated a stored timestamp with a different price (quarantined since ``since``)."""
    where = sa.and_(
        rejected_records.c.source == CLOB_PRICES_HISTORY,
        rejected_records.c.reason.startswith(CONFLICT_REASON),
        rejected_records.c.rejected_at >= since,
    )
    count = warehouse.count(rejected_records, where)
    offenders = warehouse.read_frame(
        sa.select(rejected_records.c.record_key, rejected_records.c.reason, rejected_records.c.rejected_at)
        .where(where)
        .order_by(rejected_records.c.rejected_at.desc())
        .limit(20)
    )
    return QualityResult(count == 0, {"conflicting_points": count}, offenders)


_BOOK_COLUMNS = [
    "market_id",
    "outcome",
    "token_id",
    "book_ts",
    "best_bid",
    "best_ask",
    "bid_levels",
    "ask_levels",
]


def newest_books(warehouse: Warehouse) -> pd.DataFrame:
    """The newest order book snapshot of every token that has one."""
    obs = order_book_snapshots
    newest = (
        sa.select(obs.c.token_id, sa.func.max(obs.c.book_ts).label("book_ts"))
        .group_by(obs.c.token_id)
        .subquery()
    )
    query = sa.select(*(obs.c[c] for c in _BOOK_COLUMNS)).join(
        newest, sa.and_(obs.c.token_id == newest.c.token_id, obs.c.book_ts == newest.c.book_ts)
    )
    return warehouse.read_frame(query, parse_dates=["book_ts"])


def crossed_books(warehouse: Warehouse) -> QualityResult:
    """No token's newest book is crossed (best bid at or above best ask)."""
    books = newest_books(warehouse)
    crossed = books[books["best_bid"] >= books["best_ask"]]
    return QualityResult(
        crossed.empty, {"books_checked": len(books), "crossed": len(crossed)}, crossed[_BOOK_COLUMNS].head(50)
    )


def empty_books(warehouse: Warehouse) -> QualityResult:
    """No token's newest book lacks bids or asks."""
    books = newest_books(warehouse)
    empty = books[books["best_bid"].isna() | books["best_ask"].isna()]
    return QualityResult(
        empty.empty,
        {
            "books_checked": len(books),
            "without_bids": int(books["best_bid"].isna().sum()),
            "without_asks": int(books["best_ask"].isna().sum()),
        },
        empty[_BOOK_COLUMNS].head(50),
    )


def stale_books(warehouse: Warehouse, now: datetime, stale_after_minutes: float) -> QualityResult:
    """Every tracked market's YES and NO token has a book at most ``stale_after_minutes`` old."""
    markets = current_markets(warehouse)
    tracked = pd.concat(
        [
            markets[["market_id", "yes_token_id"]]
            .rename(columns={"yes_token_id": "token_id"})
            .assign(outcome="Yes"),
            markets[["market_id", "no_token_id"]]
            .rename(columns={"no_token_id": "token_id"})
            .assign(outcome="No"),
        ],
        ignore_index=True,
    )
    books = newest_books(warehouse)[["token_id", "book_ts"]]
    merged = tracked.merge(books, on="token_id", how="left")
    merged["age_minutes"] = (pd.Timestamp(now) - merged["book_ts"]).dt.total_seconds() / 60
    stale = merged[merged["book_ts"].isna() | (merged["age_minutes"] > stale_after_minutes)]
    out = stale[["market_id", "outcome", "token_id", "book_ts", "age_minutes"]].sort_values("market_id")
    return QualityResult(
        stale.empty,
        {
            "tokens_checked": len(merged),
            "stale": int((merged["age_minutes"] > stale_after_minutes).sum()),
            "without_book": int(merged["book_ts"].isna().sum()),
            "limit_minutes": stale_after_minutes,
        },
        out.head(50),
    )

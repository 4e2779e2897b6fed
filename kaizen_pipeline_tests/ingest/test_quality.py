"""Data-quality rules flag planted defects and pass clean data."""

from datetime import datetime, timedelta

import pytest

from kaizen_pipeline.ingest import quality
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import market_snapshots, price_points, tweets

T0 = datetime(2026, 11, 20, 0, 0)


def prices(
    warehouse: Warehouse, market: str, yes: list[float], *, no_offset: float = 0.0, step_min: int = 15
) -> None:
    rows = []
    for i, p in enumerate(yes):
        ts = T0 + timedelta(minutes=step_min * i)
        rows.append({"token_id": f"{market}-y", "ts": ts, "market_id": market, "outcome": "Yes", "price": p})
        rows.append(
            {
                "token_id": f"{market}-n",
                "ts": ts,
                "market_id": market,
                "outcome": "No",
                "price": round(1 - p + no_offset, 6),
            }
        )
    warehouse.upsert(price_points, rows)


def test_clean_history_passes_every_rule(warehouse: Warehouse) -> None:
    prices(warehouse, "m1", [0.40, 0.42, 0.41, 0.45])
    assert quality.prices_in_unit_interval(warehouse).passed
    assert quality.binary_prices_sum_to_one(warehouse, T0, 0.02).passed
    assert quality.price_history_gaps(warehouse, T0, 15, 2.0).passed
    assert quality.price_jumps(warehouse, T0, 0.5).passed
    assert quality.duplicate_natural_keys(warehouse, T0).passed


def test_planted_defects_are_flagged_with_the_offending_rows(warehouse: Warehouse) -> None:
    prices(warehouse, "sum", [0.40, 0.41], no_offset=0.05)
    prices(warehouse, "jump", [0.10, 0.30, 0.31])
    prices(warehouse, "gap", [0.5, 0.5], step_min=60)
    warehouse.upsert(
        price_points, [{"token_id": "bad", "ts": T0, "market_id": "bad", "outcome": "Yes", "price": 1.5}]
    )

    out_of_range = quality.prices_in_unit_interval(warehouse)
    assert not out_of_range.passed and out_of_range.summary["out_of_range"] == 1
    sums = quality.binary_prices_sum_to_one(warehouse, T0, 0.02)
    assert not sums.passed and set(sums.offenders["market_id"]) == {"sum"}
    jumps = quality.price_jumps(warehouse, T0, 0.5)
    assert not jumps.passed and jumps.offenders.iloc[0]["market_id"] == "jump"
    assert jumps.offenders.iloc[0]["jump_ratio"] == pytest.approx(2.0)
    gaps = quality.price_history_gaps(warehouse, T0, 15, 2.0)
    assert not gaps.passed and set(gaps.offenders["market_id"]) == {"gap"}

    # Same market, outcome and time under a second token id is a duplicate natural key.
    warehouse.upsert(
        price_points, [{"token_id": "other", "ts": T0, "market_id": "jump", "outcome": "Yes", "price": 0.1}]
    )
    dupes = quality.duplicate_natural_keys(warehouse, T0)
    assert not dupes.passed and dupes.summary["duplicate_prices"] == 1
    # outside the checked window (a later partition's run) the old duplicate is not read again
    assert quality.duplicate_natural_keys(warehouse, T0 + timedelta(minutes=1)).passed


def test_freshness_and_tweet_window(warehouse: Warehouse, settings: Settings) -> None:
    prices(warehouse, "m1", [0.4])
    fresh = quality.freshness(warehouse, price_points.c.ts, T0 + timedelta(minutes=20), 30)
    stale = quality.freshness(warehouse, price_points.c.ts, T0 + timedelta(minutes=45), 30)
    assert fresh.passed and not stale.passed and stale.summary["age_minutes"] == 45
    assert not quality.freshness(warehouse, market_snapshots.c.snapshot_ts, T0, 30).passed  # no data at all

    base = {
        "author_id": "a",
        "text": "t",
        "lang": "en",
        "like_count": 0,
        "retweet_count": 0,
        "reply_count": 0,
        "quote_count": 0,
        "ingested_at": T0,
    }
    warehouse.upsert(
        tweets,
        [
            {**base, "tweet_id": "1", "created_at": T0 - timedelta(days=2)},
            {**base, "tweet_id": "2", "created_at": T0 - timedelta(days=9)},
        ],
    )
    window = quality.tweets_within_window(warehouse, settings)
    assert not window.passed and window.summary == {"checked": 2, "outside_window": 1}

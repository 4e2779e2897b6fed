"""Parsers on fixtures in the real wire shapes: valid records become rows, bad ones name their field."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from kaizen_pipeline.ingest.collect import bucket_trades
from kaizen_pipeline.ingest.parsers import (
    GammaMarket,
    Reject,
    Trade,
    TweetRecord,
    UserRecord,
    parse_price_history,
    parse_record,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_gamma_markets_decode_string_encoded_arrays_and_decimals() -> None:
    page = load("gamma_markets_keyset_page.json")
    parsed = [parse_record(GammaMarket, raw, "gamma", "id") for raw in page["markets"]]
    fed, btc, multi, broken = parsed
    assert isinstance(fed, GammaMarket) and isinstance(btc, GammaMarket)
    row = fed.row(datetime(2026, 11, 20, 12), datetime(2026, 11, 20, 12, 1))
    assert row["yes_price"] == 0.615 and row["no_price"] == 0.385
    assert row["yes_token_id"].startswith("7132") and row["volume_total"] == pytest.approx(2380455.1123)
    assert row["category"] == "Fed Rates"  # no market category: the event's series
    assert row["end_date"] == datetime(2026, 12, 10, 18)
    # outcomes listed as ["No", "Yes"]: the YES token is the second id; 40-digit decimals parse
    brow = btc.row(datetime(2026, 11, 20, 12), datetime(2026, 11, 20, 12))
    assert (brow["yes_token_id"], brow["no_token_id"]) == ("222", "111")
    assert brow["yes_price"] == pytest.approx(0.28) and brow["category"] == "Crypto"
    assert brow["best_bid"] is None  # optional numbers may be missing
    # a categorical market is valid: every outcome keeps its name, token and price
    assert isinstance(multi, GammaMarket) and not multi.is_binary
    assert [(r["outcome"], r["token_id"], r["price"]) for r in multi.outcome_rows(datetime(2026, 1, 1))] == [
        ("Red", "1", 0.5),
        ("Blue", "2", 0.3),
        ("Green", "3", 0.2),
    ]
    assert isinstance(broken, Reject)
    assert "outcomePrices: price 1.4 outside [0, 1]" in broken.reason
    assert "volume: could not convert string to float" in broken.reason


def test_price_history_rejects_out_of_range_and_fractional_times() -> None:
    history = load("clob_prices_history.json")["history"]
    points, bad = parse_price_history(history, "clob", "tok")
    assert list(points.p) == [0.615, 0.62, 0.63, 0.61]  # "0.63" as a string still parses
    assert list(points.t) == [1795000500, 1795001400, 1795002300, 1795005000]
    assert len(bad) == 2 and all(r.record_key.startswith("tok@") for r in bad)
    assert any("p: Input should be less than or equal to 1" in r.reason for r in bad)
    assert any(r.reason.startswith("t: expected unix seconds as an integer") for r in bad)


def test_clean_price_history_takes_the_bulk_path() -> None:
    history = [{"t": 1795000500 + 900 * i, "p": 0.5} for i in range(5)]
    points, bad = parse_price_history(history, "clob", "tok")
    assert (
        bad == []
        and len(points) == 5
        and points.between(1795000500, 1795000500 + 900).t.tolist() == [1795000500, 1795001400]
    )
    _, null_price = parse_price_history([*history, {"t": 1795010000, "p": None}], "clob", "tok")
    assert [r.reason for r in null_price] == ["p: Input should be a valid number"]


def test_trades_validate_side_and_aggregate_into_buckets() -> None:
    parsed = [parse_record(Trade, raw, "data", "transactionHash") for raw in load("data_api_trades.json")]
    trades = [t for t in parsed if isinstance(t, Trade)]
    rejects = [t for t in parsed if isinstance(t, Reject)]
    assert len(trades) == 3 and rejects[0].reason == "side: expected BUY or SELL, got 'HOLD'"
    since = datetime.utcfromtimestamp(1795000000 - 1795000000 % 900)
    until = datetime.utcfromtimestamp(1795001400)
    buckets = bucket_trades(trades, 15, since, until)
    by_ts = buckets.set_index("bucket_ts")
    first, second = by_ts.iloc[0], by_ts.iloc[1]
    assert first["volume_usd"] == pytest.approx(20 * 0.4) and first["trade_count"] == 1
    assert second["volume_usd"] == pytest.approx(100 * 0.25 + 40 * 0.5)
    assert second["buy_volume_usd"] == pytest.approx(25.0) and second["trade_count"] == 2
    assert len(buckets) == 3 and by_ts.iloc[2]["trade_count"] == 0  # empty bucket kept as zero


def test_x_search_records_and_expanded_authors() -> None:
    body = load("x_search_recent.json")
    parsed = [parse_record(TweetRecord, raw, "x", "id") for raw in body["data"]]
    tweets = [t for t in parsed if isinstance(t, TweetRecord)]
    rejects = [t for t in parsed if isinstance(t, Reject)]
    assert len(tweets) == 2 and rejects[0].record_key == "1858000000000000003"
    assert rejects[0].reason.startswith("created_at:")
    row = tweets[0].row(datetime(2026, 11, 20, 12))
    assert (
        row["like_count"] == 12
        and row["impression_count"] == 480
        and row["created_at"] == datetime(2026, 11, 20, 10, 15, 3)
    )
    assert tweets[1].row(datetime(2026, 11, 20))["impression_count"] is None
    users = [UserRecord.model_validate(u).row(datetime(2026, 11, 20)) for u in body["includes"]["users"]]
    assert users[0]["followers_count"] == 5120 and users[0]["created_at"] == datetime(2013, 12, 14, 4, 35, 55)


def test_reject_rows_are_stable_for_idempotent_quarantine() -> None:
    r = Reject("gamma", "1", "outcomes: bad", {"id": "1"})
    a, b = r.row("run-a", datetime(2026, 1, 1)), r.row("run-b", datetime(2026, 1, 2))
    assert a["reject_id"] == b["reject_id"] and json.loads(a["payload"]) == {"id": "1"}


def test_non_object_record_is_rejected_with_its_type() -> None:
    rejected = parse_record(TweetRecord, ["not", "an", "object"], "x", "id")
    assert isinstance(rejected, Reject) and rejected.reason == "record: expected a JSON object, got list"


def test_strings_longer_than_their_column_are_rejected_naming_field_and_limit() -> None:
    body = load("x_search_recent.json")
    tweet = {**body["data"][0], "lang": "x" * 20}
    rejected = parse_record(TweetRecord, tweet, "x", "id")
    assert isinstance(rejected, Reject)
    assert rejected.reason == "lang: 20 characters, longer than the column's limit of 8"
    user = {**body["includes"]["users"][0], "username": "u" * 65}
    assert parse_record(UserRecord, user, "x", "id").reason == (  # type: ignore[union-attr]
        "username: 65 characters, longer than the column's limit of 64"
    )


def test_wrong_types_inside_validators_become_field_rejects() -> None:
    page = load("gamma_markets_keyset_page.json")
    market = {**page["markets"][0], "volume": {"nested": 1}, "outcomePrices": "[null, null]"}
    rejected = parse_record(GammaMarket, market, "gamma", "id")
    assert isinstance(rejected, Reject)
    assert "volume: expected a decimal string or number, got dict" in rejected.reason
    assert "outcomePrices: missing price (null or empty)" in rejected.reason
    huge_side = parse_record(Trade, {**load("data_api_trades.json")[0], "side": "S" * 1_000_000}, "d", "x")
    assert isinstance(huge_side, Reject) and len(huge_side.row("r", datetime(2026, 1, 1))["reason"]) < 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": [], "includes": [], "meta": {}}, "includes"),
        ({"data": {"id": "1"}, "meta": {}}, "data"),
        ({"data": [], "includes": {"users": {"id": "1"}}}, "includes.users"),
        ({"data": [], "meta": ["next"]}, "meta"),
    ],
)
def test_a_misshapen_x_page_fails_its_query_naming_the_member(body: dict, field: str) -> None:
    """A page whose members have the wrong JSON type is an ApiError naming the member, never a raw crash."""
    import asyncio
    from datetime import UTC, datetime

    import httpx

    from kaizen_pipeline.ingest.clients import XClient
    from kaizen_pipeline.ingest.transport import ApiError, RetryPolicy, Transport

    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, json=body))
        ) as c:
            client = XClient(
                Transport(c, RetryPolicy(max_retries=0), {}), "http://127.0.0.1:9", "t0ken-x", 10, 2
            )
            await client.search_recent("polymarket", start_time=datetime(2026, 1, 1, tzinfo=UTC))

    with pytest.raises(ApiError, match=field):
        asyncio.run(go())

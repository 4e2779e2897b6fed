"""The demo world's order books and cash-filtered trades: real shapes and quirks, consistent with its prices."""

import json
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from kaizen_pipeline.ingest.parsers import OrderBook, parse_record
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.ingest.simulator.world import HYPE_MEAN, DemoWorld

FROZEN = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)


def world(seed: int = 11) -> DemoWorld:
    return DemoWorld(seed=seed, n_markets=12, history_days=3, clock=FROZEN.timestamp)


def get_book(w: DemoWorld, token: str) -> dict:
    response = w.handle(httpx.Request("GET", f"http://clob/book?token_id={token}"))
    assert response.status_code == 200
    return response.json()


def test_books_have_the_real_shape_and_sit_on_the_world_price() -> None:
    w = world()
    spreads, depths = [], []
    for m in [m for m in w.markets if m.eligible]:
        raw = get_book(w, m.yes_token)
        assert set(raw) == {"market", "asset_id", "timestamp", "hash", "bids", "asks", "min_order_size",
                            "tick_size", "neg_risk", "last_trade_price"}  # fmt: skip
        assert raw["market"] == m.condition_id and raw["asset_id"] == m.yes_token
        assert raw["timestamp"] == str(int(FROZEN.timestamp() * 1000)) and len(raw["hash"]) == 40
        assert raw["tick_size"] in ("0.01", "0.001") and raw["min_order_size"] == "5"
        assert all(
            isinstance(lv["price"], str) and isinstance(lv["size"], str) for lv in raw["bids"] + raw["asks"]
        )
        bid_prices = [float(lv["price"]) for lv in raw["bids"]]
        ask_prices = [float(lv["price"]) for lv in raw["asks"]]
        assert bid_prices == sorted(bid_prices) and ask_prices == sorted(
            ask_prices, reverse=True
        )  # best LAST
        row = parse_record(OrderBook, raw, "clob", "asset_id").row(
            m.market_id, "Yes", 50, datetime(2026, 1, 1)
        )
        tick = float(raw["tick_size"])
        yes = w.yes_price(m, w.now_bucket())
        assert row["best_bid"] < row["best_ask"] and row["best_bid"] - tick <= yes <= row["best_ask"] + tick
        assert 1 <= round(row["spread"] / tick) <= 8
        spreads.append(row["spread"])
        depths.append(row["bid_depth_usd"] + row["ask_depth_usd"])
    assert len(set(spreads)) > 1 and np.std(depths) > 0  # spreads and depth vary across markets


def test_the_no_book_mirrors_the_yes_book() -> None:
    w = world()
    m = w.markets[0]
    yes, no = get_book(w, m.yes_token), get_book(w, m.no_token)
    assert no["bids"][-1]["size"] == yes["asks"][-1]["size"]
    assert float(no["bids"][-1]["price"]) == pytest.approx(1 - float(yes["asks"][-1]["price"]))
    assert float(no["asks"][-1]["price"]) == pytest.approx(1 - float(yes["bids"][-1]["price"]))
    assert float(no["last_trade_price"]) == pytest.approx(1 - float(yes["last_trade_price"]))


def test_books_are_deterministic_and_batch_answers_match_single_ones() -> None:
    a, b = world(), world()
    tokens = [m.yes_token for m in a.markets[:3]] + [a.markets[0].no_token, "0"]
    body = [{"token_id": t} for t in tokens]
    batch = a.handle(httpx.Request("POST", "http://clob/books", json=body)).json()
    assert [x["asset_id"] for x in batch] == tokens[:-1]  # a token without a book is left out
    assert batch == b.handle(httpx.Request("POST", "http://clob/books", json=body)).json()
    assert batch[0] == get_book(b, tokens[0])
    assert (
        world(seed=12).handle(httpx.Request("POST", "http://clob/books", json=body[:1])).json() != batch[:1]
    )
    missing = a.handle(httpx.Request("GET", "http://clob/book?token_id=0"))
    assert missing.status_code == 404
    bad = a.handle(httpx.Request("POST", "http://clob/books", json={"token_id": tokens[0]}))
    assert bad.status_code == 400


def test_books_and_cash_filter_over_real_http(server: SimulatorServer) -> None:
    w = server.world
    m = w.markets[0]
    with httpx.Client(base_url=server.url) as client:
        posted = client.post("/books", json=[{"token_id": m.yes_token}, {"token_id": m.no_token}])
        assert posted.status_code == 200 and [x["asset_id"] for x in posted.json()] == [
            m.yes_token,
            m.no_token,
        ]
        everything = client.get("/trades", params={"market": m.condition_id, "limit": 10000}).json()
        large = client.get(
            "/trades",
            params={"market": m.condition_id, "limit": 10000, "filterType": "CASH", "filterAmount": 5000},
        ).json()
        assert large and all(t["size"] * t["price"] >= 5000 for t in large)
        assert large == [t for t in everything if t["size"] * t["price"] >= 5000]
        tokens = client.get(
            "/trades",
            params={"market": m.condition_id, "limit": 50, "filterType": "TOKENS", "filterAmount": 1e4},
        ).json()
        assert all(t["size"] >= 1e4 for t in tokens)
        assert (
            client.get("/trades", params={"market": m.condition_id, "filterType": "CASH"}).status_code == 400
        )


def test_lead_market_books_lean_against_the_coming_hype_drift_without_giving_it_away() -> None:
    w = world()
    imbalance, drift = [], []
    for m in [m for m in w.markets if m.lead_lag]:
        series = w.series(m, 2000)
        for k in range(200, 1900, 3):
            bids, asks, per_unit = w.book_levels(m, k)
            mid = (bids[0][0] + asks[0][0]) / 2
            bid = sum(t * q for t, q in bids if abs(t - mid) <= 0.05 * per_unit)
            ask = sum(t * q for t, q in asks if abs(t - mid) <= 0.05 * per_unit)
            imbalance.append((bid - ask) / (bid + ask))
            drift.append(m.direction * (series.hype[k + 1 - m.lead_lag] - HYPE_MEAN))
    corr = float(np.corrcoef(imbalance, drift)[0, 1])
    assert 0.05 < corr < 0.6, corr  # the side the price is pushed toward is thinner, noisily


def test_simulated_book_levels_round_trip_through_json() -> None:
    raw = get_book(world(), world().markets[1].yes_token)
    assert json.loads(json.dumps(raw)) == raw

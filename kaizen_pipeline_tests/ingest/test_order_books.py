"""Order books and large trades: wire quirks, quarantine, batching, the cash filter, idempotent re-runs, checks."""

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kaizen_pipeline.ingest import quality
from kaizen_pipeline.ingest.clients import CLOB_BOOK, CLOB_BOOKS, DATA_TRADES, build_clients
from kaizen_pipeline.ingest.collect import (
    collect_markets,
    collect_order_books,
    collect_whale_trades,
    run_collection,
)
from kaizen_pipeline.ingest.parsers import OrderBook, Reject, parse_record, parse_records
from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import market_snapshots
from kaizen_pipeline_tests.ingest.conftest import live_settings

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("KAIZEN_API_SAMPLES", REPO / ".." / "shared" / "api-samples"))
if not SAMPLES.is_dir() and Path("/work/shared/api-samples").is_dir():
    SAMPLES = Path("/work/shared/api-samples")
NOW = datetime(2026, 11, 20, 12, 5)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def book_row(raw: dict[str, Any], levels: int = 25) -> dict[str, Any]:
    parsed = parse_record(OrderBook, raw, CLOB_BOOK, "asset_id")
    assert isinstance(parsed, OrderBook), parsed
    return parsed.row("m1", "Yes", levels, NOW)


# --- parser -----------------------------------------------------------------------------


def test_best_levels_are_the_last_elements_of_the_wire_arrays() -> None:
    row = book_row(load("clob_book_multi_level.json"), levels=3)
    # bids arrive ascending and asks descending: the best of each is LAST on the wire
    assert (row["best_bid"], row["best_ask"]) == (0.61, 0.63)
    assert row["mid"] == 0.62 and row["spread"] == 0.02
    assert json.loads(row["bids"]) == [[0.61, 150.0], [0.6, 310.25], [0.58, 800.0]]  # best first, top 3
    assert json.loads(row["asks"]) == [[0.63, 95.5], [0.64, 420.0], [0.66, 900.0]]
    assert (row["bid_levels"], row["ask_levels"]) == (5, 4)  # all levels counted, not only the kept ones
    assert row["bid_depth_usd"] == pytest.approx(
        0.48 * 2500 + 0.55 * 1200.5 + 0.58 * 800 + 0.6 * 310.25 + 0.61 * 150
    )
    assert row["book_ts"] == datetime(
        2026, 11, 20, 12, 5, 0, 123000
    )  # unix ms string, kept to the millisecond
    assert row["book_ts_ms"] == 1795176300123
    assert (row["tick_size"], row["min_order_size"], row["neg_risk"], row["last_trade_price"]) == (
        0.01,
        5.0,
        False,
        0.62,
    )


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"real API samples not found at {SAMPLES}")
def test_the_captured_book_parses() -> None:
    raw = json.loads((SAMPLES / "clob_book_captured_single_level.json").read_text())["body"]
    row = book_row(raw)
    assert (row["best_bid"], row["best_ask"], row["tick_size"], row["neg_risk"]) == (
        0.001,
        0.999,
        0.001,
        True,
    )
    assert row["condition_id"] == raw["market"] and row["token_id"] == raw["asset_id"]
    assert row["book_hash"] == raw["hash"] and row["book_ts_ms"] == int(raw["timestamp"])
    assert row["spread"] == 0.998 and row["last_trade_price"] == 0.004


def test_crossed_and_one_sided_books_are_stored_not_rejected() -> None:
    crossed = book_row(load("clob_book_crossed.json"))
    assert (crossed["best_bid"], crossed["best_ask"]) == (0.55, 0.53) and crossed["spread"] == -0.02
    empty = book_row(load("clob_book_empty.json"))
    assert empty["best_bid"] is None and empty["mid"] is None and empty["spread"] is None
    assert empty["best_ask"] == 0.998 and empty["bid_levels"] == 0 and json.loads(empty["bids"]) == []


def test_bad_books_are_quarantined_with_the_field_named() -> None:
    books, rejects = parse_records(OrderBook, load("clob_books_batch.json"), CLOB_BOOKS, "asset_id")
    assert [b.asset_id for b in books] == ["111", "222"]
    reasons = {r.record_key: r.reason for r in rejects}
    assert "bids.1.price" in reasons["333"] and "could not convert string to float" in reasons["333"]
    assert reasons["444"] == "timestamp: 1795176300 is not unix milliseconds (seconds?)"
    bad = parse_record(OrderBook, {**load("clob_book_empty.json"), "asks": "none"}, CLOB_BOOK, "asset_id")
    assert isinstance(bad, Reject) and bad.reason.startswith("asks:")


# --- clients and collection against real HTTP servers -----------------------------------


class CannedApi:
    """A real HTTP server on 127.0.0.1 answering fixed bodies by method and path (query: token_id)."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                return

            def _answer(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                api.requests.append((method, url.path, query, body))
                key = url.path + (f"?{query['token_id']}" if "token_id" in query else "")
                status, payload = api.answers.get((method, key), (404, {"error": "not found"}))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def canned() -> Iterator[CannedApi]:
    api = CannedApi(
        {
            ("POST", "/books"): (200, load("clob_books_batch.json")),
            ("GET", "/book?555"): (200, load("clob_book_crossed.json")),
            ("GET", "/book?666"): (200, load("clob_book_empty.json")),
            ("GET", "/trades"): (200, load("data_api_trades_large.json")),
        }
    )
    yield api
    api.close()


def _market(market_id: str, condition_id: str, yes: str, no: str) -> dict[str, Any]:
    return {
        "market_id": market_id,
        "snapshot_ts": datetime(2026, 11, 20, 12),
        "condition_id": condition_id,
        "question": f"market {market_id}?",
        "active": True,
        "closed": False,
        "volume_24h": 1e6,
        "yes_token_id": yes,
        "no_token_id": no,
        "yes_price": 0.5,
        "no_price": 0.5,
        "outcomes": '["Yes", "No"]',
        "ingested_at": datetime(2026, 11, 20, 12),
    }


def _canned_settings(url: str, **overrides: Any) -> Settings:
    return load_settings(
        source="live",
        polymarket={"clob_url": url, "data_url": url, **overrides},
        transport={"backoff_base_seconds": 0.01, "max_retries": 1},
    )


def test_books_come_in_batches_and_left_out_tokens_one_by_one(
    canned: CannedApi, warehouse: Warehouse
) -> None:
    warehouse.upsert(
        market_snapshots,
        [_market("m1", "0xaaa1", "111", "222"), _market("m2", "0xccc3", "555", "666"), _market("m3", "0xeee5", "777", "888")],
    )  # fmt: skip
    settings = _canned_settings(canned.url, books_batch_size=6)
    result = run_collection(collect_order_books, settings, warehouse, "run-1", asset="order_books", now=NOW)
    posts = [body for method, path, _, body in canned.requests if method == "POST"]
    assert posts == [[{"token_id": t} for t in ("111", "222", "555", "666", "777", "888")]]
    singles = sorted(q["token_id"] for method, path, q, _ in canned.requests if path == "/book")
    assert singles == ["555", "666", "777", "888"]  # left out of the batch answers: asked alone
    assert result.details["tokens_without_book"] == 2 and result.details["crossed_books"] == 1
    assert result.details["one_sided_books"] == 1
    stored = warehouse.read_frame("SELECT token_id, market_id, outcome, best_bid FROM order_book_snapshots")
    assert sorted(stored["token_id"]) == ["111", "222", "555", "666"]
    assert dict(zip(stored["token_id"], stored["outcome"], strict=True)) == {
        "111": "Yes",
        "222": "No",
        "555": "Yes",
        "666": "No",
    }
    rejects = warehouse.read_frame(
        "SELECT source, record_key, reason FROM rejected_records ORDER BY record_key"
    )
    assert list(rejects["record_key"]) == ["333", "444"] and set(rejects["source"]) == {CLOB_BOOKS}

    again = run_collection(collect_order_books, settings, warehouse, "run-2", asset="order_books", now=NOW)
    assert again.rows_written == 4 and again.new_rows == 0 and again.new_rejects == 0
    assert warehouse.count("order_book_snapshots") == 4

    crossed = quality.crossed_books(warehouse)
    assert not crossed.passed and list(crossed.offenders["token_id"]) == ["555"]
    empty = quality.empty_books(warehouse)
    assert (
        not empty.passed
        and empty.summary["without_bids"] == 1
        and list(empty.offenders["token_id"]) == ["666"]
    )
    fresh_now = datetime(2026, 11, 20, 12, 10)
    stale = quality.stale_books(warehouse, fresh_now, stale_after_minutes=30)
    assert not stale.passed and stale.summary["without_book"] == 2 and stale.summary["stale"] == 0
    assert set(stale.offenders["token_id"]) == {"777", "888"}
    later = quality.stale_books(warehouse, datetime(2026, 11, 20, 13), stale_after_minutes=30)
    assert later.summary["stale"] == 4


def test_a_batch_answer_for_tokens_not_asked_for_is_quarantined(canned: CannedApi) -> None:
    async def ask() -> tuple[list[OrderBook], list[Reject]]:
        async with build_clients(_canned_settings(canned.url)) as clients:
            return await clients.clob.books(["111"])

    books, rejects = asyncio.run(ask())
    assert [b.asset_id for b in books] == ["111"]
    reasons = {r.record_key: r.reason for r in rejects}
    assert reasons["222"] == "asset_id: not one of the requested tokens" and set(reasons) == {
        "222",
        "333",
        "444",
    }


def test_large_trades_use_the_cash_filter_and_drop_smaller_fills(
    canned: CannedApi, warehouse: Warehouse
) -> None:
    warehouse.upsert(market_snapshots, [_market("m1", "0xabc", "111", "222")])
    settings = load_settings(
        source="live",
        polymarket={"data_url": canned.url},
        data_collection={"whale_trade_usd": 1000, "trade_history_days": 90},
        transport={"backoff_base_seconds": 0.01, "max_retries": 1},
    )
    result = run_collection(collect_whale_trades, settings, warehouse, "run-1", asset="whale_trades", now=NOW)
    (_, path, query, _) = canned.requests[0]
    assert path == "/trades" and query["filterType"] == "CASH" and float(query["filterAmount"]) == 1000
    assert query["market"] == "0xabc"
    rows = warehouse.read_frame("SELECT * FROM whale_trades ORDER BY ts DESC", parse_dates=["ts"])
    # the server ignored the filter: the 40 USD fill is dropped by the client, not stored
    assert list(rows["transaction_hash"]) == ["0x01", "0x02"]
    assert list(rows["usd"]) == [2000.0, 1800.0] and list(rows["side"]) == ["BUY", "SELL"]
    assert list(rows["token_id"]) == ["111", "222"] and set(rows["market_id"]) == {"m1"}
    assert rows["ts"].iloc[0] == datetime(1970, 1, 1) + timedelta(seconds=1795001000)  # naive UTC
    reasons = sorted(r.reason for r in result.rejects)
    assert reasons == ["side: expected BUY or SELL, got 'HOLD'", "transactionHash: Field required"]
    again = run_collection(collect_whale_trades, settings, warehouse, "run-2", asset="whale_trades", now=NOW)
    assert again.new_rows == 0 and warehouse.count("whale_trades") == 2


def test_rate_limits_come_from_the_settings() -> None:
    settings = load_settings(
        polymarket={"book_rate_limit": 7, "books_rate_limit": 3, "trades_rate_limit": 11}
    )

    async def limits() -> dict[str, tuple[int, float]]:
        async with build_clients(settings) as clients:
            return {k: (v.max_calls, v.period) for k, v in clients.transport.limiters.items()}

    got = asyncio.run(limits())
    assert got[CLOB_BOOK] == (7, 10.0) and got[CLOB_BOOKS] == (3, 10.0) and got[DATA_TRADES] == (11, 10.0)
    defaults = load_settings().polymarket
    assert (defaults.book_rate_limit, defaults.books_rate_limit, defaults.trades_rate_limit) == (
        1500,
        500,
        200,
    )


def test_a_batch_post_is_retried_through_server_faults(server: SimulatorServer) -> None:
    server.add_faults("/books", ["500", "truncated", "reset"])
    tokens = [m.yes_token for m in server.world.markets[:3]]

    async def ask() -> tuple[list[OrderBook], int]:
        async with build_clients(live_settings(server.url)) as clients:
            books, _ = await clients.clob.books(tokens)
            return books, clients.stats.retries

    books, retries = asyncio.run(ask())
    assert [b.asset_id for b in books] == tokens and retries == 3


def test_demo_books_and_large_trades_over_http_repeat_without_duplicates(server: SimulatorServer) -> None:
    settings = live_settings(server.url, polymarket={"books_batch_size": 5})
    wh = Warehouse(settings.database.sqlalchemy_url())
    now = NOW  # live mode runs on the wall clock; the server's world is frozen at NOW
    try:
        run_collection(collect_markets, settings, wh, "r1", asset="polymarket_markets", now=now)
        books = run_collection(collect_order_books, settings, wh, "r1", asset="order_books", now=now)
        tokens = books.details["tokens"]
        assert tokens == 24 and books.new_rows == tokens and not books.rejects
        assert server.stats.per_path["/books"] == 5 and "/book" not in server.stats.per_path  # ceil(24 / 5)
        assert books.details["crossed_books"] == 0 and books.details["one_sided_books"] == 0
        whales = run_collection(collect_whale_trades, settings, wh, "r1", asset="whale_trades", now=now)
        assert whales.new_rows > 0 and not whales.rejects
        usd = wh.read_frame("SELECT usd FROM whale_trades")["usd"]
        assert usd.min() >= settings.data_collection.whale_trade_usd
        assert (
            run_collection(collect_order_books, settings, wh, "r2", asset="order_books", now=now).new_rows
            == 0
        )
        assert (
            run_collection(collect_whale_trades, settings, wh, "r2", asset="whale_trades", now=now).new_rows
            == 0
        )
    finally:
        wh.dispose()

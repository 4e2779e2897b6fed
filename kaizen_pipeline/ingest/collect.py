"""Collection steps behind the ingest assets: fetch through the clients, validate, write idempotently.

Each step returns a CollectResult (rows, rejects, call statistics, degraded flag, a preview) and
``run_collection`` records it in ``rejected_records`` and ``ingestion_runs``. No Dagster here.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.clock import bucket_minutes, buckets, floor_to_bucket, pipeline_now
from kaizen_pipeline.ingest.clients import (
    X_SEARCH_RECENT,
    IngestClients,
    TradesResult,
    build_clients,
    x_start_time,
)
from kaizen_pipeline.ingest.parsers import CONFLICT_REASON, LargeTrade, OrderBook, Reject, Trade
from kaizen_pipeline.ingest.queries import keyword_query, market_search_query
from kaizen_pipeline.ingest.transport import ApiError, CallStats, gather_bounded
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import (
    ingestion_runs,
    market_outcomes,
    market_snapshots,
    order_book_snapshots,
    price_points,
    rejected_records,
    trade_volumes,
    tweet_authors,
    tweet_mentions,
    tweets,
    whale_trades,
    x_search_state,
)

GENERAL_QUERY_MARKET = "*"
# tokens whose price history is fetched and written together (bounds a long backfill's memory)
PRICE_TOKENS_PER_WRITE = 200
# /trades requests name several markets only for markets continuing from within this span of now
TRADES_BATCH_HORIZON = timedelta(days=1)
# markets whose fills are fetched, bucketed and written together (a multiple of 20-market requests)
TRADE_MARKETS_PER_WRITE = 100


@dataclass
class CollectResult:
    asset: str
    rows_written: int = 0
    new_rows: int = 0
    rejects: list[Reject] = field(default_factory=list)
    new_rejects: int = 0
    degraded: bool = False
    degraded_reason: str | None = None
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)
    details: dict[str, Any] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)


def _unix(ts: datetime) -> int:
    return int(ts.replace(tzinfo=UTC).timestamp())


Window = tuple[datetime, datetime]
"""A naive-UTC [start, end) collection window: one daily partition, or a range of them."""


def clip_window(window: Window, now: datetime) -> tuple[int, int] | None:
    """The unix seconds [start, last] to fetch of ``window`` on the pipeline clock: inclusive ``last`` is
    the window's last second, or ``now`` for today's partition; None when the window starts after ``now``."""
    start, end = window
    if start > now:
        return None
    return _unix(start), (_unix(now) if now < end else _unix(end) - 1)


def current_markets(warehouse: Warehouse) -> pd.DataFrame:
    """The markets of the newest snapshot: the universe the other ingest assets follow."""
    return warehouse.read_frame(
        sa.select(market_snapshots)
        .where(
            market_snapshots.c.snapshot_ts
            == sa.select(sa.func.max(market_snapshots.c.snapshot_ts)).scalar_subquery()
        )
        .order_by(market_snapshots.c.volume_24h.desc())
    )


def _require_markets(warehouse: Warehouse) -> pd.DataFrame:
    markets = current_markets(warehouse)
    if markets.empty:
        raise RuntimeError("market_snapshots is empty: materialize polymarket_markets first")
    return markets


async def collect_markets(
    clients: IngestClients, settings: Settings, warehouse: Warehouse, now: datetime
) -> CollectResult:
    dc = settings.data_collection
    markets, rejects = await clients.gamma.open_markets(
        min_volume_24h=dc.min_volume_24h, min_liquidity=dc.min_liquidity, max_markets=dc.max_markets
    )
    if not markets:
        raise RuntimeError(
            f"Gamma returned no open market with volume_24h >= {dc.min_volume_24h:g}"
            f" (data_collection.min_volume_24h); {len(rejects)} records were rejected"
        )
    snapshot_ts = floor_to_bucket(now, dc.frequency_minutes).to_pydatetime()
    binary = [m for m in markets if m.is_binary]
    rows = [m.row(snapshot_ts, now) for m in binary]
    outcome_rows = [r for m in markets for r in m.outcome_rows(snapshot_ts)]
    # Every market keeps its outcomes; only binary ones become snapshots, which research reads.
    outcomes_written = warehouse.upsert(market_outcomes, outcome_rows)
    written = warehouse.upsert(market_snapshots, rows)
    frame = pd.DataFrame(rows)
    columns = ["market_id", "question", "category", "yes_price", "volume_24h", "liquidity", "spread"]
    preview = frame[columns] if not frame.empty else pd.DataFrame(columns=columns)
    non_binary = len(markets) - len(binary)
    return CollectResult(
        "polymarket_markets",
        written.rows_written,
        written.new_rows,
        rejects,
        preview=preview,
        details={
            "snapshot_ts": snapshot_ts.isoformat(),
            "categories": int(frame["category"].nunique()) if not frame.empty else 0,
            "binary_markets": len(binary),
            "non_binary_markets": non_binary,
            "market_outcomes_new_rows": outcomes_written.new_rows,
            "non_binary_note": (
                f"{non_binary} markets with 3+ outcomes are stored in market_outcomes only;"
                " the research assets model YES/NO markets and skip them"
            ),
        },
    )


async def collect_prices(
    clients: IngestClients,
    settings: Settings,
    warehouse: Warehouse,
    now: datetime,
    *,
    window: Window | None = None,
) -> CollectResult:
    """Price history of both tokens of every tracked market, upserted on (token, ts).

    With ``window`` (a partition or range): exactly that window, clipped to ``now``, one request per
    token. Without (catch-up): from each token's newest stored point, or data_collection.history_days.
    """
    markets = _require_markets(warehouse)
    tokens = [
        (row.market_id, outcome, token)
        for row in markets.itertuples()
        for outcome, token in (("Yes", row.yes_token_id), ("No", row.no_token_id))
    ]
    last_ts: dict[str, int] = {}
    if window is None:
        last = warehouse.read_frame(
            sa.select(price_points.c.token_id, sa.func.max(price_points.c.ts).label("last_ts"))
            .where(price_points.c.token_id.in_([t for _, _, t in tokens]))
            .group_by(price_points.c.token_id),
            parse_dates=["last_ts"],
        )
        last_ts = {r.token_id: _unix(r.last_ts.to_pydatetime()) for r in last.itertuples()}
        span: tuple[int, int] | None = (
            _unix(now - timedelta(days=settings.data_collection.history_days)),
            _unix(now),
        )
    else:
        span = clip_window(window, now)
    if span is None:  # a partition after the pipeline clock (a frozen demo clock): nothing exists yet
        tokens = []
    first_ts, end_ts = span or (0, 0)

    async def fetch(market_id: str, outcome: str, token: str) -> tuple[pd.DataFrame, list[Reject]]:
        start = last_ts[token] + 1 if token in last_ts else first_ts
        history, rejects = await clients.clob.price_history(token, start, end_ts)
        frame = pd.DataFrame(
            {
                "token_id": token,
                "ts": pd.to_datetime(history.t, unit="s"),
                "market_id": market_id,
                "outcome": outcome,
                "price": history.p,
            }
        )
        return frame, rejects

    # Written a chunk of tokens at a time: 30 days of 2,000 tokens held at once took over 14 GB.
    columns = ["token_id", "ts", "market_id", "outcome", "price"]
    rejects: list[Reject] = []
    rows_written = new_rows = 0
    previews: list[pd.DataFrame] = []
    for start in range(0, max(len(tokens), 1), PRICE_TOKENS_PER_WRITE):
        chunk = tokens[start : start + PRICE_TOKENS_PER_WRITE]
        results = await gather_bounded(
            [lambda m=m, o=o, t=t: fetch(m, o, t) for m, o, t in chunk],
            settings.data_collection.max_concurrency,
        )
        frames = [f for f, _ in results] or [pd.DataFrame(columns=columns)]
        rows = pd.concat(frames, ignore_index=True)
        rejects.extend(r for _, rj in results for r in rj)
        written = warehouse.upsert(price_points, rows, update=False)
        rows_written += written.rows_written
        new_rows += written.new_rows
        previews.append(rows[rows["outcome"] == "Yes"].sort_values("ts").groupby("market_id").tail(1))
        del rows, frames, results
    conflicts = sum(r.reason.startswith(CONFLICT_REASON) for r in rejects)
    preview = pd.concat(previews, ignore_index=True).merge(
        markets[["market_id", "question"]], on="market_id"
    )[["market_id", "question", "ts", "price"]]
    return CollectResult(
        "market_prices",
        rows_written,
        new_rows,
        rejects,
        preview=preview,
        details={
            "tokens": len(tokens),
            "incremental_tokens": len(last_ts),
            "timestamp_conflicts": conflicts,
            **_window_details(window, now),
        },
    )


def _window_details(window: Window | None, now: datetime) -> dict[str, Any]:
    if window is None:
        return {"window": "catch-up (unpartitioned run)"}
    end = min(window[1], now)
    return {"window": f"{window[0]:%Y-%m-%d %H:%M} to {max(end, window[0]):%Y-%m-%d %H:%M} UTC"}


def bucket_trades(trades: list[Any], minutes: int, since: datetime, until: datetime) -> pd.DataFrame:
    """Aggregate trades into ``minutes``-wide buckets from ``since`` to ``until``; empty buckets are 0."""
    width = minutes * 60
    start, stop = _unix(since), _unix(until)
    index = pd.Index(range(start - start % width, stop - stop % width + 1, width), name="bucket")
    if trades:
        frame = pd.DataFrame(
            {
                "bucket": [t.timestamp - t.timestamp % width for t in trades],
                "usd": [t.size * t.price for t in trades],
                "buy": [t.side == "BUY" for t in trades],
            }
        )
        frame = frame[frame["bucket"] >= index[0]]
        frame["buy_usd"] = frame["usd"].where(frame["buy"], 0.0)
        agg = frame.groupby("bucket").agg(
            volume_usd=("usd", "sum"), buy_volume_usd=("buy_usd", "sum"), trade_count=("usd", "size")
        )
    else:
        agg = pd.DataFrame(columns=["volume_usd", "buy_volume_usd", "trade_count"])
    agg = agg.reindex(index, fill_value=0).reset_index()
    agg["bucket_ts"] = pd.to_datetime(agg["bucket"], unit="s")
    agg["trade_count"] = agg["trade_count"].astype(int)
    return agg.drop(columns="bucket")


async def fetch_trades(
    clients: IngestClients,
    settings: Settings,
    wanted: list[tuple[str, str, int]],
    now: datetime,
    *,
    min_usd: float | None = None,
    model: type[Trade] = Trade,
) -> dict[str, TradesResult]:
    """Fills of each (market id, condition id, since unix) back to its since.

    Markets that continue from the last day (the 15-minute cycle) share requests, up to
    polymarket.trades_markets_per_request each, nearest ``since`` together (a request pages back to
    its earliest one). Longer histories (a backfill) are paged per market: a feed merging 20 long
    histories is 20 times deeper than any one of them and outruns the page budget.
    """
    per_request = settings.polymarket.trades_markets_per_request
    recent_from = _unix(now - TRADES_BATCH_HORIZON)
    ordered = sorted(wanted, key=lambda w: (w[2], w[0]))
    recent = [w for w in ordered if w[2] >= recent_from]
    batches = [[w] for w in ordered if w[2] < recent_from]
    batches += [recent[i : i + per_request] for i in range(0, len(recent), per_request)]

    async def fetch(batch: list[tuple[str, str, int]]) -> dict[str, TradesResult]:
        by_condition = await clients.data.trades_since_many(
            {condition: since for _, condition, since in batch}, min_usd=min_usd, model=model
        )
        return {market: by_condition[condition] for market, condition, _ in batch}

    answers = await gather_bounded(
        [lambda b=b: fetch(b) for b in batches], settings.data_collection.max_concurrency
    )
    merged = {market: result for answer in answers for market, result in answer.items()}
    return {market: merged[market] for market, _, _ in wanted}


async def collect_trade_volumes(
    clients: IngestClients,
    settings: Settings,
    warehouse: Warehouse,
    now: datetime,
    *,
    window: Window | None = None,
) -> CollectResult:
    """Traded USD per market and bucket, upserted on (market, bucket): empty buckets are stored as 0.

    With ``window`` (a partition or range): the buckets of that window up to ``now``, one paged fetch
    per market; today's partition alone continues from each market's newest stored bucket in it.
    Without (catch-up): from each market's newest stored bucket, or data_collection.trade_history_days.
    """
    markets = _require_markets(warehouse)
    minutes = settings.data_collection.frequency_minutes
    last_bucket: dict[str, datetime] = {}
    until = now
    running_day = window is not None and window[0] <= now < window[1] == window[0] + timedelta(days=1)
    if window is None or running_day:
        # Incremental only for the 15-minute schedule's runs of today: any other window is re-read
        # whole, so a range backfill fills holes instead of starting after the newest stored bucket.
        newest = sa.select(
            trade_volumes.c.market_id, sa.func.max(trade_volumes.c.bucket_ts).label("last_bucket")
        )
        if window is not None:
            newest = newest.where(trade_volumes.c.bucket_ts >= window[0])
        last = warehouse.read_frame(newest.group_by(trade_volumes.c.market_id), parse_dates=["last_bucket"])
        last_bucket = {r.market_id: r.last_bucket.to_pydatetime() for r in last.itertuples()}
    if window is None:
        default_since = floor_to_bucket(
            now - timedelta(days=settings.data_collection.trade_history_days), minutes
        ).to_pydatetime()
    else:
        default_since = floor_to_bucket(window[0], minutes).to_pydatetime()
        span = clip_window(window, now)
        if span is None:  # a partition after the pipeline clock: nothing has traded yet
            markets = markets.iloc[:0]
        # the last bucket starting inside the window: the next partition's buckets are not this run's
        until = datetime.fromtimestamp(span[1], UTC).replace(tzinfo=None) if span else now

    # Re-read the newest stored bucket: it was still filling when last collected.
    since_by_market = {r.market_id: last_bucket.get(r.market_id, default_since) for r in markets.itertuples()}
    wanted = [
        (r.market_id, r.condition_id, _unix(since_by_market[r.market_id])) for r in markets.itertuples()
    ]
    columns = ["volume_usd", "buy_volume_usd", "trade_count", "bucket_ts", "market_id"]
    cutoff = pd.Timestamp(until - timedelta(hours=24))
    rejects: list[Reject] = []
    warnings: list[str] = []
    duplicates = rows_written = new_rows = 0
    recent_frames: list[pd.DataFrame] = []
    # A chunk of markets at a time: a 30-day backfill of 1,000 markets is millions of parsed fills.
    for start in range(0, max(len(wanted), 1), TRADE_MARKETS_PER_WRITE):
        fetched_by_market = await fetch_trades(
            clients, settings, wanted[start : start + TRADE_MARKETS_PER_WRITE], now
        )
        frames = []
        for market_id, fetched in fetched_by_market.items():
            frame = bucket_trades(fetched.trades, minutes, since_by_market[market_id], until)
            frame["market_id"] = market_id
            frames.append(frame)
            rejects.extend(fetched.rejects)
            warnings.extend(fetched.warnings)
            duplicates += fetched.duplicates
        del fetched_by_market
        frame = pd.concat(frames or [pd.DataFrame(columns=columns)], ignore_index=True)
        written = warehouse.upsert(trade_volumes, frame)
        rows_written += written.rows_written
        new_rows += written.new_rows
        recent_frames.append(frame[frame["bucket_ts"] >= cutoff])
    recent = pd.concat(recent_frames, ignore_index=True)
    preview = (
        recent.groupby("market_id", as_index=False)
        .agg(volume_24h_usd=("volume_usd", "sum"), trades_24h=("trade_count", "sum"))
        .merge(markets[["market_id", "question"]], on="market_id")
        .sort_values("volume_24h_usd", ascending=False)[
            ["market_id", "question", "volume_24h_usd", "trades_24h"]
        ]
    )
    result = CollectResult("trade_volumes", rows_written, new_rows, rejects, preview=preview)
    result.details = {
        "duplicate_trades": duplicates,
        "repeated_pages": len(warnings),
        **_window_details(window, now),
    }
    if warnings:
        result.degraded = True
        result.degraded_reason = f"{len(warnings)} markets: {warnings[0]}"
        result.details["pagination_warning"] = warnings[0]
    return result


def _tracked_tokens(markets: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """token id -> (market id, outcome) for both outcome tokens of every tracked market."""
    return {
        token: (row.market_id, outcome)
        for row in markets.itertuples()
        for outcome, token in (("Yes", row.yes_token_id), ("No", row.no_token_id))
    }


async def collect_order_books(
    clients: IngestClients, settings: Settings, warehouse: Warehouse, now: datetime
) -> CollectResult:
    """Order books of both tokens of every tracked market: ``POST /books`` in batches, ``GET /book`` for the rest.

    A token the batch answer leaves out is asked for alone; one the CLOB has no book for (404) is
    counted in ``tokens_without_book``. A snapshot is keyed by token and book timestamp, so a
    re-run that sees the same book adds nothing.
    """
    pm = settings.polymarket
    tokens = _tracked_tokens(_require_markets(warehouse))
    ids = list(tokens)
    batches = [ids[i : i + pm.books_batch_size] for i in range(0, len(ids), pm.books_batch_size)]
    answers = await gather_bounded(
        [lambda b=b: clients.clob.books(b) for b in batches], settings.data_collection.max_concurrency
    )
    books: dict[str, OrderBook] = {}
    rejects: list[Reject] = []
    for found, bad in answers:
        rejects.extend(bad)
        books.update({b.asset_id: b for b in found})
    answered = set(books) | {r.record_key for r in rejects}
    left_out = [t for t in ids if t not in answered]
    singles = await gather_bounded(
        [lambda t=t: clients.clob.book(t) for t in left_out], settings.data_collection.max_concurrency
    )
    without_book = 0
    for single in singles:
        if single is None:
            without_book += 1
        elif isinstance(single, Reject):
            rejects.append(single)
        else:
            books[single.asset_id] = single
    rows = [book.row(*tokens[token], pm.book_levels, now) for token, book in books.items() if token in tokens]
    written = warehouse.upsert(order_book_snapshots, rows, update=False)
    columns = [
        "market_id",
        "outcome",
        "book_ts",
        "best_bid",
        "best_ask",
        "spread",
        "bid_levels",
        "ask_levels",
    ]
    frame = pd.DataFrame(rows, columns=[*columns, "token_id"])
    preview = frame[columns].sort_values(["market_id", "outcome"]) if not frame.empty else frame[columns]
    both = frame.dropna(subset=["best_bid", "best_ask"]) if not frame.empty else frame
    return CollectResult(
        "order_books",
        written.rows_written,
        written.new_rows,
        rejects,
        preview=preview,
        details={
            "tokens": len(ids),
            "books": len(rows),
            "batches": len(batches),
            "single_requests": len(left_out),
            "tokens_without_book": without_book,
            "crossed_books": int((both["best_bid"] >= both["best_ask"]).sum()) if not both.empty else 0,
            "one_sided_books": len(rows) - len(both),
        },
    )


async def collect_whale_trades(
    clients: IngestClients, settings: Settings, warehouse: Warehouse, now: datetime
) -> CollectResult:
    """Large fills (at least data_collection.whale_trade_usd) of every tracked market from the Data API cash filter.

    Incremental from each market's newest stored large trade (data_collection.trade_history_days on
    the first run); the newest second is read again and the upsert on the fill's id drops repeats.
    """
    markets = _require_markets(warehouse)
    min_usd = settings.data_collection.whale_trade_usd
    last = warehouse.read_frame(
        sa.select(whale_trades.c.market_id, sa.func.max(whale_trades.c.ts).label("last_ts")).group_by(
            whale_trades.c.market_id
        ),
        parse_dates=["last_ts"],
    )
    last_ts = {r.market_id: _unix(r.last_ts.to_pydatetime()) for r in last.itertuples()}
    default_since = _unix(now - timedelta(days=settings.data_collection.trade_history_days))

    wanted = [
        (r.market_id, r.condition_id, last_ts.get(r.market_id, default_since)) for r in markets.itertuples()
    ]
    columns = ["market_id", "ts", "outcome", "side", "usd", "price", "wallet"]
    rejects: list[Reject] = []
    warnings: list[str] = []
    duplicates = large = rows_written = new_rows = 0
    previews: list[pd.DataFrame] = []
    for start in range(0, max(len(wanted), 1), TRADE_MARKETS_PER_WRITE):
        chunk = wanted[start : start + TRADE_MARKETS_PER_WRITE]
        results = await fetch_trades(clients, settings, chunk, now, min_usd=min_usd, model=LargeTrade)
        rows = {}
        for market_id, fetched in results.items():
            for trade in fetched.trades:
                row = trade.row(market_id, now)  # type: ignore[attr-defined]
                rows[row["trade_id"]] = row
            rejects.extend(fetched.rejects)
            warnings.extend(fetched.warnings)
            duplicates += fetched.duplicates
        del results
        written = warehouse.upsert(whale_trades, list(rows.values()), update=False)
        rows_written += written.rows_written
        new_rows += written.new_rows
        large += len(rows)
        frame = pd.DataFrame(list(rows.values()), columns=columns)
        previews.append(frame.sort_values("usd", ascending=False).head(20))
    preview = pd.concat(previews, ignore_index=True).sort_values("usd", ascending=False).head(20)
    result = CollectResult("whale_trades", rows_written, new_rows, rejects, preview=preview)
    result.details = {
        "min_usd": f"{min_usd:g}",
        "large_trades": large,
        "duplicate_trades": duplicates,
        "repeated_pages": len(warnings),
    }
    if warnings:
        result.degraded = True
        result.degraded_reason = f"{len(warnings)} markets: {warnings[0]}"
    return result


def _max_id(ids: list[str]) -> str | None:
    return max(ids, key=lambda i: (len(i), i)) if ids else None


X_WINDOW_MINUTES = 15
# Top-volume markets may jump the queue by up to this many schedule periods: bounded, so the least
# liquid market still comes round within ceil(markets / queries per run) + this many runs.
VOLUME_PRIORITY_PERIODS = 2


def x_request_budget(rate_limit: int, period_minutes: int) -> int:
    """X requests one run may spend: its share of the 15-minute window, less a 10% margin, at least 1."""
    share = min(rate_limit, math.floor(rate_limit * period_minutes / X_WINDOW_MINUTES))
    return max(1, share - max(1, math.ceil(share * 0.1)))


@dataclass
class RequestBudget:
    """X requests left for this run: queries reserve their page budget up front and refund what they did not use."""

    left: int
    outstanding: int = 0
    granted: int = 0

    def reserve(self, pages: int) -> int:
        """Pages granted to one query: all it may need, or whatever is left for the run's first query."""
        grant = pages if self.left >= pages else (self.left if self.granted == 0 else 0)
        self.left -= grant
        self.outstanding += grant
        self.granted += grant > 0
        return grant

    def settle(self, reserved: int, used: int) -> None:
        self.outstanding -= reserved
        self.left += max(0, reserved - used)

    def observe_remaining(self, remaining: int | None) -> None:
        """Never plan beyond what X says the window has left (other queries' reservations included)."""
        if remaining is not None:
            self.left = min(self.left, max(0, remaining - self.outstanding))


def prioritized_queries(
    queries: list[tuple[str, str, float]], last_searched: dict[str, datetime], period: timedelta
) -> list[tuple[str, str]]:
    """The general query first, then never-searched markets by 24 h volume, then the stalest searches.

    ``queries`` are (market_id, query, volume_24h) in any order; a market's staleness is the time since
    its last completed search, advanced by up to VOLUME_PRIORITY_PERIODS periods for high volume.
    """
    general = [(m, q) for m, q, _ in queries if m == GENERAL_QUERY_MARKET]
    markets = sorted(
        ((m, q, v) for m, q, v in queries if m != GENERAL_QUERY_MARKET), key=lambda x: (-x[2], x[0])
    )
    n = max(1, len(markets))

    def key(item: tuple[int, tuple[str, str, float]]) -> tuple[int, datetime, int]:
        rank, (market_id, _, _) = item
        searched = last_searched.get(market_id)
        if searched is None:
            return (0, datetime.min, rank)
        boost = period * VOLUME_PRIORITY_PERIODS * (1 - rank / n)
        return (1, searched - boost, rank)

    ordered = sorted(enumerate(markets), key=key)
    return general + [(m, q) for _, (m, q, _) in ordered]


async def collect_tweets(
    clients: IngestClients, settings: Settings, warehouse: Warehouse, now: datetime
) -> CollectResult:
    """Search X within this run's request budget, highest-priority queries first; defer the rest.

    The budget comes from ``twitter.rate_limit`` and ``data_collection.frequency_minutes``; a 429 ends
    the searching for this run (never a wait for the window) and what was collected is kept.
    """
    result = CollectResult("tweets")
    if not clients.x.configured:
        result.degraded, result.degraded_reason = (
            True,
            "X bearer token is not set (KAIZEN_TWITTER__BEARER_TOKEN)",
        )
        return result
    tw = settings.twitter
    candidates: list[tuple[str, str, float]] = [(GENERAL_QUERY_MARKET, keyword_query(tw.keywords), math.inf)]
    if tw.per_market_queries:
        markets = current_markets(warehouse)
        candidates += [
            (r.market_id, market_search_query(r.question), float(r.volume_24h or 0.0))
            for r in markets.itertuples()
        ]
    state = warehouse.read_frame(sa.select(x_search_state), parse_dates=["last_searched_at"])
    last_searched = {
        r.market_id: r.last_searched_at.to_pydatetime()
        for r in state.itertuples()
        if pd.notna(r.last_searched_at)
    }
    period = buckets(1, bucket_minutes(settings))
    queries = prioritized_queries(candidates, last_searched, period)
    known = warehouse.read_frame(
        sa.select(tweet_mentions.c.query, tweet_mentions.c.tweet_id).where(
            tweet_mentions.c.query.in_([q for _, q in queries])
        )
    )
    since_ids = (
        {q: _max_id(list(g["tweet_id"])) for q, g in known.groupby("query")} if not known.empty else {}
    )
    start_time = x_start_time(tw.window_days, now.replace(tzinfo=UTC))
    budget = RequestBudget(x_request_budget(tw.rate_limit, settings.data_collection.frequency_minutes))
    initial_budget = budget.left
    rate_limited = False

    async def search(market_id: str, query: str) -> tuple[str, str, Any]:
        nonlocal rate_limited
        if rate_limited:
            return market_id, query, None
        pages = budget.reserve(tw.max_pages_per_query)
        if not pages:
            return market_id, query, None
        try:
            found = await clients.x.search_recent(
                query, start_time=start_time, since_id=since_ids.get(query), max_pages=pages
            )
        except ApiError as exc:
            budget.settle(pages, pages)  # a failed search may have spent every page it reserved
            if exc.status == 429:
                rate_limited = True  # the window is spent: later queries wait for a later run
                return market_id, query, None
            return market_id, query, exc
        budget.settle(pages, found.pages)
        budget.observe_remaining(found.rate_remaining)
        return market_id, query, found

    outcomes = await gather_bounded(
        [lambda m=m, q=q: search(m, q) for m, q in queries], settings.data_collection.max_concurrency
    )
    failures = [(q, o) for _, q, o in outcomes if isinstance(o, ApiError)]
    deferred = [m for m, _, o in outcomes if o is None]
    tweet_rows: dict[str, dict[str, Any]] = {}
    user_rows: dict[str, dict[str, Any]] = {}
    mention_rows: list[dict[str, Any]] = []
    searched_rows: list[dict[str, Any]] = []
    duplicates = 0
    for market_id, query, outcome in outcomes:
        if outcome is None or isinstance(outcome, ApiError):
            continue
        searched_rows.append({"market_id": market_id, "query": query, "last_searched_at": now})
        result.rejects.extend(outcome.rejects)
        for t in outcome.tweets:
            duplicates += t.id in tweet_rows
            tweet_rows[t.id] = t.row(now)
            mention_rows.append({"tweet_id": t.id, "market_id": market_id, "query": query})
        for u in outcome.users:
            user_rows[u.id] = u.row(now)
    if failures:
        result.degraded = True
        first_query, first_error = failures[0]
        result.degraded_reason = f"{len(failures)} of {len(queries)} X queries failed; first: {first_error}"
    written = warehouse.upsert(tweets, list(tweet_rows.values()))
    warehouse.upsert(tweet_authors, list(user_rows.values()))
    warehouse.upsert(tweet_mentions, mention_rows, update=False)
    # Only completed searches count as searched: failed and deferred ones stay stale and rise in priority.
    warehouse.upsert(x_search_state, searched_rows)
    result.rows_written, result.new_rows = written.rows_written, written.new_rows
    result.details = {
        "queries": len(queries),
        "searched_queries": len(searched_rows),
        "deferred_queries": len(deferred),
        "failed_queries": len(failures),
        "request_budget": initial_budget,
        "requests_used": clients.stats.per_endpoint.get(X_SEARCH_RECENT, 0),
        "stopped_by_rate_limit": rate_limited,
        "authors": len(user_rows),
        "cross_query_duplicates": duplicates,
    }
    if tweet_rows:
        frame = pd.DataFrame(tweet_rows.values()).sort_values("created_at", ascending=False)
        result.preview = frame[["tweet_id", "created_at", "like_count", "retweet_count", "text"]].head(20)
    return result


Collector = Callable[[IngestClients, Settings, Warehouse, datetime], Awaitable[CollectResult]]


def run_collection(
    collector: Collector,
    settings: Settings,
    warehouse: Warehouse,
    run_id: str,
    *,
    asset: str,
    http_transport: httpx.AsyncBaseTransport | None = None,
    now: datetime | None = None,
    variants: Mapping[str, str] | None = None,
) -> CollectResult:
    """Run one collector in its own HTTP session; record rejects and the ingestion run, even on failure.

    ``variants`` (flag key -> variant of this run) is stored on the ingestion_runs row.

    Run times are on the pipeline clock (the frozen demo clock when set) so that readers filtering
    ``ingestion_runs`` by day, like the kaizen metrics, see replayed days where they happened.
    """
    now = now or pipeline_now(settings)
    started = now
    wall_start = time.monotonic()
    clients = build_clients(settings, http_transport)

    async def go() -> CollectResult:
        async with clients:
            return await collector(clients, settings, warehouse, now)

    try:
        result = asyncio.run(go())
    except Exception as exc:
        failed = CollectResult(asset, stats=clients.stats, degraded=False, degraded_reason=str(exc)[:500])
        _record_run(warehouse, run_id, settings.source, started, wall_start, failed, "failed", variants)
        raise
    result.stats = clients.stats
    if result.rejects:
        rows = [r.row(run_id, started) for r in result.rejects]
        result.new_rejects = warehouse.upsert(rejected_records, rows, update=False).new_rows
    _record_run(
        warehouse,
        run_id,
        settings.source,
        started,
        wall_start,
        result,
        "degraded" if result.degraded else "success",
        variants,
    )
    return result


def _record_run(
    warehouse: Warehouse,
    run_id: str,
    source: str,
    started: datetime,
    wall_start: float,
    result: CollectResult,
    status: str,
    variants: Mapping[str, str] | None,
) -> None:
    warehouse.upsert(
        ingestion_runs,
        [
            {
                "run_id": run_id,
                "asset": result.asset,
                "source": source,
                "started_at": started,
                "finished_at": started + timedelta(seconds=time.monotonic() - wall_start),
                "status": status,
                **result.stats.as_dict(),
                "rows_written": result.rows_written,
                "new_rows": result.new_rows,
                "rejects": len(result.rejects),
                "degraded": result.degraded,
                "degraded_reason": result.degraded_reason,
                "variants": json.dumps(dict(variants), sort_keys=True) if variants else None,
            }
        ],
    )


def staleness_minutes(newest: datetime | None, now: datetime) -> float:
    """Minutes since ``newest`` (infinite when there is no data)."""
    return math.inf if newest is None else (now - newest).total_seconds() / 60

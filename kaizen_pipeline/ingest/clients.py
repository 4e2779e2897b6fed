"""Polymarket (Gamma, CLOB, Data API) and X recent-search clients, all over the one Transport.

Clients return validated records plus Rejects; they never write. ``IngestClients`` is an async
context manager holding one HTTP session, the per-endpoint rate limiters and the run's CallStats.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kaizen_pipeline.ingest.parsers import (
    GammaMarket,
    OrderBook,
    PriceHistory,
    Reject,
    Trade,
    TweetRecord,
    UserRecord,
    parse_price_history,
    parse_record,
    parse_records,
)
from kaizen_pipeline.ingest.ratelimit import shared_limiters
from kaizen_pipeline.ingest.transport import (
    ApiError,
    CallStats,
    RetryPolicy,
    SlidingWindowRateLimiter,
    Transport,
)
from kaizen_pipeline.settings import Settings

GAMMA_MARKETS = "gamma:/markets/keyset"
CLOB_PRICES_HISTORY = "clob:/prices-history"
CLOB_BOOK = "clob:/book"
CLOB_BOOKS = "clob:/books"
DATA_TRADES = "data:/trades"
X_SEARCH_RECENT = "x:/2/tweets/search/recent"

X_TWEET_FIELDS = "created_at,public_metrics,author_id,lang"
X_USER_FIELDS = "created_at,public_metrics,verified"
MAX_GAMMA_PAGES = 100


class GammaClient:
    """Gamma ``GET /markets/keyset``: open markets (binary and categorical), top ``max_markets`` by 24 h volume."""

    def __init__(self, transport: Transport, base_url: str, page_size: int) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size

    async def open_markets(
        self, *, min_volume_24h: float, min_liquidity: float, max_markets: int
    ) -> tuple[list[GammaMarket], list[Reject]]:
        markets: dict[str, GammaMarket] = {}
        rejects: list[Reject] = []
        cursor: str | None = None
        for _ in range(MAX_GAMMA_PAGES):
            params: dict[str, Any] = {
                "limit": self.page_size,
                "closed": "false",  # omitted, closed markets come back too
                "order": "volume24hr",
                "ascending": "false",
            }
            if min_liquidity > 0:
                params["liquidity_num_min"] = min_liquidity
            if cursor:
                params["after_cursor"] = cursor
            data, _ = await self.transport.get_json(GAMMA_MARKETS, f"{self.base_url}/markets/keyset", params)
            if not isinstance(data, dict) or not isinstance(data.get("markets"), list):
                raise ApiError(GAMMA_MARKETS, "response: expected an object with a 'markets' array")
            last_volume = None
            page, page_rejects = parse_records(GammaMarket, data["markets"], GAMMA_MARKETS, "id")
            rejects.extend(page_rejects)
            for parsed in page:
                last_volume = parsed.volume_24h
                if parsed.closed or not parsed.active:
                    continue
                if parsed.volume_24h >= min_volume_24h and (parsed.liquidity or 0) >= min_liquidity:
                    markets[parsed.id] = parsed
            cursor = data.get("next_cursor") or None
            # Pages come in descending 24 h volume: once below the minimum, nothing later qualifies.
            if not cursor or (last_volume is not None and last_volume < min_volume_24h):
                break
        ranked = sorted(markets.values(), key=lambda m: (-m.volume_24h, m.id))
        return ranked[:max_markets], rejects


class ClobClient:
    """CLOB ``GET /prices-history`` for one outcome token (incremental), and order books (``/books``, ``/book``)."""

    def __init__(self, transport: Transport, base_url: str, fidelity_minutes: int) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.fidelity_minutes = fidelity_minutes

    async def price_history(
        self, token_id: str, start_ts: int, end_ts: int
    ) -> tuple[PriceHistory, list[Reject]]:
        params = {"market": token_id, "startTs": start_ts, "endTs": end_ts, "fidelity": self.fidelity_minutes}
        data, _ = await self.transport.get_json(
            CLOB_PRICES_HISTORY, f"{self.base_url}/prices-history", params
        )
        if not isinstance(data, dict) or not isinstance(data.get("history"), list):
            raise ApiError(
                CLOB_PRICES_HISTORY, f"token {token_id}: expected an object with a 'history' array"
            )
        return parse_price_history(data["history"], CLOB_PRICES_HISTORY, token_id, start_ts, end_ts)

    async def books(self, token_ids: list[str]) -> tuple[list[OrderBook], list[Reject]]:
        """CLOB ``POST /books``: the books of a batch of tokens (a token without a book is left out)."""
        data, _ = await self.transport.post_json(
            CLOB_BOOKS, f"{self.base_url}/books", [{"token_id": t} for t in token_ids]
        )
        if not isinstance(data, list):
            raise ApiError(CLOB_BOOKS, f"{len(token_ids)} tokens: expected a JSON array of books")
        books, rejects = parse_records(OrderBook, data, CLOB_BOOKS, "asset_id")
        requested = set(token_ids)
        for book in books:
            if book.asset_id not in requested:
                reason = "asset_id: not one of the requested tokens"
                rejects.append(Reject(CLOB_BOOKS, book.asset_id, reason, book.model_dump(by_alias=True)))
        return [b for b in books if b.asset_id in requested], rejects

    async def book(self, token_id: str) -> OrderBook | Reject | None:
        """CLOB ``GET /book`` of one token; None when the CLOB has no book for it (HTTP 404)."""
        try:
            data, _ = await self.transport.get_json(
                CLOB_BOOK, f"{self.base_url}/book", {"token_id": token_id}
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        parsed = parse_record(OrderBook, data, CLOB_BOOK, "asset_id")
        if isinstance(parsed, OrderBook) and parsed.asset_id != token_id:
            return Reject(CLOB_BOOK, parsed.asset_id, f"asset_id: asked for token {token_id}", data)
        return parsed


@dataclass
class TradesResult:
    """Trades of one market since a time: unique fills, rejects, and warnings about the feed."""

    trades: list[Trade] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)


class DataApiClient:
    """Data API ``GET /trades`` for one market (newest first), back to ``since_ts``, fills de-duplicated."""

    def __init__(self, transport: Transport, base_url: str, page_size: int, max_pages: int = 200) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages

    async def trades_since(
        self,
        condition_id: str,
        since_ts: int,
        *,
        min_usd: float | None = None,
        model: type[Trade] = Trade,
    ) -> TradesResult:
        """Fills of one market back to ``since_ts``; with ``min_usd`` only fills of at least that many USD.

        ``min_usd`` is the Data API's cash filter (``filterType=CASH&filterAmount=``); fills below it
        that a server sends anyway are dropped here too, so the result never depends on the server.
        """
        result, _ = await self._pages(condition_id, since_ts, min_usd, model)
        return result

    async def trades_since_many(
        self,
        since_by_market: Mapping[str, int],
        *,
        min_usd: float | None = None,
        model: type[Trade] = Trade,
    ) -> dict[str, TradesResult]:
        """Like :meth:`trades_since` for several markets (condition id -> since) in one paged feed.

        The Data API takes a comma-separated list of condition ids and serves their fills newest first,
        so a 15-minute catch-up of 20 markets is one request instead of 20. Pages run back to the
        earliest ``since``; if the page budget ends first, the markets not reached are fetched alone.
        """
        ids = list(since_by_market)
        if len(ids) == 1:
            return {
                ids[0]: await self.trades_since(ids[0], since_by_market[ids[0]], min_usd=min_usd, model=model)
            }
        merged, reached = await self._pages(",".join(ids), min(since_by_market.values()), min_usd, model)
        results = {c: TradesResult(warnings=list(merged.warnings)) for c in ids}
        for trade in merged.trades:
            mine = results.get(trade.condition_id)
            if mine is not None and trade.timestamp >= since_by_market[trade.condition_id]:
                mine.trades.append(trade)
        # rejects and duplicates cannot be told apart by market once merged: the first market carries them
        results[ids[0]].rejects.extend(merged.rejects)
        results[ids[0]].duplicates += merged.duplicates
        for condition_id, since in since_by_market.items():
            if reached is not None and since < reached:
                results[condition_id] = await self.trades_since(
                    condition_id, since, min_usd=min_usd, model=model
                )
        return results

    async def _pages(
        self, market: str, since_ts: int, min_usd: float | None, model: type[Trade]
    ) -> tuple[TradesResult, int | None]:
        """The fills of ``market`` (one id or a list) back to ``since_ts``, and where paging stopped short:
        the oldest timestamp seen when the page budget ran out first (None when the feed was read to since)."""
        result = TradesResult()
        seen: set[tuple[Any, ...]] = set()
        previous_page: list[Any] | None = None
        oldest_seen: int | None = None
        for page in range(self.max_pages):
            params: dict[str, Any] = {
                "market": market,
                "limit": self.page_size,
                "offset": page * self.page_size,
            }
            if min_usd is not None:
                params |= {"filterType": "CASH", "filterAmount": min_usd}
            data, _ = await self.transport.get_json(DATA_TRADES, f"{self.base_url}/trades", params)
            if not isinstance(data, list):
                raise ApiError(DATA_TRADES, f"market {market}: expected a JSON array of trades")
            if data and data == previous_page:
                # A server that ignores offset serves page 1 forever: counting it again multiplies volume.
                result.warnings.append(
                    f"market {market}: page at offset {params['offset']} repeats the previous page"
                    " (offset ignored?); pagination stopped"
                )
                return result, None
            previous_page = data
            trades, rejects = parse_records(model, data, DATA_TRADES, "transactionHash")
            result.rejects.extend(rejects)
            oldest = None
            for parsed in trades:
                oldest = parsed.timestamp if oldest is None else min(oldest, parsed.timestamp)
                if parsed.identity in seen:
                    result.duplicates += 1
                    continue
                seen.add(parsed.identity)
                if min_usd is not None and parsed.size * parsed.price < min_usd:
                    continue
                if parsed.timestamp >= since_ts:
                    result.trades.append(parsed)
            if oldest is not None:
                oldest_seen = oldest if oldest_seen is None else min(oldest_seen, oldest)
            if len(data) < self.page_size or (oldest is not None and oldest < since_ts):
                return result, None
        return result, oldest_seen


@dataclass
class SearchResult:
    tweets: list[TweetRecord] = field(default_factory=list)
    users: list[UserRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    pages: int = 0
    rate_remaining: int | None = None  # X's x-rate-limit-remaining after the last page


class XClient:
    """X API v2 ``GET /2/tweets/search/recent`` with author expansion and ``next_token`` pagination."""

    def __init__(
        self, transport: Transport, base_url: str, bearer_token: str | None, page_size: int, max_pages: int
    ) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self._bearer_token = bearer_token
        self.page_size = max(10, min(100, page_size))
        self.max_pages = max_pages

    @property
    def configured(self) -> bool:
        return bool(self._bearer_token)

    async def search_recent(
        self,
        query: str,
        *,
        start_time: datetime,
        since_id: str | None = None,
        max_pages: int | None = None,
    ) -> SearchResult:
        """All pages of one query (at most ``max_pages``, default the client's); a 429 fails at once.

        X's window is 15 minutes: a run must not wait it out, so rate limits surface as ApiError 429.
        """
        if not self._bearer_token:
            raise ApiError(X_SEARCH_RECENT, "no bearer token configured (set KAIZEN_TWITTER__BEARER_TOKEN)")
        headers = {"Authorization": f"Bearer {self._bearer_token}"}
        result = SearchResult()
        next_token: str | None = None
        for _ in range(self.max_pages if max_pages is None else max_pages):
            params: dict[str, Any] = {
                "query": query,
                "max_results": self.page_size,
                "tweet.fields": X_TWEET_FIELDS,
                "expansions": "author_id",
                "user.fields": X_USER_FIELDS,
            }
            if since_id:
                params["since_id"] = since_id  # X rejects start_time together with since_id
            else:
                params["start_time"] = start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            if next_token:
                params["next_token"] = next_token
            data, response_headers = await self.transport.get_json(
                X_SEARCH_RECENT,
                f"{self.base_url}/2/tweets/search/recent",
                params,
                headers,
                wait_on_rate_limit=False,
            )
            result.pages += 1
            result.rate_remaining = _window_remaining(response_headers, result.rate_remaining)
            if not isinstance(data, dict):
                raise ApiError(X_SEARCH_RECENT, "expected a JSON object")
            includes = _member(data, "includes", dict)
            tweets, rejects = parse_records(TweetRecord, _member(data, "data", list), X_SEARCH_RECENT, "id")
            users, user_rejects = parse_records(
                UserRecord, _member(includes, "users", list, "includes.users"), X_SEARCH_RECENT, "id"
            )
            result.tweets.extend(tweets)
            result.users.extend(users)
            result.rejects.extend(rejects + user_rejects)
            next_token = _member(data, "meta", dict).get("next_token")
            if next_token is not None and not isinstance(next_token, str):
                raise ApiError(X_SEARCH_RECENT, "meta.next_token: expected a string")
            if not next_token:
                break
        return result


def _member(container: dict[str, Any], key: str, kind: type, path: str | None = None) -> Any:
    """``container[key]`` when it has the wire type (absent or null: empty); a wrong type fails the page."""
    value = container.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ApiError(
            X_SEARCH_RECENT,
            f"{path or key}: expected {'an array' if kind is list else 'an object'}, got {type(value).__name__}",
        )
    return value


def _window_remaining(headers: httpx.Headers, previous: int | None) -> int | None:
    """X's ``x-rate-limit-remaining``, unless its window already reset (then the count is stale)."""
    remaining, reset = headers.get("x-rate-limit-remaining", ""), headers.get("x-rate-limit-reset", "")
    if not remaining.isdigit():
        return previous
    if reset.isdigit() and int(reset) <= time.time():
        return previous
    return int(remaining)


def x_start_time(window_days: int, now: datetime | None = None) -> datetime:
    """The oldest start_time recent search accepts, with a minute of slack."""
    now = now or datetime.now(UTC)
    return now - timedelta(days=window_days) + timedelta(minutes=1)


class IngestClients:
    """One run's HTTP session: the four clients, their rate limiters and the shared CallStats."""

    def __init__(self, settings: Settings, http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._http_transport = http_transport
        self.stats = CallStats()
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> IngestClients:
        s = self.settings
        concurrency = s.data_collection.max_concurrency
        self._client = httpx.AsyncClient(
            transport=self._http_transport,
            timeout=httpx.Timeout(s.transport.timeout_seconds),
            # One connection per in-flight request: httpcore rescans every pooled connection per request.
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": "kaizen-pipeline/0.1"},
        )
        policy = RetryPolicy(
            max_retries=s.transport.max_retries,
            backoff_base=s.transport.backoff_base_seconds,
            backoff_max=s.transport.backoff_max_seconds,
            max_rate_limit_wait=s.transport.max_rate_limit_wait_seconds,
            request_deadline=s.transport.request_deadline_seconds,
        )
        limiters = {
            GAMMA_MARKETS: SlidingWindowRateLimiter(s.polymarket.markets_rate_limit, 10.0),
            CLOB_PRICES_HISTORY: SlidingWindowRateLimiter(s.polymarket.prices_history_rate_limit, 10.0),
            CLOB_BOOK: SlidingWindowRateLimiter(s.polymarket.book_rate_limit, 10.0),
            CLOB_BOOKS: SlidingWindowRateLimiter(s.polymarket.books_rate_limit, 10.0),
            DATA_TRADES: SlidingWindowRateLimiter(s.polymarket.trades_rate_limit, 10.0),
            X_SEARCH_RECENT: SlidingWindowRateLimiter(s.twitter.rate_limit, 900.0),
        }
        # Shared in Redis by every process when transport.shared_limiter_url is set (ratelimit.py).
        shared = shared_limiters(limiters, s.transport)
        self.transport = Transport(self._client, policy, shared, stats=self.stats)
        # A simulator server answers every host of the demo source at one base URL (routes by path).
        served = s.demo.server_url if s.source == "demo" else None
        self.gamma = GammaClient(self.transport, served or s.polymarket.gamma_url, s.polymarket.page_size)
        self.clob = ClobClient(self.transport, served or s.polymarket.clob_url, s.polymarket.fidelity_minutes)
        self.data = DataApiClient(
            self.transport, served or s.polymarket.data_url, s.polymarket.trades_page_size
        )
        token = s.twitter.bearer_token.get_secret_value() if s.twitter.bearer_token else None
        if token is None and s.source == "demo":
            token = "demo-token"  # the simulator checks that a bearer token is sent, not its value
        self.x = XClient(
            self.transport,
            served or s.twitter.api_url,
            token,
            s.twitter.max_tweets_per_query,
            s.twitter.max_pages_per_query,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()


def build_clients(
    settings: Settings, http_transport: httpx.AsyncBaseTransport | None = None
) -> IngestClients:
    """Clients for ``settings.source``: the live APIs, or the seeded simulator plugged in as the transport."""
    if http_transport is None and settings.source == "demo" and not settings.demo.server_url:
        from kaizen_pipeline.ingest.simulator.world import DemoWorld

        http_transport = DemoWorld.from_settings(settings).transport()
    return IngestClients(settings, http_transport)

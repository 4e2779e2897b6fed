"""The demo world's HTTP face: Gamma, CLOB prices-history and books, Data API trades and X recent search.

Routes requests by path and answers in the real wire formats (string-encoded Gamma fields, cursor
and token paging, books with decimal strings, bids ascending and asks descending, X's rate-limit
headers and error bodies), reading everything from a ``DemoWorld``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import orjson

from kaizen_pipeline.ingest.simulator.world import iso_time

if TYPE_CHECKING:
    from kaizen_pipeline.ingest.simulator.world import DemoMarket, DemoWorld

X_RATE_LIMIT = 450
X_RATE_WINDOW_SECONDS = 900  # X counts recent-search calls per 15 minutes
X_WINDOW_SECONDS = 7 * 86400  # recent search reaches back 7 days
MAX_BOOKS_PER_REQUEST = 500


# Condition ids one /trades request may name: the smallest list limit Polymarket documents (its v2 feed).
MAX_TRADE_MARKETS = 20
# merged /trades feeds kept (one per request shape): a collector pages a few feeds at a time
_TRADE_FEEDS_KEPT = 64


class DemoApi:
    """The HTTP API of one world, with its response caches and the X rate-limit window."""

    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self._lock = threading.RLock()
        self._search_cache: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._index: _PostIndex | None = None
        self._markets_cache: tuple[tuple[int, bool], list[dict[str, Any]]] | None = None
        self._history_cache: dict[tuple[Any, ...], bytes] = {}
        self._trade_feeds: OrderedDict[tuple[Any, ...], _TradeFeed] = OrderedDict()
        self._x_calls: list[float] = []
        # planted faults are random per process, not seeded: replays must not fail the same requests
        self._faults = np.random.default_rng()

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering every request from the world (no network)."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request by path, like the real hosts would (any base URL is accepted)."""
        path = request.url.path.rstrip("/")
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        if self.world.transient_error_rate > 0:
            with self._lock:
                planted_fault = self._faults.random() < self.world.transient_error_rate
            if planted_fault:
                return _json_response(503, {"error": "service unavailable (planted transient failure)"})
        try:
            if path.endswith("/markets/keyset"):
                return self._gamma_markets(params)
            if path.endswith("/prices-history"):
                return self._prices_history(params)
            if path.endswith("/books") and request.method == "POST":
                return self._books(request)
            if path.endswith("/book"):
                return self._book(params)
            if path.endswith("/trades"):
                return self._data_trades(params)
            if path.endswith("/2/tweets/search/recent"):
                return self._x_search(request, params)
        except _BadRequest as exc:
            return _json_response(exc.status, exc.body)
        return _json_response(404, {"error": f"not found: {path}"})

    def _gamma_markets(self, params: dict[str, str]) -> httpx.Response:
        limit = _int_param(params, "limit", 20)
        if not 1 <= limit <= 100:
            raise _BadRequest(422, {"error": "limit must be between 1 and 100"})
        rows = self._market_rows(self.world.now_bucket(), params.get("closed") == "false")
        if "volume_num_min" in params:
            rows = [r for r in rows if r["volumeNum"] >= float(params["volume_num_min"])]
        if "liquidity_num_min" in params:
            rows = [r for r in rows if r["liquidityNum"] >= float(params["liquidity_num_min"])]
        order = params.get("order")
        if order in ("volume24hr", "volumeNum", "liquidityNum"):
            rows.sort(key=lambda r: (r[order], r["id"]), reverse=params.get("ascending", "true") == "false")
        offset = (
            int(base64.urlsafe_b64decode(params["after_cursor"]).decode())
            if params.get("after_cursor")
            else 0
        )
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {"markets": page}
        if offset + limit < len(rows):
            body["next_cursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return _json_response(200, body)

    def _market_rows(self, now_k: int, open_only: bool) -> list[dict[str, Any]]:
        """Every market's Gamma record at bucket ``now_k``, built once per bucket: a listing is many pages."""
        key = (now_k, open_only)
        with self._lock:
            if self._markets_cache is None or self._markets_cache[0] != key:
                rows = [
                    self._market_json(m, now_k) for m in self.world.markets if not (open_only and m.closed)
                ]
                self._markets_cache = (key, rows)
            return list(self._markets_cache[1])

    def _market_json(self, m: DemoMarket, now_k: int) -> dict[str, Any]:
        w = self.world
        yes = w.yes_price(m, now_k)
        day_ago = w.yes_price(m, max(0, now_k - w.day_buckets))
        week = now_k // w.week_buckets
        cutoff_day, cutoff_week = (
            w.bucket_ts(now_k - w.day_buckets),
            w.bucket_ts(now_k - w.week_buckets),
        )
        now_ts = w.bucket_ts(now_k + 1)
        recent = [t for wk in (week - 1, week) for t in w.week_trades(m, wk) if t["timestamp"] < now_ts]
        vol_24h = sum(t["size"] * t["price"] for t in recent if t["timestamp"] >= cutoff_day)
        vol_1wk = sum(t["size"] * t["price"] for t in recent if t["timestamp"] >= cutoff_week)
        liquidity = m.trade_usd_mean * 8.0
        half_spread = round(0.005 + 0.01 * (1 - min(1.0, liquidity / 100_000)), 3)
        volume_total = vol_1wk * 30 + m.trade_usd_mean * 1000
        outcomes, prices = ["Yes", "No"], [f"{yes}", f"{round(1 - yes, 3)}"]
        if m.malformed == "three_outcomes":
            outcomes, prices = ["Yes", "No", "Maybe"], ["0.3", "0.3", "0.4"]
        elif m.malformed == "price_out_of_range":
            prices = ["1.7", "-0.7"]
        record: dict[str, Any] = {
            "id": m.market_id,
            "question": m.question,
            "conditionId": m.condition_id,
            "slug": m.slug,
            "resolutionSource": "",
            "endDate": m.end_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "liquidity": f"{liquidity:.5f}",
            "startDate": iso_time(w.epoch_ts),
            "outcomes": json.dumps(outcomes),
            "outcomePrices": json.dumps(prices),
            "volume": f"{volume_total:.5f}",
            "active": not m.closed,
            "closed": m.closed,
            "volumeNum": volume_total,
            "liquidityNum": liquidity,
            "volume24hr": vol_24h if (m.eligible or m.malformed) else min(vol_24h, 40_000.0),
            "volume1wk": vol_1wk,
            "clobTokenIds": json.dumps([m.yes_token, m.no_token]),
            "enableOrderBook": True,
            "bestBid": round(max(0.001, yes - half_spread), 3),
            "bestAsk": round(min(0.999, yes + half_spread), 3),
            "spread": round(2 * half_spread, 3),
            "lastTradePrice": yes,
            "oneDayPriceChange": round(yes - day_ago, 3),
            "events": [{"id": str(90000 + m.index), "slug": m.slug, "title": m.question}],
        }
        if m.malformed:
            record["volume24hr"] = max(vol_24h, 2_000_000.0)  # rank them on the first page
        if m.index % 5:
            record["category"] = m.category.title()  # older markets carry it; newer ones only on the event
        else:
            record["events"][0]["category"] = m.category.title()
        return record

    def _prices_history(self, params: dict[str, str]) -> httpx.Response:
        w = self.world
        token = params.get("market")
        if not token or token not in w.by_token:
            raise _BadRequest(400, {"error": "invalid market"})
        m, outcome = w.by_token[token]
        now_k = w.now_bucket()
        end_ts = min(_int_param(params, "endTs", w.bucket_ts(now_k)), w.bucket_ts(now_k))
        interval = params.get("interval")
        if "startTs" in params:
            start_ts = _int_param(params, "startTs", 0)
        else:
            span = {"1h": 3600, "6h": 21600, "1d": 86400, "1w": 604800, "1m": 2592000}.get(
                interval or "1m", 2592000
            )
            start_ts = end_ts - span if interval != "max" else w.epoch_ts
        fidelity = max(1, _int_param(params, "fidelity", w.bucket_minutes))
        step = max(1, fidelity * 60 // w.bucket_seconds)
        first_k = max(0, math.ceil((start_ts - w.epoch_ts) / w.bucket_seconds))
        last_k = min(now_k, (end_ts - w.epoch_ts) // w.bucket_seconds)
        key = (token, first_k, last_k, step)
        with self._lock:
            cached = self._history_cache.get(key)
        if cached is not None:
            return httpx.Response(200, content=cached, headers={"content-type": "application/json"})
        history = []
        if last_k >= first_k:
            s = w.series(m, last_k)
            ks = np.arange(first_k - first_k % step + (step if first_k % step else 0), last_k + 1, step)
            yes = np.round(1.0 / (1.0 + np.exp(-s.logit[ks])), 3)
            prices = yes if outcome == "Yes" else np.round(1.0 - yes, 3)
            history = [
                {"t": int(w.bucket_ts(int(k))), "p": float(p)} for k, p in zip(ks, prices, strict=True)
            ]
            # One defective point in old history exercises the rejects table.
            bad_k = w.week_buckets // 2
            if m.index == 1 and outcome == "Yes" and first_k <= bad_k <= last_k and bad_k % step == 0:
                history[int((bad_k - ks[0]) // step)]["p"] = None
        body = json.dumps({"history": history}).encode()
        with self._lock:
            if len(self._history_cache) >= 4096:
                self._history_cache.clear()
            self._history_cache[key] = body
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    def book_json(self, token: str, k: int) -> dict[str, Any]:
        """The CLOB ``/book`` answer of ``token`` in bucket ``k``: best bid and best ask LAST, as the real one."""
        w = self.world
        m, outcome = w.by_token[token]
        bids, asks, per_unit = w.book_levels(m, k)
        if outcome == "No":  # the NO book mirrors the YES book: a YES ask is a NO bid at 1 - price
            bids, asks = [(per_unit - a, q) for a, q in asks], [(per_unit - b, q) for b, q in bids]
        digits = 3 if per_unit == 1000 else 2

        def price(ticks: int) -> str:
            return f"{ticks / per_unit:.{digits}f}".rstrip("0")

        last = round(w.yes_price(m, k) * per_unit)
        body: dict[str, Any] = {
            "market": m.condition_id,
            "asset_id": token,
            "timestamp": str(int(w.clock() * 1000)),
            "hash": "",
            "bids": [{"price": price(t), "size": f"{q:.2f}"} for t, q in reversed(bids)],
            "asks": [{"price": price(t), "size": f"{q:.2f}"} for t, q in reversed(asks)],
            "min_order_size": "5",
            "tick_size": f"{1 / per_unit:.{digits}f}",
            "neg_risk": m.index % 4 == 0,
            "last_trade_price": price(
                min(per_unit - 1, max(1, last if outcome == "Yes" else per_unit - last))
            ),
        }
        body["hash"] = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return body

    def _book(self, params: dict[str, str]) -> httpx.Response:
        token = params.get("token_id", "")
        if token not in self.world.by_token:
            return _json_response(404, {"error": "No orderbook exists for the requested token id"})
        return _json_response(200, self.book_json(token, self.world.now_bucket()))

    def _books(self, request: httpx.Request) -> httpx.Response:
        try:
            wanted = json.loads(request.content or b"null")
        except json.JSONDecodeError:
            raise _BadRequest(400, {"error": "invalid body: expected a JSON array"}) from None
        if not isinstance(wanted, list) or not all(
            isinstance(x, dict) and isinstance(x.get("token_id"), str) for x in wanted
        ):
            raise _BadRequest(400, {"error": 'invalid body: expected [{"token_id": "..."}]'})
        if len(wanted) > MAX_BOOKS_PER_REQUEST:
            raise _BadRequest(400, {"error": f"at most {MAX_BOOKS_PER_REQUEST} tokens per request"})
        now_k = self.world.now_bucket()
        # a token without a book is left out of the answer, not an error
        books = [self.book_json(x["token_id"], now_k) for x in wanted if x["token_id"] in self.world.by_token]
        return _json_response(200, books)

    def _data_trades(self, params: dict[str, str]) -> httpx.Response:
        """``GET /trades``: ``market`` is one condition id or a comma-separated list (newest first across them)."""
        w = self.world
        wanted = [c for c in params.get("market", "").split(",") if c]
        if len(wanted) > MAX_TRADE_MARKETS:
            raise _BadRequest(400, {"error": f"market: at most {MAX_TRADE_MARKETS} condition ids"})
        markets = [w.by_condition[c] for c in dict.fromkeys(wanted) if c in w.by_condition]
        if not markets:
            return _json_response(200, [])
        limit = _int_param(params, "limit", 100)
        offset = _int_param(params, "offset", 0)
        if not 1 <= limit <= 10_000 or offset < 0:
            raise _BadRequest(400, {"error": "invalid limit or offset"})
        keep = _trade_filter(params)
        feed = self._trade_feed(
            tuple(m.index for m in markets), (params.get("filterType"), params.get("filterAmount")), keep
        )
        with self._lock:
            return _json_response(200, feed.upto(offset + limit)[offset : offset + limit])

    def _trade_feed(
        self,
        indexes: tuple[int, ...],
        filter_key: tuple[str | None, str | None],
        keep: Callable[[dict[str, Any]], bool],
    ) -> _TradeFeed:
        """The newest-first feed of these markets' trades, kept per request shape for this bucket.

        A client pages one feed by ``offset``; rebuilding the merged feed for every page made a long
        history quadratic in its pages. The feed is merged a week at a time, only as deep as asked.
        """
        w = self.world
        now_k = w.now_bucket()
        key = (indexes, filter_key, now_k)
        with self._lock:
            feed = self._trade_feeds.get(key)
            if feed is None:
                feed = self._trade_feeds[key] = _TradeFeed(w, [w.markets[i] for i in indexes], now_k, keep)
                while len(self._trade_feeds) > _TRADE_FEEDS_KEPT:
                    self._trade_feeds.popitem(last=False)
            self._trade_feeds.move_to_end(key)
            return feed

    def _x_search(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            raise _BadRequest(
                401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
            )
        query = params.get("query", "").strip()
        max_results = _int_param(params, "max_results", 10)
        if not query or not 10 <= max_results <= 100:
            raise _BadRequest(
                400, {"errors": [{"message": "query is required and max_results must be 10..100"}]}
            )
        now = self.world.clock()
        now_k = self.world.now_bucket()
        if "start_time" in params:
            start = datetime.fromisoformat(params["start_time"].replace("Z", "+00:00")).timestamp()
            if start < now - X_WINDOW_SECONDS:
                raise _BadRequest(400, {"errors": [{"message": "start_time must be within the last 7 days"}]})
        else:
            start = now - X_WINDOW_SECONDS
        with self._lock:
            self._x_calls = [t for t in self._x_calls if t > now - X_RATE_WINDOW_SECONDS] + [now]
            remaining = max(0, X_RATE_LIMIT - len(self._x_calls))
        headers = {
            "x-rate-limit-limit": str(X_RATE_LIMIT),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(now) + X_RATE_WINDOW_SECONDS),
        }
        matches = self._search(query, now_k)
        since_id = int(params["since_id"]) if params.get("since_id") else None
        selected = [
            t for t in matches if start <= t["_ts"] <= now and (since_id is None or int(t["id"]) > since_id)
        ]
        offset = (
            int(base64.urlsafe_b64decode(params["next_token"]).decode()) if params.get("next_token") else 0
        )
        page = selected[offset : offset + max_results]
        users = {t["author_id"]: self._user_json(t["_author"], now) for t in page}
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [{k: v for k, v in t.items() if not k.startswith("_")} for t in page]
            body["includes"] = {"users": list(users.values())}
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if offset + max_results < len(selected):
            meta["next_token"] = base64.urlsafe_b64encode(str(offset + max_results).encode()).decode()
        return _json_response(200, body, headers)

    def _user_json(self, author: dict[str, Any], now_ts: float) -> dict[str, Any]:
        age_days = author["created_days_before_window"]
        created = now_ts - age_days * 86400 if author["bot"] else self.world.epoch_ts - age_days * 86400
        total_days = (now_ts - created) / 86400
        return {
            "id": author["id"],
            "name": author["name"],
            "username": author["username"],
            "created_at": iso_time(created),
            "verified": author["verified"],
            "public_metrics": {
                "followers_count": author["followers_count"],
                "following_count": author["following_count"],
                "tweet_count": int(author["tweets_per_day"] * total_days),
                "listed_count": author["listed_count"],
            },
        }

    def _search(self, query: str, now_k: int) -> list[dict[str, Any]]:
        """Recent-search semantics: top-level OR of AND-ed terms, operators ignored, newest first.

        A term matches a post whose lowercased text contains it. Terms hold no whitespace, so every
        match lies inside one whitespace-separated word: the index maps words to posts, and a term
        is looked up in the vocabulary once per window (1,000 markets' queries stay linear).
        """
        key = (query, now_k)
        with self._lock:
            if key in self._search_cache:
                return self._search_cache[key]
            alternatives = []
            for alt in query.replace("(", " ").replace(")", " ").split(" OR "):
                terms = [t.strip('"').lower() for t in alt.split() if ":" not in t and not t.startswith("-")]
                if terms:
                    alternatives.append(terms)
            index = self._window_index(now_k)
            hits: set[int] = set()
            for terms in alternatives:
                matched = index.posts_with(terms[0])
                for term in terms[1:]:
                    matched = matched & index.posts_with(term)
                hits |= matched
            found = [index.posts[i] for i in hits]
            found.sort(key=lambda t: int(t["id"]), reverse=True)
            if len(self._search_cache) > 512:
                self._search_cache.clear()
            self._search_cache[key] = found
            return found

    def _window_index(self, now_k: int) -> _PostIndex:
        """The word index of the posts of the three weeks up to bucket ``now_k`` (built once per week)."""
        w = self.world
        weeks = tuple(
            sorted(
                {week for week in (now_k // w.week_buckets - d for d in range(3)) if week >= 0},
            )
        )
        if self._index is None or self._index.weeks != weeks:
            posts = [t for m in w.markets if m.eligible for week in weeks for t in w.week_tweets(m, week)]
            self._index = _PostIndex(weeks, posts)
        return self._index


class _TradeFeed:
    """Trades of some markets up to a bucket, newest first across them, merged a week at a time."""

    def __init__(
        self, world: DemoWorld, markets: list[DemoMarket], now_k: int, keep: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.world = world
        self.markets = markets
        self.keep = keep
        self.now_ts = world.bucket_ts(now_k + 1)
        self.week = now_k // world.week_buckets
        self.oldest_week = max(0, (now_k - world.history_days * world.day_buckets) // world.week_buckets)
        self.trades: list[dict[str, Any]] = []

    def upto(self, n: int) -> list[dict[str, Any]]:
        """The feed, merged at least ``n`` trades deep (or to its oldest week)."""
        w = self.world
        while len(self.trades) < n and self.week >= self.oldest_week:
            trades = w.week_trades(self.markets[0], self.week)
            if len(self.markets) > 1:  # each market's week is newest first: merge them the same way
                trades = sorted(
                    (t for m in self.markets for t in w.week_trades(m, self.week)),
                    key=lambda t: t["timestamp"],
                    reverse=True,
                )
            self.trades.extend(t for t in trades if t["timestamp"] < self.now_ts and self.keep(t))
            self.week -= 1
        return self.trades


class _PostIndex:
    """Posts of a set of weeks with a word -> post positions index for substring search of terms."""

    def __init__(self, weeks: tuple[int, ...], posts: list[dict[str, Any]]) -> None:
        self.weeks = weeks
        self.posts = posts
        words: dict[str, list[int]] = {}
        for i, post in enumerate(posts):
            for word in set(post["text"].lower().split()):
                words.setdefault(word, []).append(i)
        self._words = words
        self._terms: dict[str, frozenset[int]] = {}

    def posts_with(self, term: str) -> frozenset[int]:
        """Positions of the posts whose lowercased text contains ``term`` (no whitespace in it)."""
        if term not in self._terms:
            if not term:
                self._terms[term] = frozenset(range(len(self.posts)))
            else:
                self._terms[term] = frozenset(
                    i for word, where in self._words.items() if term in word for i in where
                )
        return self._terms[term]


class _BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON answer encoded by orjson: the stdlib encoder cost seconds per 30-day trade history."""
    return httpx.Response(
        status,
        content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain),
        headers={"content-type": "application/json", **(headers or {})},
    )


def _plain(value: Any) -> Any:
    """numpy scalars the world's draws leave in a body (orjson takes numpy arrays, not scalars)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _trade_filter(params: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The Data API's ``filterType`` (CASH: size x price, TOKENS: size) at least ``filterAmount``."""
    kind, amount = params.get("filterType"), params.get("filterAmount")
    if kind is None and amount is None:
        return lambda t: True
    if kind not in ("CASH", "TOKENS") or amount is None:
        raise _BadRequest(400, {"error": "filterType must be CASH or TOKENS, with filterAmount"})
    try:
        minimum = float(amount)
    except ValueError:
        raise _BadRequest(400, {"error": "filterAmount must be a number"}) from None
    if kind == "CASH":
        return lambda t: t["size"] * t["price"] >= minimum
    return lambda t: t["size"] >= minimum


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    try:
        return int(float(params[name]))
    except ValueError:
        raise _BadRequest(400, {"error": f"{name} must be an integer"}) from None

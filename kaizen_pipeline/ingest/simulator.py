"""A deterministic, seeded demo world that answers the real Polymarket and X HTTP requests.

It is plugged in as an httpx transport (``DemoWorld.transport()``) so every client, parser and the
transport layer run unchanged, and it can serve over real HTTP (``simulator_server``).

The world is defined on an absolute grid of 15-minute buckets from ``demo.epoch``; each random
stream is drawn week by week from its own seeded generator, so any time range is reproducible and
a later run extends the same history. Per market:

- YES price ``p = sigmoid(x)``, ``x`` a bounded logit random walk (mean-reverting, with jumps);
- hype intensity ``b``: bursts that decay geometrically; posts arrive as Poisson(base * (1 + b));
- in *lead* markets the logit drifts by ``beta * direction * b[t - lag]``: hype leads price by ``lag``
  buckets (``planted_lead_lags()`` is the ground truth research is tested against);
- trade activity rises with price moves and has bursts of its own;
- bot-like accounts (young, few followers, many followings, high posting rate) post duplicate
  promotional texts in bursts unrelated to price.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
from scipy.signal import lfilter

from kaizen_pipeline.ingest.queries import question_keywords
from kaizen_pipeline.settings import Settings

BUCKET_SECONDS = 900
WEEK_BUCKETS = 7 * 96
X_EPOCH_MS = 1288834974657  # X snowflake epoch
X_RATE_LIMIT = 450
X_WINDOW_SECONDS = 7 * 86400

# --- planted effects: the ground truth the research layer must recover -------------------
LEAD_MARKET_SHARE = 0.4  # share of markets whose price follows hype
LEAD_LAGS = (2, 4, 6, 8)  # buckets by which hype leads price (30 min to 2 h)
# A lead market needs several clear bursts in every 7-day X window, or there is nothing to recover:
# at 0.008 x 20, one lead market-week in ten had at most one bucket of 6+ posts; only 30% of those
# were recovered (96% of the rest), so some windows fell to 74% (bench/planted_lags.py).
HYPE_BURST_PROB = 0.024  # chance per bucket that a hype burst starts (about 2.3 a day)
HYPE_BURST_MEAN = 15.0  # mean burst size (exponential)
HYPE_DECAY = 0.5  # per-bucket decay of hype intensity (fast, so the lag stays sharp)
HYPE_PRICE_BETA = 0.006  # logit drift per unit of lagged hype intensity
TWEET_BASE_RATE = 0.4  # human posts per bucket at zero hype
BOT_BURST_PROB = 0.003  # chance per bucket of a bot spam burst (unrelated to price)
BOT_BURST_SIZE = 12  # posts in a bot burst
# --- price and volume dynamics --------------------------------------------------------------
HYPE_MEAN = HYPE_BURST_PROB * HYPE_BURST_MEAN / (1 - HYPE_DECAY)  # long-run mean intensity
LOGIT_PHI = 0.998  # mean reversion of the logit walk (keeps prices bounded)
LOGIT_SIGMA = 0.02  # per-bucket logit noise
JUMP_PROB = 0.0008
JUMP_SD = 0.8
TRADE_RATE = 1.0  # trades per bucket at baseline activity
VOLUME_PRICE_LINK = 1.5  # extra activity per sigma of absolute logit move
VOLUME_BURST_PROB = 0.003
VOLUME_BURST_MEAN = 4.0
N_HUMAN_AUTHORS = 400
N_BOT_AUTHORS = 40

# Each question leads with its subject, so every market's X query (its first three distinctive words)
# is its own: posts can be attributed to one market.
CATEGORIES: dict[str, list[str]] = {
    "politics": ["Will {x} win the {y} primary?", "Will the {x} shutdown end before {y}?", "Will {x} sign the {y} bill?"],
    "crypto": ["Will the {x} token close above $1 in {y}?", "Will {x} coin reach a record high by {y}?",
               "Will a {x} ETF be approved in {y}?"],
    "sports": ["Will {x} win the {y} final?", "Will the {x} make the {y} playoffs?", "Will {x} score in the {y} derby?"],
    "economics": ["Will {x} inflation exceed forecasts in {y}?", "Will {x} payrolls beat estimates in {y}?",
                  "Will {x} enter recession by {y}?"],
    "culture": ["Will {x} top the {y} charts?", "Will {x} win Best Picture at the {y} Oscars?",
                "Will {x} announce a {y} tour?"],
}  # fmt: skip
SUBJECTS = [
    "Alpha", "Boreal", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo", "Juniper",
    "Keystone", "Lumen", "Meridian", "Nimbus", "Onyx", "Pioneer", "Quartz", "Riviera", "Summit", "Tundra",
]  # fmt: skip
PERIODS = ["December", "January", "February", "March", "spring", "summer", "2027"]
BULLISH = [
    "Huge momentum for {kw}, this is happening. Loading up on YES",
    "Strong signs on {kw}. Bullish, odds look way too low",
    "Great news on {kw}! Confident this resolves YES",
    "Everyone is talking about {kw}. Love this setup, buying",
]
BEARISH = [
    "Terrible news for {kw}. This is not happening, selling",
    "Bad signs on {kw}, odds look way too high. Bearish",
    "Disappointing update on {kw}. Expect NO, dumping my shares",
    "Worried about {kw}. Weak case, fading this market",
]
NEUTRAL = [
    "Watching {kw} closely today",
    "Anyone following {kw}? Curious where this goes",
    "Thread on {kw} and what the market implies",
]
BOT_TEXT = "Free signals for {kw}!! Join now, 1000x guaranteed, link in bio #Polymarket polymarket.com"


@dataclass(frozen=True)
class DemoMarket:
    index: int
    market_id: str
    condition_id: str
    question: str
    slug: str
    category: str
    keywords: tuple[str, ...]
    yes_token: str
    no_token: str
    trade_usd_mean: float
    eligible: bool  # passes the default volume filter
    closed: bool
    malformed: str | None  # a wire defect planted to exercise quarantine
    lead_lag: int | None
    direction: int
    logit_mean: float
    end_date: datetime


def _digits(rng: np.random.Generator, n: int) -> str:
    return str(rng.integers(1, 10)) + "".join(str(d) for d in rng.integers(0, 10, size=n - 1))


def _hex(*parts: object) -> str:
    return "0x" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Series:
    """One market's bucket arrays from bucket 0 up to ``n`` (exclusive)."""

    def __init__(self, logit: np.ndarray, hype: np.ndarray, activity: np.ndarray, ret: np.ndarray) -> None:
        self.logit = logit
        self.hype = hype
        self.activity = activity
        self.ret = ret

    @property
    def n(self) -> int:
        return len(self.logit)


class DemoWorld:
    """The seeded world; ``handle`` answers Gamma, CLOB, Data API and X requests."""

    _cache: dict[tuple[Any, ...], DemoWorld] = {}
    _cache_lock = threading.Lock()

    def __init__(
        self,
        seed: int = 7,
        n_markets: int = 50,
        history_days: int = 30,
        epoch: str = "2026-01-01T00:00:00Z",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.n_markets = n_markets
        self.history_days = history_days
        self.epoch_ts = int(datetime.fromisoformat(epoch.replace("Z", "+00:00")).timestamp())
        self.epoch_ts -= self.epoch_ts % BUCKET_SECONDS
        self.clock = clock
        self._lock = threading.RLock()
        self._series: dict[int, _Series] = {}
        self._tweets: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._trades: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._search_cache: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._history_cache: dict[tuple[Any, ...], bytes] = {}
        self._x_calls: list[float] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> DemoWorld:
        """The process-wide world for these demo settings (built once, shared by runs)."""
        d = settings.demo
        key = (d.seed, d.n_markets, d.history_days, d.epoch, d.frozen_now)
        with cls._cache_lock:
            if key not in cls._cache:
                clock = time.time
                if d.frozen_now is not None:
                    frozen = d.frozen_now if d.frozen_now.tzinfo else d.frozen_now.replace(tzinfo=UTC)
                    clock = frozen.timestamp  # bound method: always the same instant
                cls._cache[key] = cls(d.seed, d.n_markets, d.history_days, d.epoch, clock=clock)
            return cls._cache[key]

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering every request from this world (no network)."""
        return httpx.MockTransport(self.handle)

    # --- ground truth ------------------------------------------------------------------

    def planted_lead_lags(self) -> dict[str, int | None]:
        """market_id -> buckets by which hype leads price (None where no effect was planted)."""
        return {m.market_id: m.lead_lag for m in self.markets if m.eligible and not m.malformed}

    def planted_direction(self) -> dict[str, int]:
        """market_id -> +1 when hype precedes YES price rises, -1 when it precedes falls (0: none)."""
        return {m.market_id: (m.direction if m.lead_lag else 0) for m in self.markets if m.eligible}

    # --- markets -------------------------------------------------------------------------

    @cached_property
    def markets(self) -> list[DemoMarket]:
        rng = np.random.default_rng([self.seed, 0])
        n_low, n_closed, n_bad = max(2, self.n_markets // 6), max(1, self.n_markets // 12), 2
        total = self.n_markets + n_low + n_closed + n_bad
        categories = list(CATEGORIES)
        markets = []
        for i in range(total):
            category = categories[i % len(categories)]
            template = CATEGORIES[category][(i // len(categories)) % len(CATEGORIES[category])]
            # (subject, category, template) is unique for the first 60 markets; later ones get a numbered subject.
            subject = SUBJECTS[i % len(SUBJECTS)] + (str(i // 60 + 1) if i >= 60 else "")
            question = template.format(x=subject, y=PERIODS[i % len(PERIODS)])
            kind = "eligible"
            if i >= self.n_markets:
                j = i - self.n_markets
                kind = "low" if j < n_low else "closed" if j < n_low + n_closed else "bad"
            is_lead = kind == "eligible" and rng.random() < LEAD_MARKET_SHARE
            lag = int(rng.choice(LEAD_LAGS))
            direction = int(rng.choice([-1, 1]))
            markets.append(
                DemoMarket(
                    index=i,
                    market_id=str(500000 + i * 37),
                    condition_id=_hex("condition", self.seed, i),
                    question=question,
                    slug=question.lower().replace("?", "").replace("$", "").replace(" ", "-")[:80] + f"-{i}",
                    category=category,
                    keywords=tuple(question_keywords(question)),
                    yes_token=_digits(rng, 77),
                    no_token=_digits(rng, 76),
                    trade_usd_mean=float(rng.uniform(60, 250) if kind == "low" else rng.uniform(1500, 12000)),
                    eligible=kind == "eligible",
                    closed=kind == "closed",
                    malformed=("three_outcomes" if i % 2 else "price_out_of_range")
                    if kind == "bad"
                    else None,
                    lead_lag=lag if is_lead else None,
                    direction=direction,
                    logit_mean=float(rng.uniform(-1.5, 1.5)),
                    end_date=datetime(2027, 1 + i % 12, 1 + i % 28, 12, tzinfo=UTC),
                )
            )
        return markets

    @cached_property
    def _by_token(self) -> dict[str, tuple[DemoMarket, str]]:
        out: dict[str, tuple[DemoMarket, str]] = {}
        for m in self.markets:
            out[m.yes_token] = (m, "Yes")
            out[m.no_token] = (m, "No")
        return out

    @cached_property
    def _by_condition(self) -> dict[str, DemoMarket]:
        return {m.condition_id: m for m in self.markets}

    # --- time ----------------------------------------------------------------------------

    def now_bucket(self) -> int:
        return int((self.clock() - self.epoch_ts) // BUCKET_SECONDS)

    def bucket_ts(self, k: int) -> int:
        return self.epoch_ts + k * BUCKET_SECONDS

    # --- series --------------------------------------------------------------------------

    def _draw(
        self, m: DemoMarket, stream: int, weeks: int, draw: Callable[[np.random.Generator], np.ndarray]
    ) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1 + m.index, stream])
        return np.concatenate([draw(rng) for _ in range(weeks)])

    def series(self, m: DemoMarket, upto: int) -> _Series:
        """Arrays covering buckets ``0..upto`` (inclusive), extended week by week as time passes."""
        with self._lock:
            cached = self._series.get(m.index)
            if cached is not None and cached.n > upto:
                return cached
            weeks = upto // WEEK_BUCKETS + 2
            size = WEEK_BUCKETS
            noise = self._draw(m, 1, weeks, lambda r: r.standard_normal(size))
            jump_u = self._draw(m, 2, weeks, lambda r: r.random(size))
            jump_z = self._draw(m, 3, weeks, lambda r: r.standard_normal(size))
            hype_u = self._draw(m, 4, weeks, lambda r: r.random(size))
            hype_e = self._draw(m, 5, weeks, lambda r: r.standard_exponential(size))
            vol_u = self._draw(m, 6, weeks, lambda r: r.random(size))
            vol_e = self._draw(m, 7, weeks, lambda r: r.standard_exponential(size))
            shocks = np.where(hype_u < HYPE_BURST_PROB, hype_e * HYPE_BURST_MEAN, 0.0)
            hype = lfilter([1.0], [1.0, -HYPE_DECAY], shocks)
            innovations = LOGIT_SIGMA * noise + np.where(jump_u < JUMP_PROB, JUMP_SD * jump_z, 0.0)
            if m.lead_lag:
                lagged = np.concatenate([np.zeros(m.lead_lag), hype[: -m.lead_lag]])
                # Centred so hype moves prices around their level instead of pushing them to a bound.
                innovations = innovations + HYPE_PRICE_BETA * m.direction * (lagged - HYPE_MEAN)
            deviation = lfilter([1.0], [1.0, -LOGIT_PHI], innovations)
            logit = np.clip(m.logit_mean + deviation, -4.5, 4.5)
            ret = np.diff(logit, prepend=logit[0])
            vburst = lfilter(
                [1.0], [1.0, -0.7], np.where(vol_u < VOLUME_BURST_PROB, vol_e * VOLUME_BURST_MEAN, 0.0)
            )
            activity = 1.0 + VOLUME_PRICE_LINK * np.abs(ret) / LOGIT_SIGMA / 2 + vburst
            series = _Series(logit, hype, activity, ret)
            self._series[m.index] = series
            return series

    def yes_price(self, m: DemoMarket, k: int) -> float:
        x = self.series(m, k).logit[k]
        return round(1.0 / (1.0 + math.exp(-x)), 3)

    # --- trades and posts (generated lazily per market and week) -------------------------

    def _week_trades(self, m: DemoMarket, week: int) -> list[dict[str, Any]]:
        key = (m.index, week)
        with self._lock:
            if key in self._trades:
                return self._trades[key]
            start = week * WEEK_BUCKETS
            s = self.series(m, start + WEEK_BUCKETS)
            rng = np.random.default_rng([self.seed, 1 + m.index, 100, week])
            trades = []
            for k in range(start, start + WEEK_BUCKETS):
                count = rng.poisson(TRADE_RATE * s.activity[k])
                price = 1.0 / (1.0 + math.exp(-s.logit[k]))
                up = s.ret[k] >= 0
                for j in range(count):
                    usd = float(rng.lognormal(math.log(m.trade_usd_mean) - 0.5, 1.0))
                    buy = rng.random() < (0.65 if up else 0.35)
                    yes = rng.random() < 0.7
                    p = round(price if yes else 1.0 - price, 4)
                    p = min(max(p, 0.001), 0.999)
                    trades.append(
                        {
                            "proxyWallet": _hex("wallet", int(rng.integers(0, 5000)))[:42],
                            "side": "BUY" if buy else "SELL",
                            "asset": m.yes_token if yes else m.no_token,
                            "conditionId": m.condition_id,
                            "size": round(usd / p, 6),
                            "price": p,
                            "timestamp": self.bucket_ts(k) + int(rng.integers(0, BUCKET_SECONDS)),
                            "title": m.question,
                            "slug": m.slug,
                            "eventSlug": m.slug,
                            "outcome": "Yes" if yes else "No",
                            "outcomeIndex": 0 if yes else 1,
                            "name": f"trader{int(rng.integers(0, 5000))}",
                            "transactionHash": _hex("tx", self.seed, m.index, k, j),
                        }
                    )
            trades.sort(key=lambda t: t["timestamp"], reverse=True)
            self._trades[key] = trades
            return trades

    @cached_property
    def _author_list(self) -> list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, 9999])
        authors = []
        for i in range(N_HUMAN_AUTHORS + N_BOT_AUTHORS):
            bot = i >= N_HUMAN_AUTHORS
            authors.append(
                {
                    "id": str(10_000_000 + i * 7919),
                    "username": f"{'deal' if bot else 'trader'}_{i:04d}",
                    "name": f"{'Signals' if bot else 'Analyst'} {i}",
                    "bot": bot,
                    "created_days_before_window": float(
                        rng.uniform(3, 40) if bot else rng.uniform(400, 4000)
                    ),
                    "verified": bool(not bot and rng.random() < 0.1),
                    "followers_count": int(rng.integers(0, 30) if bot else rng.lognormal(6.0, 1.5)),
                    "following_count": int(rng.integers(800, 5000) if bot else rng.lognormal(5.5, 1.0)),
                    "tweets_per_day": float(rng.uniform(80, 300) if bot else rng.uniform(1, 20)),
                    "listed_count": int(0 if bot else rng.integers(0, 50)),
                }
            )
        return authors

    def _user_json(self, author: dict[str, Any], now_ts: float) -> dict[str, Any]:
        age_days = author["created_days_before_window"]
        created = now_ts - age_days * 86400 if author["bot"] else self.epoch_ts - age_days * 86400
        total_days = (now_ts - created) / 86400
        return {
            "id": author["id"],
            "name": author["name"],
            "username": author["username"],
            "created_at": _iso(created),
            "verified": author["verified"],
            "public_metrics": {
                "followers_count": author["followers_count"],
                "following_count": author["following_count"],
                "tweet_count": int(author["tweets_per_day"] * total_days),
                "listed_count": author["listed_count"],
            },
        }

    def _week_tweets(self, m: DemoMarket, week: int) -> list[dict[str, Any]]:
        key = (m.index, week)
        with self._lock:
            if key in self._tweets:
                return self._tweets[key]
            start = week * WEEK_BUCKETS
            s = self.series(m, start + WEEK_BUCKETS)
            rng = np.random.default_rng([self.seed, 1 + m.index, 200, week])
            authors = self._author_list
            kw = " ".join(m.keywords)
            posts: list[dict[str, Any]] = []
            for k in range(start, start + WEEK_BUCKETS):
                n_human = rng.poisson(TWEET_BASE_RATE * (1.0 + s.hype[k]))
                n_bot = BOT_BURST_SIZE if rng.random() < BOT_BURST_PROB else 0
                for j in range(n_human + n_bot):
                    bot = j >= n_human
                    if bot:
                        author = authors[N_HUMAN_AUTHORS + int(rng.integers(0, N_BOT_AUTHORS))]
                        text = BOT_TEXT.format(kw=kw)
                        likes, rts, replies, quotes = (int(v) for v in rng.integers(0, 2, size=4))
                    else:
                        author = authors[int(rng.integers(0, N_HUMAN_AUTHORS))]
                        bullish_p = 0.5
                        if m.lead_lag and s.hype[k] > 1.0:
                            bullish_p = 0.85 if m.direction > 0 else 0.15
                        u = rng.random()
                        pool = NEUTRAL if u < 0.3 else BULLISH if rng.random() < bullish_p else BEARISH
                        text = pool[int(rng.integers(0, len(pool)))].format(kw=kw)
                        if rng.random() < 0.3:
                            text += f" polymarket.com/event/{m.slug}"
                        elif rng.random() < 0.3:
                            text += " #Polymarket"
                        reach = math.sqrt(author["followers_count"] + 1)
                        likes = int(rng.poisson(0.3 * reach))
                        rts = int(rng.poisson(0.05 * reach))
                        replies = int(rng.poisson(0.04 * reach))
                        quotes = int(rng.poisson(0.01 * reach))
                    ts = self.bucket_ts(k) + float(rng.uniform(0, BUCKET_SECONDS))
                    seq = (m.index * 64 + j) % 4096
                    tweet_id = (int(ts * 1000) - X_EPOCH_MS) << 22 | seq
                    posts.append(
                        {
                            "id": str(tweet_id),
                            "author_id": author["id"],
                            "created_at": _iso(ts),
                            "text": text,
                            "lang": "en",
                            "edit_history_tweet_ids": [str(tweet_id)],
                            "public_metrics": {
                                "retweet_count": rts,
                                "reply_count": replies,
                                "like_count": likes,
                                "quote_count": quotes,
                                "bookmark_count": 0,
                                "impression_count": likes * 40 + int(rng.integers(0, 100)),
                            },
                            "_ts": ts,
                            "_author": author,
                        }
                    )
            self._tweets[key] = posts
            return posts

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request by path, like the real hosts would (any base URL is accepted)."""
        path = request.url.path.rstrip("/")
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        try:
            if path.endswith("/markets/keyset"):
                return self._gamma_markets(params)
            if path.endswith("/prices-history"):
                return self._prices_history(params)
            if path.endswith("/trades"):
                return self._data_trades(params)
            if path.endswith("/2/tweets/search/recent"):
                return self._x_search(request, params)
        except _BadRequest as exc:
            return httpx.Response(exc.status, json=exc.body)
        return httpx.Response(404, json={"error": f"not found: {path}"})

    def _gamma_markets(self, params: dict[str, str]) -> httpx.Response:
        limit = _int_param(params, "limit", 20)
        if not 1 <= limit <= 100:
            raise _BadRequest(422, {"error": "limit must be between 1 and 100"})
        now_k = self.now_bucket()
        rows = []
        for m in self.markets:
            if params.get("closed") == "false" and m.closed:
                continue
            rows.append(self._market_json(m, now_k))
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
        return httpx.Response(200, json=body)

    def _market_json(self, m: DemoMarket, now_k: int) -> dict[str, Any]:
        yes = self.yes_price(m, now_k)
        day_ago = self.yes_price(m, max(0, now_k - 96))
        week = now_k // WEEK_BUCKETS
        cutoff_day, cutoff_week = self.bucket_ts(now_k - 96), self.bucket_ts(now_k - WEEK_BUCKETS)
        now_ts = self.bucket_ts(now_k + 1)
        recent = [t for w in (week - 1, week) for t in self._week_trades(m, w) if t["timestamp"] < now_ts]
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
            "startDate": _iso(self.epoch_ts),
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
        token = params.get("market")
        if not token or token not in self._by_token:
            raise _BadRequest(400, {"error": "invalid market"})
        m, outcome = self._by_token[token]
        now_k = self.now_bucket()
        end_ts = min(_int_param(params, "endTs", self.bucket_ts(now_k)), self.bucket_ts(now_k))
        interval = params.get("interval")
        if "startTs" in params:
            start_ts = _int_param(params, "startTs", 0)
        else:
            span = {"1h": 3600, "6h": 21600, "1d": 86400, "1w": 604800, "1m": 2592000}.get(
                interval or "1m", 2592000
            )
            start_ts = end_ts - span if interval != "max" else self.epoch_ts
        fidelity = max(1, _int_param(params, "fidelity", 15))
        step = max(1, fidelity * 60 // BUCKET_SECONDS)
        first_k = max(0, math.ceil((start_ts - self.epoch_ts) / BUCKET_SECONDS))
        last_k = min(now_k, (end_ts - self.epoch_ts) // BUCKET_SECONDS)
        key = (token, first_k, last_k, step)
        with self._lock:
            cached = self._history_cache.get(key)
        if cached is not None:
            return httpx.Response(200, content=cached, headers={"content-type": "application/json"})
        history = []
        if last_k >= first_k:
            s = self.series(m, last_k)
            ks = np.arange(first_k - first_k % step + (step if first_k % step else 0), last_k + 1, step)
            yes = np.round(1.0 / (1.0 + np.exp(-s.logit[ks])), 3)
            prices = yes if outcome == "Yes" else np.round(1.0 - yes, 3)
            history = [
                {"t": int(self.bucket_ts(int(k))), "p": float(p)} for k, p in zip(ks, prices, strict=True)
            ]
            bad_k = WEEK_BUCKETS // 2  # one defective point in old history exercises the rejects table
            if m.index == 1 and outcome == "Yes" and first_k <= bad_k <= last_k and bad_k % step == 0:
                history[int((bad_k - ks[0]) // step)]["p"] = None
        body = json.dumps({"history": history}).encode()
        with self._lock:
            if len(self._history_cache) >= 4096:
                self._history_cache.clear()
            self._history_cache[key] = body
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    def _data_trades(self, params: dict[str, str]) -> httpx.Response:
        m = self._by_condition.get(params.get("market", ""))
        if m is None:
            return httpx.Response(200, json=[])
        limit = _int_param(params, "limit", 100)
        offset = _int_param(params, "offset", 0)
        if not 1 <= limit <= 10_000 or offset < 0:
            raise _BadRequest(400, {"error": "invalid limit or offset"})
        now_k = self.now_bucket()
        now_ts = self.bucket_ts(now_k + 1)
        oldest_week = max(0, (now_k - self.history_days * 96) // WEEK_BUCKETS)
        out: list[dict[str, Any]] = []
        skipped = 0
        for week in range(now_k // WEEK_BUCKETS, oldest_week - 1, -1):
            for t in self._week_trades(m, week):
                if t["timestamp"] >= now_ts:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(t)
                if len(out) == limit:
                    return httpx.Response(200, json=out)
        return httpx.Response(200, json=out)

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
        now = self.clock()
        now_k = self.now_bucket()
        if "start_time" in params:
            start = datetime.fromisoformat(params["start_time"].replace("Z", "+00:00")).timestamp()
            if start < now - X_WINDOW_SECONDS:
                raise _BadRequest(400, {"errors": [{"message": "start_time must be within the last 7 days"}]})
        else:
            start = now - X_WINDOW_SECONDS
        with self._lock:
            self._x_calls = [t for t in self._x_calls if t > now - 900] + [now]
            remaining = max(0, X_RATE_LIMIT - len(self._x_calls))
        headers = {
            "x-rate-limit-limit": str(X_RATE_LIMIT),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(now) + 900),
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
        return httpx.Response(200, json=body, headers=headers)

    def _search(self, query: str, now_k: int) -> list[dict[str, Any]]:
        """Recent-search semantics: top-level OR of AND-ed terms, operators ignored, newest first."""
        key = (query, now_k)
        with self._lock:
            if key in self._search_cache:
                return self._search_cache[key]
            alternatives = []
            for alt in query.replace("(", " ").replace(")", " ").split(" OR "):
                terms = [t.strip('"').lower() for t in alt.split() if ":" not in t and not t.startswith("-")]
                if terms:
                    alternatives.append(terms)
            weeks = {
                now_k // WEEK_BUCKETS,
                (now_k - WEEK_BUCKETS) // WEEK_BUCKETS,
                (now_k - 2 * WEEK_BUCKETS) // WEEK_BUCKETS,
            }
            found = []
            for m in self.markets:
                if not m.eligible:
                    continue
                for week in weeks:
                    if week < 0:
                        continue
                    for t in self._week_tweets(m, week):
                        text = t["text"].lower()
                        if any(all(term in text for term in terms) for terms in alternatives):
                            found.append(t)
            found.sort(key=lambda t: int(t["id"]), reverse=True)
            if len(self._search_cache) > 512:
                self._search_cache.clear()
            self._search_cache[key] = found
            return found


class _BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    try:
        return int(float(params[name]))
    except ValueError:
        raise _BadRequest(400, {"error": f"{name} must be an integer"}) from None

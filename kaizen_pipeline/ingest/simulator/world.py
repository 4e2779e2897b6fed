"""The simulated world: seeded markets, their price, hype and trade series, posts and planted effects.

It answers the real Polymarket and X HTTP requests through ``api`` (``DemoWorld.handle``, plugged in
as an httpx transport by ``DemoWorld.transport()``) so every client, parser and the transport layer
run unchanged, and it can serve over real HTTP (``server``).

The world is defined on an absolute grid of buckets from ``demo.epoch`` (``bucket_minutes``, by
default the clock module's 15 minutes); each random stream is drawn week by week from its own seeded generator, so any time
range is reproducible and a later run extends the same history. Per market:

- YES price ``p = sigmoid(x)``, ``x`` a bounded logit random walk (mean-reverting, with jumps);
- hype intensity ``b``: bursts that decay geometrically; posts arrive as Poisson(base * (1 + b));
- in *lead* markets the logit drifts by ``beta * direction * b[t - lag]``: hype leads price by ``lag``
  buckets (``planted_lead_lags()`` is the ground truth research is tested against);
- trade activity rises with price moves and has bursts of its own;
- order books around the YES price (``book_levels``): the spread widens with activity, depth varies,
  and in lead markets the side the coming hype drift pushes toward is thinner;
- bot-like accounts (young, few followers, many followings, high posting rate) post duplicate
  promotional texts in bursts unrelated to price;
- with ``transient_error_rate`` (``demo.transient_error_rate``) that share of requests is answered
  503 at random, as real APIs do at times: the planted truth run experiments are measured against.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.signal import lfilter

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, bars_per_day, buckets
from kaizen_pipeline.ingest.queries import question_keywords
from kaizen_pipeline.ingest.simulator.corpus import bot_post, human_post, market_question
from kaizen_pipeline.settings import Settings

if TYPE_CHECKING:
    import httpx

    from kaizen_pipeline.ingest.simulator.api import DemoApi

X_EPOCH_MS = 1288834974657  # X snowflake epoch: post ids encode their time like the real ones

# --- planted effects: the ground truth the research layer must recover -------------------
# Rates and lags count buckets; they were tuned on the default 15-minute bucket.
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
# --- order books ------------------------------------------------------------------------------
BOOK_MAX_SPREAD_TICKS = 8
BOOK_LEVELS = (6, 30)  # price levels per side, drawn per bucket
# Size tilt of a lead market's book per unit of the coming bucket's hype drift (about one burst):
# the side the price is pushed toward thins. Level sizes vary far more, so it is a hint, not a tell.
BOOK_TILT = 0.4


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


@functools.lru_cache(maxsize=8192)
def _wallet(i: int) -> str:
    """Trader ``i``'s proxy wallet (5,000 traders, one hash each instead of one per fill)."""
    return _hex("wallet", i)[:42]


def iso_time(ts: float) -> str:
    """A unix time in the APIs' ISO format (UTC, milliseconds, ``Z``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class MarketSeries:
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
    """The seeded world; ``handle`` answers Gamma, CLOB, Data API and X requests from it (``api``)."""

    _cache: dict[tuple[Any, ...], DemoWorld] = {}
    _cache_lock = threading.Lock()

    def __init__(
        self,
        seed: int = 7,
        n_markets: int = 50,
        history_days: int = 30,
        epoch: str = "2026-01-01T00:00:00Z",
        clock: Callable[[], float] = time.time,
        bucket_minutes: int = DEFAULT_BUCKET_MINUTES,
        transient_error_rate: float = 0.0,
    ) -> None:
        self.seed = seed
        self.transient_error_rate = transient_error_rate
        self.n_markets = n_markets
        self.history_days = history_days
        self.bucket_minutes = bucket_minutes
        self.bucket_seconds = int(buckets(1, bucket_minutes).total_seconds())
        self.day_buckets = int(bars_per_day(bucket_minutes))
        self.week_buckets = 7 * self.day_buckets  # streams are drawn a week at a time
        self.epoch_ts = int(datetime.fromisoformat(epoch.replace("Z", "+00:00")).timestamp())
        self.epoch_ts -= self.epoch_ts % self.bucket_seconds
        self.clock = clock
        self._lock = threading.RLock()
        self._api: DemoApi | None = None
        self._series: dict[int, MarketSeries] = {}
        self._tweets: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._trades: dict[tuple[int, int], list[dict[str, Any]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DemoWorld:
        """The process-wide world for these demo settings (built once, shared by runs)."""
        d = settings.demo
        key = (d.seed, d.n_markets, d.history_days, d.epoch, d.frozen_now, d.transient_error_rate)
        with cls._cache_lock:
            if key not in cls._cache:
                clock = time.time
                if d.frozen_now is not None:
                    frozen = d.frozen_now if d.frozen_now.tzinfo else d.frozen_now.replace(tzinfo=UTC)
                    clock = frozen.timestamp  # bound method: always the same instant
                cls._cache[key] = cls(
                    d.seed, d.n_markets, d.history_days, d.epoch, clock=clock,
                    transient_error_rate=d.transient_error_rate,
                )  # fmt: skip
            return cls._cache[key]

    # --- HTTP (the wire formats live in ``api``) -----------------------------------------

    @property
    def api(self) -> DemoApi:
        """This world's HTTP face: routes, response shapes, response caches, the X rate-limit window."""
        if self._api is None:
            # Imported here: the API builds on the world, so the world imports it only when asked.
            from kaizen_pipeline.ingest.simulator.api import DemoApi

            with self._lock:
                if self._api is None:
                    self._api = DemoApi(self)
        return self._api

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request by path, like the real hosts would (any base URL is accepted)."""
        return self.api.handle(request)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering every request from this world (no network)."""
        return self.api.transport()

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
        markets = []
        for i in range(total):
            category, question = market_question(i)
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
    def by_token(self) -> dict[str, tuple[DemoMarket, str]]:
        """token id -> (market, "Yes" or "No")."""
        out: dict[str, tuple[DemoMarket, str]] = {}
        for m in self.markets:
            out[m.yes_token] = (m, "Yes")
            out[m.no_token] = (m, "No")
        return out

    @cached_property
    def by_condition(self) -> dict[str, DemoMarket]:
        """condition id -> market."""
        return {m.condition_id: m for m in self.markets}

    # --- time ----------------------------------------------------------------------------

    def now_bucket(self) -> int:
        """The bucket holding the world's now (buckets count from the epoch)."""
        return int((self.clock() - self.epoch_ts) // self.bucket_seconds)

    def bucket_ts(self, k: int) -> int:
        """The unix start time of bucket ``k``."""
        return self.epoch_ts + k * self.bucket_seconds

    # --- series --------------------------------------------------------------------------

    def _draw(
        self, m: DemoMarket, stream: int, weeks: int, draw: Callable[[np.random.Generator], np.ndarray]
    ) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1 + m.index, stream])
        return np.concatenate([draw(rng) for _ in range(weeks)])

    def series(self, m: DemoMarket, upto: int) -> MarketSeries:
        """Arrays covering buckets ``0..upto`` (inclusive), extended week by week as time passes."""
        with self._lock:
            cached = self._series.get(m.index)
            if cached is not None and cached.n > upto:
                return cached
            weeks = upto // self.week_buckets + 2
            size = self.week_buckets
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
            series = MarketSeries(logit, hype, activity, ret)
            self._series[m.index] = series
            return series

    def yes_price(self, m: DemoMarket, k: int) -> float:
        """The YES price of market ``m`` in bucket ``k`` (rounded like the API's)."""
        x = self.series(m, k).logit[k]
        return round(1.0 / (1.0 + math.exp(-x)), 3)

    # --- order books -------------------------------------------------------------------

    def book_levels(
        self, m: DemoMarket, k: int
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], int]:
        """The YES book of market ``m`` in bucket ``k``: (bids, asks) best first as (price in ticks, shares), ticks per 1.

        The mid sits at the YES price; the tick is 0.001 near the bounds (below 0.04 or above 0.96)
        and 0.01 elsewhere, as on Polymarket; the spread widens with activity (volume bursts and
        price moves); depth varies per bucket. In lead markets the side the coming hype drift
        pushes the price toward is thinner. The NO book is this one mirrored (``1 - price``).
        """
        s = self.series(m, k + 1)
        price = 1.0 / (1.0 + math.exp(-s.logit[k]))
        per_unit = 1000 if price < 0.04 or price > 0.96 else 100
        rng = np.random.default_rng([self.seed, 1 + m.index, 300, k])
        spread = int(
            np.clip(1 + round(0.8 * (s.activity[k] - 1.0)) + rng.integers(0, 2), 1, BOOK_MAX_SPREAD_TICKS)
        )
        bid = max(1, math.floor(price * per_unit - spread / 2))
        ask = min(per_unit - 1, bid + spread)
        bid = min(bid, ask - 1)
        tilt = 0.0
        if m.lead_lag and k + 1 - m.lead_lag >= 0:
            drift = m.direction * (s.hype[k + 1 - m.lead_lag] - HYPE_MEAN)
            tilt = BOOK_TILT * float(np.clip(drift / HYPE_BURST_MEAN, -1.0, 1.0))
        shares = m.trade_usd_mean / max(price, 1.0 - price) / 3

        def side(start: int, step: int, weight: float) -> list[tuple[int, float]]:
            levels, at = [], start
            for i in range(int(rng.integers(BOOK_LEVELS[0], BOOK_LEVELS[1] + 1))):
                if not 0 < at < per_unit:
                    break
                size = float(rng.lognormal(math.log(shares), 0.8)) * (1 + 0.15 * i) * weight
                levels.append((at, round(max(size, 5.0), 2)))
                at += step * int(rng.integers(1, 4))
            return levels

        # price pushed up (tilt > 0): asks thin, bids thicken; down: the reverse
        return side(bid, -1, math.exp(tilt)), side(ask, 1, math.exp(-tilt)), per_unit

    # --- trades and posts (generated lazily per market and week) -------------------------

    def week_trades(self, m: DemoMarket, week: int) -> list[dict[str, Any]]:
        """Market ``m``'s trades in week ``week`` (Data API records), newest first.

        Drawn a week at a time as arrays (one draw per quantity for the whole week): a 30-day demo
        world has about 430,000 fills, and drawing them one value at a time cost seconds.
        """
        key = (m.index, week)
        with self._lock:
            if key in self._trades:
                return self._trades[key]
            start = week * self.week_buckets
            s = self.series(m, start + self.week_buckets)
            rng = np.random.default_rng([self.seed, 1 + m.index, 100, week])
            ks = np.arange(start, start + self.week_buckets)
            counts = rng.poisson(TRADE_RATE * s.activity[ks])
            n = int(counts.sum())
            k = np.repeat(ks, counts)
            usd = rng.lognormal(math.log(m.trade_usd_mean) - 0.5, 1.0, size=n)
            # buyers dominate in buckets where the price rose, sellers where it fell
            buy = rng.random(n) < np.where(s.ret[k] >= 0, 0.65, 0.35)
            yes = rng.random(n) < 0.7
            wallet = rng.integers(0, 5000, size=n)
            offset = rng.integers(0, self.bucket_seconds, size=n)
            trader = rng.integers(0, 5000, size=n)
            tx = rng.bytes(32 * n).hex()
            yes_price = 1.0 / (1.0 + np.exp(-s.logit[k]))
            price = np.clip(np.round(np.where(yes, yes_price, 1.0 - yes_price), 4), 0.001, 0.999)
            size = np.round(usd / price, 6)
            ts = self.epoch_ts + k * self.bucket_seconds + offset
            order = np.argsort(-ts, kind="stable")
            trades = [
                {
                    "proxyWallet": _wallet(int(w)),
                    "side": "BUY" if b else "SELL",
                    "asset": m.yes_token if y else m.no_token,
                    "conditionId": m.condition_id,
                    "size": q,
                    "price": p,
                    "timestamp": t,
                    "title": m.question,
                    "slug": m.slug,
                    "eventSlug": m.slug,
                    "outcome": "Yes" if y else "No",
                    "outcomeIndex": 0 if y else 1,
                    "name": f"trader{r}",
                    "transactionHash": "0x" + tx[64 * i : 64 * i + 64],
                }
                for i, w, b, y, q, p, t, r in zip(
                    order.tolist(),
                    wallet[order].tolist(),
                    buy[order].tolist(),
                    yes[order].tolist(),
                    size[order].tolist(),
                    price[order].tolist(),
                    ts[order].tolist(),
                    trader[order].tolist(),
                    strict=True,
                )
            ]
            self._trades[key] = trades
            return trades

    @cached_property
    def authors(self) -> list[dict[str, Any]]:
        """The X accounts that post: people first, then bots."""
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

    def week_tweets(self, m: DemoMarket, week: int) -> list[dict[str, Any]]:
        """Posts about market ``m`` in week ``week`` (X records; ``_ts`` and ``_author`` are not sent)."""
        key = (m.index, week)
        with self._lock:
            if key in self._tweets:
                return self._tweets[key]
            start = week * self.week_buckets
            s = self.series(m, start + self.week_buckets)
            rng = np.random.default_rng([self.seed, 1 + m.index, 200, week])
            authors = self.authors
            kw = " ".join(m.keywords)
            posts: list[dict[str, Any]] = []
            for k in range(start, start + self.week_buckets):
                n_human = rng.poisson(TWEET_BASE_RATE * (1.0 + s.hype[k]))
                n_bot = BOT_BURST_SIZE if rng.random() < BOT_BURST_PROB else 0
                for j in range(n_human + n_bot):
                    bot = j >= n_human
                    if bot:
                        author = authors[N_HUMAN_AUTHORS + int(rng.integers(0, N_BOT_AUTHORS))]
                        text = bot_post(kw)
                        likes, rts, replies, quotes = (int(v) for v in rng.integers(0, 2, size=4))
                    else:
                        author = authors[int(rng.integers(0, N_HUMAN_AUTHORS))]
                        bullish_p = 0.5
                        if m.lead_lag and s.hype[k] > 1.0:
                            bullish_p = 0.85 if m.direction > 0 else 0.15
                        text = human_post(rng, kw, m.slug, bullish_p)
                        reach = math.sqrt(author["followers_count"] + 1)
                        likes = int(rng.poisson(0.3 * reach))
                        rts = int(rng.poisson(0.05 * reach))
                        replies = int(rng.poisson(0.04 * reach))
                        quotes = int(rng.poisson(0.01 * reach))
                    ts = self.bucket_ts(k) + float(rng.uniform(0, self.bucket_seconds))
                    seq = (m.index * 64 + j) % 4096
                    tweet_id = (int(ts * 1000) - X_EPOCH_MS) << 22 | seq
                    posts.append(
                        {
                            "id": str(tweet_id),
                            "author_id": author["id"],
                            "created_at": iso_time(ts),
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

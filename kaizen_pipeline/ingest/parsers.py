"""Parse Polymarket and X wire records into validated rows; a bad record becomes a Reject naming the field.

Wire quirks handled here (see shared/api-samples): Gamma's ``outcomes``, ``outcomePrices`` and
``clobTokenIds`` are JSON arrays inside strings, ``volume``/``liquidity`` are decimal strings,
``bestBid``/``bestAsk``/``spread`` may be missing, ``category`` exists only on older markets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kaizen_pipeline.warehouse import to_naive_utc

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Reject:
    """A record that broke the schema: kept with its reason and raw payload, never dropped silently."""

    source: str
    record_key: str | None
    reason: str
    payload: Any

    def row(self, run_id: str | None, rejected_at: datetime) -> dict[str, Any]:
        payload = json.dumps(self.payload, sort_keys=True, default=str)
        digest = hashlib.sha1(f"{self.source}|{self.record_key}|{self.reason}|{payload}".encode()).hexdigest()
        return {
            "reject_id": digest,
            "source": self.source,
            "record_key": self.record_key,
            "reason": self.reason,
            "payload": payload,
            "run_id": run_id,
            "rejected_at": rejected_at,
        }


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_record(model: type[M], raw: Any, source: str, key_field: str) -> M | Reject:
    """Validate ``raw`` as ``model``, or return a Reject whose reason names the failing fields."""
    key = str(raw.get(key_field)) if isinstance(raw, dict) and raw.get(key_field) is not None else None
    if not isinstance(raw, dict):
        return Reject(source, key, f"record: expected a JSON object, got {type(raw).__name__}", raw)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        return Reject(source, key, _reason(exc), raw)


def _json_list(value: Any, field: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a JSON array encoded as a string, got {type(value).__name__}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON array string ({exc.msg})") from None
    if not isinstance(parsed, list):
        raise ValueError("expected a JSON array")
    return parsed


def _decimal(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class GammaMarket(_Wire):
    """One Gamma market, restricted to binary Yes/No markets with CLOB tokens."""

    id: str
    condition_id: str = Field(alias="conditionId", min_length=1)
    question: str = Field(min_length=1)
    slug: str | None = None
    category: str | None = None
    end_date: datetime | None = Field(None, alias="endDate")
    active: bool = True
    closed: bool = False
    volume_total: float | None = Field(None, alias="volume")
    volume_24h: float = Field(0.0, alias="volume24hr", ge=0)
    volume_1wk: float | None = Field(None, alias="volume1wk", ge=0)
    liquidity: float | None = Field(None, alias="liquidityNum", ge=0)
    best_bid: float | None = Field(None, alias="bestBid", ge=0, le=1)
    best_ask: float | None = Field(None, alias="bestAsk", ge=0, le=1)
    spread: float | None = Field(None, ge=0, le=1)
    last_trade_price: float | None = Field(None, alias="lastTradePrice", ge=0, le=1)
    one_day_price_change: float | None = Field(None, alias="oneDayPriceChange")
    outcomes: list[str] = Field(min_length=2, max_length=2)
    outcome_prices: list[float] = Field(alias="outcomePrices", min_length=2, max_length=2)
    clob_token_ids: list[str] = Field(alias="clobTokenIds", min_length=2, max_length=2)
    events: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_str(cls, v: Any) -> str:
        if v is None or str(v).strip() == "":
            raise ValueError("missing market id")
        return str(v)

    @field_validator("volume_total", mode="before")
    @classmethod
    def _decimal_string(cls, v: Any) -> float | None:
        return _decimal(v)

    @field_validator("outcomes", "clob_token_ids", mode="before")
    @classmethod
    def _string_array(cls, v: Any) -> list[str]:
        return [str(x) for x in _json_list(v, "outcomes")]

    @field_validator("outcome_prices", mode="before")
    @classmethod
    def _price_array(cls, v: Any) -> list[float]:
        prices = [float(x) for x in _json_list(v, "outcomePrices")]
        for p in prices:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"price {p} outside [0, 1]")
        return prices

    def row(self, snapshot_ts: datetime, ingested_at: datetime) -> dict[str, Any]:
        names = [o.lower() for o in self.outcomes]
        yes_i = names.index("yes") if "yes" in names else 0
        no_i = 1 - yes_i
        event = self.events[0] if self.events else {}
        series = event.get("series") or [{}]
        category = self.category or event.get("category") or series[0].get("title") or event.get("title")
        return {
            "market_id": self.id,
            "snapshot_ts": snapshot_ts,
            "condition_id": self.condition_id,
            "question": self.question,
            "slug": self.slug,
            "category": (category or "uncategorized")[:64],
            "event_slug": event.get("slug"),
            "end_date": to_naive_utc(self.end_date) if self.end_date else None,
            "active": self.active,
            "closed": self.closed,
            "volume_total": self.volume_total,
            "volume_24h": self.volume_24h,
            "volume_1wk": self.volume_1wk,
            "liquidity": self.liquidity,
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
            "spread": self.spread,
            "last_trade_price": self.last_trade_price,
            "one_day_price_change": self.one_day_price_change,
            "yes_token_id": self.clob_token_ids[yes_i],
            "no_token_id": self.clob_token_ids[no_i],
            "yes_price": self.outcome_prices[yes_i],
            "no_price": self.outcome_prices[no_i],
            "outcomes": json.dumps(self.outcomes),
            "ingested_at": ingested_at,
        }


class PricePoint(_Wire):
    t: int = Field(gt=0)
    p: float = Field(ge=0, le=1)

    @field_validator("t", mode="before")
    @classmethod
    def _int_seconds(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
            raise ValueError(f"expected unix seconds as an integer, got {v!r}")
        return int(v)


@dataclass(frozen=True)
class PriceHistory:
    """Validated CLOB points of one token: unix seconds and prices in [0, 1], as arrays."""

    t: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def between(self, start: int, end: int) -> PriceHistory:
        keep = (self.t >= start) & (self.t <= end)
        return PriceHistory(self.t[keep], self.p[keep])


_GET_T, _GET_P = itemgetter("t"), itemgetter("p")


def parse_price_history(history: list[Any], source: str, token_id: str) -> tuple[PriceHistory, list[Reject]]:
    """Validate a CLOB history array in bulk (a month is ~3000 points); bad points become Rejects."""
    try:
        t = np.fromiter(map(_GET_T, history), dtype=np.float64, count=len(history))
        p = np.fromiter(map(_GET_P, history), dtype=np.float64, count=len(history))
    except (TypeError, KeyError, ValueError):
        t = p = None
    if t is not None and p is not None:
        good = (t > 0) & (t == np.floor(t)) & (p >= 0) & (p <= 1)
        if good.all():
            return PriceHistory(t.astype(np.int64), p), []
    # Slow path: per-point validation, so each bad point is quarantined with its reason.
    ts: list[int] = []
    ps: list[float] = []
    rejects: list[Reject] = []
    for raw in history:
        parsed = parse_record(PricePoint, raw, source, "t")
        if isinstance(parsed, Reject):
            rejects.append(
                Reject(parsed.source, f"{token_id}@{parsed.record_key}", parsed.reason, parsed.payload)
            )
        else:
            ts.append(parsed.t)
            ps.append(parsed.p)
    return PriceHistory(np.array(ts, dtype=np.int64), np.array(ps, dtype=np.float64)), rejects


class Trade(_Wire):
    condition_id: str = Field(alias="conditionId")
    side: str
    size: float = Field(ge=0)
    price: float = Field(ge=0, le=1)
    timestamp: int = Field(gt=0)
    outcome: str | None = None
    transaction_hash: str | None = Field(None, alias="transactionHash")

    @field_validator("side")
    @classmethod
    def _side(cls, v: str) -> str:
        if v not in ("BUY", "SELL"):
            raise ValueError(f"expected BUY or SELL, got {v!r}")
        return v


class PublicMetrics(_Wire):
    like_count: int = Field(0, ge=0)
    retweet_count: int = Field(0, ge=0)
    reply_count: int = Field(0, ge=0)
    quote_count: int = Field(0, ge=0)
    impression_count: int | None = Field(None, ge=0)


class TweetRecord(_Wire):
    id: str = Field(min_length=1)
    author_id: str = Field(min_length=1)
    created_at: datetime
    text: str
    lang: str | None = None
    public_metrics: PublicMetrics = Field(default_factory=PublicMetrics)

    def row(self, ingested_at: datetime) -> dict[str, Any]:
        m = self.public_metrics
        return {
            "tweet_id": self.id,
            "author_id": self.author_id,
            "created_at": to_naive_utc(self.created_at),
            "text": self.text,
            "lang": self.lang,
            "like_count": m.like_count,
            "retweet_count": m.retweet_count,
            "reply_count": m.reply_count,
            "quote_count": m.quote_count,
            "impression_count": m.impression_count,
            "ingested_at": ingested_at,
        }


class UserMetrics(_Wire):
    followers_count: int = Field(0, ge=0)
    following_count: int = Field(0, ge=0)
    tweet_count: int = Field(0, ge=0)
    listed_count: int = Field(0, ge=0)


class UserRecord(_Wire):
    id: str = Field(min_length=1)
    username: str = Field(min_length=1)
    name: str | None = None
    created_at: datetime | None = None
    verified: bool | None = None
    public_metrics: UserMetrics = Field(default_factory=UserMetrics)

    def row(self, updated_at: datetime) -> dict[str, Any]:
        m = self.public_metrics
        return {
            "author_id": self.id,
            "username": self.username,
            "name": self.name,
            "created_at": to_naive_utc(self.created_at) if self.created_at else None,
            "verified": self.verified,
            "followers_count": m.followers_count,
            "following_count": m.following_count,
            "tweet_count": m.tweet_count,
            "listed_count": m.listed_count,
            "updated_at": updated_at,
        }

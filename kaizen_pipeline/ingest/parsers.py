"""Parse Polymarket and X wire records into validated rows; a bad record becomes a Reject naming the field.

Wire quirks handled here (see shared/api-samples): Gamma's ``outcomes``, ``outcomePrices`` and
``clobTokenIds`` are JSON arrays inside strings, ``volume``/``liquidity`` are decimal strings,
``bestBid``/``bestAsk``/``spread`` may be missing, ``category`` exists only on older markets.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from kaizen_pipeline.warehouse import to_naive_utc
from kaizen_pipeline.warehouse.schema import (
    market_outcomes,
    market_snapshots,
    order_book_snapshots,
    tweet_authors,
    tweets,
    whale_trades,
)

M = TypeVar("M", bound=BaseModel)

# Unix seconds stay below 1e10 until 2286; a larger value is milliseconds (or worse), never seconds.
MAX_UNIX_SECONDS = 10_000_000_000
MAX_REASON_CHARS = 500
_EPOCH = datetime(1970, 1, 1)


def _short(value: Any, limit: int = 60) -> str:
    """repr of a wire value, cut so a 5 MB string never lands in a reason."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


@functools.cache
def string_limits(table: sa.Table) -> dict[str, int]:
    """Column name -> maximum length, for every bounded String column of ``table``."""
    return {
        c.name: int(c.type.length)
        for c in table.columns
        if isinstance(c.type, sa.String) and not isinstance(c.type, sa.Text) and c.type.length
    }


def length_problem(table: sa.Table, row: Mapping[str, Any]) -> str | None:
    """The first string of ``row`` longer than its column in ``table``, as a reject reason (None if all fit)."""
    for name, limit in string_limits(table).items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > limit:
            return f"{name}: {len(value)} characters, longer than the column's limit of {limit}"
    return None


@dataclass(frozen=True)
class Reject:
    """A record that broke the schema: kept with its reason and raw payload, never dropped silently."""

    source: str
    record_key: str | None
    reason: str
    payload: Any

    def row(self, run_id: str | None, rejected_at: datetime) -> dict[str, Any]:
        reason = (
            self.reason if len(self.reason) <= MAX_REASON_CHARS else self.reason[:MAX_REASON_CHARS] + "..."
        )
        payload = json.dumps(self.payload, sort_keys=True, default=str)
        digest = hashlib.sha1(f"{self.source}|{self.record_key}|{self.reason}|{payload}".encode()).hexdigest()
        return {
            "reject_id": digest,
            "source": self.source,
            "record_key": self.record_key,
            "reason": reason,
            "payload": payload,
            "run_id": run_id,
            "rejected_at": rejected_at,
        }


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err["loc"])
        # A whole-record validator names its fields in its message.
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def wire_validator(*fields: str) -> Callable[[Callable[..., Any]], Any]:
    """A "before" field validator whose every failure is a ValueError, so pydantic names the field.

    Pydantic only wraps ValueError/AssertionError; a TypeError or AttributeError from ``float({...})``
    or ``x.get`` on a string would escape raw and abort the whole ingest instead of one record.
    """

    def decorate(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def guarded(cls: type, value: Any) -> Any:
            try:
                return func(cls, value)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - any per-record failure becomes that field's reject
                raise ValueError(f"{type(exc).__name__}: {exc} (got {_short(value)})") from None

        return field_validator(*fields, mode="before")(classmethod(guarded))

    return decorate


def _record_key(raw: Any, key_field: str) -> str | None:
    if not isinstance(raw, dict) or raw.get(key_field) is None:
        return None
    key = str(raw.get(key_field))
    return key if len(key) <= 255 else key[:200] + f"... ({len(key)} chars)"  # rejected_records.record_key


def _row_problem(parsed: Any) -> str | None:
    """The first stored row of ``parsed`` with a string longer than its column, named; else None."""
    if isinstance(parsed, _Wire):
        for table, row in parsed.stored_rows():
            problem = length_problem(table, row)
            if problem:
                return problem
    return None


def parse_record(model: type[M], raw: Any, source: str, key_field: str) -> M | Reject:
    """Validate ``raw`` as ``model`` and build the rows it will store, or return a Reject naming the field.

    The one parse mechanism of every client: any per-record failure (validation, a wrong type or
    nesting in a validator or in row building, a string longer than its column) becomes a Reject,
    so one bad record never aborts a run.
    """
    key = _record_key(raw, key_field)
    if not isinstance(raw, dict):
        return Reject(source, key, f"record: expected a JSON object, got {type(raw).__name__}", raw)
    try:
        parsed = model.model_validate(raw)
        problem = _row_problem(parsed)
        return Reject(source, key, problem, raw) if problem else parsed
    except ValidationError as exc:
        return Reject(source, key, _reason(exc), raw)
    except Exception as exc:  # noqa: BLE001 - a last resort: the record is quarantined, the run goes on
        return Reject(source, key, f"record: {type(exc).__name__}: {_short(str(exc), 200)}", raw)


@functools.cache
def _array_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def parse_records(model: type[M], raws: Any, source: str, key_field: str) -> tuple[list[M], list[Reject]]:
    """``parse_record`` over a wire array: (valid records, rejects); each served record lands in one.

    A page is validated in one call (pages of 10,000 trades). When some records fail, pydantic names
    their positions: those go through ``parse_record`` one by one, so each is quarantined with its
    own reason, and the rest are validated in one call again. Anything unexpected falls back to the
    record-by-record path for the whole page.
    """
    if isinstance(raws, list) and issubclass(model, _Wire):
        try:
            return _parse_page(model, raws, source, key_field)
        except Exception:  # noqa: BLE001 - the per-record path below names every problem
            pass
    good: list[M] = []
    bad: list[Reject] = []
    for raw in raws:
        parsed = parse_record(model, raw, source, key_field)
        (bad if isinstance(parsed, Reject) else good).append(parsed)  # type: ignore[arg-type]
    return good, bad


def _parse_page(model: type[M], raws: list[Any], source: str, key_field: str) -> tuple[list[M], list[Reject]]:
    adapter = _array_adapter(model)
    failing: set[int] = set()
    try:
        parsed = adapter.validate_python(raws)
    except ValidationError as exc:
        failing = {e["loc"][0] for e in exc.errors() if e["loc"] and isinstance(e["loc"][0], int)}
        if not failing:
            raise
        parsed = adapter.validate_python([r for i, r in enumerate(raws) if i not in failing])
    good: list[M] = []
    bad: list[Reject] = []
    for i in sorted(failing):
        record = parse_record(model, raws[i], source, key_field)
        (bad if isinstance(record, Reject) else good).append(record)  # type: ignore[arg-type]
    if model.stored_rows is _Wire.stored_rows:
        return parsed + good, bad
    # models that build rows: each row's strings must fit their columns (a reject, not a failed write)
    kept = [raws[i] for i in range(len(raws)) if i not in failing]
    for record, raw in zip(parsed, kept, strict=True):
        problem = _row_problem(record)
        if problem:
            bad.append(Reject(source, _record_key(raw, key_field), problem, raw))
        else:
            good.append(record)
    return good, bad


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
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a decimal string or number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_short(value)}")
    return number


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Wire(BaseModel):
    # Non-finite numbers ("Infinity", NaN) are never valid data: reject them in every model.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        """The warehouse rows this record becomes (with placeholder times), for the length check."""
        return iter(())


MAX_OUTCOMES = 32


class GammaMarket(_Wire):
    """One Gamma market with 2 or more outcomes; binary ones also feed the research tables."""

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
    outcomes: list[str] = Field(min_length=2, max_length=MAX_OUTCOMES)
    outcome_prices: list[float] = Field(alias="outcomePrices", min_length=2, max_length=MAX_OUTCOMES)
    clob_token_ids: list[str] = Field(alias="clobTokenIds", min_length=2, max_length=MAX_OUTCOMES)
    events: list[dict[str, Any]] = Field(default_factory=list)

    @wire_validator("id")
    def _id_str(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int)) or str(v).strip() == "":
            raise ValueError(f"expected a market id string, got {_short(v)}")
        return str(v)

    @wire_validator("volume_total")
    def _decimal_string(cls, v: Any) -> float | None:
        return _decimal(v)

    @wire_validator("outcomes", "clob_token_ids")
    def _string_array(cls, v: Any) -> list[str]:
        items = _json_list(v, "outcomes")
        for x in items:
            if not isinstance(x, (str, int)) or isinstance(x, bool) or str(x) == "":
                raise ValueError(f"expected non-empty strings, got {_short(x)}")
        return [str(x) for x in items]

    @wire_validator("outcome_prices")
    def _price_array(cls, v: Any) -> list[float]:
        prices = []
        for x in _json_list(v, "outcomePrices"):
            p = _decimal(x)
            if p is None:
                raise ValueError("missing price (null or empty)")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"price {p} outside [0, 1]")
            prices.append(p)
        return prices

    @model_validator(mode="after")
    def _aligned(self) -> GammaMarket:
        n = len(self.outcomes)
        if len(self.outcome_prices) != n or len(self.clob_token_ids) != n:
            raise ValueError(
                f"outcomes: {n} names but {len(self.outcome_prices)} outcomePrices"
                f" and {len(self.clob_token_ids)} clobTokenIds"
            )
        return self

    @property
    def is_binary(self) -> bool:
        """Two outcomes: the research tables (market_snapshots, prices) model YES/NO markets only."""
        return len(self.outcomes) == 2

    def _event_fields(self) -> tuple[str | None, str | None]:
        # events/series are loosely typed on the wire (a string where an object belongs): read defensively.
        event = _as_dict(self.events[0]) if self.events else {}
        series = event.get("series")
        first_series = _as_dict(series[0]) if isinstance(series, list) and series else {}
        category = (
            _text(self.category)
            or _text(event.get("category"))
            or _text(first_series.get("title"))
            or _text(event.get("title"))
        )
        return category, _text(event.get("slug"))

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        if self.is_binary:
            yield market_snapshots, self.row(_EPOCH, _EPOCH)
        for row in self.outcome_rows(_EPOCH):
            yield market_outcomes, row

    def outcome_rows(self, snapshot_ts: datetime) -> list[dict[str, Any]]:
        """One ``market_outcomes`` row per outcome: name, CLOB token and price, in wire order."""
        return [
            {
                "market_id": self.id,
                "snapshot_ts": snapshot_ts,
                "outcome_index": i,
                "outcome": name,
                "token_id": token,
                "price": price,
                "outcome_count": len(self.outcomes),
                "question": self.question,
            }
            for i, (name, token, price) in enumerate(
                zip(self.outcomes, self.clob_token_ids, self.outcome_prices, strict=True)
            )
        ]

    def row(self, snapshot_ts: datetime, ingested_at: datetime) -> dict[str, Any]:
        """The ``market_snapshots`` row of a binary market."""
        names = [o.lower() for o in self.outcomes]
        yes_i = names.index("yes") if "yes" in names else 0
        no_i = 1 - yes_i
        category, event_slug = self._event_fields()
        return {
            "market_id": self.id,
            "snapshot_ts": snapshot_ts,
            "condition_id": self.condition_id,
            "question": self.question,
            "slug": self.slug,
            "category": (category or "uncategorized")[:64],
            "event_slug": event_slug,
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

    @wire_validator("t")
    def _int_seconds(cls, v: Any) -> int:
        return unix_seconds(v)


def unix_seconds(v: Any) -> int:
    """A wire timestamp as integer unix seconds; milliseconds and non-integers are errors, never guessed."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
        raise ValueError(f"expected unix seconds as an integer, got {_short(v)}")
    if v >= MAX_UNIX_SECONDS:
        raise ValueError(f"{int(v)} is not unix seconds (milliseconds?)")
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
CONFLICT_REASON = "p: repeated timestamp with a different price"


def parse_price_history(
    history: list[Any], source: str, token_id: str, start: int | None = None, end: int | None = None
) -> tuple[PriceHistory, list[Reject]]:
    """Validate a CLOB history array in bulk (a month is ~3000 points); bad points become Rejects.

    A point outside the requested window ``[start, end]`` (milliseconds land there) is a reject, and
    so is a repeated timestamp with a different price (the first is kept; the reason starts with
    ``CONFLICT_REASON`` so a check can count them). An exact repeat is the same point, kept once.
    """
    lo = start if start is not None else 1
    hi = end if end is not None else MAX_UNIX_SECONDS - 1
    try:
        t = np.fromiter(map(_GET_T, history), dtype=np.float64, count=len(history))
        p = np.fromiter(map(_GET_P, history), dtype=np.float64, count=len(history))
    except (TypeError, KeyError, ValueError, OverflowError):
        t = p = None
    if t is not None and p is not None:
        good = np.isfinite(t) & (t == np.floor(t)) & (t >= lo) & (t <= hi) & (p >= 0) & (p <= 1)
        if good.all() and len(np.unique(t)) == len(t):
            return PriceHistory(t.astype(np.int64), p), []
    # Slow path: per-point validation, so each bad point is quarantined with its reason.
    seen: dict[int, float] = {}
    rejects: list[Reject] = []
    for raw in history:
        parsed = parse_record(PricePoint, raw, source, "t")
        key = f"{token_id}@{_record_key(raw, 't')}"
        if isinstance(parsed, Reject):
            rejects.append(Reject(parsed.source, key, parsed.reason, parsed.payload))
        elif not lo <= parsed.t <= hi:
            rejects.append(
                Reject(source, key, f"t: {parsed.t} outside the requested window [{lo}, {hi}]", raw)
            )
        elif parsed.t in seen:
            if seen[parsed.t] != parsed.p:
                reason = f"{CONFLICT_REASON} ({parsed.p} after {seen[parsed.t]}; the first is kept)"
                rejects.append(Reject(source, key, reason, raw))
        else:
            seen[parsed.t] = parsed.p
    ts = np.fromiter(seen.keys(), dtype=np.int64, count=len(seen))
    ps = np.fromiter(seen.values(), dtype=np.float64, count=len(seen))
    order = np.argsort(ts, kind="stable")
    return PriceHistory(ts[order], ps[order]), rejects


class Trade(_Wire):
    condition_id: str = Field(alias="conditionId")
    side: str
    size: float = Field(ge=0)
    price: float = Field(ge=0, le=1)
    timestamp: int = Field(gt=0)
    outcome: str | None = None
    asset: str | None = None
    proxy_wallet: str | None = Field(None, alias="proxyWallet")
    transaction_hash: str | None = Field(None, alias="transactionHash")

    @wire_validator("side")
    def _side(cls, v: Any) -> str:
        if v not in ("BUY", "SELL"):
            raise ValueError(f"expected BUY or SELL, got {_short(v)}")
        return str(v)

    @wire_validator("timestamp")
    def _seconds(cls, v: Any) -> int:
        return unix_seconds(v)

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes a fill unique: one transaction can carry several fills (assets, sides, sizes)."""
        return (
            self.transaction_hash,
            self.asset,
            self.outcome,
            self.side,
            self.size,
            self.price,
            self.timestamp,
            self.proxy_wallet,
        )


class LargeTrade(Trade):
    """A Data API fill kept in ``whale_trades``: it must name its transaction, token and wallet."""

    asset: str = Field(min_length=1)
    proxy_wallet: str = Field(alias="proxyWallet", min_length=1)
    transaction_hash: str = Field(alias="transactionHash", min_length=1)

    @property
    def usd(self) -> float:
        return self.size * self.price

    @functools.cached_property
    def trade_id(self) -> str:
        """A stable key of the fill: one transaction can carry several fills (hashed once: the length
        check and the stored row both ask)."""
        return hashlib.sha1(json.dumps(self.identity, default=str).encode()).hexdigest()

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        yield whale_trades, self.row("", _EPOCH)

    def row(self, market_id: str, ingested_at: datetime) -> dict[str, Any]:
        """The ``whale_trades`` row of this fill."""
        return {
            "trade_id": self.trade_id,
            "transaction_hash": self.transaction_hash,
            "market_id": market_id,
            "condition_id": self.condition_id,
            "token_id": self.asset,
            "outcome": self.outcome,
            "side": self.side,
            "size": self.size,
            "price": self.price,
            "usd": self.usd,
            "wallet": self.proxy_wallet,
            "ts": _EPOCH + timedelta(seconds=self.timestamp),
            "ingested_at": ingested_at,
        }


# A CLOB book timestamp is unix milliseconds; below 1e12 it would be seconds (before 2001 as ms).
MIN_UNIX_MS = 1_000_000_000_000
MAX_UNIX_MS = MAX_UNIX_SECONDS * 1000


class BookLevel(_Wire):
    """One price level of a CLOB book: price and size as decimal strings on the wire."""

    price: float = Field(gt=0, lt=1)
    size: float = Field(ge=0)

    @wire_validator("price", "size")
    def _decimal_string(cls, v: Any) -> float:
        number = _decimal(v)
        if number is None:
            raise ValueError("missing (null or empty)")
        return number


class OrderBook(_Wire):
    """A CLOB ``/book`` answer: bids ascending and asks descending on the wire, so the best level is LAST.

    The parser does not rely on that order: it sorts each side best first itself. A crossed book
    (best bid >= best ask) or an empty side is valid data, stored and reported by the checks.
    """

    condition_id: str = Field(alias="market", min_length=1)
    asset_id: str = Field(min_length=1)
    timestamp_ms: int = Field(alias="timestamp")
    hash: str | None = None
    bids: list[BookLevel]
    asks: list[BookLevel]
    tick_size: float = Field(gt=0, lt=1)
    min_order_size: float | None = Field(None, ge=0)
    neg_risk: bool | None = None
    last_trade_price: float | None = Field(None, ge=0, le=1)

    @wire_validator("timestamp_ms")
    def _unix_ms(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (str, int)) or not str(v).isdigit():
            raise ValueError(f"expected unix milliseconds as a digit string, got {_short(v)}")
        ms = int(v)
        if not MIN_UNIX_MS <= ms < MAX_UNIX_MS:
            raise ValueError(f"{ms} is not unix milliseconds (seconds?)")
        return ms

    @wire_validator("tick_size", "min_order_size", "last_trade_price")
    def _decimal_string(cls, v: Any) -> float | None:
        return _decimal(v)

    @property
    def ts(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.timestamp_ms)

    def sides(self) -> tuple[list[BookLevel], list[BookLevel]]:
        """(bids, asks), each best first: highest bid first, lowest ask first."""
        bids = sorted(self.bids, key=lambda lv: -lv.price)
        asks = sorted(self.asks, key=lambda lv: lv.price)
        return bids, asks

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        yield order_book_snapshots, self.row("", "", 1, _EPOCH)

    def row(self, market_id: str, outcome: str, levels: int, ingested_at: datetime) -> dict[str, Any]:
        """The ``order_book_snapshots`` row, keeping the top ``levels`` levels per side."""
        bids, asks = self.sides()
        best_bid = bids[0].price if bids else None
        best_ask = asks[0].price if asks else None
        both = best_bid is not None and best_ask is not None
        return {
            "token_id": self.asset_id,
            "book_ts": self.ts,
            "book_ts_ms": self.timestamp_ms,
            "market_id": market_id,
            "outcome": outcome,
            "condition_id": self.condition_id,
            "book_hash": self.hash,
            "tick_size": self.tick_size,
            "min_order_size": self.min_order_size,
            "neg_risk": self.neg_risk,
            "last_trade_price": self.last_trade_price,
            "best_bid": best_bid,
            "best_ask": best_ask,
            # rounded: 0.75 - 0.73 is 0.020000000000000018 in binary floating point
            "mid": round((best_bid + best_ask) / 2, 9) if both else None,  # type: ignore[operator]
            "spread": round(best_ask - best_bid, 9) if both else None,  # type: ignore[operator]
            "bid_levels": len(bids),
            "ask_levels": len(asks),
            "bid_depth_usd": float(sum(lv.price * lv.size for lv in bids)),
            "ask_depth_usd": float(sum(lv.price * lv.size for lv in asks)),
            "bids": json.dumps([[lv.price, lv.size] for lv in bids[:levels]]),
            "asks": json.dumps([[lv.price, lv.size] for lv in asks[:levels]]),
            "ingested_at": ingested_at,
        }


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

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        yield tweets, self.row(_EPOCH)

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

    def stored_rows(self) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
        yield tweet_authors, self.row(_EPOCH)

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

"""From research tables to backtest inputs: price grid, traded columns, entries and exits (pure).

A *book* has one column per (market_id, direction) that has at least one signal. Its close is
the traded token's price: ``yes_price`` for YES, the complement ``1 - yes_price`` for NO, both
clipped into [price_floor, 1 - price_floor] so a resolved token keeps a positive price. A signal
at bucket t uses data up to t and is filled at the next bar (t + 1); a signal on the last bar is
never filled. Exits: ``holding_bars`` after each entry signal's fill (0: no time exit) and, with
``exit_on_opposite_signal``, at the fill of the market's opposite-direction signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.engine import CostModel
from kaizen_pipeline.clock import bars_per_year as default_bars_per_year
from kaizen_pipeline.clock import bucket_minutes, fill_bars

DIRECTIONS = ("YES", "NO")


@dataclass(frozen=True)
class BookConfig:
    """The backtest knobs the studies share (from settings.backtest)."""

    fees: float = 0.002
    slippage: float = 0.005
    init_cash: float = 100.0
    holding_bars: int = 16
    exit_on_opposite_signal: bool = True
    bars_per_year: float = default_bars_per_year()
    price_floor: float = 0.001
    chunk_cells: int = 4_000_000

    @property
    def costs(self) -> CostModel:
        return CostModel(fees=self.fees, slippage=self.slippage)

    @classmethod
    def from_settings(cls, settings: object) -> BookConfig:
        """Resolve the knobs that live in other sections (research.signal_hold_buckets, bar frequency)."""
        bt = settings.backtest  # type: ignore[attr-defined]
        # the one holding knob: the paper book and signal_hit_rate hold for the same horizon
        hold = settings.research.signal_hold_buckets  # type: ignore[attr-defined]
        bars_per_year = bt.bars_per_year
        if bars_per_year is None:
            bars_per_year = default_bars_per_year(bucket_minutes(settings))
        return cls(
            fees=bt.fees,
            slippage=bt.slippage,
            init_cash=bt.init_cash,
            holding_bars=int(hold),
            exit_on_opposite_signal=bt.exit_on_opposite_signal,
            bars_per_year=float(bars_per_year),
            price_floor=bt.price_floor,
            chunk_cells=bt.chunk_cells,
        )


@dataclass
class Book:
    """Backtest inputs: ``close``/``entries``/``opposite_exits`` are (columns x bars) arrays."""

    index: pd.DatetimeIndex
    columns: pd.MultiIndex  # (market_id, direction)
    close: np.ndarray
    entries: np.ndarray
    opposite_exits: np.ndarray

    @property
    def n_cols(self) -> int:
        return len(self.columns)

    @property
    def n_bars(self) -> int:
        return len(self.index)

    def exits(self, holding_bars: int, exit_on_opposite_signal: bool) -> np.ndarray:
        """Exit signals: time exits ``holding_bars`` after each entry signal, plus opposite-signal exits."""
        return exit_signals(
            self.entries, self.opposite_exits if exit_on_opposite_signal else None, holding_bars
        )

    def slice(self, lo: int, hi: int) -> Book:
        """Bars ``lo:hi`` (columns kept)."""
        return Book(
            index=self.index[lo:hi],
            columns=self.columns,
            close=self.close[:, lo:hi],
            entries=self.entries[:, lo:hi],
            opposite_exits=self.opposite_exits[:, lo:hi],
        )

    def select(self, mask: np.ndarray) -> Book:
        """Columns where ``mask`` is true."""
        return Book(
            index=self.index,
            columns=self.columns[mask],
            close=self.close[mask],
            entries=self.entries[mask],
            opposite_exits=self.opposite_exits[mask],
        )


def shift_right(signals: np.ndarray, bars: int) -> np.ndarray:
    """Move boolean signals (columns x bars) ``bars`` later; those pushed past the end are dropped."""
    if bars == 0:
        return signals.copy()
    out = np.zeros_like(signals)
    if bars < signals.shape[1]:
        out[:, bars:] = signals[:, :-bars]
    return out


def exit_signals(entries: np.ndarray, opposite: np.ndarray | None, holding_bars: int) -> np.ndarray:
    """Time exits (entries + holding_bars; none when 0) OR opposite-signal exits."""
    exits = shift_right(entries, holding_bars) if holding_bars > 0 else np.zeros_like(entries)
    if opposite is not None:
        exits |= opposite
    return exits


def price_grid(features: pd.DataFrame, price_floor: float) -> pd.DataFrame:
    """YES price per bar (rows: sorted bucket_ts) and market (columns), gaps carried, clipped."""
    for col in ("market_id", "bucket_ts", "yes_price"):
        if col not in features.columns:
            raise ValueError(f"market_features lacks column {col!r}")
    frame = features[["market_id", "bucket_ts", "yes_price"]].copy()
    frame["bucket_ts"] = pd.to_datetime(frame["bucket_ts"])
    frame["yes_price"] = pd.to_numeric(frame["yes_price"], errors="coerce")
    bad = frame["yes_price"].notna() & ~frame["yes_price"].between(0, 1)
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise ValueError(
            f"market_features.yes_price must be in [0, 1]; market {row['market_id']} has {row['yes_price']!r}"
        )
    grid = frame.pivot_table(index="bucket_ts", columns="market_id", values="yes_price", aggfunc="last")
    grid = grid.sort_index().ffill().bfill()
    grid = grid.dropna(axis=1, how="all")
    return grid.clip(price_floor, 1 - price_floor)


def entry_positions(signals: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Signals with the bar of their fill: the first bar at or after bucket_ts, plus one."""
    for col in ("market_id", "bucket_ts", "direction"):
        if col not in signals.columns:
            raise ValueError(f"trading signals lack column {col!r}")
    sig = signals[["market_id", "bucket_ts", "direction"]].copy()
    sig["direction"] = sig["direction"].astype(str).str.upper()
    unknown = ~sig["direction"].isin(DIRECTIONS)
    if unknown.any():
        raise ValueError(
            f"trading signals: direction must be YES or NO (got {sig.loc[unknown, 'direction'].iloc[0]!r})"
        )
    sig["bar"] = fill_bars(index, sig["bucket_ts"].to_numpy())
    return sig[sig["bar"] < len(index)]


def build_book(
    features: pd.DataFrame, signals: pd.DataFrame, config: BookConfig, grid: pd.DataFrame | None = None
) -> Book:
    """The book of every (market, direction) with at least one filled signal (``grid``: a cached price_grid)."""
    if grid is None:
        grid = price_grid(features, config.price_floor) if len(features) else pd.DataFrame()
    index = pd.DatetimeIndex(grid.index)
    if grid.empty or signals is None or signals.empty:
        return empty_book(index)
    sig = entry_positions(signals, index)
    sig = sig[sig["market_id"].isin(grid.columns)]
    if sig.empty:
        return empty_book(index)
    pairs = sorted(set(zip(sig["market_id"], sig["direction"], strict=True)))
    columns = pd.MultiIndex.from_tuples(pairs, names=["market_id", "direction"])
    col_of = {pair: i for i, pair in enumerate(pairs)}
    n_bars = len(index)
    entries = np.zeros((len(pairs), n_bars), dtype=bool)
    cols = np.array([col_of[p] for p in zip(sig["market_id"], sig["direction"], strict=True)])
    entries[cols, sig["bar"].to_numpy()] = True
    yes = grid[[m for m, _ in pairs]].to_numpy(dtype=float).T
    is_no = np.array([d == "NO" for _, d in pairs])
    close = np.where(is_no[:, None], 1.0 - yes, yes)
    close = np.clip(close, config.price_floor, 1 - config.price_floor)
    opposite = np.zeros_like(entries)
    for i, (market, direction) in enumerate(pairs):
        other = col_of.get((market, "NO" if direction == "YES" else "YES"))
        if other is not None:
            opposite[i] = entries[other]
    return Book(
        index=index,
        columns=columns,
        close=np.ascontiguousarray(close),
        entries=entries,
        opposite_exits=opposite,
    )


def empty_book(index: pd.DatetimeIndex) -> Book:
    columns = pd.MultiIndex.from_tuples([], names=["market_id", "direction"])
    shape = (0, len(index))
    return Book(index, columns, np.ones(shape), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool))

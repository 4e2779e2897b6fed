"""Vectorized long-only signal backtest with the semantics of vectorbt's ``Portfolio.from_signals``.

Pure module (numpy/pandas, no Dagster, no numba, no per-bar Python loop). Semantics, per column
(an instrument or a run), each column starting with ``init_cash``:

- A bar with both an entry and an exit signal is ignored (vectorbt's default conflict mode).
- An entry while flat buys with all cash at ``close * (1 + slippage)``: size =
  ``cash / (1 + fees) / fill_price``, the fee being ``fees`` x traded value; entries while in a
  position are ignored (no accumulation).
- An exit while in a position sells everything at ``close * (1 - slippage)`` and pays
  ``fees`` x traded value; exits while flat are ignored.
- Equity (portfolio value) at each bar = cash + position x close; a position still open at the
  last bar is reported as an open trade valued at the last close (no exit fee).

How it is vectorized: after dropping conflicting bars, the position after any bar equals the
type of the latest signal so far (entries while long and exits while flat change nothing), so
the effective orders are exactly the signals whose type differs from the previous signal in
the same column. Each closed trade multiplies the column's cash by
``g = (1 - fees) x exit_fill / ((1 + fees) x entry_fill)``; a cumulative product over each
column's trades gives the cash before every entry. Dense equity is then two cumulative sums
over order flows (units and cash, which return to exactly zero after each round trip) and one
multiplication by close. Columns are processed in chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.metrics import METRIC_COLUMNS, metrics_table
from kaizen_pipeline.clock import bars_per_year

DEFAULT_BARS_PER_YEAR = bars_per_year()
DEFAULT_CHUNK_CELLS = 4_000_000  # bars x columns per chunk: about 32 MB per float buffer

TRADE_COLUMNS = [
    "column",
    "entry_idx",
    "entry_time",
    "exit_idx",
    "exit_time",
    "size",
    "entry_price",
    "entry_fees",
    "exit_price",
    "exit_fees",
    "pnl",
    "return",
    "status",
]


@dataclass(frozen=True)
class CostModel:
    """Proportional costs of one fill: ``fees`` of traded value and ``slippage`` on the price."""

    fees: float = 0.0
    slippage: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fees", "slippage"):
            value = getattr(self, name)
            if not np.isfinite(value) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a fraction in [0, 1) (got {value!r})")


@dataclass
class Trades:
    """Round trips of a set of columns (arrays aligned by trade, sorted by column then entry)."""

    col: np.ndarray
    entry_idx: np.ndarray
    exit_idx: np.ndarray
    closed: np.ndarray
    size: np.ndarray
    entry_price: np.ndarray
    entry_fees: np.ndarray
    exit_price: np.ndarray
    exit_fees: np.ndarray
    pnl: np.ndarray
    ret: np.ndarray
    cash_before: np.ndarray = field(repr=False)
    cash_after: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.col)

    @staticmethod
    def concat(parts: list[Trades], col_offsets: list[int]) -> Trades:
        if not parts:
            return _empty_trades()
        names = [f for f in Trades.__dataclass_fields__]
        data = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
        data["col"] = np.concatenate([p.col + off for p, off in zip(parts, col_offsets, strict=True)])
        return Trades(**data)


def _empty_trades() -> Trades:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=np.float64)
    return Trades(i, i, i, np.zeros(0, dtype=bool), f, f, f, f, f, f, f, f, f)


@dataclass
class BacktestResult:
    """``equity`` (bars x columns), ``trades`` (one row per closed or open trade), ``metrics`` (per column)."""

    equity: pd.DataFrame
    trades: pd.DataFrame
    metrics: pd.DataFrame
    init_cash: float

    def book_equity(self, columns: list | pd.Index | None = None) -> pd.Series:
        """Equity of a book that splits ``init_cash`` equally over ``columns`` (all when None)."""
        frame = self.equity if columns is None else self.equity[columns]
        if frame.shape[1] == 0:
            return pd.Series(self.init_cash, index=self.equity.index, name="equity")
        return frame.mean(axis=1).rename("equity")


# --- events -> trades ----------------------------------------------------------------------


def events_from_dense(entries: np.ndarray, exits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal events of (columns x bars) boolean arrays, sorted by column then bar, conflicts dropped.

    Returns ``(col, bar, is_entry)``. A bar with both signals has neither (XOR keeps exactly the
    bars with one signal).
    """
    n_bars = entries.shape[1]
    flat = np.flatnonzero(entries ^ exits)
    is_entry = entries.reshape(-1)[flat]
    col = flat // n_bars
    return col, flat - col * n_bars, is_entry


def events_from_lists(
    col: np.ndarray, bar: np.ndarray, is_entry: np.ndarray, n_bars: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`events_from_dense` for unsorted event lists that may repeat: same semantics."""
    key = (col.astype(np.int64) * n_bars + bar.astype(np.int64)) * 2 + is_entry.astype(np.int64)
    key.sort()
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    pos = key >> 1
    # after de-duplication, a repeated position is an exit (key even) followed by an entry: a conflict
    conflict = np.zeros(len(key), dtype=bool)
    if len(key) > 1:
        same = pos[1:] == pos[:-1]
        conflict[1:] |= same
        conflict[:-1] |= same
    key = key[~conflict]
    pos = key >> 1
    out_col = pos // n_bars
    return out_col, pos - out_col * n_bars, (key & 1).astype(bool)


def trades_from_events(
    col: np.ndarray,
    bar: np.ndarray,
    is_entry: np.ndarray,
    close: np.ndarray,
    *,
    costs: CostModel,
    init_cash: float,
    close_row: np.ndarray | None = None,
) -> Trades:
    """Round trips from sorted, conflict-free events; ``close`` is (rows x bars).

    ``close_row`` maps each column to its row of ``close`` (identity when None): runs of a Monte
    Carlo study share one price row per instrument without copying it.
    """
    if len(col) == 0:
        return _empty_trades()
    n_bars = close.shape[1]
    prev_entry = np.empty_like(is_entry)
    prev_entry[0] = False
    prev_entry[1:] = is_entry[:-1]
    first_of_col = np.empty(len(col), dtype=bool)
    first_of_col[0] = True
    first_of_col[1:] = col[1:] != col[:-1]
    prev_entry[first_of_col] = False  # every column starts flat
    effective = is_entry != prev_entry
    col, bar, is_entry = col[effective], bar[effective], is_entry[effective]

    # effective events alternate entry, exit, entry, ... within a column
    ent = np.flatnonzero(is_entry)
    if len(ent) == 0:
        return _empty_trades()
    nxt = ent + 1
    closed = nxt < len(col)
    closed[closed] = col[nxt[closed]] == col[ent[closed]]
    t_col = col[ent]
    t_in = bar[ent]
    t_out = np.where(closed, bar[np.minimum(nxt, len(col) - 1)], n_bars - 1)

    rows = t_col if close_row is None else close_row[t_col]
    fees, slip = costs.fees, costs.slippage
    entry_price = close[rows, t_in] * (1 + slip)
    last_close = close[rows, t_out]
    exit_price = np.where(closed, last_close * (1 - slip), last_close)

    # cash before each entry: cumulative product of growth factors within each column
    growth = np.where(closed, (1 - fees) * exit_price / ((1 + fees) * entry_price), 1.0)
    first = np.empty(len(t_col), dtype=bool)
    first[0] = True
    first[1:] = t_col[1:] != t_col[:-1]
    group = np.cumsum(first) - 1
    start = np.flatnonzero(first)
    rank = np.arange(len(t_col)) - start[group]
    padded = np.ones((len(start), int(rank.max()) + 1))
    padded[group, rank] = growth
    np.cumprod(padded, axis=1, out=padded)
    cum_after = padded[group, rank]
    cum_before = np.where(rank > 0, padded[group, np.maximum(rank - 1, 0)], 1.0)
    cash_before = init_cash * cum_before
    cash_after = np.where(closed, init_cash * cum_after, 0.0)

    size = cash_before / (1 + fees) / entry_price
    entry_fees = cash_before - cash_before / (1 + fees)
    exit_value = size * exit_price
    exit_fees = np.where(closed, exit_value * fees, 0.0)
    entry_value = size * entry_price
    pnl = exit_value - entry_value - entry_fees - exit_fees
    return Trades(
        col=t_col,
        entry_idx=t_in,
        exit_idx=t_out,
        closed=closed,
        size=size,
        entry_price=entry_price,
        entry_fees=entry_fees,
        exit_price=exit_price,
        exit_fees=exit_fees,
        pnl=pnl,
        ret=pnl / entry_value,
        cash_before=cash_before,
        cash_after=cash_after,
    )


def unit_and_cash_flows(
    trades: Trades, n_cols: int, n_bars: int, init_cash: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulated position units and cash, both (columns x bars); sums return to exactly 0 after a trade."""
    units = np.zeros((n_cols, n_bars))
    cash = np.zeros((n_cols, n_bars))
    units[trades.col, trades.entry_idx] = trades.size
    cash[trades.col, trades.entry_idx] = -trades.cash_before
    c = trades.closed
    units[trades.col[c], trades.exit_idx[c]] = -trades.size[c]
    cash[trades.col[c], trades.exit_idx[c]] = trades.cash_after[c]
    cash[:, 0] += init_cash
    np.cumsum(units, axis=1, out=units)
    np.cumsum(cash, axis=1, out=cash)
    return units, cash


def equity_from_trades(
    trades: Trades,
    close: np.ndarray,
    n_cols: int,
    init_cash: float,
    close_row: np.ndarray | None = None,
) -> np.ndarray:
    """Dense equity (columns x bars) = cash + units x close."""
    n_bars = close.shape[1]
    units, cash = unit_and_cash_flows(trades, n_cols, n_bars, init_cash)
    if close_row is None:
        units *= close
    else:
        units *= close[close_row]
    cash += units
    return cash


# --- public API ---------------------------------------------------------------------------


def _as_2d(frame: pd.DataFrame, name: str, dtype: type) -> np.ndarray:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (got {type(frame).__name__})")
    return np.ascontiguousarray(frame.to_numpy(dtype=dtype).T)


def _check_inputs(close: pd.DataFrame, entries: pd.DataFrame, exits: pd.DataFrame) -> None:
    for name, frame in (("entries", entries), ("exits", exits)):
        if frame.shape != close.shape:
            raise ValueError(f"{name} has shape {frame.shape}, close has {close.shape}: they must match")
        if not frame.columns.equals(close.columns) or not frame.index.equals(close.index):
            raise ValueError(f"{name} must have the same index and columns as close")


def chunk_bounds(n_cols: int, n_bars: int, chunk_cells: int) -> list[tuple[int, int]]:
    """Column ranges whose bars x columns stay under ``chunk_cells`` (at least one column each)."""
    step = max(1, chunk_cells // max(n_bars, 1))
    return [(lo, min(lo + step, n_cols)) for lo in range(0, n_cols, step)]


def simulate_arrays(
    close: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    costs: CostModel,
    init_cash: float,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    on_chunk: Callable[[int, int, np.ndarray, Trades], None] | None = None,
    keep_equity: bool = True,
) -> tuple[np.ndarray | None, Trades]:
    """Simulate (columns x bars) arrays chunk by chunk; ``on_chunk(lo, hi, equity, trades)`` sees each chunk.

    Returns the full equity (columns x bars, or None with ``keep_equity=False``) and all trades.
    """
    n_cols, n_bars = close.shape
    if n_bars == 0:
        raise ValueError("close has no bars: nothing to simulate")
    if not np.isfinite(close).all() or (close <= 0).any():
        bad = np.flatnonzero(~(np.isfinite(close) & (close > 0)).all(axis=1))
        raise ValueError(
            f"close must be finite and > 0 at every bar; column index(es) {bad[:5].tolist()} are not"
        )
    equity = np.empty((n_cols, n_bars)) if keep_equity else None
    parts: list[Trades] = []
    offsets: list[int] = []
    for lo, hi in chunk_bounds(n_cols, n_bars, chunk_cells):
        col, bar, is_entry = events_from_dense(entries[lo:hi], exits[lo:hi])
        trades = trades_from_events(col, bar, is_entry, close[lo:hi], costs=costs, init_cash=init_cash)
        eq = equity_from_trades(trades, close[lo:hi], hi - lo, init_cash)
        if equity is not None:
            equity[lo:hi] = eq
        if on_chunk is not None:
            on_chunk(lo, hi, eq, trades)
        parts.append(trades)
        offsets.append(lo)
    return equity, Trades.concat(parts, offsets)


def trades_frame(trades: Trades, columns: pd.Index, index: pd.Index) -> pd.DataFrame:
    """Trades as a DataFrame with column labels and bar timestamps."""
    frame = pd.DataFrame(
        {
            "column": columns[trades.col] if len(columns) else pd.Index([]),
            "entry_idx": trades.entry_idx,
            "entry_time": index[trades.entry_idx] if len(index) else pd.Index([]),
            "exit_idx": trades.exit_idx,
            "exit_time": index[trades.exit_idx] if len(index) else pd.Index([]),
            "size": trades.size,
            "entry_price": trades.entry_price,
            "entry_fees": trades.entry_fees,
            "exit_price": trades.exit_price,
            "exit_fees": trades.exit_fees,
            "pnl": trades.pnl,
            "return": trades.ret,
            "status": np.where(trades.closed, "closed", "open"),
        }
    )
    return frame[TRADE_COLUMNS]


def simulate_signals(
    close: pd.DataFrame,
    entries: pd.DataFrame,
    exits: pd.DataFrame,
    *,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 100.0,
    bars_per_year: float = DEFAULT_BARS_PER_YEAR,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
) -> BacktestResult:
    """Backtest entry/exit signals on close prices, column by column (vectorbt ``from_signals`` semantics).

    ``close``, ``entries`` and ``exits`` share index (bars) and columns (instruments or runs).
    For a prediction market's NO side pass the complement price ``1 - yes_price`` as close.
    """
    _check_inputs(close, entries, exits)
    if not np.isfinite(init_cash) or init_cash <= 0:
        raise ValueError(f"init_cash must be finite and > 0 (got {init_cash!r})")
    costs = CostModel(fees=fees, slippage=slippage)
    close_a = _as_2d(close, "close", np.float64)
    entries_a = _as_2d(entries.fillna(False) if entries.isna().any().any() else entries, "entries", bool)
    exits_a = _as_2d(exits.fillna(False) if exits.isna().any().any() else exits, "exits", bool)
    n_cols, n_bars = close_a.shape
    metric_parts: list[pd.DataFrame] = []

    def collect(lo: int, hi: int, eq: np.ndarray, trades: Trades) -> None:
        metric_parts.append(
            metrics_table(
                eq,
                trades.col,
                trades.pnl,
                trades.ret,
                trades.closed,
                trades.exit_idx - trades.entry_idx + (~trades.closed),
                init_cash,
                bars_per_year,
            )
        )

    equity, trades = simulate_arrays(
        close_a,
        entries_a,
        exits_a,
        costs=costs,
        init_cash=init_cash,
        chunk_cells=chunk_cells,
        on_chunk=collect,
    )
    if metric_parts:
        metrics = pd.concat(metric_parts, ignore_index=True)
    else:
        metrics = pd.DataFrame(columns=METRIC_COLUMNS, dtype=float)
    metrics.index = close.columns
    assert equity is not None
    equity_frame = pd.DataFrame(equity.T, index=close.index, columns=close.columns, copy=False)
    return BacktestResult(
        equity=equity_frame,
        trades=trades_frame(trades, close.columns, close.index),
        metrics=metrics,
        init_cash=float(init_cash),
    )


__all__ = [
    "BacktestResult",
    "CostModel",
    "Trades",
    "events_from_dense",
    "events_from_lists",
    "simulate_arrays",
    "simulate_signals",
    "trades_from_events",
]

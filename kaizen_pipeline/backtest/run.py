"""Run a book through the engine: per-column results plus the equal-weight book (pure).

The book splits ``init_cash`` equally over its columns, each column trading its share
independently (no cash sharing), so the book's equity is the mean of the columns' equity and
its return is the mean of their returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import Book, BookConfig
from kaizen_pipeline.backtest.engine import CostModel, Trades, simulate_arrays
from kaizen_pipeline.backtest.metrics import METRIC_COLUMNS, book_metrics, metrics_table


@dataclass
class BookRun:
    """A simulated book: column equity (columns x bars), trades, column metrics and the book's."""

    book: Book
    equity: np.ndarray
    trades: Trades
    metrics: pd.DataFrame
    book_equity: np.ndarray
    book_metrics: dict[str, float]
    init_cash: float = 100.0

    def book_equity_series(self) -> pd.Series:
        return pd.Series(self.book_equity, index=self.book.index, name="equity")

    def trades_table(self) -> pd.DataFrame:
        """Trades with market_id, direction and bar timestamps."""
        t = self.trades
        cols = self.book.columns
        idx = self.book.index
        return pd.DataFrame(
            {
                "market_id": cols.get_level_values(0)[t.col] if len(t) else [],
                "direction": cols.get_level_values(1)[t.col] if len(t) else [],
                "entry_ts": idx[t.entry_idx] if len(t) else [],
                "exit_ts": idx[t.exit_idx] if len(t) else [],
                "status": np.where(t.closed, "closed", "open"),
                "size": t.size,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "entry_fees": t.entry_fees,
                "exit_fees": t.exit_fees,
                "pnl": t.pnl,
                "trade_return": t.ret,
                "bars_held": bars_held(t),
            }
        )


def bars_held(trades: Trades) -> np.ndarray:
    """Bars with the position open: exit bar excluded for closed trades, last bar included for open ones."""
    return trades.exit_idx - trades.entry_idx + (~trades.closed).astype(np.int64)


def run_book(
    book: Book,
    config: BookConfig,
    *,
    costs: CostModel | None = None,
    close: np.ndarray | None = None,
    entries: np.ndarray | None = None,
    exits: np.ndarray | None = None,
) -> BookRun:
    """Simulate ``book`` with ``config`` (any of costs, close, entries, exits may be overridden)."""
    costs = costs or config.costs
    close = book.close if close is None else close
    entries = book.entries if entries is None else entries
    if exits is None:
        exits = book.exits(config.holding_bars, config.exit_on_opposite_signal)
    n_cols, n_bars = close.shape
    init = config.init_cash
    equity, trades = simulate_arrays(
        close, entries, exits, costs=costs, init_cash=init, chunk_cells=config.chunk_cells
    )
    assert equity is not None
    held = bars_held(trades)
    metrics = metrics_table(
        equity, trades.col, trades.pnl, trades.ret, trades.closed, held, init, config.bars_per_year
    )
    metrics.index = book.columns
    if n_cols:
        book_eq = equity.mean(axis=0)
        exposure = float(metrics["exposure_time"].mean())
    else:
        book_eq = np.full(n_bars, init)
        exposure = 0.0
    if n_bars:
        summary = book_metrics(
            book_eq, trades.pnl, trades.ret, trades.closed, exposure, init, config.bars_per_year
        )
    else:
        summary = dict.fromkeys(METRIC_COLUMNS, float("nan"))
    return BookRun(book, equity, trades, metrics, book_eq, summary, init)

"""Per-market, per-day outcomes of one simulated book, and the hit rate read from them (pure).

Both come from the engine's run (:func:`kaizen_pipeline.backtest.run.run_book`): fills at the
next bar, fees and slippage, no stacking, time and opposite-signal exits. The frame is what
experiments compare variants on; its ``pnl_after_costs`` sums to the book's total P&L.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.engine import unit_and_cash_flows
from kaizen_pipeline.backtest.run import BookRun

OUTCOME_COLUMNS = [
    "market_id",
    "day",
    "pnl_after_costs",
    "trades",
    "closed_trades",
    "hits",
    "exposure_bars",
]


def market_day_outcomes(run: BookRun, scale: float | None = None) -> pd.DataFrame:
    """One row per (market_id, UTC day) with a position or a trade in the book.

    - ``pnl_after_costs``: change of the market's marked-to-market equity over the day (both
      sides, costs included), times ``scale`` (None: 1 / columns, the book's own units, so the
      column sums to ``book_equity[-1] - init_cash``; 1.0: each side's own cash units).
    - ``trades``: entries filled that day; ``closed_trades``: exits that day; ``hits``: exits
      that day with P&L after costs > 0; ``exposure_bars``: (side, bar) pairs holding a position.
    """
    book = run.book
    if book.n_cols == 0 or book.n_bars == 0:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    if scale is None:
        scale = 1.0 / book.n_cols
    init = run.init_cash
    days = pd.DatetimeIndex(book.index).normalize()
    day_codes, day_values = pd.factorize(days, sort=True)
    last_bar = np.flatnonzero(np.r_[day_codes[1:] != day_codes[:-1], True])
    day_end_equity = run.equity[:, last_bar]
    pnl = np.diff(np.hstack([np.full((book.n_cols, 1), init), day_end_equity]), axis=1) * scale

    n_days = len(day_values)
    t = run.trades
    trades = np.zeros((book.n_cols, n_days))
    np.add.at(trades, (t.col, day_codes[t.entry_idx]), 1)
    closed = np.zeros_like(trades)
    hits = np.zeros_like(trades)
    c = t.closed
    np.add.at(closed, (t.col[c], day_codes[t.exit_idx[c]]), 1)
    won = c & (t.pnl > 0)
    np.add.at(hits, (t.col[won], day_codes[t.exit_idx[won]]), 1)
    units, _ = unit_and_cash_flows(t, book.n_cols, book.n_bars, init)
    held = units > 0
    exposure = np.zeros_like(trades)
    np.add.at(exposure, (np.nonzero(held)[0], day_codes[np.nonzero(held)[1]]), 1)

    markets = book.columns.get_level_values(0)
    frame = pd.DataFrame(
        {
            "market_id": np.repeat(np.asarray(markets), n_days),
            "day": np.tile(np.asarray(day_values), book.n_cols),
            "pnl_after_costs": pnl.reshape(-1),
            "trades": trades.reshape(-1),
            "closed_trades": closed.reshape(-1),
            "hits": hits.reshape(-1),
            "exposure_bars": exposure.reshape(-1),
        }
    )
    frame = frame.groupby(["market_id", "day"], as_index=False, sort=True).sum()
    active = (frame["exposure_bars"] > 0) | (frame["trades"] > 0) | (frame["closed_trades"] > 0)
    frame = frame[active | (frame["pnl_after_costs"] != 0)].reset_index(drop=True)
    for col in ("trades", "closed_trades", "hits", "exposure_bars"):
        frame[col] = frame[col].astype(np.int64)
    return frame[OUTCOME_COLUMNS]


def hit_rate(outcomes: pd.DataFrame) -> tuple[float, int]:
    """(share of closed trades with P&L after costs > 0, closed trades); NaN when none closed."""
    closed = int(outcomes["closed_trades"].sum()) if len(outcomes) else 0
    if closed == 0:
        return float("nan"), 0
    return float(outcomes["hits"].sum()) / closed, closed


__all__ = ["OUTCOME_COLUMNS", "hit_rate", "market_day_outcomes"]

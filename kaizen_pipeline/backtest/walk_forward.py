"""Walk-forward analysis: thresholds picked in sample, judged out of sample (pure).

Windows roll over the bars: train [s, s + train_bars), test [s + train_bars, s + train_bars +
test_bars), s = 0, test_bars, 2 test_bars, ... while a full test window fits. On each train
window every threshold triple of the grid (rvr_grid x roc_grid x hype_grid) is backtested (the
research signal rule, then the engine, starting flat with fresh cash) and the triple with the
best ``objective`` of the book wins (ties: first in grid order; a window where no triple trades
keeps the configured thresholds). That triple is then backtested on the test window.

Returns are compared per day, (1 + total_return) ** (bars_per_day / bars) - 1 (``clock.bars_per_day``
of the bucket), since train and test windows differ in length. Degradation = 1 - mean out-of-sample
daily return / mean in-sample daily return (0: holds up; 1: all of the edge lost; > 1: out-of-sample
loses money; undefined when in-sample is not positive); Sharpe degradation = mean in-sample Sharpe -
mean out-of-sample Sharpe.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import Book, BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.clock import bars_per_day
from kaizen_pipeline.research.signals import SignalThresholds


@dataclass(frozen=True)
class WalkForwardConfig:
    train_bars: int = 672
    test_bars: int = 192
    objective: str = "sharpe"
    rvr_grid: tuple[float, ...] = (1.5, 2.0, 3.0)
    roc_grid: tuple[float, ...] = (0.05, 0.10, 0.15)
    hype_grid: tuple[float, ...] = (50.0, 70.0)

    @classmethod
    def from_settings(cls, settings: object) -> WalkForwardConfig:
        wf = settings.backtest.walk_forward  # type: ignore[attr-defined]
        return cls(
            wf.train_bars,
            wf.test_bars,
            wf.objective,
            tuple(wf.rvr_grid),
            tuple(wf.roc_grid),
            tuple(wf.hype_grid),
        )

    def grid(self) -> list[SignalThresholds]:
        return [SignalThresholds(*t) for t in itertools.product(self.rvr_grid, self.roc_grid, self.hype_grid)]


@dataclass
class WalkForwardResult:
    windows: pd.DataFrame
    summary: dict[str, float]
    oos_equity: pd.Series  # the test windows chained, starting at init_cash


def window_starts(n_bars: int, train_bars: int, test_bars: int) -> list[int]:
    return (
        list(range(0, n_bars - train_bars - test_bars + 1, test_bars))
        if n_bars >= train_bars + test_bars
        else []
    )


def _daily(total_return: float, n_bars: int, per_day: float) -> float:
    if n_bars == 0 or total_return <= -1:
        return float("nan") if n_bars == 0 else -1.0
    return (1 + total_return) ** (per_day / n_bars) - 1


def walk_forward(
    features: pd.DataFrame,
    config: BookConfig,
    wf: WalkForwardConfig,
    default: SignalThresholds,
    bucket_minutes: int,
) -> WalkForwardResult:
    """Rolling train/test windows with a grid search on each train window (module docstring)."""
    grid_prices = price_grid(features, config.price_floor) if len(features) else pd.DataFrame()
    n_bars = len(grid_prices.index)
    starts = window_starts(n_bars, wf.train_bars, wf.test_bars)
    empty = pd.Series(dtype=float, name="equity")
    if not starts:
        return WalkForwardResult(pd.DataFrame(), {"windows": 0}, empty)
    candidates = wf.grid()
    if default not in candidates:
        candidates.append(default)  # the fallback when nothing trades in a train window
    books: dict[SignalThresholds, Book] = {
        th: build_book(features, rule_signals(features, th, bucket_minutes), config, grid=grid_prices)
        for th in candidates
    }
    per_day = bars_per_day(bucket_minutes)
    rows = []
    oos_parts = []
    level = config.init_cash
    for w, s in enumerate(starts):
        train_hi, test_hi = s + wf.train_bars, s + wf.train_bars + wf.test_bars
        best, best_score, best_metrics = default, -np.inf, None
        for th in wf.grid():
            metrics = run_book(books[th].slice(s, train_hi), config).book_metrics
            score = metrics[wf.objective]
            if metrics["num_trades"] > 0 and np.isfinite(score) and score > best_score:
                best, best_score, best_metrics = th, score, metrics
        if best_metrics is None:
            best_metrics = run_book(books[best].slice(s, train_hi), config).book_metrics
        test_run = run_book(books[best].slice(train_hi, test_hi), config)
        oos = test_run.book_metrics
        index = grid_prices.index
        rows.append(
            {
                "window_index": w,
                "train_start": index[s],
                "train_end": index[train_hi - 1],
                "test_start": index[train_hi],
                "test_end": index[test_hi - 1],
                "rvr_threshold": best.rvr,
                "roc_threshold": best.roc,
                "hype_threshold": best.hype,
                "is_total_return": best_metrics["total_return"],
                "is_daily_return": _daily(best_metrics["total_return"], wf.train_bars, per_day),
                "is_sharpe": best_metrics["sharpe"],
                "is_num_trades": best_metrics["num_trades"],
                "oos_total_return": oos["total_return"],
                "oos_daily_return": _daily(oos["total_return"], wf.test_bars, per_day),
                "oos_sharpe": oos["sharpe"],
                "oos_num_trades": oos["num_trades"],
            }
        )
        curve = test_run.book_equity / config.init_cash * level
        level = float(curve[-1])
        oos_parts.append(pd.Series(curve, index=index[train_hi:test_hi]))
    table = pd.DataFrame(rows)
    is_daily = float(table["is_daily_return"].mean())
    oos_daily = float(table["oos_daily_return"].mean())
    summary = {
        "windows": len(table),
        "mean_is_daily_return": is_daily,
        "mean_oos_daily_return": oos_daily,
        "degradation": 1 - oos_daily / is_daily if is_daily > 0 else float("nan"),
        "mean_is_sharpe": float(table["is_sharpe"].mean()),
        "mean_oos_sharpe": float(table["oos_sharpe"].mean()),
        "sharpe_degradation": float(table["is_sharpe"].mean() - table["oos_sharpe"].mean()),
        "oos_total_return": level / config.init_cash - 1,
    }
    return WalkForwardResult(table, summary, pd.concat(oos_parts).rename("equity"))

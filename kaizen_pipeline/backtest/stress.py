"""Stress tests: the backtest replayed under named adverse scenarios (pure).

Scenarios (multipliers from config ``backtest.stress``):

- ``baseline``: the backtest as is.
- ``liquidity_crunch``: slippage x ``liquidity_slippage_multiplier`` on every fill.
- ``volatility_spike``: every bar's move of the traded price in log-odds is multiplied by
  ``volatility_multiplier``: logit(p'_t) = logit(p_0) + k (logit(p_t) - logit(p_0)); prices stay in (0, 1).
- ``sudden_resolution``: the ``resolution_share`` of traded columns with the most time in a
  position resolve against the position halfway through their last trade: from that bar on the
  held token is worth ``price_floor`` and the market takes no new entries.
- ``volume_collapse``: volume dries up: every fill waits ``volume_collapse_delay_bars`` bars
  and pays slippage x ``volume_collapse_slippage_multiplier``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import Book, BookConfig, shift_right
from kaizen_pipeline.backtest.engine import CostModel
from kaizen_pipeline.backtest.run import BookRun, run_book

STRESS_METRICS = ["total_return", "annualized_return", "sharpe", "max_drawdown", "win_rate", "num_trades"]


@dataclass(frozen=True)
class StressConfig:
    liquidity_slippage_multiplier: float = 5.0
    volatility_multiplier: float = 3.0
    resolution_share: float = 0.25
    volume_collapse_delay_bars: int = 4
    volume_collapse_slippage_multiplier: float = 3.0

    @classmethod
    def from_settings(cls, settings: object) -> StressConfig:
        return cls(**settings.backtest.stress.model_dump())  # type: ignore[attr-defined]


def scale_volatility(close: np.ndarray, multiplier: float, price_floor: float) -> np.ndarray:
    """Multiply every bar's log-odds move by ``multiplier`` (columns x bars prices in (0, 1))."""
    p = np.clip(close, price_floor, 1 - price_floor)
    logit = np.log(p / (1 - p))
    scaled = logit[:, :1] + multiplier * (logit - logit[:, :1])
    return np.clip(1 / (1 + np.exp(-scaled)), price_floor, 1 - price_floor)


def resolution_shock(
    base: BookRun, share: float, price_floor: float
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Close and entries where the most-exposed traded columns resolve against their last trade."""
    book = base.book
    close = book.close.copy()
    entries = book.entries.copy()
    trades = base.trades
    n_bars = book.n_bars
    traded = np.unique(trades.col)
    if len(traded) == 0:
        return close, entries, []
    exposure = base.metrics["exposure_time"].to_numpy()[traded]
    order = traded[np.argsort(-exposure, kind="stable")]
    hit = order[: math.ceil(share * len(traded))]
    # each column's last trade: trades are sorted by column then entry
    last = np.flatnonzero(np.r_[trades.col[1:] != trades.col[:-1], True])
    last_of = dict(zip(trades.col[last].tolist(), last.tolist(), strict=True))
    shocked: list[int] = []
    for col in hit.tolist():
        k = last_of[col]
        t_in, t_out = int(trades.entry_idx[k]), int(trades.exit_idx[k])
        shock = t_in + max(1, (t_out - t_in) // 2)
        if shock >= n_bars:
            continue
        close[col, shock:] = price_floor
        entries[col, shock:] = False
        shocked.append(col)
    return close, entries, shocked


def stress_scenarios(
    book: Book, config: BookConfig, stress: StressConfig, base: BookRun | None = None
) -> tuple[pd.DataFrame, dict[str, BookRun]]:
    """One row per scenario (STRESS_METRICS and the change of total return) and each scenario's run."""
    base = base or run_book(book, config)
    exits = book.exits(config.holding_bars, config.exit_on_opposite_signal)
    fees, slip = config.fees, config.slippage
    runs: dict[str, BookRun] = {"baseline": base}
    descriptions = {"baseline": "the backtest as configured"}

    m = stress.liquidity_slippage_multiplier
    runs["liquidity_crunch"] = run_book(book, config, costs=CostModel(fees, min(slip * m, 0.99)))
    descriptions["liquidity_crunch"] = f"slippage x{m:g} ({slip:g} -> {min(slip * m, 0.99):g})"

    k = stress.volatility_multiplier
    runs["volatility_spike"] = run_book(
        book, config, close=scale_volatility(book.close, k, config.price_floor)
    )
    descriptions["volatility_spike"] = f"every bar's log-odds move x{k:g}"

    close, entries, shocked = resolution_shock(base, stress.resolution_share, config.price_floor)
    runs["sudden_resolution"] = run_book(book, config, close=close, entries=entries, exits=exits)
    descriptions["sudden_resolution"] = (
        f"{len(shocked)} most-exposed column(s) resolve against the position mid-trade "
        f"(share {stress.resolution_share:g})"
    )

    d, sm = stress.volume_collapse_delay_bars, stress.volume_collapse_slippage_multiplier
    runs["volume_collapse"] = run_book(
        book,
        config,
        costs=CostModel(fees, min(slip * sm, 0.99)),
        entries=shift_right(book.entries, d),
        exits=shift_right(exits, d),
    )
    descriptions["volume_collapse"] = f"fills wait {d} bar(s), slippage x{sm:g}"

    base_return = base.book_metrics["total_return"]
    rows = []
    for name, run in runs.items():
        row = {"scenario": name, "description": descriptions[name]}
        row |= {metric: run.book_metrics[metric] for metric in STRESS_METRICS}
        row["return_change"] = run.book_metrics["total_return"] - base_return
        rows.append(row)
    return pd.DataFrame(rows), runs

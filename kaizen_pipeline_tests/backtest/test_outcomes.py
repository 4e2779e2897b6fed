"""Per-market, per-day outcomes of the one trade simulator: they add up to the book."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.book import BookConfig, build_book, empty_book
from kaizen_pipeline.backtest.outcomes import OUTCOME_COLUMNS, hit_rate, market_day_outcomes
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.research.signals import SignalThresholds

CONFIG = BookConfig(fees=0.002, slippage=0.005, holding_bars=16)
THRESHOLDS = SignalThresholds(rvr=2.0, roc=0.05, hype=50.0)


def test_outcomes_sum_to_the_books_pnl_trades_and_hits(make_features: Callable[..., pd.DataFrame]) -> None:
    features = make_features(n_markets=5, n_bars=960)  # ten days of 15-minute bars
    run = run_book(build_book(features, rule_signals(features, THRESHOLDS, 15), CONFIG), CONFIG)
    t = run.trades
    assert run.book.n_cols > 1 and t.closed.sum() > 5
    out = market_day_outcomes(run)
    assert list(out.columns) == OUTCOME_COLUMNS
    assert out["day"].nunique() > 5 and set(out["market_id"]) <= set(features["market_id"])
    assert not out.duplicated(["market_id", "day"]).any()
    # the book's total P&L after costs, in its own units (equal split of init_cash)
    assert out["pnl_after_costs"].sum() == pytest.approx(run.book_equity[-1] - CONFIG.init_cash)
    # in each side's own cash: the sum of every trade's P&L (open ones marked at the last close)
    per_side = market_day_outcomes(run, scale=1.0)
    assert per_side["pnl_after_costs"].sum() == pytest.approx(t.pnl.sum())
    assert out["trades"].sum() == len(t) and out["closed_trades"].sum() == t.closed.sum()
    assert out["hits"].sum() == (t.closed & (t.pnl > 0)).sum()
    assert hit_rate(out) == (pytest.approx((t.closed & (t.pnl > 0)).sum() / t.closed.sum()), t.closed.sum())
    held = (t.exit_idx - t.entry_idx + ~t.closed).sum()
    assert out["exposure_bars"].sum() == held
    # one market's days add up to that market's P&L
    market = out["market_id"].iloc[0]
    cols = [i for i, (m, _) in enumerate(run.book.columns) if m == market]
    expected = (run.equity[cols, -1] - CONFIG.init_cash).sum() / run.book.n_cols
    assert out.loc[out["market_id"] == market, "pnl_after_costs"].sum() == pytest.approx(expected)


def test_a_day_is_a_utc_calendar_day() -> None:
    index = pd.date_range("2026-03-02 23:00", periods=8, freq="15min")
    features = pd.DataFrame({"market_id": "m", "bucket_ts": index, "yes_price": np.linspace(0.4, 0.6, 8)})
    signals = pd.DataFrame({"market_id": ["m"], "bucket_ts": [index[1]], "direction": ["YES"]})
    config = BookConfig(fees=0.0, slippage=0.0, holding_bars=3)
    out = market_day_outcomes(run_book(build_book(features, signals, config), config), scale=1.0)
    # filled at 23:30, closed at 00:15 the next day: entry on one day, exit and hit on the next
    assert out["day"].tolist() == [pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-03")]
    assert out["trades"].tolist() == [1, 0] and out["closed_trades"].tolist() == [0, 1]
    assert out["hits"].tolist() == [0, 1] and out["exposure_bars"].tolist() == [2, 1]
    assert (out["pnl_after_costs"] > 0).all()


def test_an_empty_book_has_no_outcomes() -> None:
    book = empty_book(pd.date_range("2026-03-02", periods=4, freq="15min"))
    out = market_day_outcomes(run_book(book, CONFIG))
    assert out.empty and list(out.columns) == OUTCOME_COLUMNS
    assert hit_rate(out) == (pytest.approx(float("nan"), nan_ok=True), 0)

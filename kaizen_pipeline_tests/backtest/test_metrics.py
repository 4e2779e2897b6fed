"""Metrics against hand-computed examples."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from kaizen_pipeline.backtest.metrics import book_metrics, drawdown_stats, equity_metrics, trade_metrics


def test_equity_metrics_hand_computed() -> None:
    # 100 -> 110 -> 99 -> 121: returns +10 %, -10 %, +22.2 %
    equity = np.array([[110.0, 99.0, 121.0]])
    rets = [0.1, -0.1, 121 / 99 - 1]
    bars_per_year = 3.0  # the three bars are exactly one year
    m = equity_metrics(equity, 100.0, bars_per_year)
    mean, std = statistics.mean(rets), statistics.stdev(rets)
    downside = math.sqrt((0.1**2) / 3)
    assert m["total_return"][0] == pytest.approx(0.21)
    assert m["annualized_return"][0] == pytest.approx(0.21)  # one year: annualized = total
    assert m["annualized_volatility"][0] == pytest.approx(std * math.sqrt(3))
    assert m["sharpe"][0] == pytest.approx(mean / std * math.sqrt(3))
    assert m["sortino"][0] == pytest.approx(mean / downside * math.sqrt(3))
    assert m["max_drawdown"][0] == pytest.approx(0.1)  # 110 -> 99
    assert m["max_drawdown_duration"][0] == 1
    assert m["calmar"][0] == pytest.approx(0.21 / 0.1)
    assert m["final_equity"][0] == 121.0


def test_annualized_return_compounds_per_bar() -> None:
    # +1 % over 96 bars (one day of 15-minute bars) at 35040 bars per year
    equity = np.linspace(100, 101, 97)[1:].reshape(1, -1)
    m = equity_metrics(equity, 100.0, 35040.0)
    assert m["annualized_return"][0] == pytest.approx(1.01**365 - 1)


def test_drawdown_from_initial_cash_without_recovery() -> None:
    # below the initial cash from the first bar and never back: 3 bars under water, worst 10 %
    max_dd, duration = drawdown_stats(np.array([[90.0, 95.0, 99.0], [100.0, 120.0, 60.0]]), 100.0)
    assert max_dd.tolist() == pytest.approx([0.1, 0.5])
    assert duration.tolist() == [3, 1]


def test_longest_drawdown_is_the_longest_run_under_water() -> None:
    equity = np.array([[100, 95, 100, 104, 101, 102, 103, 105, 99.0]])
    max_dd, duration = drawdown_stats(equity, 100.0)
    assert duration[0] == 3  # 101, 102, 103 below the 104 peak (the last bar is a run of 1)
    assert max_dd[0] == pytest.approx(1 - 99 / 105)


def test_flat_curve_ratios_are_undefined_not_zero() -> None:
    m = equity_metrics(np.full((1, 5), 100.0), 100.0, 35040.0)
    assert m["total_return"][0] == 0 and m["max_drawdown"][0] == 0
    assert math.isnan(m["sharpe"][0]) and math.isnan(m["sortino"][0]) and math.isnan(m["calmar"][0])


def test_trade_metrics_hand_computed() -> None:
    # column 0: closed P&L +10, -5, +20, -5 and one open trade; column 1: two winners only
    col = np.array([0, 0, 0, 0, 0, 1, 1])
    pnl = np.array([10.0, -5.0, 20.0, -5.0, 7.0, 1.0, 2.0])
    ret = np.array([0.1, -0.05, 0.2, -0.05, 0.07, 0.01, 0.02])
    closed = np.array([True, True, True, True, False, True, True])
    held = np.array([4, 2, 10, 4, 5, 1, 1])
    t = trade_metrics(col, pnl, ret, closed, held, n_cols=3, n_bars=50)
    assert t["win_rate"][:2].tolist() == [0.5, 1.0]
    assert t["profit_factor"][0] == pytest.approx(30 / 10)
    assert t["profit_factor"][1] == math.inf  # no losing trade
    assert t["expectancy"][0] == pytest.approx(5.0)
    assert t["avg_trade_return"][0] == pytest.approx(0.05)
    assert t["num_trades"].tolist() == [5, 2, 0]
    assert t["num_closed_trades"].tolist() == [4, 2, 0]
    assert t["exposure_time"].tolist() == pytest.approx([25 / 50, 2 / 50, 0.0])
    assert math.isnan(t["win_rate"][2]) and math.isnan(t["profit_factor"][2])  # no trades: undefined


def test_book_metrics_pool_trades() -> None:
    m = book_metrics(
        np.array([101.0, 103.0]),
        pnl=np.array([2.0, -1.0, 3.0]),
        ret=np.array([0.02, -0.01, 0.03]),
        closed=np.array([True, True, False]),
        exposure_time=0.25,
        init_cash=100.0,
        bars_per_year=2.0,
    )
    assert m["total_return"] == pytest.approx(0.03)
    assert m["win_rate"] == 0.5 and m["profit_factor"] == 2.0 and m["expectancy"] == 0.5
    assert m["num_trades"] == 3 and m["num_closed_trades"] == 2 and m["exposure_time"] == 0.25

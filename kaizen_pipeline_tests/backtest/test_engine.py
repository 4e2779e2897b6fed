"""The vectorized engine: hand-computed fills, signal semantics, chunking, validation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.engine import events_from_dense, events_from_lists, simulate_signals


def frames(close: list[float], entries: list[int], exits: list[int]) -> tuple[pd.DataFrame, ...]:
    index = pd.date_range("2026-01-01", periods=len(close), freq="15min")
    return (
        pd.DataFrame({"m": close}, index=index),
        pd.DataFrame({"m": [bool(v) for v in entries]}, index=index),
        pd.DataFrame({"m": [bool(v) for v in exits]}, index=index),
    )


def test_round_trip_with_fees_and_slippage_hand_computed() -> None:
    close, entries, exits = frames([0.50, 0.60, 0.80, 0.40], [1, 0, 0, 0], [0, 0, 1, 0])
    res = simulate_signals(close, entries, exits, fees=0.01, slippage=0.02, init_cash=100.0)
    entry_fill = 0.50 * 1.02
    size = 100 / 1.01 / entry_fill  # all cash in, the fee on traded value
    exit_fill = 0.80 * 0.98
    cash_after = size * exit_fill * (1 - 0.01)
    assert res.equity["m"].tolist() == pytest.approx([size * 0.50, size * 0.60, cash_after, cash_after])
    trade = res.trades.iloc[0]
    assert trade["status"] == "closed" and trade["entry_idx"] == 0 and trade["exit_idx"] == 2
    assert trade["entry_price"] == pytest.approx(entry_fill) and trade["exit_price"] == pytest.approx(
        exit_fill
    )
    assert trade["entry_fees"] == pytest.approx(100 - 100 / 1.01)
    assert trade["pnl"] == pytest.approx(cash_after - 100)
    assert trade["return"] == pytest.approx((cash_after - 100) / (size * entry_fill))
    assert res.metrics.loc["m", "total_return"] == pytest.approx(cash_after / 100 - 1)
    assert res.metrics.loc["m", "exposure_time"] == pytest.approx(2 / 4)


def test_signal_state_machine_semantics() -> None:
    # bar 0: exit while flat (ignored); 1: entry; 2: entry while long (ignored, no accumulation);
    # 3: entry + exit on one bar (both ignored); 4: exit; 5: exit while flat; 6: entry -> open at the end
    close, entries, exits = frames(
        [1, 1, 1, 2, 4, 4, 2, 3.0], [0, 1, 1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 1, 0, 0]
    )
    res = simulate_signals(close, entries, exits)
    t = res.trades
    assert t[["entry_idx", "exit_idx", "status"]].values.tolist() == [[1, 4, "closed"], [6, 7, "open"]]
    assert res.equity["m"].tolist() == pytest.approx([100, 100, 100, 200, 400, 400, 400, 600])
    open_trade = t.iloc[1]
    assert open_trade["exit_price"] == 3.0 and open_trade["exit_fees"] == 0  # valued at the last close
    assert res.metrics.loc["m", "num_trades"] == 2 and res.metrics.loc["m", "num_closed_trades"] == 1


def test_no_position_is_the_complement_price() -> None:
    yes = [0.30, 0.20, 0.10]
    close, entries, exits = frames([1 - p for p in yes], [1, 0, 0], [0, 0, 1])
    res = simulate_signals(close, entries, exits)
    # buying NO at 0.70 and selling at 0.90 as YES falls from 0.30 to 0.10
    assert res.equity["m"].iloc[-1] == pytest.approx(100 * 0.90 / 0.70)


def test_columns_are_independent_and_chunking_changes_nothing() -> None:
    rng = np.random.default_rng(5)
    n_bars, n_cols = 300, 37
    close = pd.DataFrame(np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_cols)), axis=0)))
    entries = pd.DataFrame(rng.random((n_bars, n_cols)) < 0.05)
    exits = pd.DataFrame(rng.random((n_bars, n_cols)) < 0.05)
    whole = simulate_signals(close, entries, exits, fees=0.003, slippage=0.004)
    chunked = simulate_signals(close, entries, exits, fees=0.003, slippage=0.004, chunk_cells=n_bars * 4)
    pd.testing.assert_frame_equal(whole.equity, chunked.equity)
    pd.testing.assert_frame_equal(whole.trades, chunked.trades)
    pd.testing.assert_frame_equal(whole.metrics, chunked.metrics)
    single = simulate_signals(close[[7]], entries[[7]], exits[[7]], fees=0.003, slippage=0.004)
    np.testing.assert_allclose(single.equity[7], whole.equity[7], rtol=0, atol=0)


def test_event_lists_match_dense_signals() -> None:
    rng = np.random.default_rng(11)
    entries = rng.random((20, 50)) < 0.2
    exits = rng.random((20, 50)) < 0.2
    col, bar = np.nonzero(entries)
    xcol, xbar = np.nonzero(exits)
    # repeat some events: duplicates must collapse like a dense array's
    lists = events_from_lists(
        np.r_[col, xcol, col[:10]],
        np.r_[bar, xbar, bar[:10]],
        np.r_[np.ones(len(col), bool), np.zeros(len(xcol), bool), np.ones(10, bool)],
        50,
    )
    for got, want in zip(lists, events_from_dense(entries, exits), strict=True):
        np.testing.assert_array_equal(got, want)


def test_no_signals_is_flat_at_initial_cash() -> None:
    close, entries, exits = frames([1, 2, 3.0], [0, 0, 0], [0, 0, 0])
    res = simulate_signals(close, entries, exits, init_cash=50.0)
    assert res.equity["m"].tolist() == [50.0, 50.0, 50.0]
    assert res.trades.empty and res.metrics.loc["m", "num_trades"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fees": 1.5}, "fees must be a fraction"), ({"slippage": -0.1}, "slippage must be a fraction"),
     ({"init_cash": 0.0}, "init_cash must be")],
)  # fmt: skip
def test_bad_costs_are_named(kwargs: dict, message: str) -> None:
    close, entries, exits = frames([1, 2.0], [1, 0], [0, 1])
    with pytest.raises(ValueError, match=message):
        simulate_signals(close, entries, exits, **kwargs)


def test_bad_prices_and_shapes_are_named() -> None:
    close, entries, exits = frames([1, 0.0], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="close must be finite and > 0"):
        simulate_signals(close, entries, exits)
    close, entries, exits = frames([1, 2.0], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="exits has shape"):
        simulate_signals(close, entries, exits.iloc[:1])


def test_pure_backtest_modules_do_not_import_dagster() -> None:
    code = (
        "import sys\n"
        "import kaizen_pipeline.backtest.engine, kaizen_pipeline.backtest.monte_carlo, "
        "kaizen_pipeline.backtest.stress, kaizen_pipeline.backtest.sensitivity, "
        "kaizen_pipeline.backtest.walk_forward, kaizen_pipeline.backtest.charts, kaizen_pipeline.backtest.load\n"
        "print('dagster' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Parity with vectorbt's Portfolio.from_signals (optional extra: pip install -e ".[parity]")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.engine import CostModel, simulate_signals
from kaizen_pipeline.backtest.monte_carlo import (
    TimingInputs,
    entry_timing_runs,
    events_to_dense,
    jittered_events,
)

N_CASES = 60


def random_case(seed: int) -> dict[str, Any]:
    """A random walk (stock-like or a prediction-market price), random signals, costs on or off."""
    rng = np.random.default_rng(seed)
    n_bars = int(rng.integers(1, 400))
    n_cols = int(rng.integers(1, 6))
    steps = rng.normal(0, rng.uniform(0.005, 0.08), (n_bars, n_cols))
    if seed % 2:
        close = np.exp(np.cumsum(steps, axis=0)) * rng.uniform(0.5, 200)
    else:
        close = np.clip(1 / (1 + np.exp(-(rng.normal(0, 1.5) + np.cumsum(steps, axis=0)))), 0.001, 0.999)
    p_entry, p_exit = rng.uniform(0.0, 0.4, 2)
    return {
        "close": pd.DataFrame(close),
        "entries": pd.DataFrame(rng.random((n_bars, n_cols)) < p_entry),
        "exits": pd.DataFrame(rng.random((n_bars, n_cols)) < p_exit),
        "fees": float(rng.choice([0.0, 0.001, 0.02])) if seed % 3 else 0.0,
        "slippage": float(rng.choice([0.0, 0.005, 0.03])) if seed % 5 else 0.0,
        "init_cash": float(rng.choice([100.0, 1.0, 12345.0])),
    }


@pytest.mark.slow
def test_equity_and_trades_match_vectorbt(vbt: Any) -> None:
    with_costs = without_costs = 0
    for seed in range(N_CASES):
        case = random_case(seed)
        ours = simulate_signals(**case)
        pf = vbt.Portfolio.from_signals(**case)
        expected = pf.value().to_numpy()
        np.testing.assert_allclose(
            ours.equity.to_numpy(), expected, rtol=1e-9, atol=0, err_msg=f"case {seed}"
        )
        records = pf.trades.records
        assert len(records) == len(ours.trades), f"case {seed}: trade count"
        np.testing.assert_array_equal(ours.trades["entry_idx"], records["entry_idx"])
        np.testing.assert_array_equal(ours.trades["exit_idx"], records["exit_idx"])
        np.testing.assert_allclose(
            ours.trades["pnl"], records["pnl"], rtol=1e-9, atol=1e-9 * case["init_cash"]
        )
        np.testing.assert_allclose(ours.trades["size"], records["size"], rtol=1e-9)
        if case["fees"] or case["slippage"]:
            with_costs += 1
        else:
            without_costs += 1
    assert with_costs >= 10 and without_costs >= 10  # both regimes covered


def test_monte_carlo_runs_match_vectorbt_on_the_same_jittered_signals(vbt: Any) -> None:
    rng = np.random.default_rng(8)
    n_cols, n_bars, runs = 4, 200, 6
    close = np.clip(1 / (1 + np.exp(-np.cumsum(rng.normal(0, 0.08, (n_cols, n_bars)), axis=1))), 0.001, 0.999)
    entries = rng.random((n_cols, n_bars)) < 0.05
    fixed = rng.random((n_cols, n_bars)) < 0.02
    costs = CostModel(0.002, 0.01)
    ours = entry_timing_runs(
        TimingInputs(close, entries, fixed, 8), runs=runs, shift_bars=3, seed=1, costs=costs, init_cash=100.0,
        shift_mode="symmetric",
    )  # fmt: skip
    ec, eb = np.nonzero(entries)
    fc, fb = np.nonzero(fixed)
    col, bar, is_entry = jittered_events(
        ec, eb, fc, fb, np.arange(runs), n_cols=n_cols, n_bars=n_bars, shift_bars=3, holding_bars=8, seed=1,
        shift_mode="symmetric",
    )  # fmt: skip
    ent, ex = events_to_dense(col, bar, is_entry, runs * n_cols, n_bars)
    pf = vbt.Portfolio.from_signals(
        np.tile(close.T, (1, runs)), ent.T, ex.T, fees=0.002, slippage=0.01, init_cash=100.0
    )
    book = pf.value().to_numpy().reshape(n_bars, runs, n_cols).mean(axis=2)
    np.testing.assert_allclose(ours["total_return"], book[-1] / 100 - 1, rtol=1e-9, atol=1e-12)

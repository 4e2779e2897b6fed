"""Book building, Monte Carlo, stress, sensitivity and walk-forward: properties a user relies on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.engine import CostModel, simulate_signals
from kaizen_pipeline.backtest.monte_carlo import (
    MonteCarloConfig,
    TimingInputs,
    entry_timing_runs,
    events_to_dense,
    jittered_events,
    monte_carlo_study,
    summarize_runs,
    trade_bootstrap_runs,
)
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.backtest.sensitivity import SensitivityConfig, sensitivity_table
from kaizen_pipeline.backtest.stress import StressConfig, scale_volatility, stress_scenarios
from kaizen_pipeline.backtest.walk_forward import WalkForwardConfig, walk_forward, window_starts
from kaizen_pipeline.research.signals import SignalThresholds

CONFIG = BookConfig(fees=0.002, slippage=0.005, holding_bars=16)
THRESHOLDS = SignalThresholds(rvr=2.0, roc=0.05, hype=50.0)


@pytest.fixture
def features(make_features: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    return make_features(n_markets=6, n_bars=960)


@pytest.fixture
def base(features: pd.DataFrame):  # noqa: ANN201
    book = build_book(features, rule_signals(features, THRESHOLDS, 15), CONFIG)
    assert book.n_cols > 0 and book.entries.sum() > 10
    return run_book(book, CONFIG)


# --- book -----------------------------------------------------------------------------------


def test_book_fills_next_bar_trades_no_complement_and_exits() -> None:
    index = pd.date_range("2026-01-01", periods=6, freq="15min")
    features = pd.DataFrame(
        {"market_id": "m", "bucket_ts": index, "yes_price": [0.4, 0.5, 0.6, 0.5, 0.3, 0.2]}
    )
    signals = pd.DataFrame(
        {"market_id": ["m", "m", "m"], "bucket_ts": index[[0, 2, 5]], "direction": ["YES", "NO", "YES"]}
    )
    book = build_book(features, signals, replace(CONFIG, holding_bars=3))
    assert list(book.columns) == [("m", "NO"), ("m", "YES")]
    yes, no = book.columns.get_loc(("m", "YES")), book.columns.get_loc(("m", "NO"))
    # the signal at bar 0 fills at bar 1; the one on the last bar (5) never fills
    assert np.flatnonzero(book.entries[yes]).tolist() == [1]
    assert np.flatnonzero(book.entries[no]).tolist() == [3]
    assert book.close[no].tolist() == pytest.approx([0.6, 0.5, 0.4, 0.5, 0.7, 0.8])
    exits = book.exits(holding_bars=3, exit_on_opposite_signal=True)
    assert np.flatnonzero(exits[yes]).tolist() == [3, 4]  # the NO signal's fill, then the time exit
    assert np.flatnonzero(book.exits(3, False)[yes]).tolist() == [4]


def test_book_without_signals_is_empty_and_runs_flat(features: pd.DataFrame) -> None:
    book = build_book(features, pd.DataFrame(columns=["market_id", "bucket_ts", "direction"]), CONFIG)
    run = run_book(book, CONFIG)
    assert book.n_cols == 0 and book.n_bars == 960
    assert run.book_metrics["total_return"] == 0 and run.book_metrics["num_trades"] == 0


def test_bad_inputs_name_the_field(features: pd.DataFrame) -> None:
    bad = features.copy()
    bad.loc[5, "yes_price"] = 1.7
    with pytest.raises(ValueError, match=r"yes_price must be in \[0, 1\]"):
        build_book(
            bad,
            pd.DataFrame({"market_id": ["m0"], "bucket_ts": [bad.bucket_ts[0]], "direction": ["YES"]}),
            CONFIG,
        )
    signals = pd.DataFrame(
        {"market_id": ["m0"], "bucket_ts": [features.bucket_ts[0]], "direction": ["MAYBE"]}
    )
    with pytest.raises(ValueError, match="direction must be YES or NO"):
        build_book(features, signals, CONFIG)


def test_book_run_equals_the_engine_on_the_same_frames(base) -> None:  # noqa: ANN001
    book = base.book
    exits = book.exits(CONFIG.holding_bars, CONFIG.exit_on_opposite_signal)
    res = simulate_signals(
        pd.DataFrame(book.close.T), pd.DataFrame(book.entries.T), pd.DataFrame(exits.T),
        fees=CONFIG.fees, slippage=CONFIG.slippage, init_cash=CONFIG.init_cash,
    )  # fmt: skip
    np.testing.assert_allclose(base.book_equity, res.equity.mean(axis=1).to_numpy(), rtol=1e-12)


# --- Monte Carlo ----------------------------------------------------------------------------


def test_monte_carlo_without_shift_reproduces_the_backtest(base) -> None:  # noqa: ANN001
    result = monte_carlo_study(base, CONFIG, MonteCarloConfig(runs=5, shift_bars=0))
    np.testing.assert_allclose(result.timing["total_return"], base.book_metrics["total_return"], rtol=1e-12)
    np.testing.assert_allclose(result.timing["max_drawdown"], base.book_metrics["max_drawdown"], rtol=1e-12)
    row = result.summary.set_index("study").loc["entry_timing"]
    assert row["actual_percentile"] == 100.0


def test_monte_carlo_runs_are_seeded_and_independent_of_chunking(base) -> None:  # noqa: ANN001
    book = base.book
    inputs = TimingInputs(book.close, book.entries, book.opposite_exits, CONFIG.holding_bars)
    kwargs = {"runs": 12, "shift_bars": 4, "seed": 9, "costs": CONFIG.costs, "init_cash": 100.0}
    one_chunk = entry_timing_runs(inputs, **kwargs)
    small_chunks = entry_timing_runs(inputs, **kwargs, chunk_cells=book.n_cols * book.n_bars * 5)
    pd.testing.assert_frame_equal(one_chunk, small_chunks)
    assert one_chunk["total_return"].nunique() > 1  # the runs differ
    other_seed = entry_timing_runs(inputs, **(kwargs | {"seed": 10}))
    assert not np.allclose(one_chunk["total_return"], other_seed["total_return"])


def test_delayed_entries_never_precede_their_signal() -> None:
    col, bar, is_entry = jittered_events(
        np.array([0, 0]), np.array([10, 50]), np.array([], int), np.array([], int), np.arange(200),
        n_cols=1, n_bars=100, shift_bars=3, holding_bars=5, seed=0,
    )  # fmt: skip
    entries, exits = events_to_dense(col, bar, is_entry, 200, 100)
    entry_bars = np.nonzero(entries)[1]
    assert set(entry_bars) == {10, 11, 12, 13, 50, 51, 52, 53}
    assert set(np.nonzero(exits)[1]) == {b + 5 for b in entry_bars}  # time exits follow the shifted entry


def test_bootstrap_of_identical_trades_is_deterministic() -> None:
    runs = trade_bootstrap_runs(np.full(10, 0.02), n_columns=4, runs=20, seed=1)
    assert runs["total_return"].tolist() == pytest.approx([1.005**10 - 1] * 20)
    assert (runs["max_drawdown"] == 0).all()


def test_summary_var_cvar_and_loss_probability() -> None:
    runs = pd.DataFrame({"total_return": np.arange(-10, 10) / 100.0, "max_drawdown": np.linspace(0, 0.2, 20)})
    s = summarize_runs(runs, actual_return=0.0, actual_drawdown=0.05, confidence=0.9)
    q10 = np.quantile(runs["total_return"], 0.1)  # -0.081
    assert s["var"] == pytest.approx(-q10)
    assert s["cvar"] == pytest.approx(-np.mean([-0.10, -0.09]))  # the runs at or below the 10 % quantile
    assert s["prob_loss"] == 0.5 and s["actual_percentile"] == pytest.approx(55.0)
    assert s["return_p50"] == pytest.approx(-0.005)


# --- stress ---------------------------------------------------------------------------------


def test_stress_scenarios_hurt_where_they_must(base) -> None:  # noqa: ANN001
    table, runs = stress_scenarios(base.book, CONFIG, StressConfig(), base)
    by = table.set_index("scenario")
    assert list(by.index) == [
        "baseline",
        "liquidity_crunch",
        "volatility_spike",
        "sudden_resolution",
        "volume_collapse",
    ]
    assert by.loc["baseline", "total_return"] == pytest.approx(base.book_metrics["total_return"])
    assert by.loc["baseline", "return_change"] == 0
    assert by.loc["liquidity_crunch", "total_return"] < by.loc["baseline", "total_return"]
    assert by.loc["sudden_resolution", "total_return"] < by.loc["baseline", "total_return"]
    assert by.loc["sudden_resolution", "max_drawdown"] > by.loc["baseline", "max_drawdown"]
    # same trades under a liquidity crunch, only dearer
    assert by.loc["liquidity_crunch", "num_trades"] == by.loc["baseline", "num_trades"]


def test_volatility_scaling_multiplies_log_odds_moves() -> None:
    rng = np.random.default_rng(2)
    close = 1 / (1 + np.exp(-np.cumsum(rng.normal(0, 0.02, (3, 200)), axis=1)))
    scaled = scale_volatility(close, 3.0, 1e-9)
    logit = np.log(close / (1 - close))
    logit_scaled = np.log(scaled / (1 - scaled))
    np.testing.assert_allclose(
        np.diff(logit_scaled, axis=1), 3 * np.diff(logit, axis=1), rtol=1e-6, atol=1e-9
    )
    assert ((scaled > 0) & (scaled < 1)).all()


# --- sensitivity ----------------------------------------------------------------------------


def test_sensitivity_moves_one_knob_at_a_time(features: pd.DataFrame) -> None:
    table = sensitivity_table(features, CONFIG, THRESHOLDS, SensitivityConfig(), 15)
    assert len(table) == 1 + 3 * 2 + 2 * 3
    base = table.iloc[0]
    assert base["parameter"] == "baseline" and base["total_return_change"] == 0
    fees = table[table["parameter"] == "fees"].set_index("multiplier")
    assert fees["value"].tolist() == pytest.approx([0.001, 0.004, 0.008])
    # dearer fills, same signals: the return falls monotonically with fees and slippage
    for name in ("fees", "slippage"):
        rows = table[table["parameter"] == name].sort_values("multiplier")
        assert rows["total_return"].is_monotonic_decreasing
        assert (rows["num_trades"] == base["num_trades"]).all()
    hype = table[table["parameter"] == "hype_threshold"].set_index("multiplier")["value"]
    assert hype.to_dict() == pytest.approx({0.8: 40.0, 1.2: 60.0})


# --- walk-forward ---------------------------------------------------------------------------


def test_walk_forward_windows_roll_and_pick_the_best_train_triple(features: pd.DataFrame) -> None:
    wf = WalkForwardConfig(
        train_bars=384, test_bars=192, rvr_grid=(1.5, 2.5), roc_grid=(0.03, 0.08), hype_grid=(40.0,)
    )
    result = walk_forward(features, CONFIG, wf, THRESHOLDS, 15)
    windows = result.windows
    assert len(windows) == len(window_starts(960, 384, 192)) == 3
    # test windows follow their train window and tile the bars after the first train window
    assert (windows["test_start"] > windows["train_end"]).all()
    assert (
        windows["test_start"].iloc[1:].to_numpy()
        == (windows["test_end"].iloc[:-1] + pd.Timedelta("15min")).to_numpy()
    ).all()
    assert len(result.oos_equity) == 3 * 192
    # the chosen triple has the best in-sample Sharpe of the grid on its train window
    first = windows.iloc[0]
    grid_prices_index = pd.DatetimeIndex(sorted(features["bucket_ts"].unique()))
    lo, hi = 0, grid_prices_index.get_loc(first["train_end"]) + 1
    scores = {}
    for th in wf.grid():
        book = build_book(features, rule_signals(features, th, 15), CONFIG).slice(lo, hi)
        m = run_book(book, CONFIG).book_metrics
        scores[th] = m["sharpe"] if m["num_trades"] else -np.inf
    chosen = SignalThresholds(first["rvr_threshold"], first["roc_threshold"], first["hype_threshold"])
    assert scores[chosen] == max(scores.values())
    assert first["is_sharpe"] == pytest.approx(scores[chosen])
    s = result.summary
    assert s["windows"] == 3
    assert s["sharpe_degradation"] == pytest.approx(s["mean_is_sharpe"] - s["mean_oos_sharpe"])
    assert s["oos_total_return"] == pytest.approx(result.oos_equity.iloc[-1] / 100 - 1)


def test_walk_forward_needs_one_full_window(features: pd.DataFrame) -> None:
    result = walk_forward(features, CONFIG, WalkForwardConfig(train_bars=900, test_bars=192), THRESHOLDS, 15)
    assert result.windows.empty and result.summary["windows"] == 0


def test_costs_outside_range_are_rejected() -> None:
    with pytest.raises(ValueError, match="fees must be a fraction"):
        CostModel(fees=1.0)

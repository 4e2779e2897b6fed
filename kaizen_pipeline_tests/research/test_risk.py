"""Risk state: daily/weekly loss limits reset with their period; the circuit breaker latches until reset."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.engine import unit_and_cash_flows
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.research.risk import (
    STATE_BREAKER,
    STATE_DAILY,
    STATE_OK,
    STATE_WEEKLY,
    PaperBookConfig,
    RiskLimits,
    RiskMonitor,
    run_risk_gate,
)
from kaizen_pipeline.research.signals import signal_rule

MON = datetime(2026, 3, 2)  # a Monday


def at(day: int, hour: int = 0) -> datetime:
    return MON.replace(day=MON.day + day, hour=hour)


def test_daily_limit_latches_for_the_day_and_resets_next_day() -> None:
    mon = RiskMonitor(RiskLimits())
    mon.observe(at(0, 0), 1.0)
    mon.observe(at(0, 10), 0.96)
    assert mon.status()[0] == STATE_OK and mon.loss("daily") == pytest.approx(0.04)
    mon.observe(at(0, 11), 0.95)
    state, reason = mon.status()
    assert state == STATE_DAILY and "daily loss 5.0%" in reason
    mon.observe(at(0, 12), 0.97)  # recovering inside the day does not lift the halt
    assert mon.status()[0] == STATE_DAILY
    mon.observe(at(1, 0), 0.97)
    assert mon.status()[0] == STATE_OK and mon.loss("daily") == 0.0


def test_weekly_limit_from_losses_below_the_daily_one() -> None:
    mon = RiskMonitor(RiskLimits())
    equity = 1.0
    for day in range(3):
        equity *= 0.96  # 4 % a day: never a daily halt
        mon.observe(at(day, 12), equity)
    assert mon.loss("weekly") == pytest.approx(1 - 0.96**3)
    assert mon.status()[0] == STATE_WEEKLY
    mon.observe(at(7, 0), equity)  # next Monday
    assert mon.status()[0] == STATE_OK


def test_circuit_breaker_latches_across_periods_until_reset() -> None:
    mon = RiskMonitor(RiskLimits())
    mon.observe(at(0, 1), 1.10)
    mon.observe(at(1, 1), 0.93)  # drawdown 1 - 0.93 / 1.10 = 15.5 %
    state, reason = mon.status()
    assert state == STATE_BREAKER and "15.5%" in reason and "risk_reset_at" in reason
    mon.observe(at(10, 1), 1.0)
    assert mon.status()[0] == STATE_BREAKER
    mon.reset(at(10, 2))
    assert mon.status() == (STATE_OK, "") and mon.peak == 1.0


def _losing_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One market: a YES signal at bucket 0 that loses 80 %, another at bucket 6."""
    times = pd.date_range("2026-03-02", periods=10, freq="15min")
    prices = pd.DataFrame(
        {
            "market_id": "m1",
            "bucket_ts": times,
            "yes_price": [0.5, 0.5, 0.3, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    features = prices.assign(rvr=[3.0, 1, 1, 1, 1, 1, 3.0, 1, 1, 1], roc=[0.2, 0, 0, 0, 0, 0, 0.5, 0, 0, 0])
    features["hype_index"] = 90.0
    candidates = signal_rule(features, 2.0, 0.1, 70)
    return candidates, prices


def _equity_after_loss(book: PaperBookConfig) -> float:
    """1 + P&L of the stake bought at 0.5 and sold at 0.1, after fees and slippage."""
    size = book.stake / (1 + book.fees) / (0.5 * (1 + book.slippage))
    return 1 + size * 0.1 * (1 - book.slippage) * (1 - book.fees) - book.stake


def test_gate_blocks_signals_while_the_breaker_is_tripped() -> None:
    candidates, prices = _losing_world()
    book = PaperBookConfig(stake=0.5, hold_buckets=2)
    accepted, blocked, timeline = run_risk_gate(candidates, prices, RiskLimits(), book)
    # filled at bucket 1 (0.5), closed at bucket 3 (0.1), booked at bucket 3 with the engine's
    # costs: slippage on both fills, fees on both traded values
    tl = timeline.set_index("bucket_ts")
    assert tl["equity"].iloc[2] == 1.0 and tl["equity"].iloc[3] == pytest.approx(_equity_after_loss(book))
    assert tl["state"].iloc[3] == STATE_BREAKER
    assert accepted["bucket_ts"].tolist() == [candidates["bucket_ts"].iloc[0]]
    assert len(blocked) == 1 and "circuit breaker" in blocked.loc[0, "blocked_reason"]
    assert tl["signals_blocked"].sum() == 1


def test_reset_reopens_the_book() -> None:
    candidates, prices = _losing_world()
    reset_at = prices["bucket_ts"].iloc[5]
    accepted, blocked, timeline = run_risk_gate(
        candidates, prices, RiskLimits(), PaperBookConfig(stake=0.5, hold_buckets=2), reset_at=reset_at
    )
    assert len(accepted) == 2 and blocked.empty
    assert timeline.set_index("bucket_ts").loc[reset_at, "peak_equity"] == pytest.approx(
        _equity_after_loss(PaperBookConfig(stake=0.5))
    )


def test_paper_book_equity_equals_the_engines_on_the_same_signals() -> None:
    """One trade simulator: with nothing blocked, the gate's equity is the backtest engine's book."""
    times = pd.date_range("2026-03-02", periods=40, freq="15min")
    rng = np.random.default_rng(3)
    prices = pd.concat(
        [
            pd.DataFrame({"market_id": m, "bucket_ts": times, "yes_price": np.clip(p, 0.05, 0.95)})
            for m, p in (("m1", 0.5 + np.cumsum(rng.normal(0, 0.03, 40))), ("m2", np.linspace(0.2, 0.6, 40)))
        ],
        ignore_index=True,
    )
    # repeated YES signals (no stacking), an opposite NO signal (exit) and a signal on the last bar
    candidates = pd.DataFrame(
        {
            "market_id": ["m1", "m1", "m1", "m1", "m2", "m2", "m2"],
            "bucket_ts": [times[i] for i in (2, 3, 4, 9, 5, 20, 39)],
            "direction": ["YES", "YES", "YES", "NO", "YES", "NO", "YES"],
        }
    )
    book = PaperBookConfig(stake=0.05, hold_buckets=8)
    never = RiskLimits(daily=0.99, weekly=0.99, monthly=0.99, circuit_breaker=0.99)
    accepted, blocked, timeline = run_risk_gate(candidates, prices, never, book)
    assert blocked.empty and len(accepted) == len(candidates)

    config = BookConfig(fees=0.002, slippage=0.005, init_cash=0.05, holding_bars=8)
    run = run_book(build_book(prices, candidates, config), config)
    # the engine's book: every market side with its own stake; P&L after costs realised at the exit
    assert len(run.trades) == 4 and run.trades.closed.all()  # stacked and last-bar signals add nothing
    engine_equity = 1 + (run.equity - config.init_cash).sum(axis=0)
    units, _ = unit_and_cash_flows(run.trades, run.book.n_cols, run.book.n_bars, config.init_cash)
    flat = ~(units > 0).any(axis=0)
    assert flat.sum() > 5
    np.testing.assert_allclose(timeline["equity"].to_numpy()[flat], engine_equity[flat])
    assert timeline["equity"].iloc[-1] == pytest.approx(engine_equity[-1])
    # costs are paid: the same trades without fees and slippage end higher
    free = run_book(run.book, replace(config, fees=0.0, slippage=0.0))
    assert (free.equity[:, -1] - 0.05).sum() > (run.equity[:, -1] - 0.05).sum()


def test_a_daily_halt_blocks_until_the_day_ends_and_the_book_is_resimulated() -> None:
    """Signals blocked by a daily loss trade nothing; the next day's signals are accepted and traded."""
    times = pd.date_range("2026-03-02 22:00", periods=16, freq="15min")  # 22:00 .. 01:45 next day
    yes = [0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.4, 0.5, 0.6, 0.6]
    prices = pd.DataFrame({"market_id": "m1", "bucket_ts": times, "yes_price": yes})
    candidates = pd.DataFrame({"market_id": "m1", "bucket_ts": times[[0, 4, 6, 9]], "direction": "YES"})
    limits = RiskLimits(daily=0.05, weekly=0.99, monthly=0.99, circuit_breaker=0.99)
    book = PaperBookConfig(stake=0.5, hold_buckets=2)
    accepted, blocked, timeline = run_risk_gate(candidates, prices, limits, book)
    # the first trade loses at 22:45; 23:00 and 23:30 are blocked; 00:15 (a new day) trades again
    assert accepted["bucket_ts"].tolist() == [times[0], times[9]]
    assert blocked["bucket_ts"].tolist() == [times[4], times[6]]
    assert blocked["blocked_reason"].str.contains("daily loss").all()
    tl = timeline.set_index("bucket_ts")
    assert (tl.loc[times[3] : times[7], "state"] == STATE_DAILY).all() and tl.loc[times[8], "state"] == "ok"
    # the blocked signals traded nothing: equity moves only with the accepted trades
    config = book.book_config()
    run = run_book(build_book(prices, accepted, config), config)
    assert len(run.trades) == 2
    expected = 1 + run.trades.pnl[run.trades.closed].sum()
    assert tl["equity"].iloc[-1] == pytest.approx(expected)

"""Risk state: daily/weekly loss limits reset with their period; the circuit breaker latches until reset."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

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


def test_gate_blocks_signals_while_the_breaker_is_tripped() -> None:
    candidates, prices = _losing_world()
    book = PaperBookConfig(stake=0.5, hold_buckets=2)
    accepted, blocked, timeline = run_risk_gate(candidates, prices, RiskLimits(), book)
    # filled at bucket 1 (0.5), closed at bucket 3 (0.1): 0.5 x (0.1 / 0.5 - 1) = -0.4 booked at bucket 3
    tl = timeline.set_index("bucket_ts")
    assert tl["equity"].iloc[2] == 1.0 and tl["equity"].iloc[3] == pytest.approx(0.6)
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
    assert timeline.set_index("bucket_ts").loc[reset_at, "peak_equity"] == pytest.approx(0.6)

"""Risk state: realised daily/weekly/monthly loss limits and the drawdown circuit breaker.

Pure module (no Dagster).

Realised P&L comes from the paper book of the signals (until a live account is connected),
simulated by the backtest engine (one trade simulator): every (market, direction) trades
``stake`` of starting equity (= signals.max_position_pct) with the engine's fills at the next
bar, fees and slippage, no stacking while a position is open, the time exit
``hold_buckets`` after each entry (research.signal_hold_buckets) and the opposite-signal exit.
A trade's P&L after costs is booked at its exit bar; equity starts at 1. The token is the YES
side for YES signals and the NO side (1 - YES price) for NO signals.

The state machine, evaluated at every bucket t before that bucket's signals are decided:
- daily / weekly / monthly loss = (equity at the start of the UTC day / ISO week / month
  - equity_t) / equity at that start. At or above ``risk.daily`` / ``weekly`` / ``monthly`` the
  book is halted until the period ends (the limit resets with the next day / week / month).
- drawdown = 1 - equity_t / peak equity. At or above ``risk.circuit_breaker`` the circuit
  breaker trips and stays tripped until a reset (``research.risk_reset_at``), which re-bases the
  peak and the period starts at the equity of that moment.
While any limit is hit, new signals are blocked (not emitted) and the reason is recorded. Only
realised P&L up to t decides the state at t, so risk gating keeps signals free of look-ahead.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.run import BookRun, run_book
from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, bars_per_year, fill_bars

STATE_OK = "ok"
STATE_DAILY = "halted_daily_loss"
STATE_WEEKLY = "halted_weekly_loss"
STATE_MONTHLY = "halted_monthly_loss"
STATE_BREAKER = "circuit_breaker"

TIMELINE_COLUMNS = [
    "bucket_ts",
    "equity",
    "peak_equity",
    "drawdown",
    "daily_loss",
    "weekly_loss",
    "monthly_loss",
    "state",
    "reason",
    "signals_accepted",
    "signals_blocked",
]


@dataclass(frozen=True)
class RiskLimits:
    """Loss limits as fractions of equity (config section ``risk``)."""

    daily: float = 0.05
    weekly: float = 0.10
    monthly: float = 0.20
    circuit_breaker: float = 0.15


@dataclass(frozen=True)
class PaperBookConfig:
    """Stake per market side (fraction of starting equity), holding time, bucket width and the engine's costs."""

    stake: float = 0.05
    hold_buckets: int = 16
    bucket_minutes: int = DEFAULT_BUCKET_MINUTES
    fees: float = BookConfig.fees
    slippage: float = BookConfig.slippage
    exit_on_opposite_signal: bool = BookConfig.exit_on_opposite_signal
    price_floor: float = BookConfig.price_floor

    def book_config(self) -> BookConfig:
        """The engine's knobs for this paper book: each market side starts with ``stake`` of cash."""
        return BookConfig(
            fees=self.fees,
            slippage=self.slippage,
            init_cash=self.stake,
            holding_bars=self.hold_buckets,
            exit_on_opposite_signal=self.exit_on_opposite_signal,
            bars_per_year=bars_per_year(self.bucket_minutes),
            price_floor=self.price_floor,
        )


def _period_keys(ts: datetime) -> tuple[object, object, object]:
    iso = ts.isocalendar()
    return ts.date(), (iso[0], iso[1]), (ts.year, ts.month)


@dataclass
class RiskMonitor:
    """Tracks equity, period starts and latched limits; ``status()`` says whether new signals may open."""

    limits: RiskLimits
    equity: float = 1.0
    peak: float = 1.0
    anchors: dict[str, float] = field(default_factory=dict)
    keys: tuple[object, object, object] | None = None
    latched: dict[str, object] = field(default_factory=dict)
    breaker_since: datetime | None = None
    breaker_drawdown: float = 0.0

    def _roll_periods(self, ts: datetime) -> None:
        keys = _period_keys(ts)
        names = ("daily", "weekly", "monthly")
        for i, name in enumerate(names):
            if self.keys is None or self.keys[i] != keys[i]:
                # The period starts at the equity carried over from the previous one.
                self.anchors[name] = self.equity
                self.latched.pop(name, None)
        self.keys = keys

    def loss(self, period: str) -> float:
        anchor = self.anchors.get(period, self.equity)
        return max(0.0, (anchor - self.equity) / anchor) if anchor > 0 else 0.0

    @property
    def drawdown(self) -> float:
        return max(0.0, 1.0 - self.equity / self.peak) if self.peak > 0 else 0.0

    def observe(self, ts: datetime, equity: float) -> None:
        """Move to bucket ``ts`` with realised equity ``equity``; trip limits that are hit."""
        self._roll_periods(ts)
        self.equity = float(equity)
        self.peak = max(self.peak, self.equity)
        for name in ("daily", "weekly", "monthly"):
            if self.loss(name) >= getattr(self.limits, name) and name not in self.latched:
                self.latched[name] = ts
        if self.breaker_since is None and self.drawdown >= self.limits.circuit_breaker:
            self.breaker_since = ts
            self.breaker_drawdown = self.drawdown

    def reset(self, ts: datetime) -> None:
        """Clear every tripped limit; the peak and the period starts become today's equity."""
        self.peak = self.equity
        self.anchors = {name: self.equity for name in ("daily", "weekly", "monthly")}
        self.keys = _period_keys(ts)
        self.latched.clear()
        self.breaker_since = None
        self.breaker_drawdown = 0.0

    def status(self) -> tuple[str, str]:
        """(state, reason); the most severe limit wins."""
        if self.breaker_since is not None:
            return (
                STATE_BREAKER,
                f"drawdown {self.breaker_drawdown:.1%} >= circuit breaker {self.limits.circuit_breaker:.0%} "
                f"since {self.breaker_since:%Y-%m-%d %H:%M} UTC; set research.risk_reset_at to reset",
            )
        for name, state in (("monthly", STATE_MONTHLY), ("weekly", STATE_WEEKLY), ("daily", STATE_DAILY)):
            if name in self.latched:
                limit = getattr(self.limits, name)
                return (
                    state,
                    f"realised {name} loss {self.loss(name):.1%} hit the {limit:.0%} limit at "
                    f"{self.latched[name]:%Y-%m-%d %H:%M} UTC; resets when the period ends",
                )
        return STATE_OK, ""


def paper_run(grid: pd.DataFrame, signals: pd.DataFrame, book: PaperBookConfig) -> BookRun:
    """The engine's run of ``signals`` on a price grid (:func:`price_grid`), one column per market side."""
    config = book.book_config()
    return run_book(build_book(pd.DataFrame(), signals, config, grid=grid), config)


def realised_equity(run: BookRun) -> np.ndarray:
    """Paper equity per bar: 1 + P&L after costs of the trades closed at or before the bar."""
    t = run.trades
    closed = t.closed
    pnl = np.bincount(t.exit_idx[closed], weights=t.pnl[closed], minlength=run.book.n_bars)
    return 1.0 + np.cumsum(pnl)


def _latch_end(monitor: RiskMonitor, times: pd.DatetimeIndex, i: int, reset_bar: int | None) -> int:
    """First bar at which the limits latched at bar ``i`` may clear (period roll or reset)."""
    n = len(times)
    end = i + 1
    if monitor.breaker_since is not None:
        end = n
    else:
        keys = [_period_keys(ts.to_pydatetime()) for ts in times[i:]]
        for k, name in enumerate(("daily", "weekly", "monthly")):
            if name in monitor.latched:
                roll = next((j for j, key in enumerate(keys) if key[k] != keys[0][k]), n - i)
                end = max(end, i + roll)
    if reset_bar is not None and reset_bar > i:
        end = min(end, reset_bar)
    return max(end, i + 1)


def run_risk_gate(
    candidates: pd.DataFrame,
    prices: pd.DataFrame,
    limits: RiskLimits,
    book: PaperBookConfig,
    reset_at: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Walk the buckets in time order: book realised paper P&L, update the risk state, gate signals.

    candidates: signal_rule output; prices: (market_id, bucket_ts, yes_price) on the bucket grid.
    Returns (accepted signals, blocked signals with ``blocked_reason``, the risk timeline).

    The state at bar t depends only on trades closed by t, i.e. on signals before t, so blocking
    the signals of bar t changes nothing before it: the walk re-simulates the book after each
    block and resumes at that bar (while a limit is latched every signal until it may clear is
    blocked at once, so there are as many engine runs as latch episodes, plus one).
    """
    if prices.empty:
        empty = candidates.iloc[0:0]
        return (
            empty.copy(),
            empty.assign(blocked_reason=pd.Series(dtype=str)),
            pd.DataFrame(columns=TIMELINE_COLUMNS),
        )
    grid = price_grid(prices, book.price_floor)
    times = pd.DatetimeIndex(grid.index)
    n_bars = len(times)
    cands = candidates.reset_index(drop=True).copy()
    cands["bucket_ts"] = pd.to_datetime(cands["bucket_ts"])
    # the bar each signal is decided at: its own bucket (signals off the grid are never decided)
    decide = fill_bars(times, cands["bucket_ts"].to_numpy()) - 1
    on_grid = decide < n_bars
    on_grid[on_grid] = times[decide[on_grid]] == cands.loc[on_grid, "bucket_ts"].to_numpy()
    at_bar: dict[int, list[int]] = {}
    for idx in np.flatnonzero(on_grid):
        at_bar.setdefault(int(decide[idx]), []).append(int(idx))
    reset_bar = None
    if reset_at is not None:
        reset_bar = int(np.searchsorted(times.to_numpy(), np.datetime64(pd.Timestamp(reset_at)), side="left"))

    blocked: dict[int, str] = {}
    monitor = RiskMonitor(limits)
    rows: list[dict[str, object]] = []
    i = 0
    while True:
        live = [k for k in np.flatnonzero(on_grid) if k not in blocked]
        equity = realised_equity(paper_run(grid, cands.loc[live], book))
        resume: tuple[int, RiskMonitor, int] | None = None
        while i < n_bars:
            ts = times[i]
            todo = [k for k in at_bar.get(i, []) if k not in blocked]
            # the state before bar i, to resume from if its signals get blocked
            snapshot = copy.deepcopy(monitor) if todo else monitor
            if reset_bar is not None and i == reset_bar:
                monitor.reset(ts.to_pydatetime())
            monitor.observe(ts.to_pydatetime(), equity[i])
            state, reason = monitor.status()
            if state != STATE_OK and todo:
                end = _latch_end(monitor, times, i, reset_bar)
                for j in range(i, end):
                    for k in at_bar.get(j, []):
                        blocked.setdefault(k, reason)
                resume = (i, snapshot, len(rows))
                break
            n_blocked = 0
            for k in at_bar.get(i, []):
                if k in blocked:
                    blocked[k] = reason  # the state at the signal's own bucket says why
                    n_blocked += 1
            rows.append(
                {
                    "bucket_ts": ts,
                    "equity": monitor.equity,
                    "peak_equity": monitor.peak,
                    "drawdown": monitor.drawdown,
                    "daily_loss": monitor.loss("daily"),
                    "weekly_loss": monitor.loss("weekly"),
                    "monthly_loss": monitor.loss("monthly"),
                    "state": state,
                    "reason": reason,
                    "signals_accepted": len(at_bar.get(i, [])) - n_blocked,
                    "signals_blocked": n_blocked,
                }
            )
            i += 1
        if resume is None:
            break
        # bars from the block on see a book without the blocked signals: simulate it again
        i, monitor, n_rows = resume
        del rows[n_rows:]
    timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    in_time = sorted(np.flatnonzero(on_grid), key=lambda k: (decide[k], k))
    accepted = [k for k in in_time if k not in blocked]
    acc = cands.loc[accepted]
    order = [k for k in in_time if k in blocked]
    blk = cands.loc[order].assign(blocked_reason=[blocked[k] for k in order])
    return acc.reset_index(drop=True), blk.reset_index(drop=True), timeline

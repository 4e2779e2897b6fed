"""Risk state: realised daily/weekly/monthly loss limits and the drawdown circuit breaker.

Pure module (no Dagster).

Realised P&L comes from the paper book of the signals (until a live account is connected):
each accepted signal buys ``stake`` (a fraction of starting equity, = signals.max_position_pct)
of the signalled token at the next bar's price q_fill and sells it ``hold_buckets`` later at
q_exit; the realised P&L stake x (q_exit / q_fill - 1) is booked at the exit bucket. q is the
YES price for YES signals and 1 - YES price for NO signals. Equity starts at 1.

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

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

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
    """Stake per signal (fraction of starting equity), holding time and bucket width."""

    stake: float = 0.05
    hold_buckets: int = 16
    bucket_minutes: int = 15


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


def _price_lookup(prices: pd.DataFrame) -> pd.DataFrame:
    table = prices.pivot_table(index="bucket_ts", columns="market_id", values="yes_price", aggfunc="last")
    table.index = pd.to_datetime(table.index)
    return table.sort_index()


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
    """
    if prices.empty:
        empty = candidates.iloc[0:0]
        return (
            empty.copy(),
            empty.assign(blocked_reason=pd.Series(dtype=str)),
            pd.DataFrame(columns=TIMELINE_COLUMNS),
        )
    lookup = _price_lookup(prices)
    # A complete grid, so that "next bar" and "hold_buckets later" are index offsets.
    lookup = lookup.reindex(
        pd.date_range(lookup.index.min(), lookup.index.max(), freq=f"{book.bucket_minutes}min")
    )
    times = list(lookup.index)
    cands = candidates.copy()
    cands["bucket_ts"] = pd.to_datetime(cands["bucket_ts"])
    by_ts: dict[pd.Timestamp, list[int]] = defaultdict(list)
    for idx, ts in zip(cands.index, cands["bucket_ts"], strict=True):
        by_ts[ts].append(idx)
    index_pos = {ts: i for i, ts in enumerate(times)}
    price_arr = lookup.to_numpy()
    col_pos = {m: j for j, m in enumerate(lookup.columns)}

    monitor = RiskMonitor(limits)
    closes: dict[pd.Timestamp, float] = defaultdict(float)
    accepted: list[int] = []
    blocked: dict[int, str] = {}
    rows = []
    reset_done = reset_at is None
    for ts in times:
        if not reset_done and ts >= pd.Timestamp(reset_at):
            monitor.reset(ts.to_pydatetime())
            reset_done = True
        monitor.observe(ts.to_pydatetime(), monitor.equity + closes.pop(ts, 0.0))
        state, reason = monitor.status()
        n_ok = n_blocked = 0
        for idx in by_ts.get(ts, []):
            if state != STATE_OK:
                blocked[idx] = reason
                n_blocked += 1
                continue
            accepted.append(idx)
            n_ok += 1
            row = cands.loc[idx]
            j = col_pos.get(row["market_id"])
            i_fill = index_pos[ts] + 1
            i_exit = i_fill + book.hold_buckets
            if j is None or i_exit >= len(times):
                continue  # still open at the end of the data: nothing realised yet
            p_fill, p_exit = price_arr[i_fill, j], price_arr[i_exit, j]
            if row["direction"] == "NO":
                p_fill, p_exit = 1.0 - p_fill, 1.0 - p_exit
            if np.isnan(p_fill) or np.isnan(p_exit) or p_fill <= 0:
                continue
            closes[times[i_exit]] += book.stake * (p_exit / p_fill - 1.0)
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
                "signals_accepted": n_ok,
                "signals_blocked": n_blocked,
            }
        )
    timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    acc = cands.loc[accepted]
    blk = cands.loc[list(blocked)].assign(blocked_reason=[blocked[i] for i in blocked])
    return acc.reset_index(drop=True), blk.reset_index(drop=True), timeline

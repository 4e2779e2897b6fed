"""Per-unit metrics of experiments: what each market-day or run measured, and how kaizen metrics map to them.

Pure module (pandas; no Dagster). Two kinds of unit, as in :mod:`kaizen_pipeline.flags.parameters`:

- **market** experiments randomize markets and analyse **market-days** with standard errors
  clustered by market (a market's days are not independent). The values come from the one trade
  simulator's per-market, per-day outcomes (``backtest.outcomes.market_day_outcomes``), as
  fractions of one market side's starting cash: P&L after fees and slippage, entries, hit rate of
  the trades closed that day, and the drawdown of the market's cumulative P&L since the start.
- **run** experiments randomize Dagster runs and analyse runs (one value each): success, API
  error and retry rates, duration and degradation, from ``ingestion_runs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from kaizen_pipeline.flags.parameters import UnitKind

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class UnitMetric:
    """A metric measured per analysis unit (market-day or run)."""

    name: str
    unit_kind: UnitKind
    direction: Direction
    description: str


UNIT_METRICS: dict[str, UnitMetric] = {
    m.name: m
    for m in (
        UnitMetric(
            "pnl_per_market_day", "market", "higher", "P&L after costs per market-day (fraction of stake)"
        ),
        UnitMetric("signals_per_day", "market", "higher", "entries per market-day"),
        UnitMetric("signal_hit_rate", "market", "higher", "share of the day's closed trades that made money"),
        UnitMetric("drawdown", "market", "lower", "drawdown of the market's cumulative P&L since the start"),
        UnitMetric("run_success_rate", "run", "higher", "the run's ingest steps all finished (1) or not (0)"),
        UnitMetric("api_error_rate", "run", "lower", "failed requests / requests in the run"),
        UnitMetric("api_retry_rate", "run", "lower", "retried requests / requests in the run"),
        UnitMetric("run_duration_seconds", "run", "lower", "wall time of the run's ingest steps"),
        UnitMetric("degraded_runs", "run", "lower", "the run finished with partial data (1) or not (0)"),
    )
}

# kaizen registry metric -> (unit metric, how its predicted effect converts to that metric's units)
Conversion = Literal["same", "per_market", "per_run", "sharpe_to_daily_pnl"]
TARGET_TO_UNIT_METRIC: dict[str, tuple[str, Conversion]] = {
    "backtest_sharpe": ("pnl_per_market_day", "sharpe_to_daily_pnl"),
    "backtest_max_drawdown": ("drawdown", "same"),
    "signals_per_day": ("signals_per_day", "per_market"),
    "signal_hit_rate": ("signal_hit_rate", "same"),
    "run_success_rate": ("run_success_rate", "same"),
    "api_error_rate": ("api_error_rate", "same"),
    "api_retry_rate": ("api_retry_rate", "same"),
    "run_duration_seconds": ("run_duration_seconds", "same"),
    "degraded_runs": ("degraded_runs", "per_run"),
}
DAYS_PER_YEAR = 365.0


def unit_mde(
    target_metric: str, effect: float, *, units: float, runs_per_day: float, daily_sd: float
) -> float:
    """The predicted (bias-corrected) effect on ``target_metric`` in its unit metric's units, as a magnitude.

    Book-wide totals spread over the units (``signals_per_day`` over the markets, ``degraded_runs``
    per day over the day's runs); a Sharpe change is the daily mean change it implies at the
    observed per-market-day sd (Sharpe = mean / sd x sqrt(365)).
    """
    _, conversion = TARGET_TO_UNIT_METRIC[target_metric]
    if conversion == "per_market":
        value = effect / max(units, 1.0)
    elif conversion == "per_run":
        value = effect / max(runs_per_day, 1.0)
    elif conversion == "sharpe_to_daily_pnl":
        value = effect * daily_sd / np.sqrt(DAYS_PER_YEAR)
    else:
        value = effect
    return abs(float(value))


def market_day_values(
    outcomes: pd.DataFrame,
    markets: Sequence[str],
    days: Sequence[pd.Timestamp],
    *,
    init_cash: float,
) -> pd.DataFrame:
    """Long frame (market_id, day, metric, value) over the full markets x days grid.

    ``outcomes`` are ``market_day_outcomes(run, scale=1.0)`` rows (absent market-days had no
    position and no trade: P&L 0, no entries). ``drawdown`` starts from 0 on the first day given.
    """
    grid = pd.MultiIndex.from_product(
        [list(markets), list(pd.DatetimeIndex(days))], names=["market_id", "day"]
    )
    columns = ["pnl_after_costs", "trades", "closed_trades", "hits"]
    frame = (
        outcomes.assign(day=pd.to_datetime(outcomes["day"]))
        .set_index(["market_id", "day"])[columns]
        .reindex(grid, fill_value=0)
        .astype(float)
        .reset_index()
        if not outcomes.empty
        else pd.DataFrame(0.0, index=grid, columns=columns).reset_index()
    )
    frame = frame.sort_values(["market_id", "day"])
    pnl = frame["pnl_after_costs"] / init_cash
    cumulative = pnl.groupby(frame["market_id"]).cumsum()
    peak = cumulative.groupby(frame["market_id"]).cummax().clip(lower=0.0)
    values = {
        "pnl_per_market_day": pnl,
        "signals_per_day": frame["trades"],
        "signal_hit_rate": (frame["hits"] / frame["closed_trades"]).where(frame["closed_trades"] > 0),
        "drawdown": peak - cumulative,
    }
    parts = [
        pd.DataFrame({"market_id": frame["market_id"], "day": frame["day"], "metric": name, "value": v})
        for name, v in values.items()
    ]
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"]).reset_index(drop=True)


def run_values(ingestion_runs: pd.DataFrame) -> pd.DataFrame:
    """Long frame (run_id, started_at, metric, value): one value per run and metric from ingestion_runs rows."""
    if ingestion_runs.empty:
        return pd.DataFrame(columns=["run_id", "started_at", "metric", "value"])
    runs = ingestion_runs.groupby("run_id").agg(
        started_at=("started_at", "min"),
        finished_at=("finished_at", "max"),
        failed=("status", lambda s: bool((s == "failed").any())),
        degraded=("degraded", "max"),
        api_calls=("api_calls", "sum"),
        errors=("errors", "sum"),
        retries=("retries", "sum"),
    )
    calls = runs["api_calls"].clip(lower=1)
    values = {
        "run_success_rate": (~runs["failed"]).astype(float),
        "api_error_rate": runs["errors"] / calls,
        "api_retry_rate": runs["retries"] / calls,
        "run_duration_seconds": (
            pd.to_datetime(runs["finished_at"]) - pd.to_datetime(runs["started_at"])
        ).dt.total_seconds(),
        "degraded_runs": runs["degraded"].astype(float),
    }
    parts = [
        pd.DataFrame(
            {"run_id": runs.index, "started_at": runs["started_at"].values, "metric": name, "value": v.values}
        )
        for name, v in values.items()
    ]
    return pd.concat(parts, ignore_index=True)

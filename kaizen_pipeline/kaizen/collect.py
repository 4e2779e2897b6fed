"""Kaizen metric readings from plain frames (pure: the Dagster asset extracts the frames).

Every reading describes one day (``day``): pipeline-health values cover the 24 hours ending at
``as_of``; trading-outcome values cover ``outcome_window_days`` ending at ``as_of``. A metric
whose inputs are missing or empty is not recorded and the reason is returned instead, so the
loop never invents a zero.

Scopes: ``*`` is the metric itself (what targets, checks and forecasts use); other scopes are
breakdowns (``job:<name>`` for run success, ``step:<key>`` for durations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.outcomes import hit_rate, market_day_outcomes
from kaizen_pipeline.backtest.run import run_book

ALL = "*"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"


@dataclass(frozen=True)
class Reading:
    metric: str
    value: float
    sample_size: int
    source: str
    scope: str = ALL


def metric_day(as_of: datetime) -> datetime:
    """The day a reading at ``as_of`` is filed under: the UTC day containing the window's last instant."""
    return (pd.Timestamp(as_of) - pd.Timedelta(microseconds=1)).normalize().to_pydatetime()


def pipeline_health(
    runs: pd.DataFrame,
    steps: pd.DataFrame,
    checks: pd.DataFrame,
    latest_ingest_materialization: datetime | None,
    as_of: datetime,
) -> tuple[list[Reading], dict[str, str]]:
    """Run success rate, run duration (and per step), asset-check pass rate, data freshness.

    ``runs``: run_id, job_name, status ('SUCCESS', 'FAILURE', 'CANCELED'), start, end (epoch s),
    the runs that finished in the window. ``steps``: run_id, step_key, status, start, end.
    ``checks``: run_id, check, passed. Returns readings and {metric: why it was not recorded}.
    """
    readings: list[Reading] = []
    skipped: dict[str, str] = {}
    finished = runs[runs["status"].isin([SUCCESS, FAILURE])] if not runs.empty else runs
    if finished.empty:
        skipped["run_success_rate"] = "no finished runs in the window"
        skipped["run_duration_seconds"] = "no finished runs in the window"
    else:
        ok = finished["status"] == SUCCESS
        readings.append(Reading("run_success_rate", float(ok.mean()), len(finished), "dagster"))
        for job, group in finished.groupby("job_name"):
            readings.append(
                Reading(
                    "run_success_rate",
                    float((group["status"] == SUCCESS).mean()),
                    len(group),
                    "dagster",
                    f"job:{job}",
                )
            )
        durations = (finished["end"] - finished["start"]).dropna()
        if len(durations):
            readings.append(
                Reading("run_duration_seconds", float(durations.mean()), len(durations), "dagster")
            )
    if steps is not None and not steps.empty:
        step_durations = (steps["end"] - steps["start"]).dropna()
        per_step = (
            steps.assign(duration=step_durations).dropna(subset=["duration"]).groupby("step_key")["duration"]
        )
        for key, values in per_step:
            readings.append(
                Reading("run_duration_seconds", float(values.mean()), len(values), "dagster", f"step:{key}")
            )
    if checks is None or checks.empty:
        skipped["asset_check_pass_rate"] = "no asset check evaluations in the window"
    else:
        readings.append(
            Reading(
                "asset_check_pass_rate", float(checks["passed"].astype(bool).mean()), len(checks), "dagster"
            )
        )
    if latest_ingest_materialization is None:
        skipped["data_freshness_minutes"] = "no ingest materialization before as_of"
    else:
        lag = (pd.Timestamp(as_of) - pd.Timestamp(latest_ingest_materialization)).total_seconds() / 60
        readings.append(Reading("data_freshness_minutes", max(0.0, float(lag)), 1, "dagster"))
    return readings, skipped


def ingestion_health(ingestion: pd.DataFrame | None) -> tuple[list[Reading], dict[str, str]]:
    """API retry and error rates (per API call) and degraded runs from ingestion_runs rows in the window."""
    names = ("api_retry_rate", "api_error_rate", "degraded_runs")
    if ingestion is None:
        return [], dict.fromkeys(names, "table ingestion_runs not found")
    if ingestion.empty:
        return [], dict.fromkeys(names, "no ingestion runs in the window")
    readings: list[Reading] = []
    skipped: dict[str, str] = {}
    calls = float(pd.to_numeric(ingestion["api_calls"]).sum())
    if calls > 0:
        retries = float(pd.to_numeric(ingestion["retries"]).sum())
        errors = float(pd.to_numeric(ingestion["errors"]).sum())
        readings.append(Reading("api_retry_rate", retries / calls, int(calls), "ingestion_runs"))
        readings.append(Reading("api_error_rate", errors / calls, int(calls), "ingestion_runs"))
    else:
        skipped["api_retry_rate"] = skipped["api_error_rate"] = "ingestion runs made no API calls"
    degraded = ingestion["degraded"].astype(bool) | (ingestion["status"].astype(str) == "degraded")
    readings.append(Reading("degraded_runs", float(degraded.sum()), len(ingestion), "ingestion_runs"))
    return readings, skipped


def signals_per_day(signals: pd.DataFrame | None, history_rows: int, window_days: int) -> Reading | str:
    """Signals in the window per day; a string says why it is not recorded."""
    if signals is None:
        return "table trading_signals not found"
    if history_rows == 0:
        return "trading_signals is empty (no signal history yet)"
    return Reading("signals_per_day", len(signals) / window_days, len(signals), "trading_signals")


def signal_hit_rate(
    signals: pd.DataFrame | None, features: pd.DataFrame | None, book: BookConfig, as_of: datetime
) -> Reading | str:
    """Share of the signals' closed trades that made money after costs, at the holding horizon.

    The signals are traded by the backtest engine with ``book`` (one trade simulator: next-bar
    fills, fees, slippage, no stacking, the time exit research.signal_hold_buckets after the
    entry and the opposite-signal exit) on the prices up to ``as_of``; trades still open at
    ``as_of`` are not yet realised and left out.
    """
    if signals is None:
        return "table trading_signals not found"
    if features is None:
        return "table market_features not found"
    if signals.empty:
        return "no signals in the window"
    prices = features.dropna(subset=["yes_price"]).copy()
    prices["bucket_ts"] = pd.to_datetime(prices["bucket_ts"])
    prices = prices[prices["bucket_ts"] <= pd.Timestamp(as_of)]
    run = run_book(build_book(prices, signals, book), book)
    rate, closed = hit_rate(market_day_outcomes(run))
    if closed == 0:
        return "no signal in the window has a closed trade yet"
    return Reading("signal_hit_rate", rate, closed, "trading_signals+market_features")


def backtest_readings(book: pd.DataFrame) -> tuple[list[Reading], dict[str, str]]:
    """Sharpe and max drawdown (a positive fraction) from the whole-book row of the newest backtest.

    ``book`` is the ``backtest_results`` row with ``market_id = direction = '*'`` (see store.backtest_book).
    """
    names = ("backtest_sharpe", "backtest_max_drawdown")
    if book.empty:
        return [], dict.fromkeys(names, "no backtest_results book row yet (materialize the backtest group)")
    row = book.iloc[0]
    readings: list[Reading] = []
    skipped: dict[str, str] = {}
    for metric, column in (("backtest_sharpe", "sharpe"), ("backtest_max_drawdown", "max_drawdown")):
        value = pd.to_numeric(row[column], errors="coerce")
        if not np.isfinite(value):
            skipped[metric] = f"backtest_results.{column} is not a finite number"
            continue
        readings.append(
            Reading(
                metric, abs(float(value)) if column == "max_drawdown" else float(value), 1, "backtest_results"
            )
        )
    return readings, skipped


def feedback_score(feedback: pd.DataFrame | None) -> Reading | str:
    """Mean rating of the feedback in the window."""
    if feedback is None or feedback.empty:
        return "no feedback in the window"
    ratings = pd.to_numeric(feedback["rating"], errors="coerce").dropna()
    return Reading("feedback_score", float(ratings.mean()), len(ratings), "feedback")


def window(as_of: datetime, days: float) -> tuple[datetime, datetime]:
    """[as_of - days, as_of) as naive datetimes."""
    end = pd.Timestamp(as_of).to_pydatetime()
    return end - timedelta(days=days), end

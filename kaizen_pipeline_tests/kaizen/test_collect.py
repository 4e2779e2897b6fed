"""Metric readings from run, step, check, ingestion, signal, backtest and feedback frames."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd
import pytest

from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.kaizen import collect, store
from kaizen_pipeline.warehouse import Warehouse

AS_OF = datetime(2026, 3, 10, 0, 0)


def test_metric_day_is_the_day_holding_the_window_end() -> None:
    assert collect.metric_day(datetime(2026, 3, 10, 0, 0)) == datetime(2026, 3, 9)
    assert collect.metric_day(datetime(2026, 3, 10, 15, 30)) == datetime(2026, 3, 10)


def test_pipeline_health_from_runs_steps_and_checks() -> None:
    runs = pd.DataFrame(
        [
            {"run_id": "a", "job_name": "ingest", "status": "SUCCESS", "start": 0.0, "end": 100.0},
            {"run_id": "b", "job_name": "ingest", "status": "FAILURE", "start": 0.0, "end": 50.0},
            {"run_id": "c", "job_name": "main", "status": "SUCCESS", "start": 0.0, "end": 300.0},
            {"run_id": "d", "job_name": "main", "status": "CANCELED", "start": 0.0, "end": 10.0},
        ]
    )
    steps = pd.DataFrame(
        [
            {"run_id": "a", "step_key": "prices", "status": "success", "start": 0.0, "end": 80.0},
            {"run_id": "c", "step_key": "prices", "status": "success", "start": 0.0, "end": 40.0},
        ]
    )
    checks = pd.DataFrame({"run_id": ["a"] * 4, "check": list("wxyz"), "passed": [True, True, True, False]})
    readings, skipped = collect.pipeline_health(runs, steps, checks, datetime(2026, 3, 9, 23, 30), AS_OF)
    got = {(r.metric, r.scope): r.value for r in readings}
    assert got[("run_success_rate", "*")] == pytest.approx(2 / 3)  # cancelled runs are not counted
    assert got[("run_success_rate", "job:ingest")] == 0.5
    assert got[("run_duration_seconds", "*")] == pytest.approx(150.0)
    assert got[("run_duration_seconds", "step:prices")] == pytest.approx(60.0)
    assert got[("asset_check_pass_rate", "*")] == 0.75
    assert got[("data_freshness_minutes", "*")] == 30.0
    assert skipped == {}


def test_nothing_is_invented_when_there_is_no_data() -> None:
    empty = pd.DataFrame(columns=["run_id", "job_name", "status", "start", "end"])
    readings, skipped = collect.pipeline_health(empty, empty, pd.DataFrame(), None, AS_OF)
    assert readings == []
    assert set(skipped) == {
        "run_success_rate",
        "run_duration_seconds",
        "asset_check_pass_rate",
        "data_freshness_minutes",
    }
    readings, skipped = collect.ingestion_health(None)
    assert readings == [] and "not found" in skipped["api_error_rate"]
    assert "not found" in collect.signals_per_day(None, 0, 7)
    assert "empty" in collect.signals_per_day(pd.DataFrame(), 0, 7)
    assert collect.feedback_score(pd.DataFrame()) == "no feedback in the window"


def test_ingestion_rates_are_per_api_call() -> None:
    frame = pd.DataFrame(
        {"api_calls": [100, 300], "retries": [10, 10], "errors": [2, 6], "degraded": [False, True],
         "status": ["success", "degraded"]}
    )  # fmt: skip
    got = {r.metric: r.value for r in collect.ingestion_health(frame)[0]}
    assert got == {"api_retry_rate": 0.05, "api_error_rate": 0.02, "degraded_runs": 1.0}


def test_signal_hit_rate_scores_the_engines_trades_after_costs() -> None:
    ts = pd.date_range("2026-03-09 00:00", periods=8, freq="15min")
    features = pd.concat(
        [
            pd.DataFrame(
                {"market_id": "up", "bucket_ts": ts, "yes_price": [0.5, 0.5, 0.52, 0.55, 0.6, 0.6, 0.6, 0.6]}
            ),
            pd.DataFrame({"market_id": "flat", "bucket_ts": ts, "yes_price": 0.4}),
        ]
    )
    signals = pd.DataFrame(
        [
            # fills at 0.5, closed by the NO signal's fill at 0.52: a gain after costs (hit)
            {"market_id": "up", "bucket_ts": ts[0], "direction": "YES"},
            # buys NO at 0.48, sold two bars later at 0.4: a loss (miss)
            {"market_id": "up", "bucket_ts": ts[1], "direction": "NO"},
            # no move: fees and slippage make it a loss (miss)
            {"market_id": "flat", "bucket_ts": ts[0], "direction": "YES"},
            # still open at as_of: not realised, left out
            {"market_id": "up", "bucket_ts": ts[6], "direction": "YES"},
        ]
    )
    book = BookConfig(holding_bars=2)
    reading = collect.signal_hit_rate(signals, features, book, as_of=AS_OF)
    assert reading.value == pytest.approx(1 / 3) and reading.sample_size == 3
    # measured at the holding horizon: a rise that is given back by the exit is a miss
    back = features.assign(yes_price=lambda f: f["yes_price"].where(f["market_id"] != "up", 0.5))
    back.loc[(back["market_id"] == "up") & (back["bucket_ts"] == ts[2]), "yes_price"] = 0.6
    yes = signals.iloc[[0]]
    assert collect.signal_hit_rate(yes, back, replace(book, holding_bars=1), AS_OF).value == 1.0
    assert collect.signal_hit_rate(yes, back, replace(book, holding_bars=3), AS_OF).value == 0.0


def test_backtest_reads_the_newest_book_row_at_or_before_the_day(warehouse: Warehouse) -> None:
    base = {"start_ts": datetime(2026, 3, 1), "bars": 10, "fees": 0.0, "slippage": 0.0, "holding_bars": 0}
    rows = [
        {
            **base,
            "as_of": datetime(2026, 3, 8),
            "market_id": "*",
            "direction": "*",
            "sharpe": 0.5,
            "max_drawdown": -0.3,
        },
        {
            **base,
            "as_of": datetime(2026, 3, 9),
            "market_id": "*",
            "direction": "*",
            "sharpe": 1.2,
            "max_drawdown": -0.1,
        },
        {
            **base,
            "as_of": datetime(2026, 3, 9),
            "market_id": "m1",
            "direction": "YES",
            "sharpe": 9.0,
            "max_drawdown": -0.9,
        },
        {
            **base,
            "as_of": datetime(2026, 3, 11),
            "market_id": "*",
            "direction": "*",
            "sharpe": 7.0,
            "max_drawdown": 0.0,
        },
    ]
    table = warehouse.table("backtest_results")
    required = {c.name: 0 for c in table.columns if not c.nullable and c.name not in rows[0]}
    warehouse.upsert(table, [{**required, **r} for r in rows])
    readings, skipped = collect.backtest_readings(store.backtest_book(warehouse, AS_OF))
    assert {r.metric: r.value for r in readings} == {"backtest_sharpe": 1.2, "backtest_max_drawdown": 0.1}
    assert skipped == {}
    _, skipped = collect.backtest_readings(store.backtest_book(warehouse, datetime(2026, 3, 1)))
    assert "materialize the backtest group" in skipped["backtest_sharpe"]
    nan_row = store.backtest_book(warehouse, AS_OF).assign(sharpe=float("nan"))
    _, skipped = collect.backtest_readings(nan_row)
    assert skipped == {"backtest_sharpe": "backtest_results.sharpe is not a finite number"}

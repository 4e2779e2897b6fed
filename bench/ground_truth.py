"""The demo world's planted truth for experiments, measured by running every value on every unit.

Runs (``kaizen_pipeline.experiments.replay.RUN_TRUTH_CONFIG``): the demo API answers
``demo.transient_error_rate`` of requests 503 (they succeed on retry), so

- beneficial: ``transport.backoff_base_seconds`` 0.25 -> 0 shortens runs (waiting before a retry
  buys nothing when failures clear at once) and harms no guardrail;
- harmful: ``transport.max_retries`` 5 -> 0 removes retries (api_retry_rate falls to 0, the
  primary metric of that change "wins") but fails most runs (the run_success_rate guardrail).

Each value runs ``--runs`` ingest runs (markets and prices of 10 demo markets, one request at a
time) on a replayed clock; the script prints the mean run metrics and the effects with 95%
intervals (Welch).

Markets (``MARKET_TRUTH_CONFIG``, with ``--weeks N``): a wide-spread book that signals on every 2%
move. ``--weeks`` of demo days are replayed a week at a time (ingest and hype scores at each step,
so every day has posts), then every market is run through the one trade simulator under the config,
each change, and each change on top of the other (experiments run side by side):

- beneficial: ``signals.rvr_threshold`` 2 -> 3 (fewer trades, each paying less than it costs);
- harmful: ``signals.hype_threshold`` 70 -> 0 (three times the signals, most of them without the
  planted hype lead that pays).

It prints per change the paired per-market difference in P&L per market-day (fraction of stake)
with its 95% interval, t statistic, share of markets better, and its size in between-market
standard deviations. Last line:
``backoff_effect_s=<x> backoff_success_effect=<x> no_retries_success_effect=<x> no_retries_retry_effect=<x>``
followed, with ``--weeks``, by `` rvr_pnl_effect=<x> hype_pnl_effect=<x>``.

    python bench/ground_truth.py --weeks 5   # 30 runs per value and 35 market days (about 6 min)
    python bench/ground_truth.py --runs 10   # runs only, a quick look
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

VALUES = {
    "control": {},
    "backoff_base_seconds=0": {"backoff_base_seconds": 0.0},
    "max_retries=0": {"max_retries": 0},
}


def measure(name: str, transport: dict[str, float], runs: int, workdir: Path) -> pd.DataFrame:
    """``runs`` ingest runs with ``transport`` overrides; one row of run metrics per run."""
    import dagster as dg

    from kaizen_pipeline.experiments.metrics import run_values
    from kaizen_pipeline.experiments.replay import RUN_TRUTH_CONFIG as CONFIG
    from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets
    from kaizen_pipeline.ops.progress import terminal_progress
    from kaizen_pipeline.resources import build_resources, warehouse_for
    from kaizen_pipeline.settings import load_settings

    config = {**CONFIG, "transport": {**CONFIG["transport"], **transport}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    os.environ["KAIZEN_CONFIG"] = str(path)
    os.environ["KAIZEN_DATABASE__PATH"] = str(workdir / f"{name}.sqlite")
    instance = dg.DagsterInstance.ephemeral()
    start = datetime(2026, 11, 20, 0, 5)
    with terminal_progress(f"ground truth: {name}", unit="runs") as report:
        for i in range(runs):
            report("ingest runs on the replayed clock", i, runs)
            os.environ["KAIZEN_DEMO__FROZEN_NOW"] = (start + timedelta(hours=3 * i)).isoformat() + "Z"
            settings = load_settings()
            dg.materialize([polymarket_markets, market_prices], resources=build_resources(settings),
                           instance=instance, raise_on_error=False)  # fmt: skip
    wh = warehouse_for(settings.database.sqlalchemy_url())
    ingest = wh.read_frame("SELECT * FROM ingestion_runs", parse_dates=["started_at", "finished_at"])
    return run_values(ingest).pivot(index="run_id", columns="metric", values="value").assign(value=name)


def market_truth(weeks: int, workdir: Path) -> dict[str, float]:
    """Replay ``weeks`` weeks of the market-truth world, then every market under each value (docstring)."""
    import dagster as dg

    from kaizen_pipeline.backtest.book import BookConfig, build_book
    from kaizen_pipeline.backtest.outcomes import market_day_outcomes
    from kaizen_pipeline.backtest.run import run_book
    from kaizen_pipeline.clock import bucket_minutes
    from kaizen_pipeline.experiments.replay import (
        INGEST,
        MARKET_TRUTH_CHANGES,
        MARKET_TRUTH_CONFIG,
        run_at,
    )  # fmt: skip
    from kaizen_pipeline.flags.parameters import with_overrides
    from kaizen_pipeline.research.assets import hype_scores, market_features
    from kaizen_pipeline.research.pipeline import signal_candidates
    from kaizen_pipeline.research.signals import SignalThresholds
    from kaizen_pipeline.resources import warehouse_for
    from kaizen_pipeline.settings import load_settings

    # market_features spans data_collection.history_days back from the last run: the whole replay
    window = 7 * weeks
    config = {
        **MARKET_TRUTH_CONFIG,
        "data_collection": {**MARKET_TRUTH_CONFIG["data_collection"], "history_days": window,
                            "trade_history_days": window},
        "demo": {**MARKET_TRUTH_CONFIG["demo"], "history_days": window + 7},
    }  # fmt: skip
    path = workdir / "markets.yaml"
    path.write_text(yaml.safe_dump(config))
    os.environ["KAIZEN_CONFIG"] = str(path)
    os.environ["KAIZEN_DATABASE__PATH"] = str(workdir / "markets.sqlite")
    os.environ.pop("KAIZEN_DEMO__FROZEN_NOW", None)
    settings = load_settings()
    instance = dg.DagsterInstance.ephemeral()
    start = datetime(2026, 11, 1, 0, 5)
    for week in range(weeks):
        run_at(settings, start + timedelta(days=7 * week), [*INGEST, hype_scores], instance)
    run_at(settings, start + timedelta(days=7 * (weeks - 1)), [market_features], instance)
    features = warehouse_for(settings.database.sqlalchemy_url()).read_frame(
        "SELECT market_id, bucket_ts, yes_price, rvr, roc, hype_index FROM market_features",
        parse_dates=["bucket_ts"],
    )
    features = features[
        features["bucket_ts"] >= features.loc[features["hype_index"].notna(), "bucket_ts"].min()
    ]
    book = BookConfig.from_settings(settings)
    markets = sorted(features["market_id"].unique())
    days = features["bucket_ts"].dt.normalize().nunique()

    def per_market(overrides: dict[str, float]) -> tuple[pd.Series, int]:
        thresholds = SignalThresholds.from_settings(with_overrides(settings, overrides))
        signals = signal_candidates(features, thresholds, bucket_minutes(settings))
        outcomes = market_day_outcomes(run_book(build_book(features, signals, book), book), scale=1.0)
        pnl = outcomes.groupby("market_id")["pnl_after_costs"].sum().reindex(markets, fill_value=0.0)
        return pnl / book.init_cash / days, len(signals)

    control, n_control = per_market({})
    print(f"\nmarkets: {len(markets)} markets, {days} days with posts, fees {book.fees:g} and slippage "
          f"{book.slippage:g} a fill; control: {n_control} signals, P&L/market-day {control.mean():+.5f} "
          f"(between-market sd {control.std(ddof=1):.5f})")  # fmt: skip
    figures = {}
    for kind, (parameter, value) in MARKET_TRUTH_CHANGES.items():
        other = next(v for k, v in MARKET_TRUTH_CHANGES.items() if k != kind)
        for base in ({}, {other[0]: other[1]}):
            before, _ = per_market(base) if base else (control, n_control)
            after, n = per_market({**base, parameter: value})
            diff = after - before
            mean, sd = float(diff.mean()), float(diff.std(ddof=1))
            half = stats.t.ppf(0.975, len(diff) - 1) * sd / np.sqrt(len(diff))
            on = f" with {other[0]}={other[1]:g}" if base else ""
            print(f"  {kind:>10}: {parameter} -> {value:g}{on}: signals {n:>5}, P&L/market-day "
                  f"{mean:+.5f} [{mean - half:+.5f}, {mean + half:+.5f}], t {mean / sd * np.sqrt(len(diff)):+.1f}, "
                  f"better on {float((diff > 0).mean()):.0%} of markets, "
                  f"{mean / before.std(ddof=1):+.2f} between-market sd")  # fmt: skip
            if not base:
                figures[f"{parameter.split('.')[1].split('_')[0]}_pnl_effect"] = mean
    return figures


def effect(control: pd.Series, treatment: pd.Series) -> tuple[float, float, float]:
    diff = float(treatment.mean() - control.mean())
    se = float(np.sqrt(treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control)))
    return diff, diff - 1.96 * se, diff + 1.96 * se


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30, help="runs per value")
    parser.add_argument("--weeks", type=int, default=0, help="also replay this many weeks of market days")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        frames = {name: measure(name, values, args.runs, Path(tmp)) for name, values in VALUES.items()}
    elapsed = time.perf_counter() - started
    metrics = [
        "run_duration_seconds",
        "run_success_rate",
        "api_retry_rate",
        "api_error_rate",
        "degraded_runs",
    ]
    table = pd.DataFrame({name: f[metrics].mean() for name, f in frames.items()}).T
    print(f"demo.transient_error_rate 0.3, {args.runs} runs per value "
          f"({elapsed:.0f} s):")  # fmt: skip
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    control = frames["control"]
    figures = {}
    for name, key, metric in [
        ("backoff_base_seconds=0", "backoff_effect_s", "run_duration_seconds"),
        ("backoff_base_seconds=0", "backoff_success_effect", "run_success_rate"),
        ("max_retries=0", "no_retries_success_effect", "run_success_rate"),
        ("max_retries=0", "no_retries_retry_effect", "api_retry_rate"),
    ]:
        diff, lo, hi = effect(control[metric], frames[name][metric])
        figures[key] = diff
        print(f"{name:>24}: {metric:<22} {diff:+.3f} [{lo:+.3f}, {hi:+.3f}] "
              f"p={stats.ttest_ind(frames[name][metric], control[metric], equal_var=False).pvalue:.2g}")  # fmt: skip
    line = " ".join(f"{k}={v:.3f}" for k, v in figures.items())
    if args.weeks:
        with tempfile.TemporaryDirectory() as tmp:
            markets = market_truth(args.weeks, Path(tmp))
        line += " " + " ".join(f"{k}={v:.5f}" for k, v in markets.items())
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo world's planted truth for experiments, measured by running every value on many runs.

The demo API answers ``demo.transient_error_rate`` of requests 503 (they succeed on retry), so:

- beneficial: ``transport.backoff_base_seconds`` 0.25 -> 0 shortens runs (waiting before a retry
  buys nothing when failures clear at once) and harms no guardrail;
- harmful: ``transport.max_retries`` 5 -> 0 removes retries (api_retry_rate falls to 0, the
  primary metric of that change "wins") but fails most runs (the run_success_rate guardrail).

Runs are ingest runs (markets and prices of 10 demo markets, one request at a time) on a replayed
clock, the configuration of ``kaizen_pipeline_tests/experiments/test_end_to_end.py``. Each value
runs ``--runs`` times; the script prints per value the mean run metrics and the effects with 95%
intervals (Welch), and as its last line:
``backoff_effect_s=<x> backoff_success_effect=<x> no_retries_success_effect=<x> no_retries_retry_effect=<x>``.

    python bench/ground_truth.py            # 30 runs per value
    python bench/ground_truth.py --runs 10  # a quick look

With ``--warehouse data/warehouse.sqlite`` (a quickstart's warehouse) it also measures the market
parameters of the kaizen catalogue: every signal threshold change run on every market through the
one trade simulator, the paired per-market difference in P&L per market-day, its t statistic and
its size in between-market standard deviations.
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

CONFIG = {
    "data_collection": {"max_markets": 10, "history_days": 1, "trade_history_days": 1, "max_concurrency": 1},
    "demo": {"transient_error_rate": 0.3, "n_markets": 10},
    "transport": {"backoff_base_seconds": 0.25, "backoff_max_seconds": 0.5, "max_retries": 5},
}
VALUES = {
    "control": {},
    "backoff_base_seconds=0": {"backoff_base_seconds": 0.0},
    "max_retries=0": {"max_retries": 0},
}


def measure(name: str, transport: dict[str, float], runs: int, workdir: Path) -> pd.DataFrame:
    """``runs`` ingest runs with ``transport`` overrides; one row of run metrics per run."""
    import dagster as dg

    from kaizen_pipeline.experiments.metrics import run_values
    from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets
    from kaizen_pipeline.resources import build_resources, warehouse_for
    from kaizen_pipeline.settings import load_settings

    config = {**CONFIG, "transport": {**CONFIG["transport"], **transport}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    os.environ["KAIZEN_CONFIG"] = str(path)
    os.environ["KAIZEN_DATABASE__PATH"] = str(workdir / f"{name}.sqlite")
    instance = dg.DagsterInstance.ephemeral()
    start = datetime(2026, 11, 20, 0, 5)
    for i in range(runs):
        os.environ["KAIZEN_DEMO__FROZEN_NOW"] = (start + timedelta(hours=3 * i)).isoformat() + "Z"
        settings = load_settings()
        dg.materialize([polymarket_markets, market_prices], resources=build_resources(settings),
                       instance=instance, raise_on_error=False)  # fmt: skip
    wh = warehouse_for(settings.database.sqlalchemy_url())
    ingest = wh.read_frame("SELECT * FROM ingestion_runs", parse_dates=["started_at", "finished_at"])
    return run_values(ingest).pivot(index="run_id", columns="metric", values="value").assign(value=name)


THRESHOLD_CHANGES = {"rvr": [1.5, 1.8, 2.5, 3.0], "roc": [0.05, 0.12, 0.2], "hype": [50.0, 60.0, 75.0, 85.0]}


def market_truth(url: str) -> None:
    """Paired per-market effects of signal threshold changes on P&L per market-day (one trade simulator)."""
    from dataclasses import replace

    from kaizen_pipeline.backtest.book import BookConfig, build_book
    from kaizen_pipeline.backtest.outcomes import market_day_outcomes
    from kaizen_pipeline.backtest.run import run_book
    from kaizen_pipeline.clock import bucket_minutes
    from kaizen_pipeline.research.pipeline import signal_candidates
    from kaizen_pipeline.research.signals import SignalThresholds
    from kaizen_pipeline.settings import Settings
    from kaizen_pipeline.warehouse import Warehouse

    settings = Settings()
    features = Warehouse(url, create=False).read_frame(
        "SELECT market_id, bucket_ts, yes_price, rvr, roc, hype_index FROM market_features",
        parse_dates=["bucket_ts"],
    )
    config = BookConfig.from_settings(settings)
    markets = sorted(features["market_id"].unique())
    days = features["bucket_ts"].dt.normalize().nunique()

    def per_market(thresholds: SignalThresholds) -> tuple[pd.Series, int]:
        signals = signal_candidates(features, thresholds, bucket_minutes(settings))
        outcomes = market_day_outcomes(run_book(build_book(features, signals, config), config), scale=1.0)
        pnl = outcomes.groupby("market_id")["pnl_after_costs"].sum().reindex(markets, fill_value=0.0)
        return pnl / config.init_cash / days, len(signals)

    base = SignalThresholds.from_settings(settings)
    control, n_control = per_market(base)
    print(f"\nmarket parameters: {len(markets)} markets, {days} days, {n_control} signals under the config")
    for name, values in THRESHOLD_CHANGES.items():
        for value in values:
            changed, n = per_market(replace(base, **{name: value}))
            diff = changed - control
            t = diff.mean() / diff.std(ddof=1) * np.sqrt(len(diff)) if diff.std(ddof=1) > 0 else 0.0
            print(f"  {name}_threshold={value:<5g} signals {n:>4}  P&L/market-day {diff.mean():+.5f}  t {t:+.2f}  "
                  f"{diff.mean() / control.std(ddof=1):+.2f} between-market sd")  # fmt: skip


def effect(control: pd.Series, treatment: pd.Series) -> tuple[float, float, float]:
    diff = float(treatment.mean() - control.mean())
    se = float(np.sqrt(treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control)))
    return diff, diff - 1.96 * se, diff + 1.96 * se


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30, help="runs per value")
    parser.add_argument("--warehouse", help="also measure market parameters on this SQLite warehouse file")
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
    print(f"demo.transient_error_rate {CONFIG['demo']['transient_error_rate']}, {args.runs} runs per value "
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
    if args.warehouse:
        market_truth(f"sqlite:///{Path(args.warehouse).resolve()}")
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

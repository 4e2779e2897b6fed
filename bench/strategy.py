"""Benchmark: out-of-sample Sharpe of the combined, tuned and calibrated system against today's momentum rule.

For each of ``--weeks`` demo weeks (default 24), in a fresh process with its own temporary SQLite
warehouse and ephemeral Dagster instance, through the real path:

1. History as a user who runs the pipeline accumulates it: the demo ingest (Gamma, CLOB, Data API,
   X, each through the real clients and transport) and ``hype_scores`` once a week at the week's
   end for ``--warmup-weeks`` weeks and then the test week (X search only reaches 7 days back, so
   a week of posts per ingest), then ``market_features`` over the whole span.
2. Tuning: ``parameter_tuning`` (Optuna per scope: all markets and each category, on walk-forward
   windows) at the start of the test week, on the weeks before it only; its proposals (tuned
   values that beat the config out of sample by the asset's rule) ship to the test week's markets
   as a feature flag per parameter (a variant per scope, targeted by market), the way an
   experiment's winner reaches markets. No proposal: the config values.
3. The new system: ``trading_signals`` (momentum and hype_lead, risk gate, walk-forward calibrated
   win probabilities). The baseline: ``trading_signals`` again on a copy of the warehouse with
   ``signals.rules: [momentum]`` and default thresholds, i.e. today's rule.
4. Both books' trades of the test week come from the one trade simulator (the paper book's engine:
   fill at the next bar, fees and slippage per fill, time exit after ``research.signal_hold_buckets``).
   Each trade is staked by fractional Kelly (research.portfolio): the new system with its
   calibrated win probability and the price after costs; the baseline with today's placeholder
   probability (price + edge_per_strength x strength), as the pipeline sized before. Stakes are
   capped at ``signals.max_position_pct``; caps on concurrent exposure are not simulated.
   A trade's P&L (stake x return after costs) counts on its exit day.

Per week it prints trades, P&L and daily Sharpe of both systems and the new system's Brier score
against the market price's; then the pooled figures, the targets (Sharpe ratio >= 1.2, positive
weeks >= 75%, Brier below the market's) and, as its last line:
``oos_sharpe_new=<x> oos_sharpe_baseline=<x> sharpe_ratio=<x> positive_week_share=<x> brier_new=<x> brier_market=<x>``.
Sharpe: mean over std of daily P&L (fraction of equity) x sqrt(365), over the test weeks' days.

    python bench/strategy.py               # 24 weeks from 2026-02-04, 2 processes (about 30 min)
    python bench/strategy.py --weeks 4     # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.ops.progress import terminal_progress

WEEK = timedelta(days=7)


def _env(tmp: Path, database: Path, frozen: datetime, extra: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("KAIZEN_")]:
        del os.environ[name]
    os.environ.update(
        {
            "KAIZEN_CONFIG": str(tmp / "config.yaml"),
            "KAIZEN_DATABASE__PATH": str(database),
            "KAIZEN_DEMO__FROZEN_NOW": frozen.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "8",
            "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "8",
            "KAIZEN_DATABASE__BACKUP_DIR": str(tmp / "backups"),
            "KAIZEN_LOGGING__LOG_DIR": str(tmp / "logs"),
            **extra,
        }
    )


def _materialize(assets: list[Any]) -> None:
    import dagster as dg

    from kaizen_pipeline.resources import build_resources
    from kaizen_pipeline.settings import load_settings

    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log), dg.DagsterInstance.ephemeral() as instance:
            dg.materialize(assets, resources=build_resources(load_settings()), instance=instance)
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{log.getvalue()[-3000:]}") from exc


def _ship_tuned(database: Path, since: datetime) -> list[str]:
    """Ship the proposed tuned values as one flag per parameter (variant per scope, targeted by market).

    The way an experiment's winner reaches markets: the markets of a proposal's category (or every
    market for the scope ``all``, categories taking precedence) run the tuned value from ``since``.
    Returns what shipped, as ``parameter=value@scope``.
    """
    from kaizen_pipeline.flags.model import FeatureFlag, evaluate
    from kaizen_pipeline.flags.store import FlagStore
    from kaizen_pipeline.settings import load_settings
    from kaizen_pipeline.warehouse import Warehouse

    wh = Warehouse(f"sqlite:///{database}", create=False)
    proposals = wh.read_frame(
        "SELECT scope, scope_kind, parameter, proposed_value FROM tuning_proposals "
        "WHERE proposed AND as_of = (SELECT MAX(as_of) FROM tuning_proposals)"
    )
    if proposals.empty:
        return []
    markets = wh.read_frame("SELECT DISTINCT market_id, category FROM market_features")
    settings = load_settings()
    store = FlagStore(wh)
    shipped = []
    for parameter, rows in proposals.groupby("parameter", sort=True):
        variants, targets = {}, {}
        for row in rows.sort_values("scope_kind").itertuples():  # "all" first, categories override
            variant = re.sub(r"[^a-z0-9_]+", "_", f"tuned_{row.scope}".lower())[:40]
            variants[variant] = float(row.proposed_value)
            category = str(row.scope).split(":", 1)[-1]
            chosen = markets if row.scope_kind == "all" else markets[markets["category"] == category]
            targets.update({m: variant for m in chosen["market_id"]})
            shipped.append(f"{parameter}={float(row.proposed_value):g}@{row.scope}")
        flag = FeatureFlag(
            f"tuned_{parameter.replace('.', '_')}"[:64],
            parameter,
            variants,
            {v: 1.0 / len(variants) for v in variants},
            allocation=0.0,
            targets=targets,
        )
        store.save(flag, settings, actor="bench", reason="tuned on the weeks before the test week")
        saved = store.get(flag.flag_key)
        store.record_exposures([("market", m, evaluate(saved, m)) for m in targets], since)
    return shipped


def _week_trades(
    database: Path, test_start: pd.Timestamp, test_end: pd.Timestamp, calibrated: bool
) -> pd.DataFrame:
    """The test week's trades of the signals in ``database``, with their Kelly stakes."""
    from kaizen_pipeline.research.pipeline import research_config
    from kaizen_pipeline.research.portfolio import cost_adjusted_price, estimated_probability, kelly_binary
    from kaizen_pipeline.research.risk import paper_run, price_grid
    from kaizen_pipeline.settings import load_settings
    from kaizen_pipeline.warehouse import Warehouse

    cfg = research_config(load_settings())
    wh = Warehouse(f"sqlite:///{database}", create=False)
    features = wh.read_frame(
        "SELECT market_id, bucket_ts, yes_price FROM market_features", parse_dates=["bucket_ts"]
    )
    signals = wh.read_frame(
        "SELECT * FROM trading_signals WHERE bucket_ts >= :start AND bucket_ts < :stop",
        {"start": test_start.to_pydatetime(), "stop": test_end.to_pydatetime()},
        parse_dates=["bucket_ts", "fill_ts"],
    )
    if signals.empty:
        return pd.DataFrame(columns=["exit_ts", "pnl", "stake", "trade_return", "rule"])
    grid = price_grid(features, cfg.book.price_floor)
    run = paper_run(grid, signals, cfg.book)
    trades = run.trades_table()
    trades = trades[trades["status"] == "closed"]
    fills = signals.rename(columns={"fill_ts": "entry_ts"})
    trades = trades.merge(
        fills[["market_id", "direction", "entry_ts", "rule", "strength", "win_prob", "signal_price"]],
        on=["market_id", "direction", "entry_ts"],
        how="left",
    )
    price = trades["entry_price"].to_numpy(dtype=float)  # the engine's fill (before slippage)
    sizing = cfg.sizing
    if calibrated:
        prob = trades["win_prob"].fillna(trades["signal_price"]).to_numpy(dtype=float)
        paid = cost_adjusted_price(price, sizing.cost_per_fill)
    else:
        prob = estimated_probability(price, trades["strength"].fillna(0.0), sizing.edge_per_strength)
        paid = price
    trades["stake"] = np.minimum(sizing.kelly_fraction * kelly_binary(prob, paid), sizing.max_position)
    trades["pnl"] = trades["stake"] * trades["trade_return"]
    return trades


def replay_week(test_end_iso: str, warmup_weeks: int) -> dict[str, Any]:
    """One test week in a fresh process: history, tuning, both systems, their trades and Brier scores."""
    test_end = datetime.fromisoformat(test_end_iso)
    test_start = test_end - WEEK
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "config.yaml").write_text("{}\n")
        new_db, base_db = tmp / "new.sqlite", tmp / "baseline.sqlite"
        from kaizen_pipeline.backtest.assets import parameter_tuning
        from kaizen_pipeline.ingest.assets import INGEST_ASSETS
        from kaizen_pipeline.research.assets import hype_scores, market_features, trading_signals

        for k in range(warmup_weeks, 0, -1):
            _env(tmp, new_db, test_end - k * WEEK, {})
            _materialize([*INGEST_ASSETS, hype_scores])
        # tuning sees only the weeks before the test week
        history = {"KAIZEN_DATA_COLLECTION__HISTORY_DAYS": str(7 * warmup_weeks + 1)}
        _env(tmp, new_db, test_start, history)
        _materialize([market_features, trading_signals, parameter_tuning])
        _env(tmp, new_db, test_end, {})
        _materialize([*INGEST_ASSETS, hype_scores])
        _env(tmp, new_db, test_end, {"KAIZEN_DATA_COLLECTION__HISTORY_DAYS": str(7 * (warmup_weeks + 1) + 1)})
        _materialize([market_features])
        shutil.copy(new_db, base_db)
        shipped = _ship_tuned(new_db, test_start)
        _materialize([trading_signals])
        ts0, ts1 = pd.Timestamp(test_start).tz_localize(None), pd.Timestamp(test_end).tz_localize(None)
        new = _week_trades(new_db, ts0, ts1, calibrated=True)
        from kaizen_pipeline.research.calibration import brier
        from kaizen_pipeline.warehouse import Warehouse

        scored = Warehouse(f"sqlite:///{new_db}", create=False).read_frame(
            "SELECT rule, win_prob, signal_price, outcome FROM trading_signals "
            "WHERE bucket_ts >= :start AND bucket_ts < :stop AND outcome IS NOT NULL",
            {"start": ts0.to_pydatetime(), "stop": ts1.to_pydatetime()},
        )
        _env(tmp, base_db, test_end, {"KAIZEN_SIGNALS__RULES": '["momentum"]'})
        _materialize([trading_signals])
        base = _week_trades(base_db, ts0, ts1, calibrated=False)

    def daily(trades: pd.DataFrame) -> list[float]:
        days_index = pd.date_range(ts0, periods=7, freq="D")
        if trades.empty:
            return [0.0] * 7
        by_day = trades.groupby(pd.to_datetime(trades["exit_ts"]).dt.floor("D"))["pnl"].sum()
        return [float(by_day.get(d, 0.0)) for d in days_index]

    return {
        "week_end": test_end_iso,
        "new_daily": daily(new),
        "base_daily": daily(base),
        "new_trades": len(new),
        "new_lead_trades": int((new["rule"] == "hype_lead").sum()) if not new.empty else 0,
        "base_trades": len(base),
        "brier_new_sum": float(((scored["win_prob"] - scored["outcome"]) ** 2).sum()),
        "brier_market_sum": float(((scored["signal_price"] - scored["outcome"]) ** 2).sum()),
        "brier_n": len(scored),
        "brier_new": brier(scored["win_prob"], scored["outcome"]),
        "brier_market": brier(scored["signal_price"], scored["outcome"]),
        "shipped": shipped,
        "seconds": time.perf_counter() - started,
    }


def sharpe(daily: list[float]) -> float:
    """Mean over standard deviation of daily P&L, annualized with sqrt(365) (NaN without variation)."""
    x = np.asarray(daily, dtype=float)
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return float(x.mean() / sd * math.sqrt(365)) if sd > 0 else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weeks", type=int, default=24, help="test weeks (each in a fresh process)")
    parser.add_argument("--first", default="2026-02-04T00:00:00Z", help="end of the first test week (UTC)")
    parser.add_argument("--warmup-weeks", type=int, default=2, help="weeks of history before each test week")
    parser.add_argument("--jobs", type=int, default=2, help="weeks replayed at once")
    args = parser.parse_args()
    first = datetime.fromisoformat(args.first.replace("Z", "+00:00")).astimezone(UTC)
    ends = [(first + i * WEEK).isoformat() for i in range(args.weeks)]
    print(
        f"{len(ends)} demo test weeks, {args.warmup_weeks} weeks of history before each, {args.jobs} at a time"
    )
    header = (f"{'test week ends (UTC)':<22}{'trades new':>11}{'(lead)':>7}{'base':>6}{'P&L new':>10}{'P&L base':>10}"
              f"{'Sharpe new':>12}{'Sharpe base':>12}{'Brier new':>11}{'market':>9}  shipped")  # fmt: skip
    print(header)
    started = time.perf_counter()
    rows = []
    with (
        ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool,
        terminal_progress("strategy replay", unit="weeks") as report,
    ):
        report("replaying test weeks", 0, len(ends))
        for row in pool.map(replay_week, ends, [args.warmup_weeks] * len(ends)):
            rows.append(row)
            report("replaying test weeks", len(rows), len(ends))
            print(
                f"{row['week_end'][:19]:<22}{row['new_trades']:>11}{row['new_lead_trades']:>7}{row['base_trades']:>6}"
                f"{sum(row['new_daily']):>10.4f}{sum(row['base_daily']):>10.4f}"
                f"{sharpe(row['new_daily']):>12.2f}{sharpe(row['base_daily']):>12.2f}"
                f"{row['brier_new']:>11.5f}{row['brier_market']:>9.5f}  {', '.join(row['shipped']) or '-'}",
                flush=True,
            )
    new_daily = [d for r in rows for d in r["new_daily"]]
    base_daily = [d for r in rows for d in r["base_daily"]]
    s_new, s_base = sharpe(new_daily), sharpe(base_daily)
    ratio = s_new / s_base if s_base > 0 else float("inf") if s_new > 0 else float("nan")
    positive = float(np.mean([sum(r["new_daily"]) > 0 for r in rows]))
    n = sum(r["brier_n"] for r in rows)
    b_new = sum(r["brier_new_sum"] for r in rows) / n if n else float("nan")
    b_market = sum(r["brier_market_sum"] for r in rows) / n if n else float("nan")
    base_positive = float(np.mean([sum(r["base_daily"]) > 0 for r in rows]))
    print(
        f"pooled over {len(rows)} weeks ({len(new_daily)} days): Sharpe new {s_new:.2f}, baseline {s_base:.2f}; "
        f"positive weeks new {positive:.0%}, baseline {base_positive:.0%}; "
        f"Brier new {b_new:.5f} vs market {b_market:.5f} on {n} signals; {time.perf_counter() - started:.0f} s"
    )
    if s_base <= 0:
        print(
            "the baseline's Sharpe is not positive: the ratio is reported as inf (new > 0) and met when new > 0"
        )
    met = (ratio >= 1.2) and positive >= 0.75 and b_new < b_market
    print(
        f"targets: Sharpe ratio >= 1.2, positive weeks >= 75%, Brier below the market's: {'met' if met else 'MISSED'}"
    )
    print(
        f"oos_sharpe_new={s_new:.4f} oos_sharpe_baseline={s_base:.4f} sharpe_ratio={ratio:.4f} "
        f"positive_week_share={positive:.4f} brier_new={b_new:.6f} brier_market={b_market:.6f}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

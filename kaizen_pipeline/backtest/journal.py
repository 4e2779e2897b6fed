"""The trade journal: every backtest and paper trade with the signal that opened it (pure).

A journal row is one trade of the engine (:class:`~kaizen_pipeline.backtest.run.BookRun`) joined
to its signal and to the market's features at the signal's bucket:

- *signal*: a trade entering at fill bar ``entry_ts`` of market side (market_id, direction) was
  opened by the signal of that side whose fill bar (:func:`kaizen_pipeline.clock.fill_bars`, the
  same mapping the book uses; ``fill_ts`` on a gap-free grid) is ``entry_ts``. When several rules
  fired for the same fill, the strongest signal names the trade and ``signals_at_entry`` counts
  them all. A signal row without ``rule`` (before rules existed) is ``momentum``.
- *features*: the market_features row at the signal's ``bucket_ts`` (every column it has, so new
  feature columns appear without a change here), as a JSON object.
- *costs*: fees at entry and exit as the engine charged them, and slippage = ``slippage`` x the
  traded value at the close, per fill (entry fills at close x (1 + s), exits at close x (1 - s));
  an open trade has paid no exit yet.
- *outcome*: P&L after costs, return on the entry value, ``win`` = P&L > 0 (NULL while open), bars
  held and the exit reason: ``time_exit`` (the holding horizon), ``opposite_signal`` (a signal
  for the other side of the market filled) or ``open_at_end``.

Money is in the source book's cash units: the backtest gives each market side
``backtest.init_cash``; the paper book is scaled to USD (each side stakes
``signals.max_position_pct`` of ``research.bankroll_usd``). ``starting_cash`` says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.backtest.run import BookRun
from kaizen_pipeline.clock import fill_bars
from kaizen_pipeline.research.risk import PaperBookConfig, paper_run
from kaizen_pipeline.research.signals import SIGNAL_COLUMNS, SignalThresholds
from kaizen_pipeline.warehouse import Warehouse

SOURCE_BACKTEST = "backtest"
SOURCE_PAPER = "paper"
DEFAULT_RULE = "momentum"  # the only rule before signals carried a rule column

EXIT_TIME = "time_exit"
EXIT_OPPOSITE = "opposite_signal"
EXIT_OPEN = "open_at_end"

JOURNAL_COLUMNS = [
    "source",
    "market_id",
    "direction",
    "entry_ts",
    "rule",
    "signal_ts",
    "exit_ts",
    "status",
    "exit_reason",
    "category",
    "strength",
    "win_prob",
    "reason",
    "features",
    "signal_detail",
    "signals_at_entry",
    "starting_cash",
    "size",
    "entry_price",
    "exit_price",
    "entry_fees",
    "exit_fees",
    "slippage_cost",
    "total_costs",
    "pnl",
    "trade_return",
    "win",
    "bars_held",
]

# Keys and bookkeeping of market_features: not features of the market.
_NOT_FEATURES = {"market_id", "bucket_ts", "computed_at", "yes_token_id", "no_token_id"}
# Signal columns every rule has, or that the journal carries in its own columns.
_SIGNAL_BASE = {*SIGNAL_COLUMNS, "rule", "win_prob", "variants", "computed_at"}


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _get(row: Mapping[str, object], *names: str) -> float | None:
    """The first finite number among ``names`` in ``row`` (rules name their columns differently)."""
    for name in names:
        value = _finite(row.get(name))
        if value is not None:
            return value
    return None


def _momentum_reason(row: Mapping[str, object], thresholds: SignalThresholds | None) -> list[str]:
    parts: list[str] = []
    rvr, roc, hype = _get(row, "rvr"), _get(row, "roc"), _get(row, "hype_index")
    if rvr is not None:
        parts.append(f"RVR {rvr:.1f}" + (f" >= {thresholds.rvr:.1f}" if thresholds else ""))
    if roc is not None:
        if thresholds is None:
            parts.append(f"ROC {roc:+.0%}")
        elif roc < 0:
            parts.append(f"ROC {roc:+.0%} <= {-thresholds.roc:+.0%}")
        else:
            parts.append(f"ROC {roc:+.0%} >= {thresholds.roc:.0%}")
    if hype is not None:
        parts.append(f"hype {hype:.0f}" + (f" >= {thresholds.hype:.0f}" if thresholds else ""))
    return parts


def _hype_lead_reason(row: Mapping[str, object]) -> list[str]:
    z = _get(row, "hype_z", "hype_zscore", "burst_z", "z_score", "zscore")
    lag = _get(row, "lead_lag", "best_lag", "lag")
    corr = _get(row, "lead_corr", "lag_corr", "pearson_at_best", "corr")
    text = f"hype burst z {z:.1f}" if z is not None else "hype burst"
    if lag is not None:
        text += f" in a market whose hype leads price by {lag:.0f} buckets"
        if corr is not None:
            text += f" (corr {corr:+.2f})"
    elif corr is not None:
        text += f" (lead corr {corr:+.2f})"
    return [text]


def signal_reason(row: Mapping[str, object], thresholds: SignalThresholds | None = None) -> str:
    """One line saying why the signal fired, from whatever columns the signal row has.

    e.g. ``momentum: RVR 3.1 >= 2.0, ROC +12% >= 10%, hype 81 >= 70 -> YES``.
    """
    rule = str(row.get("rule") or DEFAULT_RULE)
    if rule == "momentum":
        parts = _momentum_reason(row, thresholds)
    elif rule == "hype_lead":
        parts = _hype_lead_reason(row)
    else:
        parts = []
    strength = _get(row, "strength")
    if not parts and strength is not None:
        parts.append(f"strength {strength:.2f}")
    win_prob = _get(row, "win_prob")
    if win_prob is not None:
        parts.append(f"P(win) {win_prob:.2f}")
    direction = str(row.get("direction") or "?").upper()
    return f"{rule}: {', '.join(parts) or 'no detail'} -> {direction}"


def _json(row: Mapping[str, object]) -> str:
    """A JSON object of the row's known values (NaN/NULL dropped; numbers as floats)."""
    out: dict[str, object] = {}
    for key, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, (bool, np.bool_)):
            out[key] = bool(value)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
            if math.isfinite(number):
                out[key] = number
        elif isinstance(value, pd.Timestamp):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)
    return json.dumps(out, sort_keys=True)


def exit_reasons(run: BookRun, exit_on_opposite_signal: bool) -> np.ndarray:
    """Why each trade of ``run`` closed: an opposite-side fill at the exit bar, else the time exit."""
    t = run.trades
    reasons = np.full(len(t), EXIT_OPEN, dtype=object)
    if not len(t):
        return reasons
    closed = t.closed
    opposite = np.zeros(len(t), dtype=bool)
    if exit_on_opposite_signal and run.book.n_cols:
        opposite[closed] = run.book.opposite_exits[t.col[closed], t.exit_idx[closed]]
    reasons[closed] = np.where(opposite[closed], EXIT_OPPOSITE, EXIT_TIME)
    return reasons


def _normalized_signals(signals: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Signals with ``rule`` filled in and ``entry_ts``: the bar they fill at on the book's grid."""
    sig = signals.copy()
    sig["bucket_ts"] = pd.to_datetime(sig["bucket_ts"])
    sig["direction"] = sig["direction"].astype(str).str.upper()
    if "rule" not in sig:
        sig["rule"] = DEFAULT_RULE
    sig["rule"] = sig["rule"].where(sig["rule"].notna() & (sig["rule"].astype(str) != ""), DEFAULT_RULE)
    if "strength" not in sig:
        sig["strength"] = np.nan
    sig["strength"] = pd.to_numeric(sig["strength"], errors="coerce")
    bars = fill_bars(index, sig["bucket_ts"].to_numpy()) if len(sig) else np.zeros(0, dtype=np.int64)
    filled = bars < len(index)
    sig = sig.loc[filled].copy()
    sig["entry_ts"] = index[bars[filled]]
    return sig


def _features_at(features: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """market_features rows at each (market_id, bucket_ts) of ``keys``, with a JSON ``features`` column."""
    if features.empty:
        return keys.assign(features="{}", feature_category=None)
    feats = features.copy()
    feats["bucket_ts"] = pd.to_datetime(feats["bucket_ts"])
    feats = feats.drop_duplicates(["market_id", "bucket_ts"], keep="last")
    wanted = [c for c in feats.columns if c not in _NOT_FEATURES]
    merged = keys.merge(feats[["market_id", "bucket_ts", *wanted]], on=["market_id", "bucket_ts"], how="left")
    records = merged[wanted].to_dict("records")
    out = keys.copy()
    out["features"] = [_json(r) for r in records]
    out["feature_category"] = merged["category"].to_numpy() if "category" in merged else None
    return out


def journal_from_run(
    run: BookRun,
    config: BookConfig,
    signals: pd.DataFrame,
    features: pd.DataFrame,
    source: str,
    thresholds: SignalThresholds | None = None,
) -> pd.DataFrame:
    """The journal rows (``JOURNAL_COLUMNS``) of every trade of ``run``.

    ``signals``: the trading_signals rows the run was built from (any columns; market_id,
    bucket_ts and direction needed); ``features``: market_features rows (any columns).
    """
    trades = run.trades_table()
    if trades.empty:
        return pd.DataFrame(columns=JOURNAL_COLUMNS)
    index = pd.DatetimeIndex(run.book.index)
    trades["exit_reason"] = exit_reasons(run, config.exit_on_opposite_signal)
    trades["entry_ts"] = pd.to_datetime(trades["entry_ts"])

    sig = _normalized_signals(signals, index)
    sig = sig.sort_values(["strength", "rule"], ascending=[False, True], na_position="last")
    per_fill = sig.groupby(["market_id", "direction", "entry_ts"]).size().rename("signals_at_entry")
    lead = sig.drop_duplicates(["market_id", "direction", "entry_ts"], keep="first")
    lead = lead.join(per_fill, on=["market_id", "direction", "entry_ts"])
    rows = trades.merge(lead, on=["market_id", "direction", "entry_ts"], how="left", suffixes=("", "_signal"))

    with_feats = _features_at(features, rows[["market_id", "bucket_ts"]])
    rows["features"] = with_feats["features"].to_numpy()
    category = rows["category"] if "category" in rows else pd.Series(None, index=rows.index, dtype=object)
    rows["category"] = category.where(category.notna(), with_feats["feature_category"].to_numpy())

    matched = rows["bucket_ts"].notna()
    signal_records = rows.to_dict("records")
    rows["reason"] = [
        signal_reason(r, thresholds) if ok else "no signal row found for this entry"
        for r, ok in zip(signal_records, matched, strict=True)
    ]
    # rule-specific columns (lead_lag, hype z, ...) that have no journal column of their own
    detail_keys = set(sig.columns) - _SIGNAL_BASE - {"entry_ts"}
    rows["signal_detail"] = [_json({k: v for k, v in r.items() if k in detail_keys}) for r in signal_records]
    rows["rule"] = rows["rule"].where(matched, None)
    rows["signal_ts"] = rows["bucket_ts"]
    rows["signals_at_entry"] = rows["signals_at_entry"].fillna(0).astype(int)
    if "win_prob" not in rows:
        rows["win_prob"] = np.nan

    slip = config.slippage
    entry_cost = rows["size"] * rows["entry_price"] * slip / (1.0 + slip)
    exit_cost = rows["size"] * rows["exit_price"] * slip / (1.0 - slip) if slip < 1 else np.inf
    closed = rows["status"] == "closed"
    rows["slippage_cost"] = entry_cost + np.where(closed, exit_cost, 0.0)
    rows["total_costs"] = rows["entry_fees"] + rows["exit_fees"] + rows["slippage_cost"]
    rows["starting_cash"] = config.init_cash
    rows["win"] = (rows["pnl"] > 0).astype(object).where(closed, None)
    rows["source"] = source
    out = rows[JOURNAL_COLUMNS].sort_values(["entry_ts", "market_id", "direction"])
    return out.reset_index(drop=True)


def paper_journal(
    grid: pd.DataFrame,
    signals: pd.DataFrame,
    features: pd.DataFrame,
    book: PaperBookConfig,
    bankroll_usd: float,
    thresholds: SignalThresholds | None = None,
) -> pd.DataFrame:
    """Journal rows of the paper book: the risk gate's simulator (:func:`paper_run`) on ``signals``.

    ``signals`` are the accepted signals (trading_signals); the book is the risk gate's, each side
    staking ``book.stake`` of an equity of ``bankroll_usd`` (the engine is linear in cash, so this
    is the gate's book in USD).
    """
    usd_book = replace(book, stake=book.stake * bankroll_usd)
    if signals.empty or grid.empty:
        return pd.DataFrame(columns=JOURNAL_COLUMNS)
    run = paper_run(grid, signals, usd_book)
    return journal_from_run(run, usd_book.book_config(), signals, features, SOURCE_PAPER, thresholds)


def read_signals(wh: Warehouse) -> pd.DataFrame:
    """Every trading_signals row with every column the table has today (rule, win_prob, ... when there)."""
    return wh.read_frame("SELECT * FROM trading_signals", parse_dates=["bucket_ts", "fill_ts"])


def read_entry_features(wh: Warehouse) -> pd.DataFrame:
    """market_features rows at the buckets where a signal fired (all columns), not the whole table."""
    return wh.read_frame(
        "SELECT f.* FROM market_features f WHERE EXISTS (SELECT 1 FROM trading_signals s "
        "WHERE s.market_id = f.market_id AND s.bucket_ts = f.bucket_ts)",
        parse_dates=["bucket_ts"],
    )

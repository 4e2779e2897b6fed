"""Performance attribution of the trade journal: where the P&L comes from (pure).

Per journal source (backtest, paper) the closed trades are grouped along each *dimension*:

- ``all`` (one group: the source's totals), ``rule``, ``category`` and ``hour`` (UTC hour of the
  entry fill, ``"14:00"``);
- feature buckets: quantile buckets (``n_buckets``, default quartiles, edges over the source's
  trades with a value) of the signal's ``strength``, ``win_prob`` when signals carry it, and of
  the features at entry ``rvr``, ``hype_index``, ``spread`` and every order-book feature present
  (a features key containing ``imbalance``, ``depth`` or ``book``). A bucket is named by its
  range, ``"1.52 to 2.31"``; trades without the value fall in ``"n/a"``.

Per group (closed trades; open ones are only counted in ``trades``): ``pnl`` = realised P&L
after costs (the source's cash units, see journal.py), ``mean_return`` and ``hit_rate`` (share
with P&L > 0, from :func:`kaizen_pipeline.backtest.metrics.trade_metrics`), ``profit_factor``, and
``sharpe`` = mean / std (ddof 1) of the trade returns x sqrt(closed trades per year), trades per
year = the group's closed trades / the years from the source's first entry to its last exit: a
per-trade Sharpe annualised at the rate the group traded (NULL below two trades or at zero std).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.metrics import trade_metrics
from kaizen_pipeline.clock import MINUTES_PER_YEAR

ATTRIBUTION_COLUMNS = [
    "source",
    "dimension",
    "bucket",
    "bucket_order",
    "lower",
    "upper",
    "trades",
    "closed_trades",
    "pnl",
    "mean_return",
    "hit_rate",
    "profit_factor",
    "sharpe",
]
FEATURE_DIMENSIONS = ("rvr", "hype_index", "spread")
BOOK_FEATURE_MARKERS = ("imbalance", "depth", "book")
NA_BUCKET = "n/a"


def _feature_values(journal: pd.DataFrame) -> pd.DataFrame:
    """The journal's ``features`` JSON as numeric columns (non-numeric values dropped)."""
    if "features" not in journal or journal.empty:
        return pd.DataFrame(index=journal.index)
    parsed = [
        json.loads(text) if isinstance(text, str) and text else (text if isinstance(text, dict) else {})
        for text in journal["features"]
    ]
    frame = pd.DataFrame(parsed, index=journal.index)
    return frame.apply(pd.to_numeric, errors="coerce")


def bucket_dimensions(journal: pd.DataFrame, features: pd.DataFrame) -> dict[str, pd.Series]:
    """Numeric series to bucket by quantiles, keyed by dimension name (only those with a value)."""
    out: dict[str, pd.Series] = {}
    for name in ("strength", "win_prob"):
        if name in journal:
            out[name] = pd.to_numeric(journal[name], errors="coerce")
    book = [c for c in features.columns if any(m in c.lower() for m in BOOK_FEATURE_MARKERS)]
    for name in (*FEATURE_DIMENSIONS, *sorted(book)):
        if name in features:
            out[name] = features[name]
    return {k: v for k, v in out.items() if v.notna().any()}


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def quantile_buckets(values: pd.Series, n_buckets: int) -> tuple[pd.Series, pd.DataFrame]:
    """Bucket label per value, and per label its order, lower and upper edge.

    Edges are the quantiles of the known values; equal edges merge (a feature with few distinct
    values gets fewer buckets).
    """
    known = values.dropna()
    labels = pd.Series(NA_BUCKET, index=values.index, dtype=object)
    rows: list[dict[str, object]] = []
    if known.nunique() == 1:
        only = float(known.iloc[0])
        labels[known.index] = _fmt(only)
        rows.append({"bucket": _fmt(only), "bucket_order": 0, "lower": only, "upper": only})
    elif len(known):
        codes, edges = pd.qcut(known, n_buckets, labels=False, retbins=True, duplicates="drop")
        names = [f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        labels[known.index] = [names[int(c)] for c in codes]
        rows += [
            {"bucket": name, "bucket_order": i, "lower": float(edges[i]), "upper": float(edges[i + 1])}
            for i, name in enumerate(names)
        ]
    if labels.eq(NA_BUCKET).any():
        rows.append({"bucket": NA_BUCKET, "bucket_order": len(rows), "lower": None, "upper": None})
    return labels, pd.DataFrame(rows, columns=["bucket", "bucket_order", "lower", "upper"])


def _years(journal: pd.DataFrame) -> float:
    start = pd.to_datetime(journal["entry_ts"]).min()
    end = pd.to_datetime(journal["exit_ts"]).max()
    minutes = (end - start).total_seconds() / 60.0 if pd.notna(start) and pd.notna(end) else 0.0
    return minutes / MINUTES_PER_YEAR


def group_stats(journal: pd.DataFrame, labels: pd.Series, years: float) -> pd.DataFrame:
    """trades, closed_trades, pnl, mean_return, hit_rate, profit_factor, sharpe per label."""
    codes, uniques = pd.factorize(labels, sort=True)
    n = len(uniques)
    closed = (journal["status"] == "closed").to_numpy()
    pnl = pd.to_numeric(journal["pnl"]).to_numpy(dtype=float)
    ret = pd.to_numeric(journal["trade_return"]).to_numpy(dtype=float)
    held = pd.to_numeric(journal["bars_held"]).to_numpy(dtype=float)
    stats = trade_metrics(codes, pnl, ret, closed, held, n, 1)
    frame = pd.DataFrame({"bucket": uniques.astype(str)})
    frame["trades"] = stats["num_trades"]
    frame["closed_trades"] = stats["num_closed_trades"]
    frame["pnl"] = np.bincount(codes[closed], weights=pnl[closed], minlength=n)
    frame["mean_return"] = stats["avg_trade_return"]
    frame["hit_rate"] = stats["win_rate"]
    frame["profit_factor"] = stats["profit_factor"]
    closed_ret = pd.Series(ret[closed]).groupby(codes[closed])
    std = closed_ret.std(ddof=1).reindex(range(n))
    mean = closed_ret.mean().reindex(range(n))
    per_year = frame["closed_trades"] / years if years > 0 else pd.Series(np.nan, index=frame.index)
    sharpe = (mean / std.where(std > 0)) * np.sqrt(per_year)
    frame["sharpe"] = sharpe.where(frame["closed_trades"] >= 2).to_numpy()
    return frame


def _hour_labels(journal: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(journal["entry_ts"]).dt.hour.map(lambda h: f"{h:02d}:00")


def _text_labels(journal: pd.DataFrame, column: str) -> pd.Series:
    if column not in journal:
        return pd.Series(NA_BUCKET, index=journal.index, dtype=object)
    values = journal[column].astype(object)
    return values.where(values.notna() & (values.astype(str) != ""), NA_BUCKET).astype(str)


def _ordered(stats: pd.DataFrame) -> pd.DataFrame:
    stats = stats.sort_values("bucket").reset_index(drop=True)
    stats["bucket_order"] = np.arange(len(stats))
    stats["lower"] = None
    stats["upper"] = None
    return stats


def source_attribution(journal: pd.DataFrame, n_buckets: int = 4) -> pd.DataFrame:
    """Attribution rows (ATTRIBUTION_COLUMNS without ``source``) of one source's journal."""
    years = _years(journal)
    parts: list[pd.DataFrame] = []
    categorical: Iterable[tuple[str, pd.Series]] = (
        ("all", pd.Series("all", index=journal.index, dtype=object)),
        ("rule", _text_labels(journal, "rule")),
        ("category", _text_labels(journal, "category")),
        ("hour", _hour_labels(journal)),
    )
    for dimension, labels in categorical:
        parts.append(_ordered(group_stats(journal, labels, years)).assign(dimension=dimension))
    features = _feature_values(journal)
    for dimension, values in bucket_dimensions(journal, features).items():
        labels, buckets = quantile_buckets(values, n_buckets)
        stats = group_stats(journal, labels, years).merge(buckets, on="bucket", how="left")
        parts.append(stats.sort_values("bucket_order").assign(dimension=dimension))
    return pd.concat(parts, ignore_index=True)


def performance_attribution(journal: pd.DataFrame, n_buckets: int = 4) -> pd.DataFrame:
    """Attribution of every source in the journal, ``ATTRIBUTION_COLUMNS``."""
    if n_buckets < 1:
        raise ValueError(f"performance_attribution: n_buckets must be >= 1 (got {n_buckets})")
    if journal.empty:
        return pd.DataFrame(columns=ATTRIBUTION_COLUMNS)
    parts = [
        source_attribution(rows.reset_index(drop=True), n_buckets).assign(source=source)
        for source, rows in journal.groupby("source", sort=True)
    ]
    out = pd.concat(parts, ignore_index=True)[ATTRIBUTION_COLUMNS]
    out["bucket_order"] = out["bucket_order"].astype(int)
    return out


def pnl_by(attribution: pd.DataFrame, source: str, dimension: str) -> dict[str, float]:
    """Realised P&L per bucket of one dimension of one source (e.g. P&L by rule)."""
    rows = attribution[(attribution["source"] == source) & (attribution["dimension"] == dimension)]
    return {str(b): float(p) for b, p in zip(rows["bucket"], rows["pnl"], strict=True) if math.isfinite(p)}

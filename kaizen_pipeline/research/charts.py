"""Matplotlib charts for the research assets' metadata (pure: figures in, no Dagster)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from kaizen_pipeline.reporting import plt  # pyplot on the headless backend


def market_label(market_id: str, names: Mapping[str, str] | None, width: int = 48) -> str:
    """A market as a reader knows it: its question (cut to ``width``), else its id."""
    name = (names or {}).get(market_id)
    if not name:
        return f"market {market_id}"
    return name if len(name) <= width else name[: width - 1] + "\u2026"


def hype_vs_price_figure(
    hype: pd.DataFrame, prices: pd.DataFrame, markets: list[str], names: Mapping[str, str] | None = None
) -> plt.Figure:
    """Per market (titled by its question): hype index (bars) and the YES price (line) over the hype window."""
    n = max(1, len(markets))
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n), sharex=True, squeeze=False)
    for ax, market_id in zip(axes[:, 0], markets, strict=False):
        h = hype[hype["market_id"] == market_id]
        p = prices[prices["market_id"] == market_id]
        if not h.empty:
            p = p[p["bucket_ts"] >= h["bucket_ts"].min()]
        ax.fill_between(h["bucket_ts"], h["hype_index"].fillna(0), step="post", color="tab:orange", alpha=0.4)
        ax.set_ylim(0, 100)
        ax.set_ylabel("hype", color="tab:orange")
        ax2 = ax.twinx()
        ax2.plot(p["bucket_ts"], p["yes_price"], color="tab:blue", linewidth=1)
        ax2.set_ylabel("YES", color="tab:blue")
        ax.set_title(market_label(market_id, names, width=90), fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def correlation_by_lag_figure(
    correlations: pd.DataFrame, markets: list[str], names: Mapping[str, str] | None = None
) -> plt.Figure:
    """Pearson correlation of hype with returns by lag (> 0: hype leads), one line per market (its question)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for market_id in markets:
        row = correlations[correlations["market_id"] == market_id]
        if row.empty:
            continue
        by_lag = {int(k): v for k, v in json.loads(row.iloc[0]["pearson_by_lag"]).items()}
        lags = sorted(by_lag)
        ax.plot(
            lags,
            [by_lag[k] for k in lags],
            marker="o",
            markersize=3,
            label=market_label(str(market_id), names),
        )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("lag (buckets; > 0 = hype leads price)")
    ax.set_ylabel("Pearson r (pre-whitened)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def equity_figure(timeline: pd.DataFrame) -> plt.Figure:
    """Paper-book equity and drawdown with halted periods shaded."""
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(timeline["bucket_ts"], timeline["equity"], color="tab:blue", linewidth=1, label="equity")
    halted = timeline["state"] != "ok"
    if halted.any():
        lo, hi = float(timeline["equity"].min()), float(timeline["equity"].max())
        ax.fill_between(
            timeline["bucket_ts"], lo, hi, where=halted, color="tab:red", alpha=0.15, label="halted"
        )
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def reliability_figure(reliability: pd.DataFrame) -> plt.Figure:
    """Per rule: mean outcome against the calibrated win probability per bin, and realised against predicted edge.

    Token prices move little within a holding period, so the left panel hugs the diagonal for any
    sensible forecast; the right panel (both minus the price paid) shows whether the edge is real.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8))
    left.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="perfectly calibrated")
    bins = reliability[reliability["bin"] >= 0]
    edges = []
    for rule, group in bins.groupby("rule", sort=True):
        if rule == "*":
            continue
        total = reliability[(reliability["rule"] == rule) & (reliability["bin"] == -1)]
        label = str(rule)
        if not total.empty:
            t = total.iloc[0]
            label = f"{rule}: Brier {t['brier']:.4f} (market {t['brier_market']:.4f}), n={int(t['n'])}"
        left.plot(group["mean_predicted"], group["mean_outcome"], marker="o", label=label)
        predicted = group["mean_predicted"] - group["mean_market"]
        realised = group["mean_outcome"] - group["mean_market"]
        right.scatter(predicted, realised, s=12 + 2 * group["n"].clip(upper=100), alpha=0.7, label=str(rule))
        edges.extend([*predicted, *realised])
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_xlabel("calibrated win probability (out of sample)")
    left.set_ylabel("mean outcome (token price at exit)")
    left.legend(fontsize=7, loc="upper left")
    span = max([abs(e) for e in edges if pd.notna(e)] or [0.01]) * 1.1
    right.plot([-span, span], [-span, span], color="grey", linewidth=0.8, linestyle=":")
    right.axhline(0, color="grey", linewidth=0.6)
    right.axvline(0, color="grey", linewidth=0.6)
    right.set_xlim(-span, span)
    right.set_ylim(-span, span)
    right.set_xlabel("predicted edge (win probability - price paid)")
    right.set_ylabel("realised edge (outcome - price paid)")
    right.set_title("per probability bin (size: signals)", fontsize=9)
    right.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig

"""Charts of the backtest and its studies (pure matplotlib; render with reporting.figure_markdown)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen_pipeline.reporting import plt  # pyplot on the headless backend


def _drawdown(equity: pd.Series, init_cash: float) -> pd.Series:
    peak = np.maximum(equity.cummax(), init_cash)
    return equity / peak - 1.0


def equity_drawdown_figure(curves: dict[str, pd.Series], init_cash: float, title: str) -> plt.Figure:
    """Equity curves on top, their drawdowns below."""
    fig, (ax_eq, ax_dd) = plt.subplots(
        2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    for name, eq in curves.items():
        ax_eq.plot(eq.index, eq.to_numpy(), label=name, linewidth=1.2)
        ax_dd.fill_between(eq.index, _drawdown(eq, init_cash).to_numpy() * 100, 0, alpha=0.35, label=name)
    ax_eq.axhline(init_cash, color="grey", linewidth=0.7, linestyle=":")
    ax_eq.set_ylabel("equity")
    ax_eq.set_title(title)
    if len(curves) > 1:
        ax_eq.legend(fontsize=7, loc="best")
    ax_dd.set_ylabel("drawdown %")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def monte_carlo_figure(timing: pd.DataFrame, bootstrap: pd.DataFrame, actual_return: float) -> plt.Figure:
    """Histograms of the runs' total return with the backtest's actual return marked."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (name, runs) in zip(
        axes, (("entry timing", timing), ("trade bootstrap", bootstrap)), strict=True
    ):
        values = runs["total_return"].to_numpy() * 100
        ax.hist(values, bins=40, color="#4c72b0", alpha=0.8)
        ax.axvline(
            actual_return * 100, color="#c44e52", linewidth=2, label=f"actual {actual_return * 100:.2f}%"
        )
        ax.axvline(0, color="grey", linewidth=0.7, linestyle=":")
        ax.set_title(f"{name}: {len(values)} runs")
        ax.set_xlabel("total return %")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("runs")
    fig.tight_layout()
    return fig


def sensitivity_figure(table: pd.DataFrame) -> plt.Figure:
    """Change of total return and Sharpe per sensitivity row."""
    rows = table[table["parameter"] != "baseline"]
    labels = [f"{p} x{m:g}" for p, m in zip(rows["parameter"], rows["multiplier"], strict=True)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * max(len(rows), 4) + 1.2), sharey=True)
    for ax, metric, scale, unit in (
        (axes[0], "total_return_change", 100, "total return change (pp)"),
        (axes[1], "sharpe_change", 1, "Sharpe change"),
    ):
        values = rows[metric].to_numpy(dtype=float) * scale
        colors = ["#55a868" if v >= 0 else "#c44e52" for v in np.nan_to_num(values)]
        ax.barh(labels, np.nan_to_num(values), color=colors)
        ax.axvline(0, color="grey", linewidth=0.7)
        ax.set_xlabel(unit)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def walk_forward_figure(windows: pd.DataFrame, oos_equity: pd.Series, init_cash: float) -> plt.Figure:
    """In-sample vs out-of-sample daily return per window, and the chained out-of-sample equity."""
    fig, (ax_w, ax_eq) = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(windows))
    ax_w.bar(x - 0.2, windows["is_daily_return"].to_numpy() * 100, width=0.4, label="in sample")
    ax_w.bar(x + 0.2, windows["oos_daily_return"].to_numpy() * 100, width=0.4, label="out of sample")
    ax_w.axhline(0, color="grey", linewidth=0.7)
    ax_w.set_xlabel("window")
    ax_w.set_ylabel("return per day %")
    ax_w.legend(fontsize=8)
    ax_eq.plot(oos_equity.index, oos_equity.to_numpy(), color="#4c72b0")
    ax_eq.axhline(init_cash, color="grey", linewidth=0.7, linestyle=":")
    ax_eq.set_title("out-of-sample equity (test windows chained)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def attribution_figure(attribution: pd.DataFrame, source: str) -> plt.Figure:
    """One source's attribution: realised P&L by rule and by entry hour, hit rate by strength bucket."""
    rows = attribution[attribution["source"] == source]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, dimension, title in (
        (axes[0], "rule", "P&L by rule"),
        (axes[1], "hour", "P&L by entry hour (UTC)"),
    ):
        part = rows[rows["dimension"] == dimension].sort_values("bucket_order")
        values = part["pnl"].to_numpy(dtype=float)
        colors = ["#55a868" if v >= 0 else "#c44e52" for v in np.nan_to_num(values)]
        ax.bar(part["bucket"].astype(str), np.nan_to_num(values), color=colors)
        ax.axhline(0, color="grey", linewidth=0.7)
        ax.set_title(f"{source}: {title}")
        ax.set_ylabel("realised P&L")
        ax.tick_params(axis="x", labelrotation=90 if dimension == "hour" else 0, labelsize=7)
    part = rows[rows["dimension"] == "strength"].sort_values("bucket_order")
    axes[2].bar(part["bucket"].astype(str), np.nan_to_num(part["hit_rate"].to_numpy(dtype=float)) * 100)
    axes[2].axhline(50, color="grey", linewidth=0.7, linestyle=":")
    axes[2].set_title(f"{source}: hit rate by strength bucket")
    axes[2].set_ylabel("hit rate %")
    axes[2].tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    return fig


def tuning_figure(windows: pd.DataFrame) -> plt.Figure:
    """Out-of-sample Sharpe of the tuned vs the config values per scope (mean over the tested windows)."""
    tested = windows[windows["window_index"] >= 0]
    means = tested.groupby("scope")[["oos_score_tuned", "oos_score_default"]].mean().astype(float)
    means = means.head(20)  # the chart stays readable; the table lists every scope
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(means) + 3), 3.8))
    x = np.arange(len(means))
    ax.bar(x - 0.2, means["oos_score_default"].to_numpy(), width=0.4, label="config values", color="#8c8c8c")
    ax.bar(x + 0.2, means["oos_score_tuned"].to_numpy(), width=0.4, label="tuned", color="#4c72b0")
    ax.axhline(0, color="grey", linewidth=0.7)
    ax.set_xticks(x, [str(s) for s in means.index], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("mean out-of-sample Sharpe")
    ax.set_title("tuned vs config values on the test windows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

"""Charts of the kaizen assets' metadata (pure matplotlib; render with reporting.figure_markdown)."""

from __future__ import annotations

import pandas as pd

from kaizen_pipeline.kaizen.loop import ForecastChart
from kaizen_pipeline.reporting import plt  # pyplot on the headless backend


def forecast_figure(charts: list[ForecastChart]) -> plt.Figure:
    """History, forecast mean, interval and deviation line of the charted metrics (one panel each)."""
    fig, axes = plt.subplots(len(charts), 1, figsize=(8, 2.6 * len(charts)), squeeze=False)
    for ax, chart in zip(axes[:, 0], charts, strict=True):
        shown = chart.values.iloc[-90:]
        forecast = chart.forecast
        ax.plot(shown.index, shown.to_numpy(), color="tab:blue", lw=1.2, label="history")
        ax.plot(chart.days, forecast.mean, color="tab:orange", lw=1.2, label="forecast")
        ax.fill_between(
            chart.days, forecast.lower, forecast.upper, color="tab:orange", alpha=0.25, label="interval"
        )
        ax.axhline(chart.deviation_line, color="tab:red", ls="--", lw=1, label="deviation line")
        ax.set_title(
            f"{chart.metric} ({forecast.model.label}); P(deviation) up to {chart.max_probability:.0%}",
            fontsize=9,
        )
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def metric_alert_figure(
    metric: str, history: pd.DataFrame, target: float | None, unit: str = ""
) -> plt.Figure:
    """One metric's daily values (``ts``, ``value``) with its target: the chart a critical metric alert carries."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(history["ts"], history["value"], color="tab:blue", lw=1.4, marker=".", label=metric)
    if len(history):
        last = history.iloc[-1]
        ax.scatter([last["ts"]], [last["value"]], color="tab:red", zorder=3, label="newest")
    if target is not None:
        ax.axhline(target, color="tab:green", ls="--", lw=1, label="target")
    ax.set_title(f"{metric} ({unit})" if unit else metric, fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig

"""Charts of the experiment_results metadata (pure matplotlib; render with reporting.figure_markdown)."""

from __future__ import annotations

import pandas as pd

from kaizen_pipeline.reporting import plt  # pyplot on the headless backend


def effect_over_looks_figure(looks: pd.DataFrame, title: str) -> plt.Figure:
    """Estimated effect (treatment - control) and its always-valid interval at every look, one panel per metric."""
    metrics = list(dict.fromkeys(looks["metric"]))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.2 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        mine = looks[(looks["metric"] == metric) & looks["estimate"].notna()].sort_values("look_at")
        role = mine["role"].iloc[0] if not mine.empty else ""
        if not mine.empty:
            x = mine["days"].to_numpy(float)
            ax.plot(
                x, mine["estimate"].to_numpy(float), marker="o", color="tab:blue", lw=1.2, label="estimate"
            )
            ax.fill_between(x, mine["lower"].to_numpy(float), mine["upper"].to_numpy(float), color="tab:blue",
                            alpha=0.2, label="always-valid interval")  # fmt: skip
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_title(f"{metric} ({role})", fontsize=9)
        ax.set_xlabel("days since start", fontsize=8)
        ax.tick_params(labelsize=7)
        if not mine.empty:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

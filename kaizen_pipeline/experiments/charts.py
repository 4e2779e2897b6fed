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


def rollout_timeline_figure(
    timelines: dict[str, pd.DataFrame], created: dict[str, pd.Timestamp]
) -> plt.Figure:
    """One row per rollout: the flag's allocation over time, then each guardrail's estimate and always-valid bounds.

    ``timelines`` maps a deployment id to :func:`kaizen_pipeline.loop.history.timeline`; ``created`` to
    its start, the origin of the time axis (hours since the rollout began).
    """
    metrics = {dep: list(dict.fromkeys(t["metric"].dropna())) for dep, t in timelines.items()}
    ncols = 1 + max((len(m) for m in metrics.values()), default=0)
    # one time axis per row: a guardrail's bounds line up with the step they were measured at
    fig, axes = plt.subplots(
        len(timelines), ncols, figsize=(3.6 * ncols, 2.4 * len(timelines)), squeeze=False, sharex="row"
    )
    for row, (dep, frame) in zip(axes, timelines.items(), strict=True):
        hours = (frame["time"] - created[dep]) / pd.Timedelta(hours=1)
        looks = frame.assign(hours=hours).drop_duplicates("time")
        ax = row[0]
        ax.plot(looks["hours"], 100 * looks["allocation"], drawstyle="steps-post", marker="o", ms=3,
                color="tab:blue", lw=1.2, label="allocation after the look")  # fmt: skip
        back = looks[looks["action"] == "rollback"]
        if not back.empty:
            ax.scatter(back["hours"], 100 * back["allocation"], marker="x", s=40, color="tab:red", zorder=3,
                       label="rolled back")  # fmt: skip
        ax.set_ylim(-5, 105)
        ax.set_ylabel("% of units", fontsize=8)
        ax.set_title(dep, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        for ax, metric in zip(row[1:], metrics[dep] + [None] * (ncols - 1 - len(metrics[dep])), strict=True):
            if metric is None:
                ax.axis("off")  # a rollout with fewer guardrails than its neighbours
                continue
            mine = frame.assign(hours=hours)[(frame["metric"] == metric) & frame["estimate"].notna()]
            if not mine.empty:
                ax.plot(mine["hours"], mine["estimate"], marker="o", ms=3, color="tab:blue", lw=1.2,
                        label="change - control")  # fmt: skip
                ax.fill_between(mine["hours"].to_numpy(float), mine["lower"].to_numpy(float),
                                mine["upper"].to_numpy(float), color="tab:blue", alpha=0.2,
                                label="always-valid bounds")  # fmt: skip
                ax.legend(fontsize=7, loc="best")
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_title(f"{metric} (guardrail)", fontsize=9)
        for ax in row:
            ax.set_xlabel("hours since the rollout began", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig

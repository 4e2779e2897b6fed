"""The current constraint: critical-path ranking of pipeline steps and gap ranking of outcome metrics (pure).

Pipeline: in each run, the critical path is found by walking back from the step that
finished last to the step it waited for (the latest-finishing step that ended before it
started), and so on. A step's ``critical_share`` is its share of all critical-path seconds
over the runs in the window; its ``failure_share`` is its share of all step failures. The
step with the largest ``critical_share + failure_share`` dominates the pipeline.

Outcomes: each metric's importance-weighted relative gap to its target (negative when the
target is met, so there is always a tightest metric).

The one constraint: when a pipeline-health metric deviates, the machinery limits everything
downstream, so the constraint is in the pipeline (the dominating step, or the deviating metric
itself when no step history is available); otherwise it is the outcome metric with the largest
weighted gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.kaizen.registry import MetricSpec, better_sign, is_deviation

STEP_COLUMNS = ["run_id", "step_key", "status", "start", "end"]
_TOLERANCE_SECONDS = 1e-3  # a successor may start a hair before its input's end event is stamped


def critical_path(steps: pd.DataFrame) -> list[str]:
    """Step keys on one run's critical path, first to last (``steps``: step_key, start, end as epoch seconds)."""
    frame = steps.dropna(subset=["start", "end"]).sort_values(["end", "start", "step_key"])
    if frame.empty:
        return []
    rows = list(frame.itertuples(index=False))
    current = rows[-1]
    path = [current.step_key]
    remaining = rows[:-1]
    while True:
        remaining = [r for r in remaining if r is not current and r.end <= current.start + _TOLERANCE_SECONDS]
        if not remaining:
            break
        current = max(remaining, key=lambda r: (r.end, r.start))
        path.append(current.step_key)
    return path[::-1]


def pipeline_ranking(steps: pd.DataFrame) -> pd.DataFrame:
    """Rank steps by critical-path duration share plus failure share over all runs in ``steps``.

    ``steps`` columns: run_id, step_key, status ('success', 'failure', 'skipped', ...), start, end
    (epoch seconds). Returns step_key, runs, critical_runs, critical_seconds, critical_share,
    failures, failure_share, score, rank (1 = the dominating step).
    """
    columns = [
        "step_key", "runs", "critical_runs", "critical_seconds", "critical_share",
        "failures", "failure_share", "score", "rank",
    ]  # fmt: skip
    if steps is None or steps.empty:
        return pd.DataFrame(columns=columns)
    missing = set(STEP_COLUMNS) - set(steps.columns)
    if missing:
        raise ValueError(f"steps: missing columns {sorted(missing)}")
    frame = steps.copy()
    frame["status"] = frame["status"].astype(str).str.lower()
    frame["duration"] = (frame["end"] - frame["start"]).clip(lower=0)
    critical_seconds: dict[str, float] = {}
    critical_runs: dict[str, int] = {}
    for _, run_steps in frame.groupby("run_id", sort=False):
        path = critical_path(run_steps)
        durations = run_steps.set_index("step_key")["duration"]
        for key in path:
            value = durations.loc[key]
            seconds = float(value.max() if isinstance(value, pd.Series) else value)
            critical_seconds[key] = critical_seconds.get(key, 0.0) + (0.0 if np.isnan(seconds) else seconds)
            critical_runs[key] = critical_runs.get(key, 0) + 1
    stats = frame.groupby("step_key").agg(
        runs=("run_id", "nunique"), failures=("status", lambda s: int((s == "failure").sum()))
    )
    stats["critical_seconds"] = pd.Series(critical_seconds).reindex(stats.index).fillna(0.0)
    stats["critical_runs"] = pd.Series(critical_runs).reindex(stats.index).fillna(0).astype(int)
    total_seconds = stats["critical_seconds"].sum()
    total_failures = stats["failures"].sum()
    stats["critical_share"] = stats["critical_seconds"] / total_seconds if total_seconds > 0 else 0.0
    stats["failure_share"] = stats["failures"] / total_failures if total_failures > 0 else 0.0
    stats["score"] = stats["critical_share"] + stats["failure_share"]
    stats = stats.reset_index().sort_values(["score", "failures", "step_key"], ascending=[False, False, True])
    stats["rank"] = np.arange(1, len(stats) + 1)
    return stats[columns].reset_index(drop=True)


def outcome_ranking(latest: Mapping[str, float], specs: Iterable[MetricSpec], factor: float) -> pd.DataFrame:
    """Rank metrics by importance x relative gap to target (gap < 0: target met by that margin).

    Returns metric, category, value, target, relative_gap, importance, weighted_gap, deviates, rank.
    """
    rows = []
    for spec in specs:
        value = latest.get(spec.name)
        if value is None or not np.isfinite(value):
            continue
        shortfall = (spec.target - value) * better_sign(spec)
        relative = shortfall / abs(spec.target) if spec.target else shortfall
        rows.append(
            {
                "metric": spec.name,
                "category": spec.category,
                "value": float(value),
                "target": spec.target,
                "relative_gap": float(relative),
                "importance": spec.importance,
                "weighted_gap": float(relative * spec.importance),
                "deviates": is_deviation(spec, float(value), factor),
            }
        )
    columns = [
        "metric", "category", "value", "target", "relative_gap", "importance", "weighted_gap", "deviates", "rank",
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).sort_values(["weighted_gap", "metric"], ascending=[False, True])
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame[columns].reset_index(drop=True)


@dataclass(frozen=True)
class Constraint:
    """The one current constraint and why it was chosen."""

    kind: str  # 'pipeline' or 'outcome'
    name: str  # a step key or a metric name
    metric: str | None  # the metric it shows up in (what recommendations target)
    explanation: str


def choose_constraint(metric_ranking: pd.DataFrame, step_ranking: pd.DataFrame) -> Constraint | None:
    """Apply the rule in the module docstring to the two rankings (None: no metric has a value)."""
    if metric_ranking is None or metric_ranking.empty:
        return None
    pipeline = metric_ranking[(metric_ranking["category"] == "pipeline") & metric_ranking["deviates"]]
    if not pipeline.empty:
        symptom = pipeline.iloc[0]
        gap = f"{symptom['metric']} = {symptom['value']:.4g} against target {symptom['target']:.4g}"
        if step_ranking is not None and not step_ranking.empty:
            top = step_ranking.iloc[0]
            return Constraint(
                kind="pipeline",
                name=str(top["step_key"]),
                metric=str(symptom["metric"]),
                explanation=(
                    f"Pipeline health deviates ({gap}); step {top['step_key']} dominates the critical path "
                    f"({top['critical_share']:.0%} of critical-path time, {int(top['failures'])} failures)."
                ),
            )
        return Constraint(
            kind="pipeline",
            name=str(symptom["metric"]),
            metric=str(symptom["metric"]),
            explanation=f"Pipeline health deviates ({gap}); no step history in the window to localise it.",
        )
    outcomes = metric_ranking[metric_ranking["category"] == "outcome"]
    pool = outcomes if not outcomes.empty else metric_ranking
    top = pool.iloc[0]
    if top["weighted_gap"] > 0:
        why = f"largest importance-weighted gap to target ({top['relative_gap']:.1%} short, weight {top['importance']:g})"
    else:
        why = f"every target is met; this one has the thinnest weighted margin ({-top['relative_gap']:.1%})"
    return Constraint(
        kind=str(top["category"]),
        name=str(top["metric"]),
        metric=str(top["metric"]),
        explanation=f"{top['metric']} = {top['value']:.4g} (target {top['target']:.4g}): {why}.",
    )

"""Cadence reports (daily cycle, weekly analysis, monthly review, quarterly strategy, yearly planning).

Pure: takes frames already read from the warehouse and returns markdown that reads well in
the Dagster UI. Every report says what moved, what deviates, the constraint, the
improvements validated in the period with their ROI, and the recommendations; longer
cadences add forecast accuracy, the resource plan, feedback, constraint history and a
targets review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from kaizen_pipeline.kaizen.registry import MetricSpec, better_sign, is_deviation
from kaizen_pipeline.reporting import markdown_table

CADENCES: dict[str, str] = {
    "daily": "Daily kaizen cycle",
    "weekly": "Weekly analysis",
    "monthly": "Monthly review",
    "quarterly": "Quarterly strategy",
    "yearly": "Yearly planning",
}


def period_bounds(cadence: str, as_of: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the period a report at ``as_of`` covers: the one holding the instant before ``as_of``.

    A schedule firing at 00:00 on the 1st therefore reviews the month that just ended; a
    report launched mid-month covers the month so far.
    """
    last = pd.Timestamp(as_of) - pd.Timedelta(microseconds=1)
    day = last.normalize()
    if cadence == "daily":
        start = day
        end = start + pd.Timedelta(days=1)
    elif cadence == "weekly":
        start = day - pd.Timedelta(days=day.weekday())
        end = start + pd.Timedelta(days=7)
    elif cadence == "monthly":
        start = day.replace(day=1)
        end = start + pd.offsets.MonthBegin(1)
    elif cadence == "quarterly":
        start = day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
        end = start + pd.offsets.MonthBegin(3)
    elif cadence == "yearly":
        start = day.replace(month=1, day=1)
        end = start + pd.offsets.YearBegin(1)
    else:
        raise ValueError(f"cadence: must be one of {sorted(CADENCES)}, got {cadence!r}")
    return start.to_pydatetime(), pd.Timestamp(end).to_pydatetime()


def what_moved(
    history: pd.DataFrame, specs: Mapping[str, MetricSpec], start: datetime, end: datetime
) -> pd.DataFrame:
    """Each metric's change over [start, end): its last value in the period against the last value
    before the period (else the period's first value), and whether that was for the better."""
    columns = ["metric", "before", "last", "change", "pct_change", "moved"]
    if history.empty:
        return pd.DataFrame(columns=columns)
    frame = history.assign(ts=pd.to_datetime(history["ts"])).sort_values("ts")
    rows = []
    for metric, group in frame.groupby("metric", sort=False):
        if metric not in specs:
            continue
        inside = group[(group["ts"] >= pd.Timestamp(start)) & (group["ts"] < pd.Timestamp(end))]
        earlier = group[group["ts"] < pd.Timestamp(start)]
        if inside.empty or (earlier.empty and len(inside) < 2):
            continue
        before = float(earlier["value"].iloc[-1]) if not earlier.empty else float(inside["value"].iloc[0])
        last = float(inside["value"].iloc[-1])
        change = last - before
        better = change * better_sign(specs[metric])
        rows.append(
            {
                "metric": metric,
                "before": before,
                "last": last,
                "change": change,
                "pct_change": change / abs(before) if before else None,
                "moved": "better" if better > 0 else ("worse" if better < 0 else "flat"),
            }
        )
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["_abs"] = out["pct_change"].abs().fillna(0)
    return out.sort_values("_abs", ascending=False)[columns].reset_index(drop=True)


def status_table(latest: pd.DataFrame, specs: Mapping[str, MetricSpec], factor: float) -> pd.DataFrame:
    """Latest value of every registered metric against its target and deviation line."""
    rows = []
    values = dict(zip(latest["metric"], latest["value"], strict=False)) if not latest.empty else {}
    days = dict(zip(latest["metric"], latest["ts"], strict=False)) if not latest.empty else {}
    for name, spec in specs.items():
        value = values.get(name)
        has = value is not None and np.isfinite(value)
        rows.append(
            {
                "metric": name,
                "value": float(value) if has else None,
                "target": spec.target,
                "direction": spec.direction,
                "status": ("DEVIATES" if is_deviation(spec, float(value), factor) else "ok")
                if has
                else "no data",
                "severity": spec.severity,
                "owner": spec.owner,
                "day": pd.Timestamp(days[name]).strftime("%Y-%m-%d") if has else "",
            }
        )
    return pd.DataFrame(rows)


@dataclass
class ReportInputs:
    """Everything a report may show; empty frames render as '_no rows_'."""

    history: pd.DataFrame  # metric, ts, value (scope '*')
    latest: pd.DataFrame  # metric, ts, value: newest point per metric
    trends: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecast_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    anomalies: pd.DataFrame = field(default_factory=pd.DataFrame)
    bottleneck: pd.DataFrame = field(default_factory=pd.DataFrame)  # newest ranking
    constraint_history: pd.DataFrame = field(default_factory=pd.DataFrame)  # as_of, candidate, kind
    impacts: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    plan: pd.DataFrame = field(default_factory=pd.DataFrame)
    feedback: pd.DataFrame = field(default_factory=pd.DataFrame)  # weekly summary
    velocity: pd.DataFrame = field(default_factory=pd.DataFrame)


def _in_period(frame: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    if frame.empty or column not in frame.columns:
        return frame.iloc[0:0] if not frame.empty else frame
    ts = pd.to_datetime(frame[column])
    return frame[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


def render_report(
    cadence: str, as_of: datetime, inputs: ReportInputs, specs: Mapping[str, MetricSpec], factor: float
) -> tuple[str, dict[str, float | int | str]]:
    """Markdown report for ``cadence`` at ``as_of`` and a few headline numbers for metadata."""
    start, end = period_bounds(cadence, as_of)
    title = CADENCES[cadence]
    status = status_table(inputs.latest, specs, factor)
    deviating = status[status["status"] == "DEVIATES"]
    measured = status[status["status"] != "no data"]
    constraint_row = (
        inputs.bottleneck[inputs.bottleneck["is_constraint"].astype(bool)]
        if not inputs.bottleneck.empty and "is_constraint" in inputs.bottleneck.columns
        else pd.DataFrame()
    )
    constraint_text = (
        f"**{constraint_row.iloc[0]['candidate']}** ({constraint_row.iloc[0]['kind']}, "
        f"{constraint_row.iloc[0]['category']}): {constraint_row.iloc[0]['explanation']}"
        if not constraint_row.empty
        else "_not determined yet (materialize `bottleneck`)_"
    )
    validated = _in_period(inputs.impacts, "validated_at", start, end)
    if not validated.empty:
        validated = validated[validated["verdict"] != "pending"]
    lines = [
        f"# {title}: {start:%Y-%m-%d} to {(pd.Timestamp(end) - pd.Timedelta(days=1)):%Y-%m-%d}",
        "",
        f"{len(measured) - len(deviating)} of {len(measured)} measured metrics on target; "
        f"{len(deviating)} deviate ({', '.join(deviating['metric']) or 'none'}). "
        f"{len(validated)} improvement(s) validated in the period.",
        "",
        "## The constraint",
        constraint_text,
        "",
    ]
    if not inputs.bottleneck.empty:
        ranked = inputs.bottleneck.sort_values("rank")
        metrics = ranked[ranked["kind"] == "metric"][
            ["rank", "candidate", "category", "value", "target", "score"]
        ]
        lines += ["Metrics by importance-weighted gap to target:", "", markdown_table(metrics.rename(
            columns={"candidate": "metric", "score": "weighted_gap"}), max_rows=5), ""]  # fmt: skip
        steps = ranked[ranked["kind"] == "step"]
        if not steps.empty:
            steps = steps[["rank", "candidate", "critical_share", "failures", "score"]].rename(
                columns={"candidate": "step"}
            )
            lines += [
                "Steps by critical-path share + failure share:",
                "",
                markdown_table(steps, max_rows=5),
                "",
            ]
    moved = what_moved(inputs.history, specs, start, end)
    lines += ["## What moved", markdown_table(moved, max_rows=15), ""]
    lines += [
        "## What deviates",
        markdown_table(deviating if not deviating.empty else deviating, max_rows=20),
        "",
    ]
    if cadence == "daily":
        anomalies = _in_period(inputs.anomalies, "ts", start, end)
        warnings_ = (
            inputs.forecast_summary[inputs.forecast_summary["early_warning"].astype(bool)]
            if not inputs.forecast_summary.empty
            else inputs.forecast_summary
        )
        lines += ["## Anomalies in the period", markdown_table(anomalies, max_rows=10), ""]
        cols = [
            c for c in ("metric", "warning_ts", "warning_step", "max_deviation_probability") if c in warnings_
        ]
        lines += [
            "## Early warnings (forecast crosses the deviation line)",
            markdown_table(warnings_[cols] if cols else warnings_),
            "",
        ]
    if cadence in ("weekly", "monthly", "quarterly", "yearly"):
        if not inputs.trends.empty:
            cols = ["metric", "verdict", "slope_per_day", "p_value", "wow_change", "wow_pct_change"]
            lines += [
                "## Trends (Mann-Kendall, Sen slope)",
                markdown_table(inputs.trends[cols], max_rows=20),
                "",
            ]
        if not inputs.forecast_summary.empty:
            cols = [
                c
                for c in ("metric", "model", "mase", "naive_mase", "early_warning")
                if c in inputs.forecast_summary
            ]
            lines += [
                "## Forecast accuracy (rolling-origin MASE)",
                markdown_table(inputs.forecast_summary[cols]),
                "",
            ]
    impact_cols = [
        c
        for c in ("improvement_id", "target_metric", "verdict", "actual_effect", "ci_low", "ci_high",
                  "predicted_effect", "abs_pct_error", "roi")
        if c in validated.columns
    ]  # fmt: skip
    lines += [
        "## Improvements validated in the period (effect, ROI, accuracy)",
        markdown_table(validated[impact_cols] if impact_cols else validated),
        "",
    ]
    if cadence in ("monthly", "quarterly", "yearly") and not inputs.feedback.empty:
        lines += ["## Feedback", markdown_table(_in_period(inputs.feedback, "week_start", start, end)), ""]
    if cadence in ("quarterly", "yearly"):
        history = _in_period(inputs.constraint_history, "as_of", start, end)
        if not history.empty:
            counts = history.groupby(["kind", "candidate"]).size().rename("days_as_constraint").reset_index()
            counts = counts.sort_values("days_as_constraint", ascending=False)
            lines += ["## Constraint history", markdown_table(counts), ""]
        done = (
            inputs.impacts[inputs.impacts["verdict"] != "pending"]
            if not inputs.impacts.empty
            else inputs.impacts
        )
        if not done.empty:
            by_metric = (
                done.groupby("target_metric")
                .agg(validated=("verdict", "size"), total_value_usd=("value_usd", "sum"), total_cost_usd=("cost_usd", "sum"),
                     mean_roi=("roi", "mean"), mean_relative_bias=("relative_bias", "mean"))
                .reset_index()
            )  # fmt: skip
            lines += ["## Return by metric (all validated improvements)", markdown_table(by_metric), ""]
    if cadence == "yearly":
        lines += ["## Targets review", markdown_table(targets_review(inputs.history, specs, start, end)), ""]
        if not inputs.velocity.empty:
            lines += ["## Learning velocity", markdown_table(inputs.velocity, max_rows=60), ""]
    rec_cols = [
        c
        for c in ("rank", "title", "target_metric", "addresses_constraint", "corrected_effect", "expected_roi",
                  "expected_return")
        if c in inputs.recommendations.columns
    ]  # fmt: skip
    recs = inputs.recommendations[rec_cols] if rec_cols else inputs.recommendations
    lines += ["## Recommendations", markdown_table(recs, max_rows=5 if cadence == "daily" else 10), ""]
    if cadence != "daily" and not inputs.plan.empty:
        chosen = (
            inputs.plan[inputs.plan["selected"].astype(bool)] if "selected" in inputs.plan else inputs.plan
        )
        cols = [
            c for c in ("catalogue_key", "expected_return", "cost_hours", "cost_money") if c in chosen.columns
        ]
        first = inputs.plan.iloc[0]
        left = (
            f"Capacity left: {first['hours_left']:.1f} h and {first['money_left']:.0f} USD "
            f"of {first['budget_hours']:.1f} h and {first['budget_money']:.0f} USD per {first['period']}."
            if "hours_left" in inputs.plan.columns
            else ""
        )
        lines += ["## Resource plan", markdown_table(chosen[cols] if cols else chosen), "", left, ""]
    headline: dict[str, float | int | str] = {
        "period_start": f"{start:%Y-%m-%d}",
        "period_end": f"{end:%Y-%m-%d}",
        "metrics_measured": len(measured),
        "metrics_deviating": len(deviating),
        "improvements_validated": len(validated),
        "constraint": str(constraint_row.iloc[0]["candidate"]) if not constraint_row.empty else "",
    }
    return "\n".join(lines).rstrip() + "\n", headline


def targets_review(
    history: pd.DataFrame, specs: Mapping[str, MetricSpec], start: datetime, end: datetime
) -> pd.DataFrame:
    """Per metric over the period: share of days on target, mean, and a planning suggestion.

    Met on >= 90% of days with the mean 10% past target: tighten the target to the mean;
    met on < 50% of days: re-plan (capacity or target); otherwise keep.
    """
    columns = ["metric", "days", "share_on_target", "mean", "target", "suggestion"]
    inside = _in_period(history, "ts", start, end)
    if inside.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for metric, group in inside.groupby("metric"):
        spec = specs.get(metric)
        if spec is None:
            continue
        values = group["value"].to_numpy(dtype=float)
        sign = better_sign(spec)
        on_target = float(np.mean(values * sign >= spec.target * sign))
        mean = float(values.mean())
        margin = (mean - spec.target) * sign / abs(spec.target) if spec.target else 0.0
        if on_target >= 0.9 and margin >= 0.1:
            suggestion = f"tighten target to {mean:.4g}"
        elif on_target < 0.5:
            suggestion = "re-plan: target met on under half the days"
        else:
            suggestion = "keep"
        rows.append(
            {"metric": metric, "days": len(values), "share_on_target": on_target, "mean": mean,
             "target": spec.target, "suggestion": suggestion}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)

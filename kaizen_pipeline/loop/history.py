"""What the loop shipped and how it went: DORA-style figures of the guarded rollouts, and each rollout's timeline.

Pure pandas on the warehouse tables (no Dagster): ``deployments`` (states, steps, times), the
``decision_log`` (when a rollout completed or was rolled back), ``experiments`` and
``recommendations`` (when the change was first recommended), ``deployment_steps`` (every look).

- **changes shipped per week**: rollouts that reached ``complete`` in the last ``window_days`` (or
  since the first rollout, if that is shorter, but at least a week), per week;
- **lead time**: recommendation to 100% of units, in days, over the rollouts that reached their last
  step. The recommendation time is the first ``recommendations.as_of`` (a metric day) of the
  experiment's catalogue key since that key's previous experiment ended, else the day the experiment
  was drafted; a rollout a person started has no recommendation on record, so its own start counts;
- **change failure rate**: rolled back / finished (complete or rolled back);
- **time to roll back**: hours from a rollout's start to its rollback (median).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.loop.runner import NO_GUARDRAIL
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import decision_log, deployment_steps, deployments, experiments

DEFAULT_WINDOW_DAYS = 28
# where a rollout's recommendation time comes from (the recommended_from column), and what it means
FROM_RECOMMENDATION = "recommendation"
FROM_EXPERIMENT = "experiment drafted"
FROM_PERSON = "rollout start"
BASES = {
    FROM_RECOMMENDATION: "the first recommendations.as_of (a metric day) of the experiment's catalogue key",
    FROM_EXPERIMENT: "the experiment was drafted (no earlier recommendation row is kept)",
    FROM_PERSON: "a person started the rollout: no recommendation on record, so its start counts",
}


@dataclass(frozen=True)
class RolloutHistory:
    """The tables the figures are computed from, as read (see :func:`read_history`)."""

    deployments: pd.DataFrame
    decisions: pd.DataFrame  # decision_log rows of deployments
    experiments: pd.DataFrame
    recommendations: pd.DataFrame
    steps: pd.DataFrame  # deployment_steps


@dataclass(frozen=True)
class DoraFigures:
    """The loop's delivery figures; None where nothing has happened yet to measure."""

    shipped_per_week: float
    window_weeks: float
    shipped: int
    rolled_back: int
    finished: int
    in_progress: int
    lead_time_days_median: float | None
    lead_time_days_mean: float | None
    change_failure_rate: float | None
    hours_to_roll_back_median: float | None


def read_history(wh: Warehouse) -> RolloutHistory:
    """Every rollout, its logged moves and looks, and the experiments and recommendations behind them."""
    recs = wh.table("recommendations")
    return RolloutHistory(
        deployments=wh.read_frame(
            sa.select(deployments).order_by(deployments.c.created_at, deployments.c.deployment_id),
            parse_dates=["step_started_at", "created_at", "ended_at", "last_look_at", "updated_at"],
        ),
        decisions=wh.read_frame(
            sa.select(decision_log)
            .where(decision_log.c.subject_kind == "deployment")
            .order_by(decision_log.c.decision_id),
            parse_dates=["decided_at", "undone_at"],
        ),
        experiments=wh.read_frame(
            sa.select(
                experiments.c.experiment_id,
                experiments.c.catalogue_key,
                experiments.c.created_at,
                experiments.c.ended_at,
            ),
            parse_dates=["created_at", "ended_at"],
        ),
        recommendations=wh.read_frame(
            sa.select(recs.c.catalogue_key, recs.c.as_of).distinct().order_by(recs.c.as_of),
            parse_dates=["as_of"],
        ),
        steps=wh.read_frame(
            sa.select(deployment_steps).order_by(deployment_steps.c.look_at, deployment_steps.c.metric),
            parse_dates=["look_at"],
        ),
    )


def _recommended(row: dict[str, Any], exps: pd.DataFrame, recs: pd.DataFrame) -> tuple[pd.Timestamp, str]:
    """When the change behind a rollout was first recommended, and where that time comes from."""
    exp = exps[exps["experiment_id"] == row["source"]]
    if exp.empty:
        return pd.Timestamp(row["created_at"]), FROM_PERSON
    drafted = pd.Timestamp(exp["created_at"].iloc[0])
    key = exp["catalogue_key"].iloc[0]
    # a key tested before and recommended again: this rollout's lead time starts after that test ended,
    # not at the first time the key was ever recommended
    earlier = exps[(exps["catalogue_key"] == key) & (exps["created_at"] < drafted)]
    since = earlier["ended_at"].max() if not earlier.empty else pd.NaT
    mine = recs[(recs["catalogue_key"] == key) & (recs["as_of"] <= drafted)]
    if pd.notna(since):
        mine = mine[mine["as_of"] >= since]
    if not mine.empty and mine["as_of"].min() < drafted:
        return pd.Timestamp(mine["as_of"].min()), FROM_RECOMMENDATION
    return drafted, FROM_EXPERIMENT


def _first_logged(
    decisions: pd.DataFrame, deployment_id: str, action: str
) -> tuple[pd.Timestamp, str | None]:
    """When ``action`` was first logged for the rollout and by whom (NaT, None if never)."""
    if decisions.empty:
        return pd.NaT, None
    mine = decisions[(decisions["subject_id"] == deployment_id) & (decisions["action"] == action)]
    if mine.empty:
        return pd.NaT, None
    first = mine.sort_values("decided_at").iloc[0]
    return pd.Timestamp(first["decided_at"]), str(first["actor"])


def per_deployment(history: RolloutHistory) -> pd.DataFrame:
    """One row per rollout: state, step, recommendation time and basis, 100%, ship and rollback times, lead time."""
    columns = ["deployment_id", "parameter", "state", "step", "created_at", "recommended_at", "recommended_from",
               "full_at", "shipped_at", "rolled_back_at", "rolled_back_by", "lead_time_days", "hours_to_roll_back"]  # fmt: skip
    rows = []
    for row in history.deployments.to_dict("records"):
        dep = row["deployment_id"]
        steps = json.loads(row["steps"])
        last = len(steps) - 1
        recommended_at, basis = _recommended(row, history.experiments, history.recommendations)
        # the last step's start is kept by complete and rollback: the time every unit got the change
        at_full = row["step_index"] == last and row["state"] != "awaiting_approval"
        full_at = pd.Timestamp(row["step_started_at"]) if at_full else pd.NaT
        shipped_at, _ = _first_logged(history.decisions, dep, "complete")
        if pd.isna(shipped_at) and row["state"] == "complete":
            shipped_at = pd.Timestamp(row["ended_at"])
        rolled_back_at, rolled_back_by = pd.NaT, None
        if row["state"] == "rolled_back":
            rolled_back_at, rolled_back_by = _first_logged(history.decisions, dep, "rollback")
            if pd.isna(rolled_back_at):
                rolled_back_at = pd.Timestamp(row["ended_at"])
        created = pd.Timestamp(row["created_at"])
        rows.append({
            "deployment_id": dep, "parameter": row["parameter"], "state": row["state"],
            "step": f"{row['step_index'] + 1} of {len(steps)} ({steps[row['step_index']]:.0%})",
            "created_at": created, "recommended_at": recommended_at, "recommended_from": basis,
            "full_at": full_at, "shipped_at": shipped_at, "rolled_back_at": rolled_back_at,
            "rolled_back_by": rolled_back_by,
            "lead_time_days": (full_at - recommended_at) / timedelta(days=1) if pd.notna(full_at) else None,
            "hours_to_roll_back": (rolled_back_at - created) / timedelta(hours=1) if pd.notna(rolled_back_at) else None,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("lead_time_days", "hours_to_roll_back"):
        frame[col] = frame[col].astype(float)
    return frame


def _stat(values: pd.Series, how: str) -> float | None:
    values = values.dropna()
    return float(getattr(values, how)()) if not values.empty else None


def dora_figures(
    frame: pd.DataFrame, now: datetime, *, window_days: int = DEFAULT_WINDOW_DAYS
) -> DoraFigures:
    """The figures of the module docstring from :func:`per_deployment`'s frame, as of ``now``."""
    now_ts = pd.Timestamp(now)
    first = frame["created_at"].min() if not frame.empty else now_ts
    # a young loop is not judged on weeks it did not exist, nor on less than one week
    span = min(max(now_ts - first, timedelta(days=7)), timedelta(days=window_days))
    shipped_at = frame["shipped_at"].dropna() if not frame.empty else pd.Series(dtype="datetime64[ns]")
    recent = int(((shipped_at > now_ts - span) & (shipped_at <= now_ts)).sum())
    weeks = span / timedelta(days=7)
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    complete, rolled_back = int(states.get("complete", 0)), int(states.get("rolled_back", 0))
    finished = complete + rolled_back
    return DoraFigures(
        shipped_per_week=recent / weeks,
        window_weeks=weeks,
        shipped=int(len(shipped_at)),
        rolled_back=rolled_back,
        finished=finished,
        in_progress=len(frame) - finished,
        lead_time_days_median=_stat(frame["lead_time_days"], "median"),
        lead_time_days_mean=_stat(frame["lead_time_days"], "mean"),
        change_failure_rate=rolled_back / finished if finished else None,
        hours_to_roll_back_median=_stat(frame["hours_to_roll_back"], "median"),
    )


def weekly(frame: pd.DataFrame) -> pd.DataFrame:
    """Rollouts shipped and rolled back per week (Monday), oldest first."""
    events = pd.concat(
        [
            pd.DataFrame({"at": frame["shipped_at"].dropna(), "kind": "shipped"}),
            pd.DataFrame({"at": frame["rolled_back_at"].dropna(), "kind": "rolled_back"}),
        ]
    )
    if events.empty:
        return pd.DataFrame(columns=["week_start", "shipped", "rolled_back"])
    at = pd.to_datetime(events["at"])
    events["week_start"] = (at - pd.to_timedelta(at.dt.weekday, unit="D")).dt.normalize()
    table = events.pivot_table(index="week_start", columns="kind", values="at", aggfunc="count", fill_value=0)
    table = table.reindex(columns=["shipped", "rolled_back"], fill_value=0).astype(int)
    return table.reset_index().rename_axis(columns=None)


def timeline(steps: pd.DataFrame, deployment: dict[str, Any]) -> pd.DataFrame:
    """One rollout's looks: time, the flag's allocation after the look, and each guardrail's estimate and bounds.

    ``allocation`` is what the flag served from that look on: the next step's share after an advance
    the loop made, 0 after a rollback, else the share looked at. A rollback by a person between looks
    ends the timeline at its time with allocation 0.
    """
    shares = json.loads(deployment["steps"])
    mine = steps[steps["deployment_id"] == deployment["deployment_id"]].sort_values(["look_at", "metric"])
    moved = mine["applied"].astype(bool)
    after = mine["share"].astype(float).copy()
    advanced = moved & (mine["action"] == "advance")
    after[advanced] = [shares[min(i + 1, len(shares) - 1)] for i in mine.loc[advanced, "step_index"]]
    after[moved & (mine["action"] == "rollback")] = 0.0
    frame = pd.DataFrame({
        "time": pd.to_datetime(mine["look_at"]), "share": mine["share"].astype(float), "allocation": after,
        "action": mine["action"], "metric": mine["metric"].where(mine["metric"] != NO_GUARDRAIL),
        "estimate": mine["estimate"].astype(float), "lower": mine["lower"].astype(float),
        "upper": mine["upper"].astype(float), "outcome": mine["outcome"],
    })  # fmt: skip
    ended = pd.Timestamp(deployment["ended_at"]) if pd.notna(deployment.get("ended_at")) else pd.NaT
    rolled_back_later = deployment["state"] == "rolled_back" and (
        frame.empty or frame["allocation"].iloc[-1] > 0
    )
    if rolled_back_later and pd.notna(ended):
        end = {"time": ended, "share": float("nan"), "allocation": 0.0, "action": "rollback", "metric": None,
               "estimate": float("nan"), "lower": float("nan"), "upper": float("nan"), "outcome": None}  # fmt: skip
        frame = (
            pd.DataFrame([end]) if frame.empty else pd.concat([frame, pd.DataFrame([end])], ignore_index=True)
        )
    return frame.reset_index(drop=True)

"""A look at every ramping rollout: guardrails against the units not yet on the change, then the step (no Dagster).

Units on the change (the flag's ``change`` variant, from the day after their first exposure for
markets) are compared with the units not on it over the same days since the rollout began: each
guardrail of the unit kind (``experiments.guardrails``) with the always-valid interval of
:mod:`kaizen_pipeline.experiments.analysis`, one-sided (harm only, at ``experiments.alpha``), Holm
across the guardrails; a sample-ratio test of the units on the change against the step's share.
:func:`kaizen_pipeline.loop.rollout.step_action` decides; a rollback sends a critical notice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from kaizen_pipeline.experiments.analysis import MetricLook, analyse_metric, with_holm
from kaizen_pipeline.experiments.metrics import UNIT_METRICS
from kaizen_pipeline.experiments.runner import UnitData
from kaizen_pipeline.experiments.store import TransitionRefused
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.kaizen.experiment_stats import srm_p_value
from kaizen_pipeline.loop.control import LOOP_ACTOR, LoopControl
from kaizen_pipeline.loop.deployments import CHANGE, DeploymentStore
from kaizen_pipeline.loop.rollout import StepAction, gates_for, step_action
from kaizen_pipeline.ops.alert_store import enqueue_notice
from kaizen_pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class RolloutLook:
    deployment_id: str
    step_index: int
    share: float
    units_on_change: int
    guardrails: list[MetricLook]
    srm_p: float
    action: StepAction


def _values(row: dict[str, Any], data: UnitData, on: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Rows (unit, arm, metric, value) since the rollout began: treatment on the change, control the rest."""
    created = pd.Timestamp(row["created_at"])
    exposed = on.set_index("unit_id")["first_exposure_at"].to_dict()
    if row["unit_kind"] == "market":
        frame = data.market_days[
            (data.market_days["day"] >= created.normalize())
            & (data.market_days["day"] < pd.Timestamp(now).normalize())
        ].rename(columns={"market_id": "unit"})
        start = pd.to_datetime(frame["unit"].map(exposed)).dt.normalize() + pd.Timedelta(days=1)
        treated = frame["unit"].isin(list(exposed))
        frame = frame[~treated | (frame["day"] >= start)]
    else:
        frame = data.runs[pd.to_datetime(data.runs["started_at"]) >= created].rename(
            columns={"run_id": "unit"}
        )
    return frame.assign(arm=frame["unit"].isin(list(exposed)).map({True: "treatment", False: "control"}))


def look_at_rollout(wh: Warehouse, settings: Any, row: dict[str, Any], data: UnitData, *, now: datetime,
                    frozen: bool) -> RolloutLook:  # fmt: skip
    """The guardrails and the step decision of one ramping rollout (nothing is changed here)."""
    exp = settings.experiments
    steps = json.loads(row["steps"])
    share = steps[row["step_index"]]
    assignments = FlagStore(wh).assignments(row["flag_key"])
    on = assignments[assignments["variant"] == CHANGE]
    values = _values(row, data, on, now)
    looks = []
    for metric in exp.guardrails:
        spec = UNIT_METRICS[metric]
        if spec.unit_kind != row["unit_kind"]:
            continue
        look = analyse_metric(
            values[values["metric"] == metric], metric=metric, role="guardrail", direction=spec.direction,
            alpha=2 * exp.alpha, n_star=max(len(values) / max(len(exp.guardrails), 1), 2.0),
            clustered=row["unit_kind"] == "market", min_units_per_arm=exp.min_units_per_arm,
        )  # fmt: skip
        looks.append(look)
    guardrails = with_holm(looks, 2 * exp.alpha)  # two-sided at 2 alpha: harm tested one-sided at alpha
    total = len(data.markets) if row["unit_kind"] == "market" else int(values["unit"].nunique())
    n_on = int(on["unit_id"].nunique())
    # at 100% there is no one left to compare with: no SRM, and guardrails have no control arm
    srm_p = srm_p_value(max(total - n_on, 0), n_on, share) if total and share < 1.0 else 1.0
    with_data = int(values.loc[values["arm"] == "treatment", "unit"].nunique())
    action = step_action(
        step_index=row["step_index"], steps=steps, step_started_at=pd.Timestamp(row["step_started_at"]).to_pydatetime(),
        now=now, units_on_change=with_data, guardrails=guardrails, srm_p=srm_p, srm_threshold=exp.srm_p_threshold,
        gates=gates_for(settings, row["parameter"], steps), frozen=frozen,
    )  # fmt: skip
    return RolloutLook(row["deployment_id"], row["step_index"], share, with_data, guardrails, srm_p, action)


def look_at_rollouts(wh: Warehouse, settings: Any, data: UnitData, *, now: datetime) -> list[RolloutLook]:
    """Look at every ramping rollout and apply its step (advance, wait for approval, complete, roll back)."""
    store = DeploymentStore(wh)
    frozen = LoopControl(wh).current() is not None
    results = []
    for row in store.frame(["ramping"]).to_dict("records"):
        look = look_at_rollout(wh, settings, row, data, now=now, frozen=frozen)
        results.append(look)
        store.looked(row["deployment_id"], now)
        act, dep = look.action, row["deployment_id"]
        try:
            if act.kind == "advance":
                store.advance(
                    settings, dep, from_step=look.step_index, actor=LOOP_ACTOR, reason=act.reason, now=now
                )
            elif act.kind == "await_approval":
                store.await_approval(settings, dep, from_step=look.step_index, actor=LOOP_ACTOR, reason=act.reason,
                                     now=now)  # fmt: skip
            elif act.kind == "complete":
                store.complete(settings, dep, actor=LOOP_ACTOR, reason=act.reason, now=now)
            elif act.kind == "rollback":
                store.rollback(settings, dep, actor=LOOP_ACTOR, reason=act.reason, now=now)
                enqueue_notice(
                    wh, key=f"rollout:{dep}:rolled_back", priority="critical", now=now, alerts=settings.alerts,
                    subject=f"rollout {dep} rolled back",
                    text=(f"Rollout {dep} ({row['parameter']}: {row['before_value']} -> {row['after_value']}) was "
                          f"rolled back at {look.share:.0%}: every unit is on {row['before_value']} again.\n\n"
                          f"{act.reason}\n"),
                )  # fmt: skip
        except TransitionRefused:
            continue  # a person (or another tick) moved it first; the next look sees the new state
    return results


def rollouts_due(wh: Warehouse, settings: Any, now: datetime) -> bool:
    """Whether a ramping rollout's last look is older than experiments.look_interval_hours (or it has none)."""
    ramping = DeploymentStore(wh).frame(["ramping"])
    if ramping.empty:
        return False
    interval = pd.Timedelta(hours=settings.experiments.look_interval_hours)
    last = pd.to_datetime(ramping["last_look_at"])
    return bool((last.isna() | (pd.Timestamp(now) - last >= interval)).any())

"""A look at every ramping rollout: guardrails against the units not yet on the change, then the step (no Dagster).

Units on the change (the flag's ``change`` variant, from the day after their first exposure for
markets) are compared with the units not on it over the same days since the rollout began: each
guardrail of the unit kind (``experiments.guardrails``) with the always-valid interval of
:mod:`kaizen_pipeline.experiments.analysis`, one-sided (harm only, at ``experiments.alpha``), Holm
across the guardrails; a sample-ratio test of the units on the change against the step's share.
:func:`kaizen_pipeline.loop.rollout.step_action` decides; a rollback sends a critical notice.
Every look, holds too, is kept in ``deployment_steps`` (one row per guardrail, with the exposure and
the action), the record the ``rollout_history`` dashboard draws.
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
from kaizen_pipeline.loop.rollout import StepAction, canary_allocation, gates_for, step_action
from kaizen_pipeline.ops.alert_store import enqueue_notice
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import deployment_steps

NO_GUARDRAIL = "-"  # deployment_steps.metric of a look whose unit kind has no guardrail


@dataclass(frozen=True)
class RolloutLook:
    deployment_id: str
    step_index: int
    share: float
    units_on_change: int
    guardrails: list[MetricLook]
    srm_p: float
    action: StepAction
    units_in_control: int = 0


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
    flags = FlagStore(wh)
    flag = flags.get(row["flag_key"])
    share = flag.allocation  # the step's share, or more for a widened canary
    market = row["unit_kind"] == "market"
    min_units = settings.rollouts.min_units_per_step
    # markets are known ahead, so a canary too small for its gate can be widened; runs are not
    canary = (
        canary_allocation(steps[row["step_index"]], flag.salt, data.markets, min_units) if market else None
    )
    assignments = flags.assignments(row["flag_key"])
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
            clustered=market, min_units_per_arm=min_units,
        )  # fmt: skip
        looks.append(look)
    guardrails = with_holm(looks, 2 * exp.alpha)  # two-sided at 2 alpha: harm tested one-sided at alpha
    if market:
        total, n_on = len(data.markets), int(on["unit_id"].nunique())
    else:
        # every run is a new unit resolved at the share of its day: the split of this step is judged on
        # the runs since the step began, not on runs assigned at the earlier, smaller shares
        in_step = values[pd.to_datetime(values["started_at"]) >= pd.Timestamp(row["step_started_at"])]
        total = int(in_step["unit"].nunique())
        n_on = int(in_step.loc[in_step["arm"] == "treatment", "unit"].nunique())
    # at 100% there is no one left to compare with: no SRM, and guardrails have no control arm
    srm_p = srm_p_value(max(total - n_on, 0), n_on, share) if total and share < 1.0 else 1.0
    with_data = int(values.loc[values["arm"] == "treatment", "unit"].nunique())
    in_control = int(values.loc[values["arm"] == "control", "unit"].nunique())
    action = step_action(
        step_index=row["step_index"], steps=steps, step_started_at=pd.Timestamp(row["step_started_at"]).to_pydatetime(),
        now=now, units_on_change=with_data, guardrails=guardrails, srm_p=srm_p, srm_threshold=exp.srm_p_threshold,
        gates=gates_for(settings, row["parameter"], steps), frozen=frozen, allocation=share, canary=canary,
    )  # fmt: skip
    return RolloutLook(row["deployment_id"], row["step_index"], share, with_data, guardrails, srm_p, action,
                       in_control)  # fmt: skip


def step_rows(look: RolloutLook, now: datetime, *, applied: bool) -> list[dict[str, Any]]:
    """The deployment_steps rows of one look: one per guardrail (or one ``-`` row), each with the exposure."""
    common = {
        "deployment_id": look.deployment_id, "look_at": now, "step_index": look.step_index, "share": look.share,
        "units_on_change": look.units_on_change, "units_in_control": look.units_in_control, "srm_p": look.srm_p,
        "action": look.action.kind, "reason": look.action.reason, "applied": applied,
    }  # fmt: skip
    measured = [(g.metric, g.estimate, g.lower, g.upper, g.outcome) for g in look.guardrails]
    names = ("metric", "estimate", "lower", "upper", "outcome")
    return [
        common | dict(zip(names, g, strict=True))
        for g in measured or [(NO_GUARDRAIL, None, None, None, None)]
    ]


def record_look(wh: Warehouse, look: RolloutLook, now: datetime, *, applied: bool) -> int:
    """Keep one look in deployment_steps; a repeated look at the same time keeps the first (returns rows added).

    The first look at a time is the one whose action was taken: a second run at the same pipeline
    time (a retry, a frozen demo clock) sees the rollout after that move and must not overwrite it.
    """
    t = deployment_steps
    if wh.count(t, (t.c.deployment_id == look.deployment_id) & (t.c.look_at == now)):
        return 0
    # update=False: two ticks racing past the check above still leave one row per guardrail
    return wh.upsert(t, step_rows(look, now, applied=applied), update=False).new_rows


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
        applied = True
        try:
            if act.kind == "advance":
                store.advance(
                    settings, dep, from_step=look.step_index, actor=LOOP_ACTOR, reason=act.reason, now=now
                )
            elif act.kind == "widen" and act.allocation is not None:
                store.widen(settings, dep, from_step=look.step_index, allocation=act.allocation, actor=LOOP_ACTOR,
                            reason=act.reason, now=now)  # fmt: skip
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
            applied = False  # a person (or another tick) moved it first; the next look sees the new state
        record_look(wh, look, now, applied=applied)
    return results


def rollouts_due(wh: Warehouse, settings: Any, now: datetime) -> bool:
    """Whether a ramping rollout's last look is older than experiments.look_interval_hours (or it has none)."""
    ramping = DeploymentStore(wh).frame(["ramping"])
    if ramping.empty:
        return False
    interval = pd.Timedelta(hours=settings.experiments.look_interval_hours)
    last = pd.to_datetime(ramping["last_look_at"])
    return bool((last.isna() | (pd.Timestamp(now) - last >= interval)).any())

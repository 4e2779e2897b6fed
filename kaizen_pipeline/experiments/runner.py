"""The experiment loop: draft from recommendations, start through a flag, look, decide, ship or stop.

No Dagster: the experiments assets, the sensor's job and the ``kaizen experiments`` CLI call these.
Every state change goes through :meth:`ExperimentStore.transition` (compare-and-set), so two
callers never both start, ship or stop the same experiment. A shipped winner is handed to a guarded
rollout (:mod:`kaizen_pipeline.loop.deployments`): the experiment's flag is retired and the
rollout's flag ramps the treatment through ``rollouts.steps``; while ``rollouts.max_running``
rollouts are in progress the ship waits (the experiment keeps running). Every other end kills the
flag, so all units return to the config value.

The loop acts alone only within ``experiments.autonomy`` and never while frozen
(:mod:`kaizen_pipeline.loop.control`); each start, ship and stop, by the loop or a person, is a
``decision_log`` row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.load import load_inputs
from kaizen_pipeline.backtest.outcomes import market_day_outcomes
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.experiments.analysis import (
    CONTROL,
    TREATMENT,
    Decision,
    MetricLook,
    analyse_metric,
    decide,
    srm_check,
    with_holm,
)
from kaizen_pipeline.experiments.design import (
    candidate,
    daily_sd,
    draft_row,
    experiment_id,
    guardrails_for,
    plan_markets,
    plan_runs,
)
from kaizen_pipeline.experiments.metrics import UNIT_METRICS, market_day_values, run_values, unit_mde
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.flags.model import FeatureFlag
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import LOOP_ACTOR, DecisionLog, Freeze, LoggedDecision, LoopControl
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.loop.rollout import ACTIVE
from kaizen_pipeline.ops.alert_store import enqueue_notice
from kaizen_pipeline.warehouse import Warehouse

ACTOR = LOOP_ACTOR  # what the loop does by itself; people act under their own name


@dataclass
class UnitData:
    """What experiments measure: market-day values from the one simulator, and run values."""

    market_days: pd.DataFrame  # market_id, day, metric, value
    runs: pd.DataFrame  # run_id, started_at, metric, value
    markets: list[str] = field(default_factory=list)
    runs_per_day: float = 0.0


def collect_unit_data(wh: Warehouse, settings: Any, *, now: datetime, days: int) -> UnitData:
    """The last ``days`` of market-day values (backtest engine on trading_signals) and of ingest runs."""
    inputs = load_inputs(wh)
    start_day = pd.Timestamp(now).normalize() - pd.Timedelta(days=days)
    day_index = pd.date_range(start_day, pd.Timestamp(now).normalize(), freq="D", inclusive="left")
    markets = (
        sorted(inputs.features["market_id"].dropna().unique().tolist()) if not inputs.features.empty else []
    )
    market_days = pd.DataFrame(columns=["market_id", "day", "metric", "value"])
    if markets and len(day_index):
        config = BookConfig.from_settings(settings)
        prices = inputs.features[inputs.features["bucket_ts"] <= pd.Timestamp(now)]
        outcomes = market_day_outcomes(
            run_book(build_book(prices, inputs.signals, config), config), scale=1.0
        )
        outcomes = (
            outcomes[pd.to_datetime(outcomes["day"]).isin(day_index)] if not outcomes.empty else outcomes
        )
        market_days = market_day_values(outcomes, markets, list(day_index), init_cash=config.init_cash)
    table = wh.table("ingestion_runs")
    ingest = wh.read_frame(
        sa.select(table).where(table.c.started_at >= start_day.to_pydatetime(), table.c.started_at < now),
        parse_dates=["started_at", "finished_at"],
    )
    runs = run_values(ingest)
    # today's unit count: the runs of the last 24 hours (the whole window's mean when there were none)
    recent = runs[pd.to_datetime(runs["started_at"]) >= pd.Timestamp(now) - pd.Timedelta(days=1)]
    runs_per_day = float(recent["run_id"].nunique()) if not recent.empty else (
        runs["run_id"].nunique() / max(days, 1) if not runs.empty else 0.0
    )  # fmt: skip
    return UnitData(market_days, runs, markets, runs_per_day)


@dataclass(frozen=True)
class DraftReport:
    drafted: list[str]
    skipped: dict[str, str]


def draft_experiments(
    wh: Warehouse, settings: Any, recommendations: pd.DataFrame, data: UnitData, *, now: datetime
) -> DraftReport:
    """One draft per testable recommendation not tested before (module docstring of design)."""
    exp = settings.experiments
    store = ExperimentStore(wh)
    seen = store.catalogue_keys()
    rows, skipped = [], {}
    for rec in recommendations.to_dict("records"):
        key = rec["catalogue_key"]
        if key in seen:
            continue
        cand = candidate(rec, settings)
        if isinstance(cand, str):
            skipped[key] = cand
            continue
        if cand.unit_kind == "market":
            daily = data.market_days[data.market_days["metric"] == cand.primary_metric].rename(
                columns={"market_id": "unit"}
            )
            mde = unit_mde(cand.target_metric, cand.corrected_effect, units=len(data.markets),
                           runs_per_day=data.runs_per_day, daily_sd=daily_sd(daily))  # fmt: skip
            plan = plan_markets(daily, mde=mde, alpha=exp.alpha, power=exp.power, markets=len(data.markets),
                                share=exp.treatment_share, max_days=exp.max_days)  # fmt: skip
        else:
            values = data.runs.loc[data.runs["metric"] == cand.primary_metric, "value"]
            mde = unit_mde(cand.target_metric, cand.corrected_effect, units=len(data.markets),
                           runs_per_day=data.runs_per_day, daily_sd=0.0)  # fmt: skip
            plan = plan_runs(values, mde=mde, alpha=exp.alpha, power=exp.power, runs_per_day=data.runs_per_day,
                             share=exp.treatment_share, max_days=exp.max_days)  # fmt: skip
        guardrails = guardrails_for(cand.unit_kind, list(exp.guardrails), cand.primary_metric)
        rows.append(draft_row(cand, plan, mde=mde, settings=settings, guardrails=guardrails, now=now))
        seen.add(key)
    store.add_drafts(rows)
    return DraftReport([r["experiment_id"] for r in rows], skipped)


def start(
    wh: Warehouse, settings: Any, exp_id: str, *, actor: str, now: datetime, force: bool = False
) -> dict[str, Any]:
    """draft -> running, then its flag assigns units (control/treatment at experiments.treatment_share).

    Refused for an underpowered draft unless ``force``, and while another experiment or flag holds
    the parameter (experiments on one parameter never overlap).
    """
    store = ExperimentStore(wh)
    row = store.get(exp_id)
    if row["underpowered"] and not force:
        raise ValueError(
            f"experiment {exp_id} is underpowered ({row['decision_reason']}); --force starts it anyway"
        )
    share = settings.experiments.treatment_share
    flag = FeatureFlag(
        flag_key=exp_id,
        parameter=row["parameter"],
        variants={CONTROL: json.loads(row["control_value"]), TREATMENT: json.loads(row["treatment_value"])},
        weights={CONTROL: 1.0 - share, TREATMENT: share},
        salt=f"experiment:{exp_id}",  # independent of every other flag's buckets
        owner=ACTOR,
        experiment_id=exp_id,
        description=row["hypothesis"],
    )
    started = store.transition(exp_id, expected=["draft"], to="running", started_at=now, flag_key=exp_id,
                               updated_at=now, decision=None)  # fmt: skip
    try:
        FlagStore(wh).save(flag, settings, actor=actor, reason=f"experiment {exp_id} started", now=now)
    except Exception:
        store.transition(
            exp_id, expected=["running"], to="draft", started_at=None, flag_key=None, updated_at=now
        )
        raise
    DecisionLog(wh).record(
        _logged(started, "start_experiment", actor,
                f"{row['decision_reason'] or 'started'}; {share:.0%} of {row['unit_kind']}s get the treatment"
                + (" (underpowered, started with --force)" if row["underpowered"] else "")),
        now,
    )  # fmt: skip
    return started


def _logged(row: dict[str, Any], action: str, actor: str, evidence: str) -> LoggedDecision:
    return LoggedDecision(
        action=action,
        subject_kind="experiment",
        subject_id=row["experiment_id"],
        actor=actor,
        evidence=evidence,
        parameter=row["parameter"],
        before=json.loads(row["control_value"]),
        after=json.loads(row["treatment_value"]),
    )


def outside_autonomy(row: Mapping[str, Any], settings: Any) -> str | None:
    """Why the loop may not start this experiment by itself (experiments.autonomy), or None."""
    bounds = settings.experiments.autonomy.get(row["parameter"])
    if bounds is None:
        return f"{row['parameter']} is not in experiments.autonomy: a person starts it"
    control, treatment = json.loads(row["control_value"]), json.loads(row["treatment_value"])
    if not isinstance(treatment, int | float) or not isinstance(control, int | float):
        return f"{row['parameter']}: only numeric values move by themselves"
    if not bounds.min <= treatment <= bounds.max:
        return f"{row['parameter']} = {treatment:g} is outside [{bounds.min:g}, {bounds.max:g}]"
    if abs(treatment - control) > bounds.max_step:
        return f"{row['parameter']}: {control:g} -> {treatment:g} is a step above {bounds.max_step:g}"
    return None


@dataclass(frozen=True)
class AutoStart:
    """What auto_start did: started ids, drafts held for a person (id -> why), the freeze if one holds."""

    started: list[str]
    held: dict[str, str]
    frozen: Freeze | None = None


def auto_start(wh: Warehouse, settings: Any, *, now: datetime) -> AutoStart:
    """Start powered drafts within experiments.autonomy while fewer than experiments.max_running run,
    one per parameter; nothing while the loop is frozen."""
    exp = settings.experiments
    frozen = LoopControl(wh).current()
    if not exp.auto_start or frozen is not None:
        return AutoStart([], {}, frozen)
    store = ExperimentStore(wh)
    running = store.frame("running")
    busy = set(running["parameter"]) | {f.parameter for f in FlagStore(wh).active()}
    slots = exp.max_running - len(running)
    started, held = [], {}
    for row in store.frame("draft").to_dict("records"):
        if row["underpowered"] or row["parameter"] in busy:
            continue
        why = outside_autonomy(row, settings)
        if why is not None:
            held[row["experiment_id"]] = why
            continue
        if slots <= 0:
            continue
        start(wh, settings, row["experiment_id"], actor=ACTOR, now=now)
        busy.add(row["parameter"])
        slots -= 1
        started.append(row["experiment_id"])
    return AutoStart(started, held)


def stop(
    wh: Warehouse, settings: Any, exp_id: str, *, actor: str, reason: str, now: datetime
) -> dict[str, Any]:
    """A person (or the loop) stops a draft or running experiment; its flag is killed."""
    row = ExperimentStore(wh).transition(
        exp_id, expected=["draft", "running"], to="stopped", decision="stopped_by_" + actor[:16],
        decision_reason=reason, ended_at=now, updated_at=now,
    )  # fmt: skip
    _kill_flag(wh, settings, row, actor=actor, reason=reason, now=now)
    DecisionLog(wh).record(_logged(row, "stop", actor, reason), now)
    return row


def _kill_flag(
    wh: Warehouse, settings: Any, row: dict[str, Any], *, actor: str, reason: str, now: datetime
) -> None:
    flags = FlagStore(wh)
    if row.get("flag_key"):
        flag = flags.get(row["flag_key"])
        if flag.status == "active":
            flags.kill(flag.flag_key, settings, actor=actor, reason=reason, now=now)


def rollout_id(exp_id: str) -> str:
    """The deployment (and flag) key of the rollout that ships experiment ``exp_id``."""
    return f"rollout-{exp_id}"[:64]


def _hand_to_rollout(
    wh: Warehouse, settings: Any, row: dict[str, Any], *, reason: str, now: datetime
) -> dict[str, Any]:
    """The winner ramps through rollouts.steps from the first step; the experiment's flag is retired
    in the same transaction, so the parameter always has exactly one active flag."""
    return DeploymentStore(wh).create(
        settings, deployment_id=rollout_id(row["experiment_id"]), parameter=row["parameter"],
        value=json.loads(row["treatment_value"]), source=row["experiment_id"], actor=ACTOR, reason=reason,
        now=now, retire_flag=row["flag_key"],
    )  # fmt: skip


def ship_waits(wh: Warehouse, settings: Any) -> str | None:
    """Why a winner cannot be handed to a rollout now (rollouts.max_running reached), or None."""
    active = DeploymentStore(wh).frame(ACTIVE)
    limit = settings.rollouts.max_running
    if len(active) < limit:
        return None
    return f"rollouts.max_running ({limit}) rollouts are in progress: {', '.join(active['deployment_id'])}"


@dataclass(frozen=True)
class LookResult:
    experiment_id: str
    looks: list[MetricLook]
    srm_p: float
    assigned: dict[str, int]
    days: float
    decision: Decision | None
    deferred: Decision | None = None  # the decision a freeze (or a full rollout queue) held back
    deferred_because: str | None = None


def _arm_values(
    values: pd.DataFrame, unit_col: str, arms: pd.Series, since: pd.Series, time_col: str
) -> pd.DataFrame:
    """Rows of assigned units after their first exposure (market-days from the next full day on)."""
    frame = values[values[unit_col].isin(arms.index)].copy()
    if frame.empty:
        return frame.assign(arm=pd.Series(dtype=object)).rename(columns={unit_col: "unit"})
    frame["arm"] = frame[unit_col].map(arms.to_dict())
    start = pd.to_datetime(frame[unit_col].map(since.to_dict()))
    frame = frame[pd.to_datetime(frame[time_col]) >= start]
    return frame.rename(columns={unit_col: "unit"})


def analyse(
    wh: Warehouse, settings: Any, row: dict[str, Any], data: UnitData, *, now: datetime
) -> LookResult:
    """One look at a running experiment (experiments.analysis: the statistics and the decision)."""
    exp = settings.experiments
    assignments = FlagStore(wh).assignments(row["flag_key"])
    assignments = assignments[assignments["variant"].isin([CONTROL, TREATMENT])]
    first = assignments.sort_values("first_exposure_at").drop_duplicates("unit_id")
    arms = first.set_index("unit_id")["variant"]
    assigned = {k: int(v) for k, v in arms.value_counts().items()}
    started = pd.Timestamp(row["started_at"])
    days = (pd.Timestamp(now) - started).total_seconds() / 86400
    market = row["unit_kind"] == "market"
    if market:
        since = first.set_index("unit_id")["first_exposure_at"].dt.normalize() + pd.Timedelta(days=1)
        # whole days only: the day of the look is still running
        complete = data.market_days[data.market_days["day"] < pd.Timestamp(now).normalize()]
        values = _arm_values(complete, "market_id", arms, since, "day")
        pre_days = data.market_days[
            (data.market_days["day"] < started.normalize())
            & (data.market_days["day"] >= started.normalize() - pd.Timedelta(days=exp.pre_period_days))
        ]
    else:
        since = first.set_index("unit_id")["first_exposure_at"]
        finished = data.runs[pd.to_datetime(data.runs["started_at"]) < pd.Timestamp(now)]
        values = _arm_values(finished, "run_id", arms, since - pd.Timedelta(seconds=1), "started_at")
        pre_days = pd.DataFrame(columns=["market_id", "metric", "value"])
    n_star = (
        2.0
        * float(row["units_per_arm"] or exp.min_units_per_arm)
        * (float(row["expected_days"] or exp.max_days) if market else 1.0)
    )
    metrics = [(row["primary_metric"], "primary"), *((g, "guardrail") for g in json.loads(row["guardrails"]))]
    looks = []
    for metric, role in metrics:
        pre = None
        if market:
            pre_metric = pre_days[pre_days["metric"] == metric]
            pre = pre_metric.groupby("market_id")["value"].mean().to_dict() if not pre_metric.empty else None
        looks.append(
            analyse_metric(
                values[values["metric"] == metric], metric=metric, role=role,
                direction=UNIT_METRICS[metric].direction, alpha=float(row["alpha"]), n_star=n_star,
                clustered=market, pre_period=pre, min_units_per_arm=exp.min_units_per_arm,
            )
        )  # fmt: skip
    primary, guardrails = looks[0], with_holm(looks[1:], float(row["alpha"]))
    srm_p = srm_check(assigned, exp.treatment_share)
    decision = None
    if primary.outcome != "no_data" or days >= int(row["max_days"]) or srm_p < exp.srm_p_threshold:
        decision = decide(primary, guardrails, srm_p=srm_p, srm_threshold=exp.srm_p_threshold,
                          days=days, max_days=int(row["max_days"]),
                          min_days_to_ship=min(exp.min_days_to_ship, int(row["max_days"])),
                          margins=exp.guardrail_margins)  # fmt: skip
    return LookResult(row["experiment_id"], [primary, *guardrails], srm_p, assigned, days, decision)


def look_rows(result: LookResult, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "experiment_id": result.experiment_id,
            "look_at": now,
            "metric": m.metric,
            "role": m.role,
            "days": result.days,
            "units_control": m.units_control,
            "units_treatment": m.units_treatment,
            "exposures_control": result.assigned.get(CONTROL, 0),
            "exposures_treatment": result.assigned.get(TREATMENT, 0),
            "mean_control": m.mean_control,
            "mean_treatment": m.mean_treatment,
            "estimate": m.estimate,
            "lower": m.lower,
            "upper": m.upper,
            "p_value": m.p_value,
            "p_holm": m.p_holm,
            "cuped_reduction": m.cuped_reduction,
            "srm_p": result.srm_p,
            "outcome": m.outcome,
            "decision": result.decision.decision if result.decision else None,
        }
        for m in result.looks
    ]


def look_and_decide(wh: Warehouse, settings: Any, data: UnitData, *, now: datetime) -> list[LookResult]:
    """Look at every running experiment, record the looks, and apply any decision (with a notice email).

    While the loop is frozen the looks are recorded but no decision is applied (it is taken again at
    the first look after kaizen unfreeze).
    """
    store = ExperimentStore(wh)
    frozen = LoopControl(wh).current()
    results = []
    for row in store.frame("running").to_dict("records"):
        result = analyse(wh, settings, row, data, now=now)
        if frozen is not None and result.decision is not None:
            result = replace(result, decision=None, deferred=result.decision,
                             deferred_because=f"the loop is frozen since {frozen.since:%Y-%m-%d %H:%M}")  # fmt: skip
        elif result.decision is not None and result.decision.status == "shipped":
            wait = ship_waits(wh, settings)
            if wait is not None:
                result = replace(result, decision=None, deferred=result.decision, deferred_because=wait)
        store.record_looks(look_rows(result, now))
        if result.decision is not None:
            apply_decision(wh, settings, row["experiment_id"], result.decision, now=now)
        results.append(result)
    return results


ACTIONS = {"shipped": "ship", "stopped": "stop", "inconclusive": "inconclusive", "invalid": "invalid"}


def apply_decision(
    wh: Warehouse, settings: Any, exp_id: str, decision: Decision, *, now: datetime
) -> dict[str, Any]:
    """Record the decision (only if still running), then ship or kill the flag and send the notice."""
    row = ExperimentStore(wh).transition(
        exp_id, expected=["running"], to=decision.status, decision=decision.decision,
        decision_reason=decision.reason, ended_at=now, updated_at=now,
    )  # fmt: skip
    DecisionLog(wh).record(_logged(row, ACTIONS[decision.status], ACTOR, decision.reason), now)
    if decision.status == "shipped":
        rollout = _hand_to_rollout(wh, settings, row, reason=f"experiment {exp_id} shipped: {decision.reason}",
                                   now=now)  # fmt: skip
        steps = json.loads(rollout["steps"])
        handed = (
            f"It is handed to rollout {rollout['deployment_id']}: "
            + ("it waits for kaizen rollout approve before its first step"
               if rollout["state"] == "awaiting_approval" else f"{steps[0]:.0%} of units first")
            + f", then {' -> '.join(f'{x:.0%}' for x in steps[1:])} while no guardrail is harmed."
        )  # fmt: skip
    else:
        handed = ""
        _kill_flag(
            wh,
            settings,
            row,
            actor=ACTOR,
            reason=f"experiment {exp_id} {decision.status}: {decision.reason}",
            now=now,
        )
    priority = "critical" if decision.status == "invalid" else "warning"
    enqueue_notice(
        wh, key=f"experiment:{exp_id}:{decision.decision}", priority=priority, now=now, alerts=settings.alerts,
        subject=f"experiment {exp_id} {decision.status}",
        text=(f"Experiment {exp_id} ({row['parameter']}: {row['control_value']} -> {row['treatment_value']}) "
              f"is {decision.status}.\n\n{decision.reason}\n\n" + (f"{handed}\n\n" if handed else "")
              + f"Hypothesis: {row['hypothesis']}\n"),
    )  # fmt: skip
    return row


def due_for_look(wh: Warehouse, settings: Any, now: datetime) -> bool:
    """Whether any experiment is running and its last look is older than experiments.look_interval_hours."""
    store = ExperimentStore(wh)
    running = store.frame("running")
    if running.empty:
        return False
    looks = store.looks()
    interval = timedelta(hours=settings.experiments.look_interval_hours)
    for exp_id in running["experiment_id"]:
        mine = looks[looks["experiment_id"] == exp_id]
        if mine.empty or now - mine["look_at"].max().to_pydatetime() >= interval:
            return True
    return False


__all__ = [
    "DraftReport",
    "LookResult",
    "UnitData",
    "analyse",
    "apply_decision",
    "auto_start",
    "collect_unit_data",
    "draft_experiments",
    "due_for_look",
    "experiment_id",
    "look_and_decide",
    "look_rows",
    "start",
    "stop",
]

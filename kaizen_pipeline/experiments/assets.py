"""Experiment assets: drafts from recommendations, a look at every running experiment and ramping rollout, and the rollout dashboard (thin wiring)."""

import dagster as dg
from dagster import AssetExecutionContext

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.experiments.charts import effect_over_looks_figure, rollout_timeline_figure
from kaizen_pipeline.experiments.runner import (
    auto_start,
    collect_unit_data,
    draft_experiments,
    look_and_decide,
)
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.loop.history import BASES, dora_figures, per_deployment, read_history, timeline, weekly
from kaizen_pipeline.loop.runner import look_at_rollouts
from kaizen_pipeline.reporting import figure_markdown, markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource

GROUP = "experiments"
SHOWN_COLUMNS = ["experiment_id", "status", "parameter", "control_value", "treatment_value", "primary_metric",
                 "mde", "units_per_arm", "expected_days", "underpowered", "decision", "decision_reason"]  # fmt: skip


@dg.asset(group_name=GROUP, kinds={"statsmodels"}, deps=["recommendations", "backtest_results"])
def experiments(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Drafts an experiment per testable recommendation (MDE, sample size, experiments.max_days) and starts powered ones (experiments.auto_start)."""
    current = settings.get()
    wh = warehouse.get()
    now = pipeline_now(current)
    exp = current.experiments
    data = collect_unit_data(wh, current, now=now, days=exp.pre_period_days)
    recs = wh.read_frame(
        "SELECT * FROM recommendations WHERE as_of = (SELECT MAX(as_of) FROM recommendations)"
    )
    report = draft_experiments(wh, current, recs, data, now=now)
    auto = auto_start(wh, current, now=now)
    started = auto.started
    if auto.frozen is not None:
        context.log.warning(
            f"the loop is frozen since {auto.frozen.since:%Y-%m-%d %H:%M} by {auto.frozen.actor}: no experiment starts"
        )
    frame = ExperimentStore(wh).frame()
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    underpowered = (
        frame[(frame["status"] == "draft") & frame["underpowered"].astype(bool)] if not frame.empty else frame
    )
    context.log.info(f"experiments: drafted {report.drafted or 'none'}, started {started or 'none'}")
    return dg.MaterializeResult(
        metadata={
            "drafted": dg.MetadataValue.int(len(report.drafted)),
            "started": dg.MetadataValue.int(len(started)),
            "running": dg.MetadataValue.int(int(counts.get("running", 0))),
            "by_status": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "experiments": dg.MetadataValue.md(
                markdown_table(frame[SHOWN_COLUMNS] if not frame.empty else frame)
            ),
            "underpowered_not_started": dg.MetadataValue.md(
                markdown_table(
                    underpowered[["experiment_id", "decision_reason"]]
                    if not underpowered.empty
                    else underpowered
                )
            ),
            "held_for_a_person": dg.MetadataValue.md(
                "\n".join(f"- {k}: {why}" for k, why in sorted(auto.held.items())) or "_none_"
            ),
            "frozen": dg.MetadataValue.text(
                f"since {auto.frozen.since:%Y-%m-%d %H:%M} by {auto.frozen.actor}: {auto.frozen.reason}"
                if auto.frozen
                else "no"
            ),
            "not_testable": dg.MetadataValue.md(
                "\n".join(f"- {k}: {why}" for k, why in sorted(report.skipped.items())) or "_none_"
            ),
        }
    )


@dg.asset(group_name=GROUP, kinds={"statsmodels"}, deps=[experiments, "trading_signals"])
def experiment_results(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """A look at every running experiment: always-valid intervals, CUPED, SRM, Holm; ships, stops or keeps control."""
    current = settings.get()
    wh = warehouse.get()
    now = pipeline_now(current)
    exp = current.experiments
    data = collect_unit_data(wh, current, now=now, days=exp.max_days + exp.pre_period_days)
    results = look_and_decide(wh, current, data, now=now)
    store = ExperimentStore(wh)
    looks = store.looks()
    decided = [r for r in results if r.decision is not None]
    deferred = [r for r in results if r.deferred is not None]
    for r in deferred:
        context.log.warning(
            f"experiment {r.experiment_id}: {r.deferred.decision} deferred ({r.deferred_because})"
        )
    for r in decided:
        context.log.info(f"experiment {r.experiment_id}: {r.decision.decision} ({r.decision.reason})")
    latest = looks[looks["look_at"] == looks["look_at"].max()] if not looks.empty else looks
    charts = []
    for exp_id in dict.fromkeys(r.experiment_id for r in results):
        mine = looks[looks["experiment_id"] == exp_id]
        charts.append(
            figure_markdown(effect_over_looks_figure(mine, exp_id), alt=f"effect over looks: {exp_id}")
        )
    primary = latest[latest["role"] == "primary"] if not latest.empty else latest
    return dg.MaterializeResult(
        metadata={
            "looked_at": dg.MetadataValue.int(len(results)),
            "decided": dg.MetadataValue.int(len(decided)),
            "deferred": dg.MetadataValue.int(len(deferred)),
            "decisions": dg.MetadataValue.md(
                "\n".join(
                    f"- {r.experiment_id}: **{r.decision.decision}**: {r.decision.reason}" for r in decided
                )
                or "_none at this look_"
            ),
            "latest_look": dg.MetadataValue.md(markdown_table(latest, max_rows=40)),
            # a number per look the UI plots natively (Plots tab): the primary effect of the first experiment
            "primary_estimate": dg.MetadataValue.float(
                float(primary["estimate"].iloc[0])
                if not primary.empty and primary["estimate"].notna().iloc[0]
                else 0.0
            ),
            "effect_over_looks": dg.MetadataValue.md("\n\n".join(charts) or "_no running experiment_"),
        }
    )


@dg.asset(group_name=GROUP, kinds={"statsmodels"}, deps=[experiment_results])
def deployments(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Guarded rollouts: a look at each ramping change against the units not yet on it; advances
    (rollouts.steps), waits for approval, completes or rolls back."""
    current = settings.get()
    wh = warehouse.get()
    now = pipeline_now(current)
    exp = current.experiments
    data = collect_unit_data(wh, current, now=now, days=exp.max_days + exp.pre_period_days)
    looks = look_at_rollouts(wh, current, data, now=now)
    for look in looks:
        context.log.info(
            f"rollout {look.deployment_id} at {look.share:.0%}: {look.action.kind} ({look.action.reason})"
        )
    frame = DeploymentStore(wh).frame()
    shown = [
        "deployment_id",
        "parameter",
        "before_value",
        "after_value",
        "state",
        "step_index",
        "reason",
        "created_by",
    ]
    counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
    return dg.MaterializeResult(
        metadata={
            "looked_at": dg.MetadataValue.int(len(looks)),
            "ramping": dg.MetadataValue.int(int(counts.get("ramping", 0))),
            "rolled_back": dg.MetadataValue.int(int(counts.get("rolled_back", 0))),
            "actions": dg.MetadataValue.md(
                "\n".join(
                    f"- {x.deployment_id} at {x.share:.0%}: **{x.action.kind}**: {x.action.reason}"
                    for x in looks
                )
                or "_no ramping rollout_"
            ),
            "deployments": dg.MetadataValue.md(markdown_table(frame[shown] if not frame.empty else frame)),
        }
    )


TIMELINES_SHOWN = 4  # the newest rollouts drawn; older ones stay in the table


@dg.asset(group_name=GROUP, kinds={"pandas"}, deps=[deployments])
def rollout_history(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """The rollout and rollback dashboard: DORA-style figures of the loop (shipped per week, lead time, change
    failure rate, time to roll back) and a timeline of allocation and guardrail bounds per rollout."""
    wh = warehouse.get()
    now = pipeline_now(settings.get())
    history = read_history(wh)
    frame = per_deployment(history)
    dora = dora_figures(frame, now)
    recent = history.deployments.tail(TIMELINES_SHOWN).to_dict("records")
    timelines = {d["deployment_id"]: timeline(history.steps, d) for d in recent}
    timelines = {dep: t for dep, t in timelines.items() if not t.empty}
    created = {d["deployment_id"]: d["created_at"] for d in recent}
    figures = {
        # numbers, so the Plots tab draws each over materializations; left out while nothing is measured
        "lead_time_days_median": dora.lead_time_days_median,
        "lead_time_days_mean": dora.lead_time_days_mean,
        "change_failure_rate": dora.change_failure_rate,
        "hours_to_roll_back_median": dora.hours_to_roll_back_median,
    }
    context.log.info(
        f"rollouts: {dora.shipped} shipped, {dora.rolled_back} rolled back, {dora.in_progress} in progress"
    )
    shown = frame.sort_values("created_at", ascending=False).drop(columns=["created_at"])
    bases = frame["recommended_from"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "shipped_per_week": dg.MetadataValue.float(dora.shipped_per_week),
            **{k: dg.MetadataValue.float(v) for k, v in figures.items() if v is not None},
            "shipped": dg.MetadataValue.int(dora.shipped),
            "rolled_back": dg.MetadataValue.int(dora.rolled_back),
            "in_progress": dg.MetadataValue.int(dora.in_progress),
            "lead_time_from": dg.MetadataValue.md(
                "\n".join(f"- {b} ({bases[b]}): {why}" for b, why in BASES.items() if b in bases)
                or "_no rollout_"
            ),
            "deployments": dg.MetadataValue.md(markdown_table(shown, max_rows=30, float_digits=2)),
            "weekly": dg.MetadataValue.md(markdown_table(weekly(frame).tail(12), max_rows=12)),
            "timeline": dg.MetadataValue.md(
                figure_markdown(rollout_timeline_figure(timelines, created), alt="rollout timeline")
                if timelines
                else "_no rollout looked at yet_"
            ),
        }
    )


EXPERIMENT_ASSETS = [experiments, experiment_results, deployments, rollout_history]

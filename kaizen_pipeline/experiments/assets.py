"""Experiment assets: drafts from recommendations, and a look at every running experiment (thin wiring)."""

import dagster as dg
from dagster import AssetExecutionContext

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.experiments.charts import effect_over_looks_figure
from kaizen_pipeline.experiments.runner import (
    auto_start,
    collect_unit_data,
    draft_experiments,
    look_and_decide,
)
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.loop.deployments import DeploymentStore
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
            f"experiment {r.experiment_id}: {r.deferred.decision} deferred (the loop is frozen)"
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
            "deferred_by_freeze": dg.MetadataValue.int(len(deferred)),
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


EXPERIMENT_ASSETS = [experiments, experiment_results, deployments]

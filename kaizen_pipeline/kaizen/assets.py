"""Kaizen assets (group ``kaizen``): thin wiring of kaizen.loop into Dagster with UI metadata."""

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from kaizen_pipeline.clock import pipeline_now, utcnow
from kaizen_pipeline.instance import instance_history
from kaizen_pipeline.kaizen import collect, demo_history, loop
from kaizen_pipeline.kaizen.charts import forecast_figure
from kaizen_pipeline.kaizen.reports import CADENCES
from kaizen_pipeline.partitions import DAILY_BACKFILL_POLICY, DAILY_PARTITIONS, partition_window
from kaizen_pipeline.reporting import figure_markdown, markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.warehouse import to_naive_utc

GROUP = "kaizen"
UPSTREAM = ["backtest_results", "trading_signals"]  # other domains' outputs the outcome metrics read


class KaizenMetricsConfig(dg.Config):
    """Unpartitioned runs only: the 24 h window ends at ``as_of`` (ISO time, UTC when naive; empty: now).

    A partitioned run measures its partition's days; days are backfilled as a partition range.
    """

    as_of: str | None = Field(
        None,
        description="Unpartitioned runs: end of the measurement window (ISO time, UTC); empty: now. "
        "Partitioned runs measure their days and refuse it.",
    )


class ReportConfig(dg.Config):
    """Which period to report on: the one holding the instant before ``as_of`` (empty: the newest metric day's)."""

    as_of: str | None = Field(
        None, description="ISO time; a schedule passes its tick, so the period just ended."
    )


def parse_as_of(value: str | None, field: str = "as_of") -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = to_naive_utc(value)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None:
        raise dg.Failure(f"{field}: not an ISO date/time: {value!r}")
    return parsed


def _md(frame: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, max_rows=max_rows))


def _notes(notes: list[str]) -> dict[str, dg.MetadataValue]:
    return {"notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))} if notes else {}


# --- assets -----------------------------------------------------------------------------------


def metric_window_ends(window: tuple[datetime, datetime], now: datetime) -> list[datetime]:
    """The end of each UTC day of a partition window that has begun by ``now``: midnight after it, or
    ``now`` for the running day (its readings are refreshed by later runs)."""
    ends = []
    day = window[0]
    while day < window[1] and day < now:
        ends.append(min(day + timedelta(days=1), now))
        day += timedelta(days=1)
    return ends


@dg.asset(
    group_name=GROUP,
    deps=UPSTREAM,
    kinds={"pandas"},
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=DAILY_BACKFILL_POLICY,
)
def kaizen_metrics(
    context: dg.AssetExecutionContext,
    config: KaizenMetricsConfig,
    warehouse: WarehouseResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    """Collects every registered kaizen metric (pipeline health from the Dagster instance, trading outcomes
    from the warehouse) per UTC day partition (from data_collection.history_start) into kaizen_metrics;
    kaizen_daily_schedule runs the day just ended, a range backfill is one run."""
    current = settings.for_unit("run", context.run_id)  # the hit rate scores at this run's holding
    ks = current.kaizen
    wh = warehouse.get()
    window = partition_window(context)
    if window is None:
        ends = [parse_as_of(config.as_of) or pipeline_now(current)]
    elif config.as_of:
        raise dg.Failure(
            "kaizen_metrics: as_of is for unpartitioned runs; a partitioned run measures its days"
        )
    else:
        ends = metric_window_ends(window, pipeline_now(current))
    total = 0
    last = loop.MetricsResult()
    days = []
    for end in ends:
        history = instance_history(
            context.instance,
            end - timedelta(days=1),
            end,
            max_runs=ks.max_runs_per_day,
            freshness_assets=ks.freshness_assets,
        )
        last = loop.collect_metrics(wh, current, end, history)
        total += last.rows
        days.append(f"{last.day:%Y-%m-%d}")
    seeded = 0
    if current.source == "demo" and days:
        # the months of history a real install would have, so the kaizen analyses have something to read;
        # after the collection, so its levels follow the readings just recorded
        newest_day = collect.metric_day(max(ends))
        seeded = demo_history.seed(
            wh,
            ks,
            newest_day - timedelta(days=1),
            current.demo.kaizen_history_days,
            current.demo.seed,
            utcnow(),
        )
        if seeded:
            context.log.info(
                f"kaizen_metrics: seeded {seeded} demo-history readings (demo.kaizen_history_days)"
            )
    if not days:  # every day of the partition is after the pipeline clock (a frozen demo clock)
        return dg.MaterializeResult(
            metadata={"rows_written": 0, "days": "", **_notes(["no day has begun yet"])}
        )
    context.log.info(f"kaizen_metrics: {total} readings for {len(days)} day(s), newest {days[-1]}")
    return dg.MaterializeResult(
        metadata={
            "rows_written": total,
            "demo_history_rows": seeded,
            "days": ", ".join(days),
            "metrics_recorded": len(last.frame),
            "values": _md(last.frame),
            **_notes(last.notes),
        }
    )


@dg.asset(group_name=GROUP, deps=[kaizen_metrics], kinds={"scipy"})
def metric_trends(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Trend of each metric over kaizen.history_days (at least kaizen.min_trend_points points): Sen's slope per
    day with its Mann-Kendall significance at kaizen.trend_alpha, and week-over-week change."""
    result = loop.compute_trends(warehouse.get(), settings.get())
    cols = ["metric", "verdict", "slope_per_day", "p_value", "n_points", "wow_change", "wow_pct_change"]
    shown = result.frame[cols] if not result.frame.empty else result.frame
    return dg.MaterializeResult(
        metadata={"rows_written": result.rows, "trends": _md(shown), **_notes(result.notes)}
    )


@dg.asset(group_name=GROUP, deps=[kaizen_metrics], kinds={"pandas"})
def improvement_impact(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Measured effect of each shipped improvement (Welch t-test over kaizen.impact_window_days before and after
    shipping, at kaizen.impact_alpha, CI), its ROI and the accuracy of its prediction."""
    result = loop.compute_impacts(warehouse.get(), settings.get())
    meta: dict[str, object] = {"rows_written": result.rows, **_notes(result.notes)}
    if not result.frame.empty:
        cols = [
            c
            for c in ("improvement_id", "target_metric", "verdict", "n_before", "n_after", "actual_effect", "ci_low",
                      "ci_high", "p_value", "predicted_effect", "abs_pct_error", "value_usd", "cost_usd", "roi")
            if c in result.frame.columns
        ]  # fmt: skip
        meta["impacts"] = _md(result.frame[cols])
        acc = result.accuracy
        if acc is not None:
            meta |= {
                "validated": acc.validated,
                "mean_relative_bias": dg.MetadataValue.float(acc.mean_relative_bias),
                "mape_pct": dg.MetadataValue.float(acc.mape),
            }
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, deps=[kaizen_metrics, improvement_impact], kinds={"statsmodels"})
def metric_forecasts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """ARIMA forecasts (kaizen.forecast_horizon_days) with intervals per metric, what-ifs for proposed improvements, early warnings,
    anomalies and rolling-origin MASE; charts the kaizen.chart_metrics metrics closest to deviating."""
    result = loop.compute_forecasts(warehouse.get(), settings.get())
    meta: dict[str, object] = {"rows_written": result.rows, **_notes(result.notes)}
    if not result.frame.empty:
        summary = result.frame
        cols = ["metric", "model", "last_value", "deviation_line", "early_warning", "warning_ts",
                "max_deviation_probability", "mase", "naive_mase", "anomalies"]  # fmt: skip
        meta["forecasts"] = _md(summary[cols])
        meta["early_warnings"] = int(summary["early_warning"].sum())
        meta["anomalies"] = _md(result.anomalies, max_rows=15)
        mase = pd.to_numeric(summary["mase"], errors="coerce").dropna()
        if len(mase):
            meta["mean_mase"] = dg.MetadataValue.float(float(mase.mean()))
        if result.charts:
            meta["chart"] = dg.MetadataValue.md(figure_markdown(forecast_figure(result.charts), "forecasts"))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, deps=[kaizen_metrics], kinds={"pandas"})
def bottleneck(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """The one current constraint, explained, with the rankings that led to it: pipeline steps by critical-path
    share and failures over kaizen.bottleneck_window_days, metrics by importance-weighted gap to target."""
    current = settings.get()
    ks = current.kaizen
    end = pipeline_now(current)
    history = instance_history(
        context.instance,
        end - timedelta(days=ks.bottleneck_window_days),
        end + timedelta(minutes=1),
        max_runs=ks.max_runs_per_day * ks.bottleneck_window_days,
        freshness_assets=[],
        include_checks=False,
    )
    result = loop.compute_bottleneck(warehouse.get(), current, history.steps)
    constraint = result.constraint
    meta: dict[str, object] = {"rows_written": result.rows, **_notes(result.notes)}
    if constraint is not None:
        meta |= {
            "constraint": constraint.name,
            "constraint_kind": constraint.kind,
            "constraint_metric": constraint.metric or "",
            "explanation": dg.MetadataValue.md(constraint.explanation),
            "step_ranking": _md(result.steps, max_rows=10),
            "metric_ranking": _md(result.metrics, max_rows=15),
        }
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, deps=[improvement_impact], kinds={"scipy"})
def learning_velocity(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Improvements validated per week and the trend of prediction error (negative slope: the loop learns)."""
    result = loop.compute_velocity(warehouse.get())
    meta: dict[str, object] = {"rows_written": result.rows, "weekly": _md(result.frame, max_rows=26)}
    if not result.frame.empty:
        recent = result.frame.tail(4)
        meta["validated_per_week_last_4"] = dg.MetadataValue.float(float(recent["validated"].sum() / 4))
    trend = result.error_trend
    if trend:
        meta["error_slope_per_week"] = dg.MetadataValue.float(trend.slope_per_week)
        meta["error_slope_p_value"] = dg.MetadataValue.float(trend.p_value)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, deps=[bottleneck, improvement_impact], kinds={"pandas"})
def recommendations(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Ranked next actions for the constraint: catalogue changes with expected ROI, predictions corrected by the
    measured bias of past predictions."""
    result = loop.compute_recommendations(warehouse.get(), settings.get())
    cols = ["rank", "title", "target_metric", "addresses_constraint", "predicted_effect", "bias_factor",
            "corrected_effect", "cost_usd", "expected_return", "expected_roi"]  # fmt: skip
    shown = result.frame[cols] if not result.frame.empty else result.frame
    return dg.MaterializeResult(
        metadata={"rows_written": result.rows, "recommendations": _md(shown), **_notes(result.notes)}
    )


@dg.asset(group_name=GROUP, deps=[recommendations], kinds={"scipy"})
def resource_plan(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """The improvements that maximise expected return within kaizen.budget_hours and kaizen.budget_money per
    kaizen.budget_period (exact knapsack)."""
    current = settings.get()
    result = loop.compute_resource_plan(warehouse.get(), current)
    meta: dict[str, object] = {"rows_written": result.rows, **_notes(result.notes)}
    plan = result.plan
    if plan is not None:
        ks = current.kaizen
        meta |= {
            "selected": ", ".join(plan.selected) or "none",
            "expected_return_usd": dg.MetadataValue.float(plan.expected_return),
            "hours_left": dg.MetadataValue.float(plan.hours_left),
            "money_left_usd": dg.MetadataValue.float(plan.money_left),
            "budget": f"{ks.budget_hours:g} h and {ks.budget_money:g} USD per {ks.budget_period}",
            "plan": _md(
                result.frame[["catalogue_key", "selected", "expected_return", "cost_hours", "cost_money"]]
            ),
        }
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    group_name=GROUP, deps=[kaizen_metrics], kinds={"pandas"}
)  # in a demo, kaizen_metrics seeds feedback
def feedback_summary(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Weekly user feedback: responses, mean rating, VADER sentiment, and the rating trend."""
    result = loop.compute_feedback_summary(warehouse.get())
    meta: dict[str, object] = {
        "rows_written": result.rows,
        "responses": result.responses,
        "weekly": _md(result.frame, max_rows=26),
    }
    trend = result.rating_trend
    if trend:
        meta["rating_slope_per_week"] = dg.MetadataValue.float(trend.slope_per_week)
        meta["rating_slope_p_value"] = dg.MetadataValue.float(trend.p_value)
    return dg.MaterializeResult(metadata=meta)


ANALYSIS_ASSETS = [
    metric_trends, improvement_impact, metric_forecasts, bottleneck, learning_velocity, recommendations,
    resource_plan, feedback_summary,
]  # fmt: skip


def _report_asset(cadence: str) -> dg.AssetsDefinition:
    title = CADENCES[cadence]

    @dg.asset(
        name=f"kaizen_{cadence}_report",
        group_name=GROUP,
        deps=ANALYSIS_ASSETS,
        kinds={"markdown"},
        description=(
            f"{title} report (markdown in metadata, stored in kaizen_reports): what moved, what deviates, "
            "the constraint, improvements validated with their ROI, the recommendations."
        ),
    )
    def _report(
        context: dg.AssetExecutionContext,
        config: ReportConfig,
        warehouse: WarehouseResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        result = loop.build_report(warehouse.get(), settings.get(), cadence, parse_as_of(config.as_of))
        if result.markdown is None or result.headline is None:
            return dg.MaterializeResult(metadata=_notes(result.notes))
        return dg.MaterializeResult(
            metadata={"report": dg.MetadataValue.md(result.markdown), **result.headline}
        )

    return _report


REPORT_ASSETS = {cadence: _report_asset(cadence) for cadence in CADENCES}

"""One step of the kaizen loop per asset: read the warehouse, call the pure modules, write, summarise.

No Dagster here: the assets pass in what they read from the Dagster instance (run, step and
check history) as plain frames, and attach the returned summaries as metadata. The CLI and
the tests call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.experiments.learning import (
    combined_impacts,
    cooldowns,
    cooled,
    experiment_impacts,
    refinements,
    rollout_cooldowns,
)
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.flags.parameters import FLAGGABLE, FlagValueError, config_value, validated_value
from kaizen_pipeline.kaizen import collect, store
from kaizen_pipeline.kaizen.bottleneck import Constraint, choose_constraint, outcome_ranking, pipeline_ranking
from kaizen_pipeline.kaizen.feedback import rating_trend, weekly_summary
from kaizen_pipeline.kaizen.forecasting import (
    Forecast,
    apply_effect,
    detect_anomalies,
    early_warning,
    fit_model,
    rolling_origin_accuracy,
)
from kaizen_pipeline.kaizen.improvements import (
    AccuracySummary,
    accuracy_summary,
    bias_factor,
    error_trend,
    improvement_cost,
    learning_velocity,
    measure_impact,
)
from kaizen_pipeline.kaizen.planning import Plan, recommend, resource_plan
from kaizen_pipeline.kaizen.registry import deviation_line, registry
from kaizen_pipeline.kaizen.reports import ReportInputs, render_report
from kaizen_pipeline.kaizen.trends import metric_trend_row
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.settings import KaizenImprovementCandidate, Settings
from kaizen_pipeline.warehouse import Warehouse, utcnow

RUN_COLUMNS = ["run_id", "job_name", "status", "start", "end"]
STEP_COLUMNS = ["run_id", "step_key", "status", "start", "end"]
CHECK_COLUMNS = ["run_id", "check", "passed", "timestamp"]
NO_METRICS = "no kaizen_metrics yet: materialize kaizen_metrics first"


@dataclass
class InstanceHistory:
    """What the Dagster instance knows about one window, as plain frames (epoch-second times)."""

    runs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RUN_COLUMNS))
    steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STEP_COLUMNS))
    checks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHECK_COLUMNS))
    latest_ingest: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What an asset wrote and what to show about it; each step's result adds its own typed fields."""

    rows: int = 0
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class MetricsResult(StepResult):
    """kaizen_metrics: the metric day recorded and why each skipped metric was skipped."""

    day: datetime | None = None
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrendsResult(StepResult):
    """metric_trends: one row per metric with enough points."""


@dataclass(frozen=True)
class ForecastChart:
    """One charted metric: history, baseline forecast and deviation line, ranked by ``max_probability``."""

    max_probability: float
    metric: str
    values: pd.Series
    forecast: Forecast
    deviation_line: float
    days: pd.DatetimeIndex


@dataclass(frozen=True, kw_only=True)
class ForecastsResult(StepResult):
    """metric_forecasts: ``rows`` forecast points, ``frame`` the per-metric summaries."""

    anomalies: pd.DataFrame = field(default_factory=pd.DataFrame)
    charts: list[ForecastChart] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BottleneckResult(StepResult):
    """bottleneck: the chosen constraint (None: none) and the two rankings it was chosen from."""

    constraint: Constraint | None = None
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Slope:
    """An OLS slope per week with its p-value over ``n`` points."""

    slope_per_week: float
    p_value: float
    n: int

    @classmethod
    def from_fit(cls, fit: dict[str, float] | None) -> Slope | None:
        if fit is None:
            return None
        return cls(float(fit["slope_per_week"]), float(fit["p_value"]), int(fit["n"]))


@dataclass(frozen=True, kw_only=True)
class ImpactsResult(StepResult):
    """improvement_impact: one row per shipped improvement and the accuracy of their predictions."""

    accuracy: AccuracySummary | None = None


@dataclass(frozen=True, kw_only=True)
class VelocityResult(StepResult):
    """learning_velocity: weekly validations and the trend of prediction error."""

    error_trend: Slope | None = None


@dataclass(frozen=True, kw_only=True)
class RecommendationsResult(StepResult):
    """recommendations: the ranked catalogue for the newest metric day."""


@dataclass(frozen=True, kw_only=True)
class ResourcePlanResult(StepResult):
    """resource_plan: the knapsack choice (None: no metrics yet)."""

    plan: Plan | None = None


@dataclass(frozen=True, kw_only=True)
class FeedbackResult(StepResult):
    """feedback_summary: weekly feedback, the rating trend and the number of responses."""

    rating_trend: Slope | None = None
    responses: int = 0


@dataclass(frozen=True, kw_only=True)
class ReportResult(StepResult):
    """A kaizen report: its markdown and headline numbers (None: nothing to report on yet)."""

    markdown: str | None = None
    headline: dict[str, float | int | str] | None = None


# --- kaizen_metrics ---------------------------------------------------------------------------


def collect_metrics(
    wh: Warehouse, settings: Settings, as_of: datetime, history: InstanceHistory
) -> MetricsResult:
    """Record one day of every registered metric that has data; say why the others were skipped."""
    ks = settings.kaizen
    specs = registry(ks)
    day_start, end = collect.window(as_of, 1)
    out_start, _ = collect.window(as_of, ks.outcome_window_days)
    readings: list[collect.Reading] = []
    skipped: dict[str, str] = {}

    got, why = collect.pipeline_health(
        history.runs, history.steps, history.checks, history.latest_ingest, end
    )
    readings += got
    skipped |= why

    ingestion = store.read_window(wh, "ingestion_runs", "finished_at", day_start, end)
    got, why = collect.ingestion_health(ingestion)
    readings += got
    skipped |= why

    signals = store.read_window(
        wh, "trading_signals", "bucket_ts", out_start, end, columns=["market_id", "bucket_ts", "direction"]
    )
    signal_rows = store.row_count(wh, "trading_signals") or 0
    _add(
        collect.signals_per_day(signals, signal_rows, ks.outcome_window_days),
        "signals_per_day",
        readings,
        skipped,
    )
    features = store.table_of(wh, "market_features")
    feature_rows = None
    if features is not None and signals is not None and not signals.empty:
        markets = sorted(signals["market_id"].astype(str).unique())
        stmt = (
            sa.select(features.c.market_id, features.c.bucket_ts, features.c.yes_price)
            .where(features.c.market_id.in_(markets))
            .where(features.c.bucket_ts >= out_start)
            .where(features.c.bucket_ts <= end)
        )
        feature_rows = wh.read_frame(stmt, parse_dates=["bucket_ts"])
    elif features is not None:
        feature_rows = pd.DataFrame(columns=["market_id", "bucket_ts", "yes_price"])
    if signals is not None:
        signals = signals.assign(bucket_ts=pd.to_datetime(signals["bucket_ts"]))
    result = collect.signal_hit_rate(signals, feature_rows, BookConfig.from_settings(settings), end)
    _add(result, "signal_hit_rate", readings, skipped)

    got, why = collect.backtest_readings(store.backtest_book(wh, end))
    readings += got
    skipped |= why

    fb = store.read_window(wh, "feedback", "submitted_at", out_start, end)
    _add(collect.feedback_score(fb), "feedback_score", readings, skipped)

    day = collect.metric_day(end)
    now = utcnow()
    rows = [
        {
            "metric": r.metric,
            "scope": r.scope,
            "ts": day,
            "value": r.value,
            "sample_size": r.sample_size,
            "source": r.source,
            "as_of": end,
            "collected_at": now,
        }
        for r in readings
        if r.metric in specs and np.isfinite(r.value)
    ]
    written = wh.upsert("kaizen_metrics", rows)
    frame = pd.DataFrame(
        [r for r in rows if r["scope"] == collect.ALL], columns=["metric", "value", "sample_size", "source"]
    )
    if not frame.empty:
        frame["target"] = frame["metric"].map(lambda m: specs[m].target)
        frame["direction"] = frame["metric"].map(lambda m: specs[m].direction)
    notes = [f"{m}: not recorded, {why}" for m, why in sorted(skipped.items()) if m in specs]
    return MetricsResult(rows=written.rows_written, frame=frame, notes=notes, day=day, skipped=skipped)


def uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every row the same keys (missing ones None): one executemany statement needs one shape."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return [{k: row.get(k) for k in keys} for row in rows]


def _add(result: collect.Reading | str, name: str, readings: list, skipped: dict) -> None:
    if isinstance(result, str):
        skipped[name] = result
    else:
        readings.append(result)


def recent_history(wh: Warehouse, settings: Settings) -> tuple[datetime, pd.DataFrame] | None:
    """The newest metric day and the ``kaizen.history_days`` of metric history before it (None: no metrics)."""
    as_of = store.newest_metric_day(wh)
    if as_of is None:
        return None
    return as_of, store.metric_history(wh, since=as_of - timedelta(days=settings.kaizen.history_days))


# --- metric_trends ----------------------------------------------------------------------------


def compute_trends(wh: Warehouse, settings: Settings) -> TrendsResult:
    ks = settings.kaizen
    specs = registry(ks)
    recent = recent_history(wh, settings)
    if recent is None:
        return TrendsResult(notes=[NO_METRICS])
    as_of, history = recent
    rows, notes = [], []
    now = utcnow()
    for name, spec in specs.items():
        series = history[history["metric"] == name]
        row = metric_trend_row(
            name,
            series["ts"],
            series["value"],
            1 if spec.direction == "higher" else -1,
            ks.trend_alpha,
            ks.min_trend_points,
        )
        if row is None:
            notes.append(f"{name}: {len(series)} points, fewer than {ks.min_trend_points}")
            continue
        row["computed_at"] = now
        rows.append(row)
    written = wh.upsert("metric_trends", rows)
    return TrendsResult(rows=written.rows_written, frame=pd.DataFrame(rows), notes=notes)


# --- metric_forecasts -------------------------------------------------------------------------


def daily_series(series: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """A gap-free daily series (missing days linearly interpolated) and a mask of observed days."""
    s = series.set_index(pd.to_datetime(series["ts"]))["value"].astype(float).sort_index()
    s = s[~s.index.duplicated(keep="last")]
    full = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
    observed = full.notna()
    return full.interpolate(limit_direction="both"), observed


def compute_forecasts(wh: Warehouse, settings: Settings) -> ForecastsResult:
    """Forecasts, what-ifs, early warnings, anomalies and rolling-origin accuracy for every metric."""
    ks = settings.kaizen
    specs = registry(ks)
    recent = recent_history(wh, settings)
    if recent is None:
        return ForecastsResult(notes=[NO_METRICS])
    as_of, history = recent
    improvements = store.read_improvements(wh)
    impacts = wh.read_frame("SELECT * FROM improvement_impact")
    scenarios_by_metric: dict[str, list[tuple[str, float]]] = {}
    pending = (
        improvements[improvements["status"].isin(["proposed", "in_progress"])]
        if not improvements.empty
        else improvements
    )
    for row in pending.itertuples(index=False):
        scenarios_by_metric.setdefault(row.target_metric, []).append(
            (f"whatif:{row.improvement_id}", row.predicted_effect)
        )
    for entry in ks.catalogue:
        scenarios_by_metric.setdefault(entry.target_metric, []).append(
            (f"whatif:{entry.key}", entry.predicted_effect)
        )

    now = utcnow()
    points, summaries, anomaly_rows, notes = [], [], [], []
    charts: list[ForecastChart] = []
    for name, spec in specs.items():
        series = history[history["metric"] == name]
        if len(series) < ks.min_forecast_points:
            notes.append(f"{name}: {len(series)} points, fewer than {ks.min_forecast_points}: not forecast")
            continue
        values, observed = daily_series(series)
        origin = values.index[-1]
        model = fit_model(
            values.to_numpy(),
            season_length=ks.forecast_season_length,
            max_p=ks.forecast_max_p,
            max_q=ks.forecast_max_q,
        )
        forecast = model.forecast(ks.forecast_horizon_days, ks.forecast_alpha)
        line = deviation_line(spec, ks.deviation_factor)
        days = pd.date_range(origin + pd.Timedelta(days=1), periods=forecast.horizon, freq="D")
        scenarios = [("baseline", 0.0, forecast)]
        for scenario, predicted in scenarios_by_metric.get(name, []):
            factor, _, _ = bias_factor(impacts, name, ks.bias_min_validated)
            effect = predicted * factor
            scenarios.append((scenario, effect, apply_effect(forecast, effect)))
        for scenario, effect, fc in scenarios:
            for step, (day, mean, lo, hi) in enumerate(
                zip(days, fc.mean, fc.lower, fc.upper, strict=True), start=1
            ):
                points.append(
                    {"metric": name, "origin_ts": origin.to_pydatetime(), "scenario": scenario, "ts": day.to_pydatetime(),
                     "step": step, "mean": float(mean), "lower": float(lo), "upper": float(hi),
                     "deviation_line": line, "effect": float(effect), "computed_at": now}
                )  # fmt: skip
        warning = early_warning(forecast, line, spec.direction)
        anomalies = detect_anomalies(model, ks.anomaly_z_threshold, ks.anomaly_window_days)
        observed_flags = observed.to_numpy()
        anomalies = anomalies[[bool(observed_flags[int(i)]) for i in anomalies["index"]]]
        for a in anomalies.itertuples(index=False):
            anomaly_rows.append(
                {"metric": name, "ts": values.index[int(a.index)].to_pydatetime(), "value": a.value,
                 "expected": a.expected, "residual_z": a.residual_z, "robust_z": a.robust_z, "reason": a.reason,
                 "detected_at": now}
            )  # fmt: skip
        accuracy = rolling_origin_accuracy(
            values.to_numpy(),
            ks.forecast_horizon_days,
            ks.accuracy_origins,
            min_train=ks.min_forecast_points,
            season_length=ks.forecast_season_length,
            max_p=ks.forecast_max_p,
            max_q=ks.forecast_max_q,
        )
        summaries.append(
            {
                "metric": name,
                "origin_ts": origin.to_pydatetime(),
                "model": model.choice.label,
                "aic": model.choice.aic if np.isfinite(model.choice.aic) else None,
                "n_points": int(observed.sum()),
                "last_value": float(values.iloc[-1]),
                "deviation_line": line,
                "early_warning": warning.crosses,
                "warning_ts": days[warning.first_step - 1].to_pydatetime() if warning.first_step else None,
                "warning_step": warning.first_step,
                "max_deviation_probability": warning.max_probability,
                "mase": accuracy.mase if accuracy else None,
                "naive_mase": accuracy.naive_mase if accuracy else None,
                "accuracy_origins": accuracy.origins if accuracy else 0,
                "anomalies": len(anomalies),
                "computed_at": now,
            }
        )
        charts.append(ForecastChart(warning.max_probability, name, values, forecast, line, days))

    origins = {(p["metric"], p["origin_ts"]) for p in summaries}
    table = wh.table("metric_forecasts")
    for metric, origin in origins:
        # whole forecast per (metric, origin) is recomputed: drop scenarios that no longer exist
        wh.replace(
            table,
            [p for p in points if p["metric"] == metric and p["origin_ts"] == origin],
            where=sa.and_(table.c.metric == metric, table.c.origin_ts == origin),
        )
    wh.upsert("metric_forecast_summary", summaries)
    if anomaly_rows:
        wh.upsert("metric_anomalies", anomaly_rows)
    charts.sort(key=lambda c: (-c.max_probability, c.metric))
    return ForecastsResult(
        rows=len(points),
        frame=pd.DataFrame(summaries),
        notes=notes,
        anomalies=pd.DataFrame(anomaly_rows),
        charts=charts[: ks.chart_metrics],
    )


# --- bottleneck -------------------------------------------------------------------------------


def compute_bottleneck(wh: Warehouse, settings: Settings, steps: pd.DataFrame) -> BottleneckResult:
    ks = settings.kaizen
    specs = registry(ks)
    recent = recent_history(wh, settings)
    if recent is None:
        return BottleneckResult(notes=[NO_METRICS])
    as_of, history = recent
    latest = store.latest_values(history)
    values = dict(zip(latest["metric"], latest["value"], strict=True))
    metric_rank = outcome_ranking(values, specs.values(), ks.deviation_factor)
    step_rank = pipeline_ranking(steps)
    constraint = choose_constraint(metric_rank, step_rank)
    now = utcnow()
    rows = []
    for r in step_rank.itertuples(index=False):
        is_c = constraint is not None and constraint.kind == "pipeline" and constraint.name == r.step_key
        rows.append(
            {"as_of": as_of, "kind": "step", "category": "pipeline", "rank": int(r.rank), "candidate": r.step_key,
             "score": float(r.score),
             "critical_seconds": float(r.critical_seconds), "critical_share": float(r.critical_share),
             "failures": int(r.failures), "failure_share": float(r.failure_share), "is_constraint": is_c,
             "constraint_metric": constraint.metric if is_c else None,
             "explanation": constraint.explanation if is_c else None, "computed_at": now}
        )  # fmt: skip
    for r in metric_rank.itertuples(index=False):
        is_c = constraint is not None and constraint.name == r.metric and constraint.metric == r.metric
        rows.append(
            {"as_of": as_of, "kind": "metric", "category": r.category, "rank": int(r.rank), "candidate": r.metric, "score": float(r.weighted_gap), "value": float(r.value), "target": float(r.target),
             "relative_gap": float(r.relative_gap), "importance": float(r.importance), "is_constraint": is_c,
             "constraint_metric": constraint.metric if is_c else None,
             "explanation": constraint.explanation if is_c else None, "computed_at": now}
        )  # fmt: skip
    table = wh.table("bottleneck")
    written = wh.replace(table, uniform(rows), where=table.c.as_of == as_of)
    return BottleneckResult(
        rows=written.rows_written,
        frame=pd.DataFrame(rows),
        constraint=constraint,
        steps=step_rank,
        metrics=metric_rank,
    )


# --- improvements -----------------------------------------------------------------------------


def compute_impacts(wh: Warehouse, settings: Settings) -> ImpactsResult:
    """Measure every shipped improvement against its metric's daily history (see improvements.measure_impact)."""
    ks = settings.kaizen
    specs = registry(ks)
    improvements = store.read_improvements(wh)
    shipped = (
        improvements[(improvements["status"] == "shipped") & improvements["shipped_at"].notna()]
        if not improvements.empty
        else improvements
    )
    if shipped.empty:
        wh.replace("improvement_impact", [])
        return ImpactsResult(
            notes=[
                "no shipped improvements yet (log one with the log_improvement job or `kaizen improvement log`)"
            ]
        )
    history = store.metric_history(wh)
    now = utcnow()
    rows, notes = [], []
    for imp in shipped.itertuples(index=False):
        spec = specs.get(imp.target_metric)
        if spec is None:
            notes.append(f"{imp.improvement_id}: metric {imp.target_metric!r} is no longer registered")
            continue
        row = measure_impact(
            history[history["metric"] == imp.target_metric][["ts", "value"]],
            pd.Timestamp(imp.shipped_at),
            spec=spec,
            predicted_effect=float(imp.predicted_effect),
            cost_usd=improvement_cost(float(imp.cost_hours), float(imp.cost_money), ks.hourly_rate_usd),
            window_days=ks.impact_window_days,
            min_points=ks.impact_min_points,
            alpha=ks.impact_alpha,
        )
        row["improvement_id"] = imp.improvement_id
        row["computed_at"] = now
        rows.append(row)
    written = wh.replace("improvement_impact", uniform(rows))
    frame = pd.DataFrame(rows)
    return ImpactsResult(
        rows=written.rows_written, frame=frame, notes=notes, accuracy=accuracy_summary(frame)
    )


def read_impacts(wh: Warehouse) -> pd.DataFrame:
    return wh.read_frame(
        "SELECT * FROM improvement_impact", parse_dates=["shipped_at", "validated_at", "computed_at"]
    )


def compute_velocity(wh: Warehouse) -> VelocityResult:
    store_ = ExperimentStore(wh)
    impacts = combined_impacts(read_impacts(wh), experiment_impacts(store_.frame(), store_.looks()))
    weekly = learning_velocity(impacts)
    now = utcnow()
    rows = [dict(r) | {"computed_at": now} for r in weekly.to_dict("records")]
    written = wh.replace("learning_velocity", rows)
    return VelocityResult(
        rows=written.rows_written, frame=weekly, error_trend=Slope.from_fit(error_trend(impacts))
    )


def compute_recommendations(wh: Warehouse, settings: Settings) -> RecommendationsResult:
    ks = settings.kaizen
    as_of = store.newest_metric_day(wh)
    if as_of is None:
        return RecommendationsResult(notes=[NO_METRICS])
    bottleneck = wh.table("bottleneck")
    constraint = wh.read_frame(
        sa.select(bottleneck.c.constraint_metric).where(
            bottleneck.c.as_of == as_of, bottleneck.c.is_constraint
        )
    )
    constraint_metric = constraint["constraint_metric"].iloc[0] if not constraint.empty else None
    improvements = store.read_improvements(wh)
    in_flight = (
        improvements.loc[improvements["status"] != "abandoned", "catalogue_key"].dropna().tolist()
        if not improvements.empty
        else []
    )
    learned = learned_from_experiments(wh, settings)
    recs = recommend(
        learned.catalogue,
        registry(ks),
        learned.impacts,
        constraint_metric=constraint_metric,
        hourly_rate=ks.hourly_rate_usd,
        min_validated=ks.bias_min_validated,
        exclude=in_flight,
    )
    now = utcnow()
    rows = [dict(r) | {"as_of": as_of, "computed_at": now} for r in recs.to_dict("records")]
    table = wh.table("recommendations")
    written = wh.replace(table, rows, where=table.c.as_of == as_of)
    notes = [
        f"constraint metric: {constraint_metric}"
        if constraint_metric
        else "no constraint recorded for this day"
    ]
    if in_flight:
        notes.append(f"already logged, not recommended again: {', '.join(in_flight)}")
    return RecommendationsResult(rows=written.rows_written, frame=recs, notes=notes + learned.notes)


@dataclass(frozen=True)
class Learned:
    """What ended experiments change in the recommender: impacts, the catalogue to rank, and why."""

    impacts: pd.DataFrame
    catalogue: list[KaizenImprovementCandidate]
    notes: list[str]


TUNING_TARGET_METRIC = "backtest_sharpe"  # tuning scores the book's Sharpe after costs


def tuning_candidates(
    wh: Warehouse, settings: Settings
) -> tuple[list[KaizenImprovementCandidate], list[str]]:
    """Catalogue entries from the newest parameter_tuning proposals that passed its out-of-sample rule.

    Costs are those of the configured entry for the same parameter (none: 0). A category's value
    reaches an experiment as a change for every market: flags cannot target a category yet.
    """
    if TUNING_TARGET_METRIC not in registry(settings.kaizen):
        return [], [f"tuning proposals skipped: {TUNING_TARGET_METRIC} is not a registered metric"]
    table = wh.table("tuning_proposals")
    newest = wh.scalar(sa.select(sa.func.max(table.c.as_of)))
    if newest is None:
        return [], []
    rows = wh.read_frame(sa.select(table).where(table.c.as_of == newest, table.c.proposed.is_(True)))
    configured = {c.key for c in settings.kaizen.catalogue}
    costs = {c.parameter: c for c in reversed(settings.kaizen.catalogue) if c.parameter}
    out = []
    for r in rows.sort_values("catalogue_key").to_dict("records"):
        if r["catalogue_key"] in configured:
            continue  # a configured entry of the same key wins
        origin = costs.get(r["parameter"])
        where = (
            "every market"
            if r["scope_kind"] == "all"
            else f"{r['scope']} (an experiment tests it on every market)"
        )
        out.append(
            KaizenImprovementCandidate(
                key=r["catalogue_key"],
                title=f"Tuned for {where}: {r['parameter']} {r['default_value']:g} -> {r['proposed_value']:g} "
                f"(beat the config out of sample in {r['windows_won']} of {r['windows']} windows)",
                target_metric=TUNING_TARGET_METRIC,
                predicted_effect=float(r["predicted_effect"]),
                cost_hours=origin.cost_hours if origin else 0.0,
                cost_money=origin.cost_money if origin else 0.0,
                parameter=r["parameter"],
                proposed_value=f"{r['proposed_value']:g}",
            )
        )
    notes = [f"{len(out)} tuned value(s) from parameter_tuning as of {newest:%Y-%m-%d %H:%M}"] if out else []
    return out, notes


def learned_from_experiments(wh: Warehouse, settings: Settings) -> Learned:
    """Measured effects join the impacts; shipped changes propose their next step; harm cools a direction."""
    exp = settings.experiments
    store_ = ExperimentStore(wh)
    experiments, looks = store_.frame(), store_.looks()
    measured = experiment_impacts(experiments, looks)
    impacts = combined_impacts(read_impacts(wh), measured)
    tuned, notes = tuning_candidates(wh, settings)
    catalogue = list(settings.kaizen.catalogue) + tuned  # tuned values rank with the configured entries
    if not measured.empty:
        notes.append(f"{len(measured)} measured experiment effect(s) correct the predictions")
    if exp.refine_winners and not experiments.empty:
        params = experiments["parameter"].dropna().unique()
        config = {p: config_value(settings, p) for p in params if p in FLAGGABLE}
        refined, waiting = refinements(experiments, measured, config_values=config, bounds=exp.autonomy)
        costs = {c.key: c for c in catalogue}
        for r in refined:
            origin = costs.get(str(experiments.set_index("experiment_id").loc[r.after, "catalogue_key"]))
            catalogue.append(
                KaizenImprovementCandidate(
                    key=r.key,
                    title=r.title,
                    target_metric=r.target_metric,
                    predicted_effect=r.predicted_effect,
                    cost_hours=origin.cost_hours if origin else 0.0,
                    cost_money=origin.cost_money if origin else 0.0,
                    parameter=r.parameter,
                    proposed_value=r.proposed_value,
                )  # fmt: skip
            )
            notes.append(f"{r.key}: proposed after {r.after} shipped")
        notes += [f"{k}: {why}" for k, why in waiting.items()]
    now = pipeline_now(settings)
    blocks = cooldowns(experiments, days=exp.cooldown_days, now=now) + rollout_cooldowns(
        DeploymentStore(wh).frame(), days=exp.cooldown_days, now=now
    )
    kept = []
    for entry in catalogue:
        block = None
        if blocks and entry.parameter in FLAGGABLE and entry.proposed_value is not None:
            try:
                proposed = validated_value(settings, entry.parameter, entry.proposed_value)
            except FlagValueError:
                proposed = None
            block = cooled(entry.parameter, config_value(settings, entry.parameter), proposed, blocks)
        if block is None:
            kept.append(entry)
        else:
            notes.append(
                f"{entry.key}: cooling down until {block.until:%Y-%m-%d} ({block.experiment_id} moved "
                f"{entry.parameter} this way and was stopped or rolled back)"
            )
    return Learned(impacts, kept, notes)


def compute_resource_plan(wh: Warehouse, settings: Settings) -> ResourcePlanResult:
    ks = settings.kaizen
    as_of = store.newest_metric_day(wh)
    if as_of is None:
        return ResourcePlanResult(notes=[NO_METRICS])
    table = wh.table("recommendations")
    recs = wh.read_frame(sa.select(table).where(table.c.as_of == as_of).order_by(table.c.rank))
    plan, frame = resource_plan(recs, ks.budget_hours, ks.budget_money)
    now = utcnow()
    rows = [
        {"as_of": as_of, "catalogue_key": r["catalogue_key"], "selected": bool(r["selected"]),
         "expected_return": float(r["expected_return"]), "cost_hours": float(r["cost_hours"]),
         "cost_money": float(r["cost_money"]), "period": ks.budget_period, "budget_hours": ks.budget_hours,
         "budget_money": ks.budget_money, "hours_left": plan.hours_left, "money_left": plan.money_left,
         "computed_at": now}
        for r in frame.to_dict("records")
    ]  # fmt: skip
    table = wh.table("resource_plan")
    written = wh.replace(table, rows, where=table.c.as_of == as_of)
    return ResourcePlanResult(rows=written.rows_written, frame=frame, plan=plan)


# --- feedback ---------------------------------------------------------------------------------


def compute_feedback_summary(wh: Warehouse) -> FeedbackResult:
    fb = wh.read_frame("SELECT * FROM feedback ORDER BY submitted_at", parse_dates=["submitted_at"])
    weekly = weekly_summary(fb)
    now = utcnow()
    rows = [dict(r) | {"computed_at": now} for r in weekly.to_dict("records")]
    written = wh.replace("feedback_summary", rows)
    return FeedbackResult(
        rows=written.rows_written,
        frame=weekly,
        rating_trend=Slope.from_fit(rating_trend(fb)),
        responses=len(fb),
    )


# --- reports ----------------------------------------------------------------------------------


def build_report(
    wh: Warehouse, settings: Settings, cadence: str, as_of: datetime | None = None
) -> ReportResult:
    """Render and store the ``cadence`` report for the period holding the newest metric day (or ``as_of``)."""
    ks = settings.kaizen
    specs = registry(ks)
    newest = store.newest_metric_day(wh)
    if as_of is None:
        if newest is None:
            return ReportResult(notes=[NO_METRICS])
        as_of = newest + timedelta(days=1)  # the report covers the period holding the newest day
    history = store.metric_history(wh, since=as_of - timedelta(days=400), until=as_of)
    latest = store.latest_values(history)

    def newest_slice(table: str, column: str = "as_of") -> pd.DataFrame:
        return store.newest_slice(wh, table, column, before=as_of)

    trends = newest_slice("metric_trends")
    forecasts = newest_slice("metric_forecast_summary", "origin_ts")
    bottleneck = newest_slice("bottleneck")
    recs = newest_slice("recommendations")
    bt = wh.table("bottleneck")
    inputs = ReportInputs(
        history=history,
        latest=latest,
        trends=trends,
        forecast_summary=forecasts,
        anomalies=wh.read_frame("SELECT * FROM metric_anomalies", parse_dates=["ts"]),
        bottleneck=bottleneck.sort_values(["kind", "rank"]) if not bottleneck.empty else bottleneck,
        constraint_history=wh.read_frame(
            sa.select(bt.c.as_of, bt.c.kind, bt.c.candidate).where(bt.c.is_constraint), parse_dates=["as_of"]
        ),
        impacts=read_impacts(wh),
        recommendations=recs.sort_values("rank") if not recs.empty else recs,
        plan=newest_slice("resource_plan"),
        feedback=wh.read_frame("SELECT * FROM feedback_summary", parse_dates=["week_start"]),
        velocity=wh.read_frame(
            "SELECT * FROM learning_velocity ORDER BY week_start", parse_dates=["week_start"]
        ),
    )
    markdown, headline = render_report(cadence, as_of, inputs, specs, ks.deviation_factor)
    start = pd.Timestamp(headline["period_start"]).to_pydatetime()
    end = pd.Timestamp(headline["period_end"]).to_pydatetime()
    wh.upsert(
        "kaizen_reports",
        [
            {
                "cadence": cadence,
                "period_start": start,
                "period_end": end,
                "markdown": markdown,
                "generated_at": utcnow(),
            }
        ],
    )
    return ReportResult(rows=1, markdown=markdown, headline=headline)

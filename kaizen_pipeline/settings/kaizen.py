"""The kaizen section: metric registry and targets, improvement catalogue, forecasting, impacts, budgets.

The default registry and catalogue are data, not code: kaizen_defaults.yaml next to this module.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from kaizen_pipeline.settings._base import ConfigError, _reject_moved, _Section


class KaizenMetricSettings(_Section):
    """One registered kaizen metric: what it measures, which way is better, and its target."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Metric key (snake_case).")
    description: str = Field("", description="What the number measures; shown in reports and the UI.")
    unit: str = Field("", description="Unit of the value (fraction, seconds, minutes, count, ratio, rating).")
    direction: Literal["higher", "lower"] = Field(description="Which way is better.")
    target: float = Field(ge=0, description="Target value; deviation is measured against it.")
    severity: Literal["critical", "warning"] = Field(
        "warning", description="critical: the deviation check fails with ERROR severity and is escalated."
    )
    owner: str = Field("kaizen", description="Who acts on a deviation (a domain or a person).")
    category: Literal["pipeline", "outcome"] = Field(
        description="pipeline: health of the machinery; outcome: trading and user outcomes."
    )
    importance: float = Field(
        1.0, gt=0, le=100, description="Weight of the metric's gap in the bottleneck ranking."
    )
    value_per_unit: float = Field(
        0.0, ge=0, description="USD value of a sustained one-unit move in the better direction (for ROI)."
    )


class KaizenImprovementCandidate(_Section):
    """A catalogue entry: a parameter change the recommender may propose."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Catalogue key (snake_case).")
    title: str = Field(description="What the change is, in one line.")
    target_metric: str = Field(description="Registered metric the change is expected to move.")
    predicted_effect: float = Field(
        description="Expected change of the metric's value (signed, metric units)."
    )
    cost_hours: float = Field(0.0, ge=0, description="Engineering hours to ship it.")
    cost_money: float = Field(0.0, ge=0, description="Money (USD) to ship and run it for a period.")
    parameter: str | None = Field(
        None, description="Config key the change touches (e.g. transport.max_retries)."
    )
    proposed_value: str | None = Field(None, description="The value the change sets.")


DEFAULTS_FILE = "kaizen_defaults.yaml"


@functools.cache
def _defaults() -> dict[str, list[dict[str, Any]]]:
    """The default metric registry and catalogue, read once from the package's kaizen_defaults.yaml."""
    text = resources.files("kaizen_pipeline.settings").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != {"metrics", "catalogue"}:
        raise ConfigError(f"{DEFAULTS_FILE}: expected exactly the keys metrics and catalogue")
    return data


def default_kaizen_metrics() -> list[KaizenMetricSettings]:
    """The default kaizen.metrics (fresh models each call)."""
    return [KaizenMetricSettings(**entry) for entry in _defaults()["metrics"]]


def default_kaizen_catalogue() -> list[KaizenImprovementCandidate]:
    """The default kaizen.catalogue (fresh models each call)."""
    return [KaizenImprovementCandidate(**entry) for entry in _defaults()["catalogue"]]


class KaizenSettings(_Section):
    """The kaizen loop: metric registry and targets, forecasting, impact measurement, budgets, cadence."""

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return _reject_moved(data, "kaizen")

    timezone: str = Field(
        "UTC", description="IANA timezone of the kaizen schedules (daily 00:00, weekly Monday...)."
    )
    deviation_factor: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Deviation: higher-better below factor x target; lower-better above target / factor.",
    )
    history_days: int = Field(365, ge=14, le=3650, description="Metric history read by trends and forecasts.")
    outcome_window_days: int = Field(
        7, ge=1, le=90, description="Trailing window of the trading-outcome metrics."
    )
    freshness_assets: list[str] = Field(
        default_factory=lambda: ["polymarket_markets", "market_prices", "trade_volumes", "tweets"],
        description="Assets whose newest materialization defines data_freshness_minutes.",
    )
    max_runs_per_day: int = Field(
        2000, ge=10, description="Dagster runs read per collected day (newest first)."
    )
    bottleneck_window_days: int = Field(
        7, ge=1, le=365, description="Dagster run history the bottleneck's critical-path ranking reads."
    )
    trend_alpha: float = Field(0.05, gt=0, lt=1, description="Mann-Kendall significance level.")
    min_trend_points: int = Field(6, ge=4, description="Fewer daily points: no trend is reported.")
    forecast_horizon_days: int = Field(14, ge=1, le=365, description="Days ahead each metric is forecast.")
    forecast_alpha: float = Field(0.05, gt=0, lt=1, description="Prediction intervals are (1 - alpha).")
    forecast_season_length: int = Field(
        7, ge=1, le=366, description="Seasonal period of daily metrics (7: weekly)."
    )
    forecast_max_p: int = Field(2, ge=0, le=5, description="Largest AR order of the AIC grid.")
    forecast_max_q: int = Field(1, ge=0, le=5, description="Largest MA order of the AIC grid.")
    min_forecast_points: int = Field(10, ge=3, description="Fewer daily points: the metric is not forecast.")
    accuracy_origins: int = Field(4, ge=1, le=52, description="Rolling origins of the MASE accuracy report.")
    anomaly_z_threshold: float = Field(
        4.0, gt=0, description="Anomaly: |one-step residual| / sigma or robust rolling z above this."
    )
    anomaly_window_days: int = Field(
        28, ge=5, le=365, description="Window of the robust (median/MAD) z-score."
    )
    chart_metrics: int = Field(3, ge=0, le=20, description="Worst metrics charted in metric_forecasts.")
    impact_window_days: int = Field(
        14, ge=2, le=365, description="Days before and after shipping that are compared."
    )
    impact_min_points: int = Field(
        5, ge=2, description="Points needed on each side before an impact is measured."
    )
    impact_alpha: float = Field(0.05, gt=0, lt=1, description="Welch t-test level; the CI is (1 - alpha).")
    bias_min_validated: int = Field(
        1, ge=1, description="Validated improvements needed before predictions are corrected."
    )
    hourly_rate_usd: float = Field(100.0, ge=0, description="Cost of an engineering hour in ROI.")
    budget_hours: float = Field(16.0, ge=0, description="Engineering hours available per budget period.")
    budget_money: float = Field(200.0, ge=0, description="Money (USD) available per budget period.")
    budget_period: Literal["week", "month", "quarter"] = Field(
        "month", description="Period of kaizen.budget_hours and kaizen.budget_money."
    )
    metrics: list[KaizenMetricSettings] = Field(
        default_factory=default_kaizen_metrics,
        description="The metric registry (defaults: kaizen_defaults.yaml); setting it replaces the whole list.",
    )
    catalogue: list[KaizenImprovementCandidate] = Field(
        default_factory=default_kaizen_catalogue,
        description="Changes the recommender may propose (defaults: kaizen_defaults.yaml); replaces the whole list.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> KaizenSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown IANA timezone {self.timezone!r}") from None
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metrics: duplicate metric names {duplicates}")
        keys = [c.key for c in self.catalogue]
        if len(set(keys)) != len(keys):
            raise ValueError("catalogue: duplicate keys")
        unknown = sorted({c.target_metric for c in self.catalogue} - set(names))
        if unknown:
            raise ValueError(f"catalogue: target_metric not in metrics: {unknown}")
        return self

    def metric(self, name: str) -> KaizenMetricSettings:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise KeyError(f"metric {name!r} is not registered in kaizen.metrics")

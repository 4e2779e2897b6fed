"""The config.yaml schema, validated once at load, with env-var overrides.

Precedence (highest first): explicit arguments, environment variables
(``KAIZEN_`` prefix, ``__`` between nesting levels, e.g. ``KAIZEN_POLYMARKET__CLOB_URL``),
the YAML file named by ``KAIZEN_CONFIG`` (default ``./config.yaml``), the defaults below.
Secrets (X bearer token, SMTP password) are accepted from the environment only.
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from kaizen_pipeline.clock import as_naive_utc, utcnow

CONFIG_ENV_VAR = "KAIZEN_CONFIG"
DEFAULT_CONFIG_PATH = "config.yaml"

# Dotted config keys that may only come from the environment.
SECRET_KEYS: dict[str, str] = {
    "twitter.bearer_token": "KAIZEN_TWITTER__BEARER_TOKEN",
    "alerts.smtp_password": "KAIZEN_ALERTS__SMTP_PASSWORD",
}

ENV_PREFIX = "KAIZEN_"
# KAIZEN_* variables the project reads that are not config keys (config file, Dagster storage URL, and the
# test suite's PostgreSQL URL, API samples directory and property-test example count).
NON_CONFIG_ENV_VARS: frozenset[str] = frozenset(
    {
        CONFIG_ENV_VAR,
        "KAIZEN_TEST_POSTGRES_URL",
        "KAIZEN_DAGSTER_POSTGRES_URL",
        "KAIZEN_API_SAMPLES",
        "KAIZEN_PROPERTY_EXAMPLES",
    }
)


class ConfigError(ValueError):
    """A config.yaml or environment value is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# Keys merged into one: setting one fails with the key that replaced it (config.yaml or env).
HOLDING_KEY = "research.signal_hold_buckets"
REMOVED_KEYS: dict[str, str] = {
    "kaizen.hit_horizon_buckets": HOLDING_KEY,
    "backtest.holding_bars": HOLDING_KEY,
}


def _reject_moved(data: Any, section: str) -> Any:
    if isinstance(data, dict):
        for key, new in REMOVED_KEYS.items():
            moved_section, old = key.split(".", 1)
            if moved_section == section and old in data:
                raise ValueError(f"{key} was removed: set {new} instead (one holding knob)")
    return data


class DataCollectionSettings(_Section):
    frequency_minutes: int = Field(15, ge=1, le=1440, description="Ingest schedule period.")
    min_volume_24h: float = Field(
        50_000, ge=0, description="Markets below this 24 h volume (USD) are skipped."
    )
    min_liquidity: float = Field(0, ge=0, description="Markets below this liquidity (USD) are skipped.")
    max_markets: int = Field(50, ge=1, le=1000, description="Keep the top N open markets by 24 h volume.")
    history_days: int = Field(30, ge=1, le=365, description="Price history fetched on the first run.")
    trade_history_days: int = Field(
        7, ge=1, le=90, description="Trade volume history fetched on the first run."
    )
    max_concurrency: int = Field(16, ge=1, le=256, description="Concurrent per-market requests.")


class QualitySettings(_Section):
    stale_after_minutes: float = Field(
        30, gt=0, description="Newest data older than this fails the freshness checks."
    )
    max_jump_ratio: float = Field(
        0.5, gt=0, description="Relative change between consecutive prices flagged as a jump."
    )
    binary_sum_tolerance: float = Field(
        0.02, gt=0, lt=1, description="Allowed |YES + NO - 1| at the same timestamp."
    )
    gap_factor: float = Field(2.0, ge=1, description="A gap longer than this x fidelity is reported.")
    tweet_window_slack_minutes: float = Field(5, ge=0)


class PolymarketSettings(_Section):
    gamma_url: str = "https://gamma-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    page_size: int = Field(100, ge=1, le=100, description="Gamma keyset page size (the API caps it at 100).")
    fidelity_minutes: int = Field(15, ge=1, le=1440, description="CLOB price-history resolution.")
    trades_page_size: int = Field(500, ge=1, le=10_000)
    markets_rate_limit: int = Field(300, ge=1, description="Gamma /markets requests per 10 s.")
    prices_history_rate_limit: int = Field(1000, ge=1, description="CLOB /prices-history requests per 10 s.")
    trades_rate_limit: int = Field(200, ge=1, description="Data API /trades requests per 10 s.")


class TwitterSettings(_Section):
    api_url: str = "https://api.x.com"
    bearer_token: SecretStr | None = Field(None, description="Env only: KAIZEN_TWITTER__BEARER_TOKEN.")
    keywords: list[str] = Field(default_factory=lambda: ["polymarket.com", "#Polymarket"])
    max_tweets_per_query: int = Field(
        100, ge=10, le=100, description="Page size (max_results) of each search request."
    )
    max_pages_per_query: int = Field(10, ge=1, le=100, description="Pagination budget per query and run.")
    bot_detection: bool = True
    window_days: int = Field(7, ge=1, le=7, description="Recent search only reaches back 7 days.")
    rate_limit: int = Field(450, ge=1, description="Requests per 15 minutes.")
    per_market_queries: bool = Field(True, description="Search each market's question keywords too.")


class DatabaseSettings(_Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; overrides path (e.g. postgresql+psycopg2://...)."
    )
    path: str = Field("data/warehouse.sqlite", description="SQLite file used when url is empty.")
    backup_interval_hours: int = Field(24, ge=1, le=24 * 30)
    backup_dir: str = "data/backups"
    backup_keep: int = Field(7, ge=1, le=365)
    max_size_gb: float = Field(5, gt=0)
    warn_size_gb: float = Field(4, gt=0)

    def sqlalchemy_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{Path(self.path).expanduser()}"


class TransportSettings(_Section):
    timeout_seconds: float = Field(20.0, gt=0, le=600)
    max_retries: int = Field(
        5, ge=0, le=10, description="Retries after the first attempt (1, 2, 4, 8, 16 s)."
    )
    backoff_base_seconds: float = Field(1.0, ge=0, le=60)
    backoff_max_seconds: float = Field(60.0, ge=0)
    max_rate_limit_wait_seconds: float = Field(
        900.0, ge=0, description="Longest honoured Retry-After / reset wait."
    )
    request_deadline_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Deadline of one request attempt: connect, headers and the whole body.",
    )


class SignalSettings(_Section):
    rvr_threshold: float = Field(2.0, gt=0, le=100)
    roc_threshold: float = Field(0.10, gt=0, le=10)
    hype_threshold: float = Field(70, ge=0, le=100)
    max_position_pct: float = Field(5, gt=0, le=100)
    max_exposure_pct: float = Field(25, gt=0, le=100)

    @model_validator(mode="after")
    def _position_within_exposure(self) -> SignalSettings:
        if self.max_position_pct > self.max_exposure_pct:
            raise ValueError("max_position_pct must not exceed max_exposure_pct")
        return self


class RiskSettings(_Section):
    daily: float = Field(0.05, gt=0, le=1, description="Daily realised loss limit (fraction of equity).")
    weekly: float = Field(0.10, gt=0, le=1)
    monthly: float = Field(0.20, gt=0, le=1)
    circuit_breaker: float = Field(0.15, gt=0, le=1, description="Drawdown that halts new signals.")


class AlertSettings(_Section):
    enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = Field(None, description="Env only: KAIZEN_ALERTS__SMTP_PASSWORD.")
    sender: str = "kaizen-pipeline@localhost"
    recipients: list[str] = Field(default_factory=list)
    escalation_recipients: list[str] = Field(default_factory=list)
    repeat_interval_minutes: int = Field(240, ge=1)
    ui_base_url: str = "http://127.0.0.1:3000"
    smtp_timeout_seconds: float = Field(
        20, gt=0, le=300, description="Connect/command timeout of one SMTP send."
    )
    sensor_interval_seconds: int = Field(
        60, ge=10, le=3600, description="Minimum time between alert sensor ticks."
    )
    initial_lookback_minutes: int = Field(
        60, ge=0, le=10_080, description="Runs the alert sensor reads back on its first tick (no cursor yet)."
    )
    run_failure_priority: Literal["critical", "warning", "info"] = Field(
        "warning", description="Priority of a failed-run alert (critical also goes to escalation_recipients)."
    )
    retry_base_seconds: int = Field(
        60, ge=1, le=86_400, description="First retry delay of a failed send; doubles."
    )
    retry_max_seconds: int = Field(3600, ge=1, le=86_400, description="Longest retry delay of a failed send.")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = True
    log_dir: str = "data/logs"
    retention_days: int = Field(30, ge=1, le=3650)


class DemoSettings(_Section):
    seed: int = 7
    n_markets: int = Field(50, ge=1, le=500)
    history_days: int = Field(30, ge=1, le=120)
    epoch: str = Field("2026-01-01T00:00:00Z", description="Start of the simulated world (UTC).")
    frozen_now: datetime | None = Field(
        None,
        description="Freeze the demo clock at this UTC time (reproducible replays); empty: follow the wall clock.",
    )

    @model_validator(mode="after")
    def _frozen_after_epoch(self) -> DemoSettings:
        try:
            epoch = datetime.fromisoformat(self.epoch.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"demo.epoch: not an ISO time (got {self.epoch!r})") from None
        if self.frozen_now is None:
            return self
        frozen = self.frozen_now
        epoch = epoch.astimezone(UTC) if epoch.tzinfo else epoch.replace(tzinfo=UTC)
        frozen = frozen.astimezone(UTC) if frozen.tzinfo else frozen.replace(tzinfo=UTC)
        if frozen < epoch:
            raise ValueError(
                f"demo.frozen_now ({frozen.isoformat()}) is before demo.epoch ({epoch.isoformat()}); "
                "the frozen clock must be at or after the start of the simulated world"
            )
        return self


# --- sections added by the research, backtest, kaizen and ops domains go below ---


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

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    title: str
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


def _default_kaizen_metrics() -> list[KaizenMetricSettings]:
    m = KaizenMetricSettings
    return [
        m(name="run_success_rate", description="Share of finished Dagster runs that succeeded", unit="fraction",
          direction="higher", target=0.95, severity="critical", owner="ops", category="pipeline", importance=3,
          value_per_unit=5000),
        m(name="run_duration_seconds", description="Mean wall time of finished Dagster runs", unit="seconds",
          direction="lower", target=300, owner="ops", category="pipeline", value_per_unit=0.5),
        m(name="data_freshness_minutes", description="Age of the newest ingest materialization", unit="minutes",
          direction="lower", target=30, severity="critical", owner="ingest", category="pipeline", importance=3,
          value_per_unit=10),
        m(name="asset_check_pass_rate", description="Share of asset check evaluations that passed",
          unit="fraction", direction="higher", target=0.95, owner="ops", category="pipeline", importance=2,
          value_per_unit=2000),
        m(name="api_retry_rate", description="Retries per API call in ingestion runs", unit="fraction",
          direction="lower", target=0.05, owner="ingest", category="pipeline", value_per_unit=2000),
        m(name="api_error_rate", description="Failed attempts per API call in ingestion runs", unit="fraction",
          direction="lower", target=0.02, owner="ingest", category="pipeline", importance=2, value_per_unit=5000),
        m(name="degraded_runs", description="Ingestion runs that finished degraded", unit="count",
          direction="lower", target=1, owner="ingest", category="pipeline", value_per_unit=50),
        m(name="signals_per_day", description="Trading signals emitted per day (trailing window)", unit="count",
          direction="higher", target=5, owner="research", category="outcome", value_per_unit=20),
        m(name="signal_hit_rate", description="Share of closed signal trades that made money after costs", unit="fraction",
          direction="higher", target=0.55, severity="critical", owner="research", category="outcome", importance=3,
          value_per_unit=20000),
        m(name="backtest_sharpe", description="Sharpe ratio of the latest backtest", unit="ratio",
          direction="higher", target=1.0, owner="backtest", category="outcome", importance=2, value_per_unit=2000),
        m(name="backtest_max_drawdown", description="Maximum drawdown of the latest backtest", unit="fraction",
          direction="lower", target=0.15, severity="critical", owner="backtest", category="outcome", importance=2,
          value_per_unit=10000),
        m(name="feedback_score", description="Mean user rating (1-5) over the trailing window", unit="rating",
          direction="higher", target=4.0, owner="kaizen", category="outcome", importance=2, value_per_unit=500),
    ]  # fmt: skip


def _default_kaizen_catalogue() -> list[KaizenImprovementCandidate]:
    c = KaizenImprovementCandidate
    return [
        c(key="longer_timeout", title="Raise the request timeout from 20 to 40 s", target_metric="run_success_rate",
          predicted_effect=0.03, cost_hours=1, parameter="transport.timeout_seconds", proposed_value="40"),
        c(key="raise_retry_budget", title="Raise the retry budget from 5 to 7", target_metric="api_error_rate",
          predicted_effect=-0.01, cost_hours=1, parameter="transport.max_retries", proposed_value="7"),
        c(key="slower_backoff", title="Double the backoff base to ease rate limits", target_metric="api_retry_rate",
          predicted_effect=-0.02, cost_hours=1, parameter="transport.backoff_base_seconds", proposed_value="2.0"),
        c(key="collect_every_10_minutes", title="Collect every 10 instead of 15 minutes",
          target_metric="data_freshness_minutes", predicted_effect=-5, cost_hours=1, cost_money=30,
          parameter="data_collection.frequency_minutes", proposed_value="10"),
        c(key="fewer_markets", title="Track the top 40 instead of 50 markets", target_metric="run_duration_seconds",
          predicted_effect=-30, cost_hours=1, parameter="data_collection.max_markets", proposed_value="40"),
        c(key="lower_rvr_threshold", title="Lower the RVR threshold from 2.0 to 1.8", target_metric="signals_per_day",
          predicted_effect=2, cost_hours=2, parameter="signals.rvr_threshold", proposed_value="1.8"),
        c(key="raise_rvr_threshold", title="Raise the RVR threshold from 2.0 to 2.5", target_metric="backtest_sharpe",
          predicted_effect=0.3, cost_hours=2, parameter="signals.rvr_threshold", proposed_value="2.5"),
        c(key="raise_hype_threshold", title="Raise the hype threshold from 70 to 75", target_metric="signal_hit_rate",
          predicted_effect=0.03, cost_hours=2, parameter="signals.hype_threshold", proposed_value="75"),
        c(key="raise_roc_threshold", title="Raise the ROC threshold from 0.10 to 0.12", target_metric="signal_hit_rate",
          predicted_effect=0.02, cost_hours=2, parameter="signals.roc_threshold", proposed_value="0.12"),
        c(key="smaller_positions", title="Cap positions at 4% instead of 5%", target_metric="backtest_max_drawdown",
          predicted_effect=-0.02, cost_hours=1, parameter="signals.max_position_pct", proposed_value="4"),
        c(key="weekly_report_digest", title="Email the weekly kaizen report to users", target_metric="feedback_score",
          predicted_effect=0.3, cost_hours=4, cost_money=10),
    ]  # fmt: skip


class KaizenSettings(_Section):
    """The kaizen loop: metric registry and targets, forecasting, impact measurement, budgets, cadence."""

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return _reject_moved(data, "kaizen")

    timezone: str = Field(
        "UTC", description="IANA timezone of the kaizen schedules (daily 00:00, weekly Monday...)."
    )
    schedules_running: bool = Field(True, description="Default status of the kaizen schedules.")
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
    forecast_horizon_days: int = Field(14, ge=1, le=365)
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
    budget_period: Literal["week", "month", "quarter"] = "month"
    metrics: list[KaizenMetricSettings] = Field(default_factory=_default_kaizen_metrics)
    catalogue: list[KaizenImprovementCandidate] = Field(default_factory=_default_kaizen_catalogue)

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


class MonteCarloSettings(_Section):
    """Monte Carlo study of the backtest: randomized entry timing and a bootstrap of trade returns."""

    runs: int = Field(1000, ge=1, le=100_000, description="Randomized runs per study.")
    shift_bars: int = Field(
        4, ge=0, le=2880, description="Each entry moves by a uniform random number of bars."
    )
    shift_mode: Literal["delay", "symmetric"] = Field(
        "delay", description="delay: 0..N bars late (never before its signal); symmetric: -N..N."
    )
    seed: int = Field(42, description="Seed of both studies (run r uses the stream (seed, r)).")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of VaR and CVaR.")


class StressSettings(_Section):
    """Named stress scenarios of the backtest."""

    liquidity_slippage_multiplier: float = Field(
        5, ge=1, le=1000, description="Liquidity crunch: slippage x N."
    )
    volatility_multiplier: float = Field(3, gt=0, le=100, description="Every bar's log-odds move x N.")
    resolution_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Sudden resolution: share of traded columns resolving against the position.",
    )
    volume_collapse_delay_bars: int = Field(
        4, ge=0, le=2880, description="Volume collapse: fills wait N bars."
    )
    volume_collapse_slippage_multiplier: float = Field(
        3, ge=1, le=1000, description="Volume collapse: slippage x N."
    )


class SensitivitySettings(_Section):
    """One-at-a-time sensitivity of the backtest metrics to costs and signal thresholds."""

    cost_multipliers: list[float] = Field(
        default_factory=lambda: [0.5, 2.0, 4.0], description="fees / slippage x N."
    )
    threshold_changes: list[float] = Field(
        default_factory=lambda: [-0.2, 0.2], description="Relative change of each signal threshold."
    )

    @model_validator(mode="after")
    def _sane(self) -> SensitivitySettings:
        if any(m < 0 for m in self.cost_multipliers):
            raise ValueError("cost_multipliers must be >= 0")
        if any(not -1 < c < 10 for c in self.threshold_changes):
            raise ValueError("threshold_changes must be in (-1, 10)")
        return self


class WalkForwardSettings(_Section):
    """Rolling walk-forward: pick thresholds by grid search on each train window, test out of sample."""

    train_bars: int = Field(
        672, ge=16, le=100_000, description="Train window (672 = 7 days of 15-minute bars)."
    )
    test_bars: int = Field(192, ge=4, le=100_000, description="Test window; windows step by this much.")
    objective: Literal["sharpe", "total_return", "calmar"] = Field(
        "sharpe", description="Metric maximized in train."
    )
    rvr_grid: list[float] = Field(
        default_factory=lambda: [1.5, 2.0, 3.0], description="RVR thresholds searched."
    )
    roc_grid: list[float] = Field(
        default_factory=lambda: [0.05, 0.10, 0.15], description="ROC thresholds searched."
    )
    hype_grid: list[float] = Field(
        default_factory=lambda: [50.0, 70.0], description="Hype thresholds searched."
    )

    @model_validator(mode="after")
    def _grids(self) -> WalkForwardSettings:
        for name in ("rvr_grid", "roc_grid", "hype_grid"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
        if any(v <= 0 for v in self.rvr_grid + self.roc_grid):
            raise ValueError("rvr_grid and roc_grid values must be > 0")
        if any(not 0 <= v <= 100 for v in self.hype_grid):
            raise ValueError("hype_grid values must be in [0, 100]")
        return self


class BacktestSettings(_Section):
    """The backtest engine's costs and exit rule, and its studies (Monte Carlo, stress, sensitivity, walk-forward)."""

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return _reject_moved(data, "backtest")

    init_cash: float = Field(100.0, gt=0, description="Starting cash of every backtested column.")
    fees: float = Field(0.002, ge=0, lt=1, description="Fee per fill, as a fraction of traded value.")
    slippage: float = Field(0.005, ge=0, lt=1, description="Fill price = close x (1 +/- slippage).")
    exit_on_opposite_signal: bool = Field(
        True, description="A NO signal closes a YES position of the market and back."
    )
    bars_per_year: float | None = Field(
        None,
        gt=0,
        description="Annualization (null: 365 days of data_collection.frequency_minutes bars = 35040).",
    )
    price_floor: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="Prices are clipped into [floor, 1 - floor] (a resolved token is worth floor).",
    )
    chunk_cells: int = Field(
        4_000_000, ge=10_000, description="Bars x columns simulated at once (memory bound)."
    )
    monte_carlo: MonteCarloSettings = Field(default_factory=MonteCarloSettings)
    stress: StressSettings = Field(default_factory=StressSettings)
    sensitivity: SensitivitySettings = Field(default_factory=SensitivitySettings)
    walk_forward: WalkForwardSettings = Field(default_factory=WalkForwardSettings)


class OpsSettings(_Section):
    """Health monitor thresholds and the ops schedules (alerts, database and logging have their own sections)."""

    schedules_running: bool = Field(
        True, description="Default status of the ops schedules and the alert sensor."
    )
    health_interval_minutes: int = Field(5, ge=1, le=1440, description="health_report schedule period.")
    min_free_disk_mb: int = Field(
        500, ge=0, description="Free disk below this (warehouse, backups, logs): error."
    )
    api_probe_timeout_seconds: float = Field(
        5, gt=0, le=120, description="Timeout of one API reachability probe."
    )
    health_history_days: int = Field(
        30, ge=1, le=3650, description="health_report rows older than this are pruned."
    )
    maintenance_cron: str = Field("30 3 * * 0", description="Weekly VACUUM/ANALYZE (cron, UTC).")
    daily_summary_cron: str = Field("15 0 * * *", description="daily_ops_summary schedule (cron, UTC).")
    max_runtime_seconds: int = Field(
        3600,
        ge=60,
        description="Every job's dagster/max_runtime tag: run monitoring fails a run still going after this.",
    )


class ResearchSettings(_Section):
    """Windows, weights and limits of the research layer (hype, features, correlations, sizing)."""

    # market features (all windows in buckets of data_collection.frequency_minutes)
    rvr_recent_buckets: int = Field(
        4, ge=1, le=672, description="RVR numerator: mean volume of the last N buckets."
    )
    rvr_baseline_buckets: int = Field(
        96,
        ge=2,
        le=2880,
        description="RVR denominator: mean volume of the N buckets before the recent window.",
    )
    rvr_min_periods: int = Field(
        24, ge=1, description="Baseline buckets with data needed before RVR is defined."
    )
    roc_lookback_buckets: int = Field(
        4, ge=1, le=2880, description="ROC lookback k: (p_t - p_{t-k}) / p_{t-k}."
    )
    volatility_window_buckets: int = Field(96, ge=2, le=2880, description="Realized-volatility window.")
    price_ffill_limit_buckets: int = Field(
        8, ge=0, le=2880, description="Carry a price forward at most N buckets."
    )
    # hype
    hype_window_buckets: int = Field(
        192, ge=4, le=2880, description="Trailing distribution the hype index ranks against."
    )
    hype_min_periods: int = Field(
        24, ge=1, description="Trailing buckets needed before the hype index is defined."
    )
    weight_like: float = Field(1.0, ge=0, description="Engagement weight of a like.")
    weight_repost: float = Field(2.0, ge=0, description="Engagement weight of a repost (retweet).")
    weight_reply: float = Field(3.0, ge=0, description="Engagement weight of a reply.")
    weight_quote: float = Field(3.0, ge=0, description="Engagement weight of a quote.")
    hype_weight_posts: float = Field(1.0, ge=0, description="Raw hype: weight of log(1 + human posts).")
    hype_weight_authors: float = Field(
        1.0, ge=0, description="Raw hype: weight of log(1 + unique human authors)."
    )
    hype_weight_engagement: float = Field(
        0.5, ge=0, description="Raw hype: weight of log(1 + weighted engagement)."
    )
    hype_weight_sentiment: float = Field(0.5, ge=0, description="Raw hype: weight of |mean VADER compound|.")
    bot_min_account_age_days: float = Field(30, ge=0, description="Younger accounts get the age flag.")
    bot_min_follower_ratio: float = Field(
        0.1, ge=0, description="followers/following below this gets the ratio flag."
    )
    bot_max_posts_per_day: float = Field(
        100, gt=0, description="Lifetime posts per day above this gets the rate flag."
    )
    bot_duplicate_min: int = Field(
        3, ge=2, description="An author's N-th post of the same text gets the duplicate flag."
    )
    bot_min_flags: int = Field(2, ge=1, le=4, description="A post is bot-like with at least this many flags.")
    exclude_ambiguous_posts: bool = Field(
        True, description="Leave out posts matched by several markets' queries without a market link."
    )
    # hype-price correlation
    corr_max_lag: int = Field(
        8, ge=1, le=96, description="Lags -L..L of the cross-correlation; Granger max lag L."
    )
    corr_min_samples: int = Field(
        200, ge=20, description="Fewer paired buckets: no estimate is called significant."
    )
    corr_bh_alpha: float = Field(0.05, gt=0, lt=1, description="Benjamini-Hochberg false discovery rate.")
    corr_prewhiten_order: int = Field(
        0, ge=0, le=8, description="AR order of the pre-whitening filter (0: off)."
    )
    corr_winsor_mad: float = Field(
        5.0, ge=0, le=100, description="Clip returns at median +- k x MAD (0: off)."
    )
    corr_hype_column: Literal["post_count", "raw_hype", "hype_index"] = Field(
        "post_count", description="hype_scores column correlated with returns (bot-filtered post count)."
    )
    # signals, risk and sizing
    signal_hold_buckets: int = Field(
        16,
        ge=1,
        le=2880,
        description="The one holding horizon in buckets: time exit of the backtest and the paper book, "
        "and the horizon signal_hit_rate scores at.",
    )
    kelly_fraction: float = Field(0.25, gt=0, le=1, description="Fraction of the full Kelly stake.")
    edge_per_strength: float = Field(
        0.10, ge=0, le=1, description="Estimated edge = strength x this (see README)."
    )
    max_category_pct: float = Field(20, gt=0, le=100, description="Cap on the summed weight of one category.")
    correlation_window_buckets: int = Field(672, ge=10, le=2880, description="Returns used for the shrink.")
    bankroll_usd: float = Field(10_000, gt=0, description="Equity that target weights are converted with.")
    risk_reset_at: str | None = Field(
        None, description="ISO time: limits and the circuit breaker tripped before it are reset."
    )


class Settings(BaseSettings):
    """Everything configurable in kaizen_pipeline."""

    model_config = SettingsConfigDict(
        env_prefix="KAIZEN_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    source: Literal["demo", "live"] = Field(
        "demo", description="demo: the seeded simulator answers every API request; live: the real APIs."
    )
    data_collection: DataCollectionSettings = Field(default_factory=DataCollectionSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    polymarket: PolymarketSettings = Field(default_factory=PolymarketSettings)
    twitter: TwitterSettings = Field(default_factory=TwitterSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    transport: TransportSettings = Field(default_factory=TransportSettings)
    signals: SignalSettings = Field(default_factory=SignalSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    kaizen: KaizenSettings = Field(default_factory=KaizenSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML layer is passed in as init kwargs by load_settings, below the env layer.
        return (env_settings, init_settings)


def pipeline_now(settings: Settings) -> datetime:
    """Naive-UTC 'now' for ingestion and checks: the frozen demo clock when set, else the wall clock."""
    if settings.source == "demo" and settings.demo.frozen_now is not None:
        return as_naive_utc(settings.demo.frozen_now)
    return utcnow()


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        if CONFIG_ENV_VAR in os.environ:
            raise ConfigError(f"{CONFIG_ENV_VAR}={path}: file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    for dotted, env_name in SECRET_KEYS.items():
        section, key = dotted.split(".")
        if isinstance(data.get(section), dict) and data[section].get(key) not in (None, ""):
            raise ConfigError(
                f"{dotted}: secrets are not read from {path.name}; set the environment variable {env_name}"
            )
    return data


def _format_validation_error(exc: ValidationError, path: Path) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown config key")
        elif key.endswith(("bearer_token", "smtp_password")):
            problems.append(f"{key}: {err['msg']}")  # never echo a secret's value
        else:
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid configuration ({path} + KAIZEN_* environment):\n  " + "\n  ".join(problems)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``annotation`` (``Model`` or ``Model | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if _model_of(a) is not None]
        return _model_of(models[0]) if len(models) == 1 else None
    return None


def _is_complex(annotation: Any) -> bool:
    """pydantic-settings parses these from the environment as JSON (lists, dicts, models)."""
    if _model_of(annotation) is not None:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_complex(a) for a in typing.get_args(annotation) if a is not type(None))
    return origin in (list, dict, set, tuple, frozenset) or annotation in (list, dict, set, tuple)


def _env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.upper().replace(".", "__")


def _config_env_names(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every env var that can set a config key or a whole section."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        names.append(_env_name(prefix + name))
        sub = _model_of(field.annotation)
        if sub is not None:
            names.extend(_config_env_names(sub, f"{prefix}{name}."))
    return names


def _json_example(field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        default = default.model_dump(mode="json")
    if default in (None, [], {}):
        default = ["value"] if typing.get_origin(field.annotation) in (list, set, tuple) else {"key": "value"}
    return json.dumps(default, default=str)


def _check_env_overrides(environ: typing.Mapping[str, str]) -> None:
    """Fail on a KAIZEN_* variable that matches no config key, or a non-JSON value for a list/dict key.

    pydantic-settings silently ignores unknown names (a typo in a section or a single underscore), so an
    override the user believes is active would have no effect.
    """
    problems: list[str] = []
    for var in sorted(environ):
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NON_CONFIG_ENV_VARS:
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        model: type[BaseModel] | None = Settings
        field = None
        dotted: list[str] = []
        for i, part in enumerate(parts):
            if model is None or part not in model.model_fields:
                field = None
                break
            field = model.model_fields[part]
            dotted.append(part)
            model = _model_of(field.annotation)
            if model is None and i < len(parts) - 1:
                # a dict-typed key may be addressed one level deeper; anything else is unknown
                field = field if typing.get_origin(field.annotation) is dict else None
                break
        removed = ".".join(parts)
        if field is None and removed in REMOVED_KEYS:
            problems.append(
                f"{var}: {removed} was removed: set {REMOVED_KEYS[removed]} instead (one holding knob)"
            )
            continue
        if field is None:
            close = difflib.get_close_matches(upper, _config_env_names(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(
                f"{var}: matches no config key (KAIZEN_<SECTION>__<KEY>, double underscore){hint}"
            )
            continue
        if _is_complex(field.annotation) and len(dotted) == len(parts):
            try:
                json.loads(environ[var])
            except ValueError:
                key = ".".join(dotted)
                shown = "" if key in SECRET_KEYS else f" (got {environ[var][:60]!r})"
                problems.append(
                    f"{var}: {key} wants a JSON value{shown}, e.g. {var}='{_json_example(field)}'"
                )
    if problems:
        raise ConfigError("invalid KAIZEN_* environment: " + "; ".join(problems))


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read config.yaml (or ``path``), apply env overrides, validate; raise ConfigError naming the key."""
    cfg_path = Path(path) if path is not None else config_path()
    data = _read_yaml(cfg_path)
    _check_env_overrides(os.environ)
    for key, value in overrides.items():
        data[key] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, cfg_path)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid KAIZEN_* environment: {exc}") from None


def config_reference(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every config key as (dotted key, default, description), nested sections flattened."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(config_reference(annotation, key + "."))
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        shown = (
            "(env only)"
            if key in SECRET_KEYS
            else ""
            if default is None
            else json.dumps(default, default=str)
        )
        rows.append((key, shown, field.description or ""))
    return rows


def effective_config(settings: Settings) -> dict[str, Any]:
    """The validated configuration as plain data, secrets masked."""
    data = settings.model_dump(mode="json")
    for dotted in SECRET_KEYS:
        section, key = dotted.split(".")
        if data.get(section, {}).get(key):
            data[section][key] = "**********"
    return data


def get_settings() -> Settings:
    """The settings from config.yaml and the environment now, for load time and the CLI.

    Run-time code (assets, checks, ops, sensors) takes them from the SettingsResource instead.
    """
    return load_settings()

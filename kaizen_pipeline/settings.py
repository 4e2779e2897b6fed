"""The config.yaml schema, validated once at load, with env-var overrides.

Precedence (highest first): explicit arguments, environment variables
(``KAIZEN_`` prefix, ``__`` between nesting levels, e.g. ``KAIZEN_POLYMARKET__CLOB_URL``),
the YAML file named by ``KAIZEN_CONFIG`` (default ``./config.yaml``), the defaults below.
Secrets (X bearer token, SMTP password) are accepted from the environment only.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

CONFIG_ENV_VAR = "KAIZEN_CONFIG"
DEFAULT_CONFIG_PATH = "config.yaml"

# Dotted config keys that may only come from the environment.
SECRET_KEYS: dict[str, str] = {
    "twitter.bearer_token": "KAIZEN_TWITTER__BEARER_TOKEN",
    "alerts.smtp_password": "KAIZEN_ALERTS__SMTP_PASSWORD",
}


class ConfigError(ValueError):
    """A config.yaml or environment value is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataCollectionSettings(_Section):
    frequency_minutes: int = Field(15, ge=1, le=1440, description="Ingest schedule period.")
    min_volume_24h: float = Field(50_000, ge=0, description="Markets below this 24 h volume (USD) are skipped.")
    min_liquidity: float = Field(0, ge=0, description="Markets below this liquidity (USD) are skipped.")
    max_markets: int = Field(50, ge=1, le=1000, description="Keep the top N open markets by 24 h volume.")
    history_days: int = Field(30, ge=1, le=365, description="Price history fetched on the first run.")
    trade_history_days: int = Field(7, ge=1, le=90, description="Trade volume history fetched on the first run.")
    max_concurrency: int = Field(16, ge=1, le=256, description="Concurrent per-market requests.")


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
    max_tweets_per_query: int = Field(100, ge=10, le=1000)
    bot_detection: bool = True
    window_days: int = Field(7, ge=1, le=7, description="Recent search only reaches back 7 days.")
    rate_limit: int = Field(450, ge=1, description="Requests per 15 minutes.")
    per_market_queries: bool = Field(True, description="Search each market's question keywords too.")


class DatabaseSettings(_Section):
    url: str | None = Field(None, description="SQLAlchemy URL; overrides path (e.g. postgresql+psycopg2://...).")
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
    max_retries: int = Field(5, ge=0, le=10, description="Retries after the first attempt (1, 2, 4, 8, 16 s).")
    backoff_base_seconds: float = Field(1.0, ge=0, le=60)
    backoff_max_seconds: float = Field(60.0, ge=0)
    max_rate_limit_wait_seconds: float = Field(900.0, ge=0, description="Longest honoured Retry-After / reset wait.")


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


# --- sections added by the research, backtest, kaizen and ops domains go below ---


class Settings(BaseSettings):
    """Everything configurable in kaizen_pipeline."""

    model_config = SettingsConfigDict(
        env_prefix="KAIZEN_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    source: Literal["demo", "live"] = "demo"
    data_collection: DataCollectionSettings = Field(default_factory=DataCollectionSettings)
    polymarket: PolymarketSettings = Field(default_factory=PolymarketSettings)
    twitter: TwitterSettings = Field(default_factory=TwitterSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    transport: TransportSettings = Field(default_factory=TransportSettings)
    signals: SignalSettings = Field(default_factory=SignalSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)

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


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read config.yaml (or ``path``), apply env overrides, validate; raise ConfigError naming the key."""
    cfg_path = Path(path) if path is not None else config_path()
    data = _read_yaml(cfg_path)
    for key, value in overrides.items():
        data[key] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, cfg_path)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached); tests call ``get_settings.cache_clear()`` after changing env."""
    return load_settings()

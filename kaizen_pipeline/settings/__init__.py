"""The config.yaml schema, validated once at load, with env-var overrides: one way to reach settings.

Modules, one job each: ``_base`` (error type, section base, secrets, moved keys), one module of
sections per domain (``ingest``, ``research``, ``backtest``, ``kaizen``, ``ops``), ``model`` (the
top-level ``Settings``), ``loader`` (config.yaml + KAIZEN_* environment -> ``Settings``) and
``reference`` (docs/configuration.md). Import the public names from here.
"""

from kaizen_pipeline.settings._base import (
    ENV_PREFIX,
    HOLDING_KEY,
    MOVED_KEYS,
    REMOVED_KEYS,
    SCHEDULES_KEY,
    SECRET_KEYS,
    ConfigError,
)
from kaizen_pipeline.settings.backtest import (
    BacktestSettings,
    MonteCarloSettings,
    SensitivitySettings,
    StressSettings,
    WalkForwardSettings,
)
from kaizen_pipeline.settings.ingest import (
    DatabaseSettings,
    DataCollectionSettings,
    DemoSettings,
    PolymarketSettings,
    QualitySettings,
    TransportSettings,
    TwitterSettings,
)
from kaizen_pipeline.settings.kaizen import (
    KaizenImprovementCandidate,
    KaizenMetricSettings,
    KaizenSettings,
    default_kaizen_catalogue,
    default_kaizen_metrics,
)
from kaizen_pipeline.settings.loader import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    NON_CONFIG_ENV_VARS,
    config_path,
    effective_config,
    get_settings,
    load_settings,
)
from kaizen_pipeline.settings.model import Settings, scalar_config_keys
from kaizen_pipeline.settings.ops import AlertSettings, ExecutionSettings, LoggingSettings, OpsSettings
from kaizen_pipeline.settings.reference import ConfigKey, config_reference, render_reference
from kaizen_pipeline.settings.research import ResearchSettings, RiskSettings, SignalSettings

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "HOLDING_KEY",
    "MOVED_KEYS",
    "NON_CONFIG_ENV_VARS",
    "REMOVED_KEYS",
    "SCHEDULES_KEY",
    "SECRET_KEYS",
    "AlertSettings",
    "BacktestSettings",
    "ConfigError",
    "ConfigKey",
    "DataCollectionSettings",
    "DatabaseSettings",
    "DemoSettings",
    "KaizenImprovementCandidate",
    "KaizenMetricSettings",
    "KaizenSettings",
    "LoggingSettings",
    "MonteCarloSettings",
    "OpsSettings",
    "ExecutionSettings",
    "PolymarketSettings",
    "QualitySettings",
    "ResearchSettings",
    "RiskSettings",
    "SensitivitySettings",
    "Settings",
    "SignalSettings",
    "StressSettings",
    "TransportSettings",
    "TwitterSettings",
    "WalkForwardSettings",
    "config_path",
    "config_reference",
    "default_kaizen_catalogue",
    "default_kaizen_metrics",
    "effective_config",
    "get_settings",
    "load_settings",
    "render_reference",
    "scalar_config_keys",
]

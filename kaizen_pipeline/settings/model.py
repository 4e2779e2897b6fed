"""The top-level Settings model: one field per config section, env overrides above the YAML layer."""

from __future__ import annotations

import difflib
import functools
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kaizen_pipeline.settings._base import ENV_PREFIX, SECRET_KEYS, is_complex, model_of
from kaizen_pipeline.settings.backtest import BacktestSettings
from kaizen_pipeline.settings.experiments import ExperimentSettings, RolloutSettings
from kaizen_pipeline.settings.ingest import (
    DatabaseSettings,
    DataCollectionSettings,
    DemoSettings,
    PolymarketSettings,
    QualitySettings,
    TransportSettings,
    TwitterSettings,
)
from kaizen_pipeline.settings.kaizen import KaizenSettings
from kaizen_pipeline.settings.ops import AlertSettings, ExecutionSettings, LoggingSettings, OpsSettings
from kaizen_pipeline.settings.research import ResearchSettings, RiskSettings, SignalSettings


class Settings(BaseSettings):
    """Everything configurable in kaizen_pipeline."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)
    rollouts: RolloutSettings = Field(default_factory=RolloutSettings)

    @property
    def schedules_on(self) -> bool:
        """Whether schedules and sensors start running: data_collection.schedules_running, or by source
        when it is empty (a demo does not start fetching and mailing every 15 minutes on its own)."""
        running = self.data_collection.schedules_running
        return self.source == "live" if running is None else running

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

    @model_validator(mode="after")
    def _autonomy_parameters_are_config_keys(self) -> Settings:
        unknown = sorted(set(self.experiments.autonomy) - scalar_config_keys())
        if unknown:
            raise ValueError(f"experiments.autonomy: {unknown} are not config keys of a single value")
        unknown = sorted(set(self.rollouts.approval_parameters) - scalar_config_keys())
        if unknown:
            raise ValueError(f"rollouts.approval_parameters: {unknown} are not config keys of a single value")
        return self

    @model_validator(mode="after")
    def _catalogue_parameters_are_config_keys(self) -> Settings:
        known = scalar_config_keys()
        for candidate in self.kaizen.catalogue:
            parameter = candidate.parameter
            if parameter is None or parameter in known:
                continue
            close = difflib.get_close_matches(parameter, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(
                f"kaizen.catalogue[{candidate.key}].parameter: {parameter!r} is not a config key "
                f"(a dotted key of a single value, e.g. transport.max_retries){hint}"
            )
        return self


def _scalar_keys(model: type[BaseModel], prefix: str) -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = model_of(field.annotation)
        if sub is not None:
            keys.extend(_scalar_keys(sub, key + "."))
        elif not is_complex(field.annotation) and key not in SECRET_KEYS:
            keys.append(key)
    return keys


@functools.cache
def scalar_config_keys() -> frozenset[str]:
    """Every dotted config key holding one value (no section, list, dict or secret): what a change can set."""
    return frozenset(_scalar_keys(Settings, ""))

"""Dagster resources: the settings every run reads, and the warehouse it writes.

`SettingsResource` is the only way run-time code (assets, checks, ops, sensors) reaches the
configuration; `for_unit` answers "the effective parameters for this market or run", the seam the
feature flags plug into. Secrets are `EnvVar` fields: the UI shows which variable holds them,
never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, SecretStr

from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.flags.parameters import UNIT_KINDS, UnitKind
from kaizen_pipeline.flags.provider import (
    FlagResolver,
    UnitResolution,
    VariantSegment,
    exposures,
    variant_segments,
)
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.settings import SECRET_KEYS, ConfigError, Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse

DATABASE_URL_ENV = "KAIZEN_DATABASE__URL"

_WAREHOUSES: dict[str, Warehouse] = {}


def warehouse_for(url: str) -> Warehouse:
    """One Warehouse (engine + pool) per URL per process."""
    if url not in _WAREHOUSES:
        _WAREHOUSES[url] = Warehouse(url)
    return _WAREHOUSES[url]


class _PinnedSettings(Settings):
    """Settings built from given values only: no config file, no KAIZEN_* environment."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, **_: Any) -> tuple[Any, ...]:
        return (init_settings,)


def _secret_excluded() -> dict[str, set[str]]:
    excluded: dict[str, set[str]] = {}
    for dotted in SECRET_KEYS:
        section, key = dotted.split(".")
        excluded.setdefault(section, set()).add(key)
    return excluded


def _env_or_value(env_name: str, secret: SecretStr | None) -> str | None:
    """An EnvVar reference when the environment holds ``secret`` (the UI then shows the name only)."""
    if secret is None:
        return None
    value = secret.get_secret_value()
    return dg.EnvVar(env_name) if os.environ.get(env_name) == value else value


class SettingsResource(dg.ConfigurableResource):
    """The pipeline settings: config.yaml and KAIZEN_* variables, validated when a run starts.

    `get()` is the run's configuration; `for_unit(kind, id)` the effective parameters for one
    market or run (what feature flags and experiments resolve per unit).
    """

    config_path: str = Field(
        "", description="config.yaml to read; empty: $KAIZEN_CONFIG, else ./config.yaml."
    )
    pinned_json: str = Field(
        "",
        description="When set, exactly these settings (JSON, secrets excluded): no config file, no env.",
    )
    twitter_bearer_token: str | None = Field(None, description="X API bearer token (an EnvVar).")
    smtp_password: str | None = Field(None, description="SMTP password for alert emails (an EnvVar).")
    telegram_token: str | None = Field(None, description="Telegram bot token for alerts (an EnvVar).")
    slack_webhook_url: str | None = Field(
        None, description="Slack incoming-webhook URL for alerts (an EnvVar)."
    )
    webhook_url: str | None = Field(
        None, description="Alertmanager-format webhook URL for alerts (an EnvVar)."
    )

    _settings: Settings | None = PrivateAttr(default=None)
    _resolver: FlagResolver | None = PrivateAttr(default=None)
    _resolved: dict[tuple[str, str], UnitResolution] = PrivateAttr(default_factory=dict)
    _errors: list[str] = PrivateAttr(default_factory=list)

    @classmethod
    def from_environment(cls, config_path: str = "") -> SettingsResource:
        """The production resource: settings read at run time, secrets referenced by variable name."""
        secrets = {
            field: dg.EnvVar(SECRET_KEYS[dotted]) if os.environ.get(SECRET_KEYS[dotted]) else None
            for field, dotted in _SECRET_FIELDS.items()
        }
        return cls(config_path=config_path, **secrets)

    @classmethod
    def of(cls, settings: Settings) -> SettingsResource:
        """The resource that yields exactly ``settings`` (tests, experiments, benches)."""
        pinned = settings.model_dump_json(exclude=_secret_excluded())  # type: ignore[arg-type]
        secrets = {
            name: _env_or_value(SECRET_KEYS[dotted], _secret_of(settings, dotted))
            for name, dotted in _SECRET_FIELDS.items()
        }
        return cls(pinned_json=pinned, **secrets)

    def get(self) -> Settings:
        """The validated settings of this run (read once per process)."""
        if self._settings is None:
            if self.pinned_json:
                pinned = _PinnedSettings(**json.loads(self.pinned_json))  # validated, env ignored
                base: Settings = Settings.model_construct(
                    _fields_set=pinned.model_fields_set,
                    **{k: getattr(pinned, k) for k in Settings.model_fields},
                )
            else:
                base = load_settings(self.config_path or None)
            self._settings = self._with_secrets(base)
        return self._settings

    def for_unit(self, kind: UnitKind, unit_id: str) -> Settings:
        """The effective settings for one market (``kind="market"``) or one run (``kind="run"``).

        Read every parameter the kaizen catalogue may change through this, where it is used: the
        config values, with each active feature flag's variant for this unit applied.
        """
        return self.resolve_units(kind, [unit_id])[unit_id].settings

    def resolve_units(self, kind: UnitKind, unit_ids: Iterable[str]) -> dict[str, UnitResolution]:
        """Each unit's effective settings and flag evaluations; first exposures recorded in one batch.

        A flag that cannot be evaluated (or a flag table that cannot be read) gives the config value
        with reason ERROR: see ``flag_errors``; it never fails the run.
        """
        if kind not in UNIT_KINDS:
            raise ValueError(f"for_unit kind: expected 'market' or 'run', got {kind!r}")
        ids = list(dict.fromkeys(str(u) for u in unit_ids))
        resolver = self._flag_resolver()
        if not resolver.has_flags(kind):
            return {u: UnitResolution(kind, u, self.get()) for u in ids}
        new = {u: resolver.resolve(kind, u) for u in ids if (kind, u) not in self._resolved}
        if new:
            try:
                FlagStore(self._warehouse()).record_exposures(exposures(new), pipeline_now(self.get()))
            except sa.exc.SQLAlchemyError as exc:
                self._errors.append(f"flag_assignments: exposures not recorded ({type(exc).__name__})")
            for u, resolution in new.items():
                self._resolved[(kind, u)] = resolution
                self._errors.extend(e for e in resolution.errors if e not in self._errors)
        return {u: self._resolved[(kind, u)] for u in ids}

    def variant_segments(self, kind: UnitKind, unit_ids: Iterable[str]) -> dict[str, list[VariantSegment]]:
        """Each unit's history under its current variants (``flags.provider.variant_segments``).

        Units without a variant are absent. Code that recomputes history (trading_signals) runs each
        bucket on the segment it falls in, so a unit's past stays on the values it ran under.
        """
        resolutions = self.resolve_units(kind, unit_ids)
        keys = sorted({f for r in resolutions.values() for f in r.variants})
        if not keys:
            return {}
        table = self._warehouse().table("flag_assignments")
        frame = self._warehouse().read_frame(
            sa.select(table).where(table.c.unit_kind == kind, table.c.flag_key.in_(keys)),
            parse_dates=["first_exposure_at"],
        )
        exposed: dict[str, dict[tuple[str, str], datetime]] = {}
        for row in frame.itertuples(index=False):
            exposed.setdefault(row.unit_id, {})[(row.flag_key, row.variant)] = (
                row.first_exposure_at.to_pydatetime()
            )
        config = self.get()
        return {
            u: variant_segments(r, exposed.get(u, {}), config) for u, r in resolutions.items() if r.variants
        }

    def flag_errors(self) -> list[str]:
        """Flag evaluations that fell back to the config value in this process (reason ERROR)."""
        return list(self._errors)

    def _warehouse(self) -> Warehouse:
        return warehouse_for(self.get().database.sqlalchemy_url())

    def _flag_resolver(self) -> FlagResolver:
        if self._resolver is None:
            base = self.get()
            try:
                flags = FlagStore(self._warehouse()).active()
                self._resolver = FlagResolver(base, flags)
            except (sa.exc.SQLAlchemyError, ValueError, KeyError) as exc:
                # the table may be unreadable or hold a bad row: every unit runs on config, and says so
                self._resolver = FlagResolver(base, [], load_error=f"unreadable ({type(exc).__name__})")
        return self._resolver

    def _with_secrets(self, base: Settings) -> Settings:
        sections: dict[str, Any] = {}
        for name, dotted in _SECRET_FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                section, key = dotted.split(".")
                current = sections.get(section, getattr(base, section))
                sections[section] = current.model_copy(update={key: SecretStr(_resolved(value))})
        return base.model_copy(update=sections)


# resource field -> the dotted settings key it carries (every key of SECRET_KEYS)
_SECRET_FIELDS: dict[str, str] = {
    "twitter_bearer_token": "twitter.bearer_token",
    "smtp_password": "alerts.smtp_password",
    "telegram_token": "alerts.telegram_token",
    "slack_webhook_url": "alerts.slack_webhook_url",
    "webhook_url": "alerts.webhook_url",
}


def _secret_of(settings: Settings, dotted: str) -> SecretStr | None:
    section, key = dotted.split(".")
    return getattr(getattr(settings, section), key)


def _resolved(value: str) -> str:
    """A field's value: an EnvVar read from the environment (outside a run it is not resolved yet)."""
    return (value.get_value() or "") if isinstance(value, dg.EnvVar) else value


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse database: a SQLAlchemy URL (SQLite file by default, PostgreSQL by config).

    A URL with a password is an EnvVar (KAIZEN_DATABASE__URL): the UI shows the variable's name.
    """

    url: str = Field(description="SQLAlchemy URL of the warehouse, or the variable that holds it.")

    def get(self) -> Warehouse:
        return warehouse_for(self.connect_url())

    def connect_url(self) -> str:
        """The URL to connect with (an EnvVar read from the environment)."""
        return _resolved(self.url)


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for the UI, logs and metadata)."""
    return sa.make_url(url).render_as_string(hide_password=True)


def warehouse_resource(settings: Settings) -> WarehouseResource:
    """The warehouse of ``settings``; a password must come from KAIZEN_DATABASE__URL, never config.yaml."""
    url = settings.database.sqlalchemy_url()
    if sa.make_url(url).password is None:
        return WarehouseResource(url=url)
    if os.environ.get(DATABASE_URL_ENV) == url:
        return WarehouseResource(url=dg.EnvVar(DATABASE_URL_ENV))
    raise ConfigError(
        f"database.url: a password belongs in {DATABASE_URL_ENV}, not in config.yaml (got {display_url(url)})"
    )


def build_resources(settings: Settings, *, pinned: bool = True) -> dict[str, Any]:
    """The resources every job binds: ``settings`` pinned (tests) or read at run time (the code location)."""
    return {
        "settings": SettingsResource.of(settings) if pinned else SettingsResource.from_environment(),
        "warehouse": warehouse_resource(settings),
    }

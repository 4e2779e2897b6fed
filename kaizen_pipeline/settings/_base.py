"""What every settings module shares: the error type, the section base, secrets, env names, moved keys."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict

ENV_PREFIX = "KAIZEN_"

# Dotted config keys that may only come from the environment.
SECRET_KEYS: dict[str, str] = {
    "twitter.bearer_token": "KAIZEN_TWITTER__BEARER_TOKEN",
    "alerts.smtp_password": "KAIZEN_ALERTS__SMTP_PASSWORD",
    "alerts.telegram_token": "KAIZEN_ALERTS__TELEGRAM_TOKEN",
    "alerts.slack_webhook_url": "KAIZEN_ALERTS__SLACK_WEBHOOK_URL",
    "alerts.webhook_url": "KAIZEN_ALERTS__WEBHOOK_URL",
}


class ConfigError(ValueError):
    """A config.yaml or environment value is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# Keys merged into one: setting one fails with the key that replaced it (config.yaml or env).
HOLDING_KEY = "research.signal_hold_buckets"
SCHEDULES_KEY = "data_collection.schedules_running"
# removed key -> (the key that replaced it, why)
MOVED_KEYS: dict[str, tuple[str, str]] = {
    "kaizen.hit_horizon_buckets": (HOLDING_KEY, "one holding knob"),
    "backtest.holding_bars": (HOLDING_KEY, "one holding knob"),
    "kaizen.schedules_running": (SCHEDULES_KEY, "one on/off switch for every schedule and sensor"),
    "ops.schedules_running": (SCHEDULES_KEY, "one on/off switch for every schedule and sensor"),
}
REMOVED_KEYS: dict[str, str] = {old: new for old, (new, _) in MOVED_KEYS.items()}


def moved_message(key: str) -> str:
    """Why ``key`` fails: it was removed, and which key to set instead."""
    new, why = MOVED_KEYS[key]
    return f"{key} was removed: set {new} instead ({why})"


def _reject_moved(data: Any, section: str) -> Any:
    """A ``mode="before"`` validator body: fail when ``data`` of ``section`` sets a removed key."""
    if isinstance(data, dict):
        for key in MOVED_KEYS:
            moved_section, old = key.split(".", 1)
            if moved_section == section and old in data:
                raise ValueError(moved_message(key))
    return data


def env_name(dotted: str) -> str:
    """The environment variable that sets the dotted config key."""
    return ENV_PREFIX + dotted.upper().replace(".", "__")


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``annotation`` (``Model`` or ``Model | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if model_of(a) is not None]
        return model_of(models[0]) if len(models) == 1 else None
    return None


def list_item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a ``list[Model]`` field (e.g. kaizen.metrics), else None."""
    if typing.get_origin(annotation) is list:
        args = typing.get_args(annotation)
        return model_of(args[0]) if len(args) == 1 else None
    return None


def is_complex(annotation: Any) -> bool:
    """pydantic-settings parses these from the environment as JSON (lists, dicts, models)."""
    if model_of(annotation) is not None:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(is_complex(a) for a in typing.get_args(annotation) if a is not type(None))
    return origin in (list, dict, set, tuple, frozenset) or annotation in (list, dict, set, tuple)

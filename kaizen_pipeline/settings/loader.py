"""Reading the configuration: config.yaml, KAIZEN_* overrides checked, validated once, errors naming the key.

Precedence (highest first): explicit arguments, environment variables
(``KAIZEN_`` prefix, ``__`` between nesting levels, e.g. ``KAIZEN_POLYMARKET__CLOB_URL``),
the YAML file named by ``KAIZEN_CONFIG`` (default ``./config.yaml``), the model defaults.
Secrets (X bearer token, SMTP password) are accepted from the environment only.
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from kaizen_pipeline.settings._base import (
    ENV_PREFIX,
    MOVED_KEYS,
    SECRET_KEYS,
    ConfigError,
    env_name,
    is_complex,
    model_of,
    moved_message,
)
from kaizen_pipeline.settings.model import Settings

CONFIG_ENV_VAR = "KAIZEN_CONFIG"
DEFAULT_CONFIG_PATH = "config.yaml"

# KAIZEN_* variables the project reads that are not config keys (config file, Dagster storage URL, and the
# test suite's PostgreSQL URL, API samples directory, property-test example count and snapshot switch).
NON_CONFIG_ENV_VARS: frozenset[str] = frozenset(
    {
        CONFIG_ENV_VAR,
        "KAIZEN_TEST_POSTGRES_URL",
        "KAIZEN_DAGSTER_POSTGRES_URL",
        "KAIZEN_API_SAMPLES",
        "KAIZEN_PROPERTY_EXAMPLES",
        "KAIZEN_UPDATE_SNAPSHOTS",
    }
)


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
    for dotted, secret_env in SECRET_KEYS.items():
        section, key = dotted.split(".")
        if isinstance(data.get(section), dict) and data[section].get(key) not in (None, ""):
            raise ConfigError(
                f"{dotted}: secrets are not read from {path.name}; set the environment variable {secret_env}"
            )
    return data


# A bad value is echoed back (shortened) so the user sees what was read.
MAX_ECHO_CHARS = 200


def _format_validation_error(exc: ValidationError, path: Path) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown config key")
        elif not err["loc"]:
            # a whole-model check: its message names the key, and the input (every value, secrets
            # included) is never echoed
            problems.append(str(err["msg"]).removeprefix("Value error, "))
        elif key.endswith(tuple(dotted.split(".")[-1] for dotted in SECRET_KEYS)):
            problems.append(
                f"{key}: {str(err['msg']).removeprefix('Value error, ')}"
            )  # never echo a secret's value
        elif isinstance(err.get("input"), dict):
            # a section's own check: echoing the section would bury the message (and could carry
            # a secret read from the environment); the message names the key
            problems.append(f"{key}: {str(err['msg']).removeprefix('Value error, ')}")
        else:
            shown = repr(err.get("input"))
            shown = shown if len(shown) <= MAX_ECHO_CHARS else shown[: MAX_ECHO_CHARS - 3] + "..."
            problems.append(f"{key}: {err['msg']} (got {shown})")
    return f"invalid configuration ({path} + KAIZEN_* environment):\n  " + "\n  ".join(problems)


def _config_env_names(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every env var that can set a config key or a whole section."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        names.append(env_name(prefix + name))
        sub = model_of(field.annotation)
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
            model = model_of(field.annotation)
            if model is None and i < len(parts) - 1:
                # a dict-typed key may be addressed one level deeper; anything else is unknown
                field = field if typing.get_origin(field.annotation) is dict else None
                break
        removed = ".".join(parts)
        if field is None and removed in MOVED_KEYS:
            problems.append(f"{var}: {moved_message(removed)}")
            continue
        if field is None:
            close = difflib.get_close_matches(upper, _config_env_names(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(
                f"{var}: matches no config key (KAIZEN_<SECTION>__<KEY>, double underscore){hint}"
            )
            continue
        if is_complex(field.annotation) and len(dotted) == len(parts):
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

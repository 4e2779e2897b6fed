"""Which config keys a flag may override, per which unit, and how an override is validated and applied.

Pure module (pydantic settings only; no Dagster). A flag's unit is the thing randomized and
measured:

- a **market** for trading parameters (signal thresholds, position caps): each market's signals,
  risk gate, paper book, sizing and backtest column depend only on its own thresholds and caps, so
  markets are independent units and per-market P&L is the analysis unit;
- a **run** for pipeline parameters (timeouts, retries, backoff, holding horizon): they act on a
  whole Dagster run (one transport, one paper book), so the run is the unit and its outcome (success,
  error rate, P&L of the run's book) the measurement.

Not flaggable, and why: ``data_collection.frequency_minutes`` and ``data_collection.max_markets``
(the schedule's cron and the tracked universe are built once at load, one for all units), and the
risk limits (``risk.daily``, ``risk.circuit_breaker`` ...): they guard the whole book and change only by a
person editing config.yaml.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

UnitKind = Literal["market", "run"]
UNIT_KINDS: tuple[UnitKind, ...] = ("market", "run")


@dataclass(frozen=True)
class FlaggableParameter:
    """A config key a flag may override, its unit, and why that unit."""

    key: str
    unit_kind: UnitKind
    why: str


_MARKET_WHY = "a market's signals, gate, sizing and backtest column depend only on its own value"
_RUN_WHY = "acts on a whole run (one transport or one paper book)"

FLAGGABLE: Mapping[str, FlaggableParameter] = {
    p.key: p
    for p in (
        FlaggableParameter("signals.rvr_threshold", "market", _MARKET_WHY),
        FlaggableParameter("signals.roc_threshold", "market", _MARKET_WHY),
        FlaggableParameter("signals.hype_threshold", "market", _MARKET_WHY),
        FlaggableParameter("signals.hype_lead_burst_z", "market", _MARKET_WHY),
        FlaggableParameter("signals.hype_lead_min_posts", "market", _MARKET_WHY),
        FlaggableParameter("signals.max_position_pct", "market", _MARKET_WHY),
        FlaggableParameter(
            "research.signal_hold_buckets",
            "run",
            "the paper book, the backtest and the hit rate share one holding horizon per run",
        ),
        FlaggableParameter("transport.timeout_seconds", "run", _RUN_WHY),
        FlaggableParameter("transport.max_retries", "run", _RUN_WHY),
        FlaggableParameter("transport.backoff_base_seconds", "run", _RUN_WHY),
        FlaggableParameter("transport.backoff_max_seconds", "run", _RUN_WHY),
        FlaggableParameter("transport.request_deadline_seconds", "run", _RUN_WHY),
    )
}


class FlagValueError(ValueError):
    """A flag names an unknown parameter or a value its config key does not accept."""


def flaggable(parameter: str) -> FlaggableParameter:
    """The flaggable parameter ``parameter``, or an error naming the field and what is allowed."""
    try:
        return FLAGGABLE[parameter]
    except KeyError:
        allowed = ", ".join(sorted(FLAGGABLE))
        raise FlagValueError(
            f"parameter: {parameter!r} cannot be flagged; flaggable keys: {allowed}"
        ) from None


def _section(settings: Any, parameter: str) -> tuple[str, str, BaseModel]:
    section_name, key = parameter.split(".", 1)
    return section_name, key, getattr(settings, section_name)


def config_value(settings: Any, parameter: str) -> Any:
    """The value ``settings`` give ``parameter`` (the control every flag falls back to)."""
    flaggable(parameter)
    _, key, section = _section(settings, parameter)
    return getattr(section, key)


def validated_value(settings: Any, parameter: str, raw: Any, *, field: str = "value") -> Any:
    """``raw`` (a string from the CLI or a JSON value) as the type and range ``parameter`` validates.

    The whole section is re-validated with the new value, so cross-field rules hold too; the error
    names ``field``, the parameter and the config key's own message.
    """
    flaggable(parameter)
    _, key, section = _section(settings, parameter)
    if isinstance(raw, str):
        with contextlib.suppress(json.JSONDecodeError):  # a bare string stays a string for pydantic
            raw = json.loads(raw)
    try:
        checked = type(section).model_validate(section.model_dump() | {key: raw})
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise FlagValueError(f"{field}: {raw!r} is not a valid {parameter} ({problems})") from None
    return getattr(checked, key)


def with_overrides(settings: Any, overrides: Mapping[str, Any]) -> Any:
    """``settings`` with each ``parameter -> value`` applied (values already validated)."""
    if not overrides:
        return settings
    by_section: dict[str, dict[str, Any]] = {}
    for parameter, value in overrides.items():
        section_name, key = parameter.split(".", 1)
        by_section.setdefault(section_name, {})[key] = value
    updates = {name: getattr(settings, name).model_copy(update=values) for name, values in by_section.items()}
    return settings.model_copy(update=updates)

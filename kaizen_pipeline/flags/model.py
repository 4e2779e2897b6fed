"""A feature flag and its evaluation for one unit (pure: no Dagster, no database).

A flag overrides one config key (``parameter``) for some units. Evaluation follows the
OpenFeature model; the reason says why a unit got its value:

- ``DISABLED``: the flag is killed or archived: the config value;
- ``TARGETING_MATCH``: the unit is pinned to a variant in ``targets``;
- ``DEFAULT``: the unit is outside ``allocation``: the config value;
- ``STATIC``: every unit gets the same variant (allocation 1, one variant at weight 1);
- ``SPLIT``: the unit was bucketed into a variant (:mod:`kaizen_pipeline.flags.bucketing`);
- ``ERROR``: the flag could not be evaluated: the config value (the caller alerts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from kaizen_pipeline.flags.bucketing import Split
from kaizen_pipeline.flags.parameters import FlagValueError, UnitKind, flaggable, validated_value

FlagStatus = Literal["active", "killed", "archived"]
FLAG_STATUSES: tuple[FlagStatus, ...] = ("active", "killed", "archived")
Reason = Literal["STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED", "ERROR"]
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FeatureFlag:
    """One flag: the parameter it overrides, its variants' values, and who gets which."""

    flag_key: str
    parameter: str
    variants: Mapping[str, Any]
    weights: Mapping[str, float]
    allocation: float = 1.0
    targets: Mapping[str, str] = field(default_factory=dict)
    salt: str = ""
    status: FlagStatus = "active"
    owner: str = "user"
    experiment_id: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def unit_kind(self) -> UnitKind:
        return flaggable(self.parameter).unit_kind

    @property
    def split(self) -> Split:
        return Split(self.salt or self.flag_key, self.allocation, dict(self.weights))

    @property
    def is_static(self) -> bool:
        return self.allocation >= 1.0 and sum(1 for w in self.weights.values() if w > 0) == 1

    def as_record(self) -> dict[str, Any]:
        """The JSON-safe form stored in flag_changes (before/after) and shown by the CLI."""
        record = asdict(self)
        record["variants"] = dict(self.variants)
        record["weights"] = dict(self.weights)
        record["targets"] = dict(self.targets)
        for key in ("created_at", "updated_at"):
            record[key] = record[key].isoformat() if record[key] else None
        return record


def validate_flag(flag: FeatureFlag, settings: Any) -> FeatureFlag:
    """The flag with typed variant values, or a FlagValueError naming the field and the problem.

    Checks: key shape, a flaggable parameter, each variant's value in its config key's range,
    weights over exactly the variants summing to 100%, allocation in [0, 1], targets naming variants.
    """
    if not KEY_PATTERN.match(flag.flag_key):
        raise FlagValueError(
            f"flag_key: {flag.flag_key!r} must start with a letter and use a-z, 0-9, '_', '-', '.' (<= 64)"
        )
    flaggable(flag.parameter)
    if flag.status not in FLAG_STATUSES:
        raise FlagValueError(f"status: {flag.status!r} is not one of {', '.join(FLAG_STATUSES)}")
    if not flag.variants:
        raise FlagValueError("variants: at least one variant is required")
    bad_names = [v for v in flag.variants if not KEY_PATTERN.match(v)]
    if bad_names:
        raise FlagValueError(f"variants: bad variant name(s) {bad_names}")
    typed = {
        name: validated_value(settings, flag.parameter, value, field=f"variants.{name}")
        for name, value in flag.variants.items()
    }
    unknown = sorted(set(flag.weights) - set(typed))
    if unknown:
        raise FlagValueError(f"weights: {unknown} are not variants (variants: {sorted(typed)})")
    weights = {name: float(flag.weights.get(name, 0.0)) for name in typed}
    negative = sorted(name for name, w in weights.items() if w < 0)
    if negative:
        raise FlagValueError(f"weights: negative weight for {negative}")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise FlagValueError(f"weights: must sum to 100%, got {total * 100:g}%")
    if not 0.0 <= flag.allocation <= 1.0:
        raise FlagValueError(f"allocation: must be within 0..100%, got {flag.allocation * 100:g}%")
    bad_targets = sorted(u for u, v in flag.targets.items() if v not in typed)
    if bad_targets:
        raise FlagValueError(f"targets: units {bad_targets} name variants that do not exist")
    return FeatureFlag(**{**flag.__dict__, "variants": typed, "weights": weights})


@dataclass(frozen=True)
class Evaluation:
    """One flag evaluated for one unit: the value (None: the config value), variant and reason."""

    flag_key: str
    parameter: str
    value: Any
    variant: str | None
    reason: Reason
    error: str | None = None


def evaluate(flag: FeatureFlag, unit_id: str) -> Evaluation:
    """The flag's value for ``unit_id`` (module docstring: the reasons, in the order they apply)."""
    if flag.status != "active":
        return Evaluation(flag.flag_key, flag.parameter, None, None, "DISABLED")
    pinned = flag.targets.get(unit_id)
    if pinned is not None:
        return Evaluation(flag.flag_key, flag.parameter, flag.variants[pinned], pinned, "TARGETING_MATCH")
    variant = flag.split.variant(unit_id)
    if variant is None:
        return Evaluation(flag.flag_key, flag.parameter, None, None, "DEFAULT")
    reason: Reason = "STATIC" if flag.is_static else "SPLIT"
    return Evaluation(flag.flag_key, flag.parameter, flag.variants[variant], variant, reason)


def flag_from_row(row: Mapping[str, Any]) -> FeatureFlag:
    """A FeatureFlag from a feature_flags row (JSON columns decoded; values not yet re-validated)."""
    return FeatureFlag(
        flag_key=row["flag_key"],
        parameter=row["parameter"],
        variants=json.loads(row["variants"]),
        weights=json.loads(row["weights"]),
        allocation=float(row["allocation"]),
        targets=json.loads(row["targets"] or "{}"),
        salt=row["salt"],
        status=row["status"],
        owner=row["owner"],
        experiment_id=row.get("experiment_id"),
        description=row.get("description"),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )


def flag_to_row(flag: FeatureFlag) -> dict[str, Any]:
    """The feature_flags row of ``flag`` (JSON columns encoded)."""
    return {
        "flag_key": flag.flag_key,
        "parameter": flag.parameter,
        "unit_kind": flag.unit_kind,
        "variants": json.dumps(dict(flag.variants), sort_keys=True),
        "weights": json.dumps(dict(flag.weights), sort_keys=True),
        "allocation": flag.allocation,
        "targets": json.dumps(dict(flag.targets), sort_keys=True),
        "salt": flag.salt or flag.flag_key,
        "status": flag.status,
        "owner": flag.owner,
        "experiment_id": flag.experiment_id,
        "description": flag.description,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
    }

"""The OpenFeature provider over the warehouse's flags, and the per-unit resolution built on it.

Pure module (openfeature-sdk; no Dagster). Code asks an OpenFeature client for a flag's value with
the config value as the default and the unit as the targeting key; the provider answers from a
snapshot of ``feature_flags``. Moving to a hosted flag service is a provider swap: the resolver
only talks to the OpenFeature client.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from kaizen_pipeline.flags.model import Evaluation, FeatureFlag, evaluate, validate_flag
from kaizen_pipeline.flags.parameters import FlagValueError, UnitKind, config_value, with_overrides

PROVIDER_NAME = "kaizen-warehouse"
_domains = itertools.count()


class WarehouseFlagProvider(AbstractProvider):
    """Resolves flags from a snapshot of the feature_flags table (MurmurHash3 bucketing per unit)."""

    def __init__(self, flags: Sequence[FeatureFlag]) -> None:
        self._flags = {f.flag_key: f for f in flags}

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    def get_provider_hooks(self) -> list[Any]:
        return []

    def _resolve(
        self, flag_key: str, default: Any, context: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        flag = self._flags.get(flag_key)
        if flag is None:
            return FlagResolutionDetails(
                default, ErrorCode.FLAG_NOT_FOUND, f"no flag {flag_key!r}", Reason.ERROR
            )
        if context is None or not context.targeting_key:
            return FlagResolutionDetails(
                default, ErrorCode.TARGETING_KEY_MISSING, "the unit id is the targeting key", Reason.ERROR
            )
        ev = evaluate(flag, context.targeting_key)
        return FlagResolutionDetails(
            value=default if ev.value is None else ev.value,
            reason=Reason(ev.reason),
            variant=ev.variant,
            flag_metadata={"parameter": flag.parameter, "unit_kind": flag.unit_kind},
        )

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:  # noqa: E501
        return self._resolve(flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:  # noqa: E501
        return self._resolve(flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:  # noqa: E501
        return self._resolve(flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:  # noqa: E501
        return self._resolve(flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self, flag_key: str, default_value: Any, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[Any]:  # noqa: E501
        return self._resolve(flag_key, default_value, evaluation_context)


@dataclass(frozen=True)
class UnitResolution:
    """The effective settings of one unit, the flags' evaluations, and errors that fell back to config."""

    kind: UnitKind
    unit_id: str
    settings: Any
    evaluations: tuple[Evaluation, ...] = ()

    @property
    def variants(self) -> dict[str, str]:
        """flag key -> variant for every flag that gave this unit a variant (stored on its rows)."""
        return {e.flag_key: e.variant for e in self.evaluations if e.variant is not None}

    @property
    def errors(self) -> list[str]:
        return [f"{e.flag_key}: {e.error}" for e in self.evaluations if e.reason == "ERROR"]


def _getter(client: Any, default: Any) -> Callable[..., FlagEvaluationDetails[Any]]:
    if isinstance(default, bool):
        return client.get_boolean_details
    if isinstance(default, int):
        return client.get_integer_details
    if isinstance(default, float):
        return client.get_float_details
    if isinstance(default, str):
        return client.get_string_details
    return client.get_object_details


@dataclass
class FlagResolver:
    """Per-unit settings: the base settings with every active flag's variant for that unit applied.

    Flags that fail validation against the base settings (a value the config key no longer
    accepts) are not served: their units get the config value with reason ERROR.
    """

    base: Any
    flags: Sequence[FeatureFlag]
    load_error: str | None = None
    _client: Any = field(init=False, repr=False)
    _broken: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        served = []
        for flag in self.flags:
            if flag.status != "active":
                continue
            try:
                served.append(validate_flag(flag, self.base))
            except FlagValueError as exc:
                self._broken[flag.flag_key] = str(exc)
        self._active = [f for f in self.flags if f.status == "active"]
        domain = f"{PROVIDER_NAME}-{next(_domains)}"
        api.set_provider(WarehouseFlagProvider(served), domain)
        self._client = api.get_client(domain)

    def has_flags(self, kind: UnitKind) -> bool:
        return self.load_error is not None or any(f.unit_kind == kind for f in self._active)

    def resolve(self, kind: UnitKind, unit_id: str) -> UnitResolution:
        evaluations = []
        if self.load_error is not None:
            evaluations.append(Evaluation("feature_flags", "*", None, None, "ERROR", self.load_error))
        overrides: dict[str, Any] = {}
        context = EvaluationContext(targeting_key=unit_id, attributes={"unit_kind": kind})
        for flag in self._active:
            if flag.unit_kind != kind:
                continue
            default = config_value(self.base, flag.parameter)
            if flag.flag_key in self._broken:
                evaluations.append(
                    Evaluation(
                        flag.flag_key, flag.parameter, None, None, "ERROR", self._broken[flag.flag_key]
                    )
                )
                continue
            details = _getter(self._client, default)(flag.flag_key, default, context)
            reason = str(details.reason.value if isinstance(details.reason, Reason) else details.reason)
            if details.error_code is not None:
                evaluations.append(
                    Evaluation(flag.flag_key, flag.parameter, None, None, "ERROR", details.error_message)
                )
                continue
            evaluations.append(
                Evaluation(flag.flag_key, flag.parameter, details.value, details.variant, reason)
            )  # type: ignore[arg-type]
            if details.variant is not None:
                overrides[flag.parameter] = details.value
        return UnitResolution(kind, unit_id, with_overrides(self.base, overrides), tuple(evaluations))


def exposures(resolutions: Mapping[str, UnitResolution]) -> list[tuple[str, str, Evaluation]]:
    """(kind, unit, evaluation) of every variant served, for FlagStore.record_exposures."""
    return [
        (r.kind, r.unit_id, e) for r in resolutions.values() for e in r.evaluations if e.variant is not None
    ]


@dataclass(frozen=True)
class VariantSegment:
    """From ``start`` on, a unit ran under ``variants``: ``settings`` are the config plus those flags' values."""

    start: datetime
    variants: dict[str, str]
    settings: Any


def variant_segments(
    resolution: UnitResolution, exposed: Mapping[tuple[str, str], datetime], config: Any
) -> list[VariantSegment]:
    """A unit's history under the variants it gets now, oldest first.

    Each flag's value applies from the first exposure of the variant the unit gets now
    (``exposed[(flag, variant)]``): a market moved from control to treatment when an experiment
    shipped runs on the treatment only from then on, and its other flags keep their own start.
    """
    served = [
        (exposed[(e.flag_key, e.variant)], e)
        for e in resolution.evaluations
        if e.variant is not None and (e.flag_key, e.variant) in exposed
    ]
    segments = []
    for start in sorted({t for t, _ in served}):
        active = [e for t, e in served if t <= start]
        overrides = {e.parameter: e.value for e in active if e.value is not None}
        segments.append(
            VariantSegment(start, {e.flag_key: e.variant for e in active}, with_overrides(config, overrides))
        )
    return segments


T = TypeVar("T")


def scheduled_values(
    units: pd.Series, times: pd.Series, schedule: Mapping[str, Sequence[tuple[datetime, T]]], default: T
) -> pd.Series:
    """Per row (unit, time): the value of the unit's last schedule entry started at or before the time.

    ``schedule``: unit -> [(start, value)] sorted by start; rows before the first entry, and units
    without one, get ``default``.
    """
    out = pd.Series([default] * len(units), index=units.index, dtype=object)
    stamps = pd.to_datetime(times)
    for unit, entries in schedule.items():
        rows = units.index[units == unit]
        if not len(rows) or not entries:
            continue
        starts = pd.to_datetime([start for start, _ in entries]).to_numpy()
        position = np.searchsorted(starts, stamps.loc[rows].to_numpy(), side="right")
        values = [default, *(value for _, value in entries)]
        out.loc[rows] = [values[i] for i in position]
    return out


def value_groups(values: pd.Series) -> list[tuple[Any, np.ndarray]]:
    """The distinct objects of a :func:`scheduled_values` Series, each with the positions holding it.

    Grouped by identity, in first-seen order: scheduled_values hands out a few shared objects, and
    hashing millions of rows' dataclasses took seconds at 1,000 markets (two equal values under
    different identities are merely computed twice).
    """
    if values.empty:
        return []
    objects = values.to_numpy(dtype=object)
    ids = np.fromiter(map(id, objects), dtype=np.uint64, count=len(objects))
    _, first, codes = np.unique(ids, return_index=True, return_inverse=True)
    return [(objects[first[g]], np.flatnonzero(codes == g)) for g in np.argsort(first)]


def row_variants(
    units: pd.Series, times: pd.Series, segments: Mapping[str, Sequence[VariantSegment]]
) -> pd.Series:
    """JSON ``{flag: variant}`` for each row (unit, time) that ran under a variant, else None."""
    schedule = {
        u: [(seg.start, json.dumps(seg.variants, sort_keys=True)) for seg in segs]
        for u, segs in segments.items()
    }
    return scheduled_values(units, times, schedule, None)

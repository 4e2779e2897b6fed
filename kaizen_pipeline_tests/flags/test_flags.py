"""Feature flags: validation naming the field, OpenFeature reasons, one audited transaction per change,
first exposures, and per-unit settings through the settings resource (with an ERROR fallback)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from kaizen_pipeline.flags.model import Evaluation, FeatureFlag, evaluate
from kaizen_pipeline.flags.parameters import FLAGGABLE, FlagValueError
from kaizen_pipeline.flags.provider import (
    UnitResolution,
    WarehouseFlagProvider,
    row_variants,
    scheduled_values,
    variant_segments,
)
from kaizen_pipeline.flags.store import FlagNotFound, FlagStore
from kaizen_pipeline.resources import SettingsResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

MARKETS = [f"0x{i:04x}" for i in range(400)]


def rvr_flag(**changes: object) -> FeatureFlag:
    flag = FeatureFlag(
        "rvr_test", "signals.rvr_threshold", {"control": 2.0, "strict": 2.5}, {"control": 0.5, "strict": 0.5}
    )
    return replace(flag, **changes)


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        (rvr_flag(parameter="signals.not_a_key"), "parameter:"),
        (rvr_flag(parameter="risk.daily"), "parameter:"),  # risk limits are never flagged
        (rvr_flag(variants={"control": 2.0, "strict": -1.0}), "variants.strict:"),
        (rvr_flag(variants={"control": 2.0, "strict": "high"}), "variants.strict:"),
        (rvr_flag(weights={"control": 0.5, "strict": 0.4}), "weights: must sum to 100%"),
        (rvr_flag(weights={"control": 0.5, "other": 0.5}), "weights:"),
        (rvr_flag(allocation=1.5), "allocation:"),
        (rvr_flag(targets={"m1": "missing"}), "targets:"),
        (rvr_flag(flag_key="Bad Key"), "flag_key:"),
    ],
)
def test_bad_flags_fail_naming_the_field_and_nothing_is_written(
    warehouse: Warehouse, settings: Settings, flag: FeatureFlag, field: str
) -> None:
    store = FlagStore(warehouse)
    with pytest.raises(FlagValueError, match=field):
        store.save(flag, settings, actor="tester", reason="try")
    assert store.list() == [] and store.changes().empty


def test_integer_parameter_rejects_a_value_out_of_its_range(warehouse: Warehouse, settings: Settings) -> None:
    flag = FeatureFlag("retries", "transport.max_retries", {"more": "99"}, {"more": 1.0})
    with pytest.raises(FlagValueError, match=r"variants.more: 99 is not a valid transport.max_retries"):
        FlagStore(warehouse).save(flag, settings, actor="tester", reason="try")


def test_reasons_follow_the_openfeature_model() -> None:
    flag = rvr_flag(targets={"pinned": "strict"}, allocation=0.5)
    reasons = {evaluate(flag, m).reason for m in MARKETS}
    assert reasons == {"SPLIT", "DEFAULT"}
    assert evaluate(flag, "pinned").reason == "TARGETING_MATCH" and evaluate(flag, "pinned").value == 2.5
    assert evaluate(replace(flag, status="killed"), MARKETS[0]).reason == "DISABLED"
    static = rvr_flag(weights={"control": 0.0, "strict": 1.0})
    assert {evaluate(static, m).reason for m in MARKETS} == {"STATIC"}
    assert {evaluate(static, m).value for m in MARKETS} == {2.5}


def test_the_provider_answers_through_an_openfeature_client() -> None:
    api.set_provider(WarehouseFlagProvider([rvr_flag()]), "test-domain")
    client = api.get_client("test-domain")
    values = {
        client.get_float_details("rvr_test", 2.0, EvaluationContext(targeting_key=m)).variant for m in MARKETS
    }
    assert values == {"control", "strict"}
    missing = client.get_float_details("no_such_flag", 2.0, EvaluationContext(targeting_key="m"))
    assert missing.reason == "ERROR" and missing.value == 2.0
    no_unit = client.get_float_details("rvr_test", 2.0, EvaluationContext())
    assert no_unit.reason == "ERROR" and no_unit.value == 2.0


def test_every_change_is_audited_and_one_flag_holds_a_parameter(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = FlagStore(warehouse)
    store.save(rvr_flag(allocation=0.05), settings, actor="ana", reason="canary")
    store.save(rvr_flag(allocation=0.25), settings, actor="ana", reason="widen")
    with pytest.raises(FlagValueError, match="already has the active flag 'rvr_test'"):
        store.save(rvr_flag(flag_key="rvr_other"), settings, actor="bo", reason="clash")
    store.kill("rvr_test", settings, actor="bo", reason="hurts hit rate")
    changes = store.changes("rvr_test")
    assert list(changes["action"]) == ["create", "update", "kill"]
    assert list(changes["actor"]) == ["ana", "ana", "bo"]
    assert (
        '"allocation": 0.05' in changes["before"].iloc[1] and '"allocation": 0.25' in changes["after"].iloc[1]
    )
    assert store.get("rvr_test").status == "killed"
    with pytest.raises(FlagNotFound, match="no flag 'nope'"):
        store.kill("nope", settings, actor="bo", reason="x")


def test_a_change_that_fails_midway_leaves_nothing_behind(warehouse: Warehouse, settings: Settings) -> None:
    store = FlagStore(warehouse)
    store.save(rvr_flag(), settings, actor="ana", reason="start")
    # the audit insert fails (its table is gone): the flag row must not change either
    with warehouse.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE flag_changes RENAME TO flag_changes_gone"))
    with pytest.raises(sa.exc.OperationalError):
        store.save(rvr_flag(allocation=0.1), settings, actor="ana", reason="ramp down")
    assert store.get("rvr_test").allocation == 1.0


def test_first_exposure_is_kept_and_ramping_up_keeps_units_in_their_variant(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = FlagStore(warehouse)
    store.save(rvr_flag(allocation=0.05), settings, actor="ana", reason="canary")
    early = SettingsResource.of(settings).resolve_units("market", MARKETS)
    in_early = {m: r.variants["rvr_test"] for m, r in early.items() if r.variants}
    assert 5 <= len(in_early) <= 40
    store.save(rvr_flag(allocation=0.25), settings, actor="ana", reason="widen")
    later = SettingsResource.of(settings).resolve_units("market", MARKETS)
    assert all(later[m].variants["rvr_test"] == v for m, v in in_early.items())
    assert sum(bool(r.variants) for r in later.values()) > 2 * len(in_early)
    exposures = store.assignments("rvr_test")
    assert exposures.groupby("unit_id").size().max() == 1  # one row per unit: its first exposure
    for resolution in later.values():
        expected = {"control": 2.0, "strict": 2.5}.get(resolution.variants.get("rvr_test", ""), 2.0)
        assert resolution.settings.signals.rvr_threshold == expected


def test_concurrent_evaluations_record_each_exposure_once(warehouse: Warehouse, settings: Settings) -> None:
    FlagStore(warehouse).save(rvr_flag(), settings, actor="ana", reason="start")
    errors: list[BaseException] = []

    def evaluate_all() -> None:
        try:
            SettingsResource.of(settings).resolve_units("market", MARKETS[:100])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(FlagStore(warehouse).assignments("rvr_test")) == 100


def test_a_flag_that_cannot_be_evaluated_falls_back_to_config_with_reason_error(
    warehouse: Warehouse, settings: Settings
) -> None:
    FlagStore(warehouse).save(rvr_flag(), settings, actor="ana", reason="start")
    with warehouse.engine.begin() as conn:  # a value the config key no longer accepts
        conn.execute(sa.text('UPDATE feature_flags SET variants = \'{"control": 2.0, "strict": -5}\''))
    resource = SettingsResource.of(settings)
    resolution = resource.resolve_units("market", ["m1"])["m1"]
    assert resolution.settings.signals.rvr_threshold == settings.signals.rvr_threshold
    assert [e.reason for e in resolution.evaluations] == ["ERROR"]
    assert any("variants.strict" in e for e in resource.flag_errors())


def test_an_unreadable_flag_table_runs_every_unit_on_config(warehouse: Warehouse, settings: Settings) -> None:
    FlagStore(warehouse).save(rvr_flag(), settings, actor="ana", reason="start")
    with warehouse.engine.begin() as conn:  # a row no reader can decode
        conn.execute(sa.text("UPDATE feature_flags SET weights = '{not json'"))
    resource = SettingsResource.of(settings)
    assert resource.for_unit("market", "m1").signals.rvr_threshold == settings.signals.rvr_threshold
    assert resource.for_unit("run", "r1").transport.max_retries == settings.transport.max_retries
    assert resource.flag_errors() == ["feature_flags: unreadable (JSONDecodeError)"]


def test_run_parameters_resolve_per_run(warehouse: Warehouse, settings: Settings) -> None:
    flag = FeatureFlag("retries", "transport.max_retries", {"few": 2, "many": 8}, {"few": 0.5, "many": 0.5})
    FlagStore(warehouse).save(flag, settings, actor="ana", reason="start")
    resource = SettingsResource.of(settings)
    retries = {resource.for_unit("run", f"run-{i}").transport.max_retries for i in range(50)}
    assert retries == {2, 8}
    assert resource.for_unit("market", "m1").transport.max_retries == settings.transport.max_retries


def test_every_flaggable_parameter_is_a_config_key_of_its_section(settings: Settings) -> None:
    for key in FLAGGABLE:
        section, name = key.split(".")
        assert hasattr(getattr(settings, section), name), key


def test_created_time_is_kept_across_changes(warehouse: Warehouse, settings: Settings) -> None:
    store = FlagStore(warehouse)
    store.save(rvr_flag(), settings, actor="a", reason="x", now=datetime(2026, 1, 1))
    store.save(rvr_flag(allocation=0.5), settings, actor="a", reason="y", now=datetime(2026, 1, 2))
    flag = store.get("rvr_test")
    assert flag.created_at == datetime(2026, 1, 1) and flag.updated_at == datetime(2026, 1, 2)


def test_each_flag_applies_from_the_first_exposure_of_the_variant_a_unit_gets_now() -> None:
    """A market in flag a's treatment since day 2 and in flag b's control until b shipped on day 9 ran on
    a's value alone from day 2 and on both from day 9: shipping b never rewrites the market's past."""
    config = Settings()

    def day(d: int) -> datetime:
        return datetime(2026, 11, d)

    now = UnitResolution(
        "market",
        "m1",
        config,
        (
            Evaluation("a", "signals.hype_threshold", 0.0, "treatment", "SPLIT"),
            Evaluation("b", "signals.rvr_threshold", 3.0, "treatment", "STATIC"),
        ),
    )
    exposed = {("a", "treatment"): day(2), ("b", "control"): day(2), ("b", "treatment"): day(9)}
    first, second = variant_segments(now, exposed, config)
    assert (first.start, first.variants) == (day(2), {"a": "treatment"})
    assert first.settings.signals.hype_threshold == 0.0
    assert first.settings.signals.rvr_threshold == config.signals.rvr_threshold
    assert (second.start, second.variants) == (day(9), {"a": "treatment", "b": "treatment"})
    assert (second.settings.signals.hype_threshold, second.settings.signals.rvr_threshold) == (0.0, 3.0)

    units = pd.Series(["m1", "m1", "m1", "m1", "m2"])
    times = pd.Series([day(1), day(2), day(8), day(10), day(10)])
    assert scheduled_values(units, times, {"m1": [(day(2), "A"), (day(9), "AB")]}, "config").tolist() == [
        "config", "A", "A", "AB", "config",
    ]  # fmt: skip
    variants = row_variants(units, times, {"m1": [first, second]})
    assert variants.iloc[0] is None and variants.iloc[4] is None
    assert json.loads(variants.iloc[2]) == {"a": "treatment"}
    assert json.loads(variants.iloc[3]) == {"a": "treatment", "b": "treatment"}

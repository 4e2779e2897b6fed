"""alert_sensor end to end: real check evaluations and a failed run on a real Dagster instance, real SMTP."""

from __future__ import annotations

import dagster as dg
import pytest

from kaizen_pipeline.instance import AlertSensorCursor
from kaizen_pipeline.ops.assets import OPS_ASSETS
from kaizen_pipeline.ops.sensors import build_alert_sensor
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.smtp import SMTP_PASSWORD, SmtpServer

STATE = {"failing": True}
LEAKY = "tok-9f8e7d6c5b4a"


@dg.asset(name="probe_metric")
def probe_metric() -> int:
    """A tiny asset for check evaluations."""
    return 1


@dg.asset_check(asset=probe_metric, description="The probe metric must reach its target.")
def probe_meets_target() -> dg.AssetCheckResult:
    """Fails (ERROR) while STATE['failing']."""
    failing = STATE["failing"]
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"value": 0.5 if failing else 1.2, "target": 1.0, "deviation": -0.5 if failing else 0.2},
    )


@dg.asset_check(asset=probe_metric, description="The probe metric must stay in range.")
def probe_in_range() -> dg.AssetCheckResult:
    """Fails (WARN) while STATE['failing']."""
    return dg.AssetCheckResult(passed=not STATE["failing"], severity=dg.AssetCheckSeverity.WARN)


@dg.asset(name="exploding_asset")
def exploding_asset() -> None:
    """Always fails, with a secret in its error message."""
    raise RuntimeError(f"upstream exploded: token={LEAKY}")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:  # SQLite storage sharded per run, like dagster.yaml's default
        yield inst


def test_alert_sensor_emails_failures_dedups_and_resolves(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer, instance: dg.DagsterInstance
) -> None:
    sensor = build_alert_sensor(alert_settings)
    resources = {
        "warehouse": WarehouseResource(url=warehouse.url),
        "settings": SettingsResource.of(alert_settings),
    }
    defs = dg.Definitions(
        assets=[probe_metric, exploding_asset],
        asset_checks=[probe_meets_target, probe_in_range],
        sensors=[sensor],
        resources=resources,
    )

    def evaluate(cursor: str | None) -> str | None:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=resources
        )
        result = sensor(context)
        assert isinstance(result, dg.SkipReason)
        return context.cursor

    STATE["failing"] = True
    failing_run = dg.materialize([probe_metric, probe_meets_target, probe_in_range], instance=instance)
    broken = dg.materialize([exploding_asset], instance=instance, raise_on_error=False)
    assert not broken.success

    cursor = evaluate(None)
    subjects = sorted(m.subject for m in smtp_server.messages)
    assert len(subjects) == 2, subjects
    check_mail = next(m for m in smtp_server.messages if "probe_metric" in m.subject)
    run_mail = next(m for m in smtp_server.messages if "job" in m.subject)
    # both failing checks of the run in one critical email, to recipients and escalation
    assert check_mail.subject.startswith("[CRITICAL] probe_metric / probe_meets_target failed in run ")
    assert "(+1 more)" in check_mail.subject
    assert "lead@example.test" in check_mail.rcpt_tos
    text = check_mail.body("plain")
    assert f"http://dagster.example.test:3000/runs/{failing_run.run_id}" in text
    assert "The probe metric must reach its target." in text  # the check's description
    assert "-0.5" in text and "probe_in_range" in text
    # the failed run: a warning to the recipients, with the root error, secret masked
    assert run_mail.subject.startswith("[WARNING] job __ephemeral_asset_job__ failed")
    assert "lead@example.test" not in run_mail.rcpt_tos
    run_text = run_mail.body("plain")
    assert "RuntimeError: upstream exploded" in run_text
    assert f"/runs/{broken.run_id}" in run_text
    assert LEAKY not in run_text
    assert AlertSensorCursor.parse(cursor).active == {}

    # nothing new: no new email
    cursor = evaluate(cursor)
    assert len(smtp_server.messages) == 2

    # the checks pass again in a new (successful) run: one resolved email for the whole run
    STATE["failing"] = False
    fixed = dg.materialize([probe_metric, probe_meets_target, probe_in_range], instance=instance)
    cursor = evaluate(cursor)
    assert len(smtp_server.messages) == 3
    resolved = smtp_server.messages[2]
    assert resolved.subject.startswith("[RESOLVED] ")
    assert f"/runs/{fixed.run_id}" in resolved.body("plain")
    assert (
        "lead@example.test" in resolved.rcpt_tos
    )  # whoever heard about the critical alert hears it resolved

    # alert_history shows every episode and its emails
    history_asset = next(a for a in OPS_ASSETS if a.key.path == ["alert_history"])
    result = dg.materialize([history_asset], instance=instance, resources=resources)
    history = warehouse.read_frame("SELECT * FROM alert_history ORDER BY alert_key")
    assert list(history["alert_key"]) == [
        "check:probe_metric/probe_in_range",
        "check:probe_metric/probe_meets_target",
        "run:__ephemeral_asset_job__",
    ]
    assert set(history["status"]) == {"resolved"}
    assert list(history["emails_sent"]) == [2, 2, 2]
    md = result.asset_materializations_for_node("alert_history")[0].metadata
    assert md["resolved"].value == 3
    for mail in smtp_server.messages:
        assert SMTP_PASSWORD not in mail.raw.decode(errors="replace")

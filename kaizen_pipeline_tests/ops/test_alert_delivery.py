"""Alert emails through a real SMTP server (aiosmtpd on 127.0.0.1): content, dedup, outbox retries, secrets."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from kaizen_pipeline.ops.alert_store import AlertStore, run_alert_tick
from kaizen_pipeline.ops.alerts import check_observation, run_observation
from kaizen_pipeline.ops.mailer import DeliveryError, OutgoingEmail, SmtpMailer
from kaizen_pipeline.ops.redact import secret_values
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import alert_outbox
from kaizen_pipeline_tests.smtp import SMTP_PASSWORD, SMTP_USER, SmtpServer

T0 = datetime(2026, 3, 1, 12, 0)


def obs(
    passed: bool,
    at: datetime,
    severity: str = "WARN",
    run: str = "run-aaaa1111",
    check: str = "price_freshness",
):
    return check_observation(
        asset_key="market_prices",
        check_name=check,
        passed=passed,
        severity=severity,
        metadata={"value": 95.0, "target": 30.0, "deviation": 2.17},
        occurred_at=at,
        run_id=run,
        description="Newest price younger than 30 minutes.",
    )


def tick(settings: Settings, warehouse: Warehouse, observations, now: datetime):
    return run_alert_tick(
        warehouse,
        observations,
        now=now,
        alerts=settings.alerts,
        send=SmtpMailer.from_settings(settings).send,
        secrets=secret_values(settings),
    )


def test_critical_alert_email_arrives_with_subject_recipients_and_run_link(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    report = tick(alert_settings, warehouse, [obs(False, T0, severity="ERROR")], T0)
    assert report.sent == 1 and report.failed == 0
    (mail,) = smtp_server.messages
    assert mail.subject == "[CRITICAL] market_prices / price_freshness failed in run run-aaaa"
    assert sorted(mail.rcpt_tos) == ["lead@example.test", "oncall@example.test", "research@example.test"]
    assert mail.mail_from == "kaizen@example.test"
    for body in (mail.body("plain"), mail.body("html")):
        assert "http://dagster.example.test:3000/runs/run-aaaa1111" in body
        assert "95" in body and "2.17" in body
        assert "Newest price younger than 30 minutes." in body
    assert smtp_server.mailbox.logins == [(SMTP_USER, SMTP_PASSWORD)]


def test_warning_goes_to_recipients_only(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    tick(alert_settings, warehouse, [obs(False, T0)], T0)
    (mail,) = smtp_server.messages
    assert sorted(mail.rcpt_tos) == ["oncall@example.test", "research@example.test"]
    assert mail.subject.startswith("[WARNING] market_prices / price_freshness failed")


def test_one_email_per_open_alert_repeat_after_interval_then_resolved(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    tick(alert_settings, warehouse, [obs(False, T0)], T0)
    t1 = T0 + timedelta(minutes=15)
    tick(alert_settings, warehouse, [obs(False, t1, run="run-bbbb")], t1)
    assert len(smtp_server.messages) == 1  # still failing inside the 4 h repeat interval

    t2 = T0 + timedelta(hours=4, minutes=5)
    tick(alert_settings, warehouse, [obs(False, t2, run="run-cccc")], t2)
    assert len(smtp_server.messages) == 2
    assert "still failing" in smtp_server.messages[1].subject

    t3 = t2 + timedelta(minutes=15)
    tick(alert_settings, warehouse, [obs(True, t3, run="run-dddd")], t3)
    assert len(smtp_server.messages) == 3
    resolved = smtp_server.messages[2]
    assert resolved.subject == "[RESOLVED] market_prices / price_freshness passes again"
    assert sorted(resolved.rcpt_tos) == ["oncall@example.test", "research@example.test"]
    assert "/runs/run-dddd" in resolved.body("plain")

    # passing again later: nothing more to say
    tick(alert_settings, warehouse, [obs(True, t3 + timedelta(hours=5))], t3 + timedelta(hours=5))
    assert len(smtp_server.messages) == 3


def test_failures_of_one_run_arrive_in_one_email(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    failures = [
        obs(False, T0, check="price_freshness"),
        obs(False, T0, check="price_range"),
        run_observation(
            job_name="ingest_job", run_id="run-aaaa1111", succeeded=False, occurred_at=T0, priority="warning"
        ),
    ]
    tick(alert_settings, warehouse, failures, T0)
    (mail,) = smtp_server.messages
    assert "(+2 more)" in mail.subject
    text = mail.body("plain")
    assert "price_range" in text and "price_freshness" in text and "job ingest_job" in text


def test_smtp_down_then_up_delivers_exactly_once(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    report = tick(alert_settings, warehouse, [obs(False, T0)], T0)
    assert (report.sent, report.failed, report.pending) == (0, 1, 1)
    row = warehouse.read_frame(sa.select(alert_outbox)).iloc[0]
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "failed" in row["last_error"]

    # before the backoff has passed nothing is retried
    report = tick(alert_settings, warehouse, [], T0 + timedelta(seconds=30))
    assert (report.sent, report.failed) == (0, 0)

    smtp_server.start()
    later = T0 + timedelta(minutes=2)
    report = tick(alert_settings, warehouse, [], later)
    assert (report.sent, report.pending) == (1, 0)

    # a restart (new process: new Warehouse object on the same file) does not send it again
    restarted = Warehouse(load_settings().database.sqlalchemy_url())
    report = tick(alert_settings, restarted, [], later + timedelta(hours=1))
    restarted.dispose()
    assert report.sent == 0
    assert len(smtp_server.messages) == 1
    row = warehouse.read_frame(sa.select(alert_outbox)).iloc[0]
    assert row["status"] == "sent" and row["attempts"] == 2


def test_reprocessing_the_same_observations_enqueues_nothing_new(
    alert_settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    """A sensor that crashed before saving its cursor re-reads the same evaluations."""
    tick(alert_settings, warehouse, [obs(False, T0)], T0)
    tick(alert_settings, warehouse, [obs(False, T0)], T0 + timedelta(minutes=1))
    assert len(smtp_server.messages) == 1
    assert AlertStore(warehouse).pending_count() == 0


def test_no_recipients_records_the_alert_without_sending(
    settings: Settings, warehouse: Warehouse, smtp_server: SmtpServer
) -> None:
    report = tick(settings, warehouse, [obs(False, T0, severity="ERROR")], T0)
    assert report.skipped == 1 and report.sent == 0
    assert smtp_server.messages == []
    row = warehouse.read_frame(sa.select(alert_outbox)).iloc[0]
    assert row["status"] == "skipped" and "alerts.recipients" in row["last_error"]


def test_smtp_password_never_appears_in_logs_emails_errors_or_tables(
    alert_settings: Settings,
    warehouse: Warehouse,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # 1) a normal delivery
    tick(alert_settings, warehouse, [obs(False, T0, severity="ERROR")], T0)
    # 2) a rejected login with a different (wrong) password
    wrong = "Wr0ng-pa55word-zzz"
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_PASSWORD", wrong)
    wrong_settings = load_settings()
    with pytest.raises(DeliveryError) as rejected:
        SmtpMailer.from_settings(wrong_settings).send(
            OutgoingEmail("m1", "s", ["oncall@example.test"], "t", "<p>h</p>")
        )
    # 3) a delivery failure recorded in the outbox
    smtp_server.stop()
    report = tick(alert_settings, warehouse, [obs(False, T0, check="price_range")], T0)
    assert report.failed == 1

    texts = [rec.getMessage() for rec in caplog.records]
    texts += [
        str(rejected.value),
        repr(rejected.value),
        repr(SmtpMailer.from_settings(alert_settings)),
        report.summary(),
    ]
    texts += [m.raw.decode(errors="replace") for m in smtp_server.messages]
    texts += [json.dumps(warehouse.read_frame(sa.select(alert_outbox)).astype(str).to_dict("records"))]
    assert "authentication" in str(rejected.value).lower() or "535" in str(rejected.value)
    for text in texts:
        assert SMTP_PASSWORD not in text
        assert wrong not in text

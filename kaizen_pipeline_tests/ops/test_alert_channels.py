"""Alerts on Telegram, Slack and an Alertmanager-format webhook, each received by a real HTTP server on
127.0.0.1 standing in for the service: content, routes per priority, exactly-once delivery across an
outage, Telegram's retry_after, and no secret (bot token, webhook URL path) anywhere."""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from kaizen_pipeline.ops.alert_store import enqueue_notice, run_alert_tick
from kaizen_pipeline.ops.alerts import check_observation
from kaizen_pipeline.ops.channels import ALERTMANAGER_ZERO_TIME, channel_senders
from kaizen_pipeline.ops.mailer import SmtpMailer
from kaizen_pipeline.ops.redact import secret_values
from kaizen_pipeline.settings import ConfigError, Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import alert_outbox, kaizen_metrics
from kaizen_pipeline_tests.ops.test_alert_delivery import obs as price_check
from kaizen_pipeline_tests.smtp import SmtpServer, point_alerts_at

T0 = datetime(2026, 3, 1, 12, 0)
BOT_TOKEN = "7700112233:AAH-bot-token-Zq9x8w7v6u5t"
SLACK_PATH = "/services/T0KAIZEN/B0ALERTS/slackSecretPathXy12"
HOOK_PATH = "/hooks/alertmanager/hookSecret-55aa66bb"
CHAT_ID = "-1001234567890"


@dataclass
class Received:
    path: str
    body: Any


@dataclass
class Receiver:
    """One HTTP server for the three services; ``script`` holds answers to give before the default 200."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                kind = receiver.kind(self.path)
                answers = receiver.script.get(kind) or []
                if answers:
                    status, headers, body = answers.pop(0)
                else:
                    multipart = self.headers.get("content-type", "").startswith("multipart/form-data")
                    receiver.received.append(
                        Received(self.path, _form(self.headers, raw) if multipart else json.loads(raw))
                    )
                    status, headers, body = (
                        200,
                        {},
                        ({"ok": True, "result": {}} if kind == "telegram" else "ok"),
                    )
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @staticmethod
    def kind(path: str) -> str:
        if path.startswith("/bot"):
            return "telegram"
        return "slack" if path.startswith("/services/") else "webhook"

    def of(self, kind: str) -> list[Any]:
        return [r.body for r in self.received if self.kind(r.path) == kind]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _form(headers: Any, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {field: text or bytes} (Telegram's sendPhoto)."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + raw
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[name] = payload if part.get_filename() else payload.decode()
    return fields


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def channel_settings(
    smtp_server: SmtpServer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    point_alerts_at(smtp_server, monkeypatch)
    monkeypatch.setenv("KAIZEN_ALERTS__TELEGRAM_ENABLED", "true")
    monkeypatch.setenv("KAIZEN_ALERTS__TELEGRAM_CHAT_ID", CHAT_ID)
    monkeypatch.setenv("KAIZEN_ALERTS__TELEGRAM_API_URL", receiver.url)
    monkeypatch.setenv("KAIZEN_ALERTS__TELEGRAM_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("KAIZEN_ALERTS__SLACK_WEBHOOK_URL", receiver.url + SLACK_PATH)
    monkeypatch.setenv("KAIZEN_ALERTS__WEBHOOK_URL", receiver.url + HOOK_PATH)
    monkeypatch.setenv("KAIZEN_ALERTS__RETRY_BASE_SECONDS", "30")
    monkeypatch.setenv("KAIZEN_ALERTS__CHANNEL_TIMEOUT_SECONDS", "5")
    return load_settings()


def obs(passed: bool, at: datetime, severity: str = "ERROR", check: str = "price_freshness"):
    """The email tests' price-check observation, critical by default (every channel is routed)."""
    return price_check(passed, at, severity=severity, check=check)


def tick(settings: Settings, warehouse: Warehouse, observations: list[Any], now: datetime):
    secrets = secret_values(settings)
    return run_alert_tick(
        warehouse,
        observations,
        now=now,
        alerts=settings.alerts,
        send=SmtpMailer.from_settings(settings).send,
        secrets=secrets,
        channels=channel_senders(settings.alerts, secrets),
    )


def test_critical_alert_reaches_telegram_slack_and_webhook_then_resolves(
    channel_settings: Settings, warehouse: Warehouse, receiver: Receiver, smtp_server: SmtpServer
) -> None:
    report = tick(channel_settings, warehouse, [obs(False, T0)], T0)
    assert report.sent == 4 and report.failed == 0  # email + three channels
    assert len(smtp_server.messages) == 1
    (telegram,) = receiver.of("telegram")
    assert [r.path for r in receiver.received if receiver.kind(r.path) == "telegram"] == [
        f"/bot{BOT_TOKEN}/sendMessage"
    ]
    assert telegram["chat_id"] == CHAT_ID
    assert telegram["text"].startswith("[CRITICAL] market_prices / price_freshness failed")
    assert (
        "95" in telegram["text"] and "http://dagster.example.test:3000/runs/run-aaaa1111" in telegram["text"]
    )
    (slack,) = receiver.of("slack")
    assert slack["text"].startswith("[CRITICAL] market_prices / price_freshness failed")
    (firing,) = receiver.of("webhook")
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert (
        firing["receiver"]
        and firing["groupKey"]
        and firing["externalURL"] == "http://dagster.example.test:3000"
    )
    (alert,) = firing["alerts"]
    assert alert["labels"] == {
        "alertname": "price_freshness",
        "priority": "critical",
        "kind": "check",
        "asset_key": "market_prices",
        "severity": "error",
    }
    assert alert["annotations"]["summary"] == "market_prices / price_freshness"
    assert alert["annotations"]["value"] == "95" and alert["annotations"]["target"] == "30"
    assert alert["startsAt"] == "2026-03-01T12:00:00Z" and alert["endsAt"] == ALERTMANAGER_ZERO_TIME
    assert firing["commonLabels"] == alert["labels"]

    later = T0 + timedelta(minutes=20)
    tick(channel_settings, warehouse, [obs(True, later)], later)
    assert len(receiver.of("telegram")) == 2 and len(receiver.of("slack")) == 2
    assert receiver.of("telegram")[1]["text"].startswith("[RESOLVED] market_prices / price_freshness")
    resolved = receiver.of("webhook")[1]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-03-01T12:20:00Z"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]


def test_routes_per_priority_send_warnings_to_email_and_slack_only(
    channel_settings: Settings,
    warehouse: Warehouse,
    receiver: Receiver,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "KAIZEN_ALERTS__ROUTES",
        json.dumps({"critical": ["telegram", "webhook"], "warning": ["email", "slack"]}),
    )
    settings = load_settings()
    tick(settings, warehouse, [obs(False, T0, severity="WARN", check="price_gaps")], T0)
    assert len(smtp_server.messages) == 1 and len(receiver.of("slack")) == 1
    assert receiver.of("telegram") == [] and receiver.of("webhook") == []
    tick(settings, warehouse, [obs(False, T0, severity="ERROR", check="price_range")], T0)
    assert len(receiver.of("telegram")) == 1 and len(receiver.of("webhook")) == 1
    assert len(smtp_server.messages) == 1 and len(receiver.of("slack")) == 1  # critical: no email, no Slack
    rows = warehouse.read_frame(
        sa.select(alert_outbox.c.channel, alert_outbox.c.status, alert_outbox.c.priority)
    )
    critical_email = rows[(rows["priority"] == "critical") & (rows["channel"] == "email")]
    assert list(critical_email["status"]) == ["skipped"]  # recorded, not sent


def test_each_channel_delivers_exactly_once_across_a_receiver_outage(
    channel_settings: Settings, warehouse: Warehouse, receiver: Receiver, smtp_server: SmtpServer
) -> None:
    port = receiver.port
    receiver.stop()  # every service is down: connection refused
    down = tick(channel_settings, warehouse, [obs(False, T0)], T0)
    assert down.sent == 1 and down.failed == 3 and down.pending == 3  # the email went; chats wait
    receiver.port = port
    receiver.start()
    early = tick(channel_settings, warehouse, [], T0 + timedelta(seconds=10))
    assert early.sent == 0 and receiver.received == []  # the backoff (30 s) has not passed
    back = tick(channel_settings, warehouse, [], T0 + timedelta(seconds=31))
    assert back.sent == 3 and back.pending == 0
    for later in (40, 400, 4000):
        tick(
            channel_settings,
            warehouse,
            [obs(False, T0 + timedelta(seconds=later))],
            T0 + timedelta(seconds=later),
        )
    assert len(receiver.of("telegram")) == len(receiver.of("slack")) == len(receiver.of("webhook")) == 1
    assert len(smtp_server.messages) == 1


def test_telegram_429_waits_its_retry_after(
    channel_settings: Settings, warehouse: Warehouse, receiver: Receiver
) -> None:
    too_many = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 300",
        "parameters": {"retry_after": 300},
    }
    receiver.script["telegram"] = [(429, {"Retry-After": "300"}, too_many)]
    first = tick(channel_settings, warehouse, [obs(False, T0)], T0)
    assert first.failed == 1 and "HTTP 429" in first.errors[-1] and "retry after 300 s" in first.errors[-1]
    row = warehouse.read_frame(
        sa.select(alert_outbox).where(alert_outbox.c.channel == "telegram"), parse_dates=["next_attempt_at"]
    ).iloc[0]
    assert row["next_attempt_at"] == T0 + timedelta(seconds=300)  # not the 30 s backoff
    assert tick(channel_settings, warehouse, [], T0 + timedelta(seconds=120)).sent == 0
    assert receiver.of("telegram") == []
    assert tick(channel_settings, warehouse, [], T0 + timedelta(seconds=301)).sent == 1
    assert len(receiver.of("telegram")) == 1


def test_a_critical_metric_alert_carries_its_chart_to_telegram(
    channel_settings: Settings, warehouse: Warehouse, receiver: Receiver
) -> None:
    days = [T0 - timedelta(days=n) for n in range(30, 0, -1)]
    warehouse.upsert(
        kaizen_metrics,
        [
            {"metric": "run_success_rate", "scope": "*", "ts": d, "value": 0.99 - 0.01 * (i > 25),
             "sample_size": 40, "source": "dagster", "as_of": d, "collected_at": T0}
            for i, d in enumerate(days)
        ],
    )  # fmt: skip
    metric_alert = check_observation(
        asset_key="kaizen_metrics",
        check_name="run_success_rate_deviation",
        passed=False,
        severity="ERROR",
        metadata={"metric_value": 0.98, "metric_target": 0.995},
        occurred_at=T0,
        run_id="run-bbbb2222",
    )
    report = tick(channel_settings, warehouse, [metric_alert, obs(False, T0, severity="WARN")], T0)
    assert report.failed == 0
    photos = [r for r in receiver.received if r.path.endswith("/sendPhoto")]
    (photo,) = photos
    assert photo.path == f"/bot{BOT_TOKEN}/sendPhoto"
    assert photo.body["chat_id"] == CHAT_ID
    assert photo.body["caption"].startswith("[CRITICAL] kaizen_metrics / run_success_rate_deviation failed")
    png = photo.body["photo"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width > 200 and height > 100
    # the warning of another run (no metric) goes as text, and Slack never gets images
    assert [
        r.path.rsplit("/", 1)[-1] for r in receiver.received if receiver.kind(r.path) == "telegram"
    ].count("sendMessage") == 1
    assert all("photo" not in body for body in receiver.of("slack"))


def test_notices_reach_the_chats(
    channel_settings: Settings, warehouse: Warehouse, receiver: Receiver
) -> None:
    for _ in range(2):  # idempotent by key
        enqueue_notice(
            warehouse,
            key="experiment-42-decided",
            subject="experiment raise_hype_threshold decided: ship",
            text="Treatment beat control on every guardrail.",
            priority="warning",
            now=T0,
            alerts=channel_settings.alerts,
        )
    tick(channel_settings, warehouse, [], T0)
    (telegram,) = receiver.of("telegram")
    assert "raise_hype_threshold decided: ship" in telegram["text"]
    assert len(receiver.of("slack")) == 1 and receiver.of("webhook") == []


def test_no_secret_in_logs_tables_messages_or_errors(
    channel_settings: Settings,
    warehouse: Warehouse,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every request's full URL at INFO
    # hostile answers that echo the request path back in their error bodies
    receiver.script["telegram"] = [(401, {}, {"ok": False, "description": f"Unauthorized: /bot{BOT_TOKEN}"})]
    receiver.script["slack"] = [(404, {}, f"no_service {SLACK_PATH}")]
    receiver.script["webhook"] = [(500, {}, {"error": f"cannot route {receiver.url}{HOOK_PATH}"})]
    failed = tick(channel_settings, warehouse, [obs(False, T0)], T0)
    assert failed.failed == 3
    sent = tick(channel_settings, warehouse, [], T0 + timedelta(hours=2))
    assert sent.sent == 3
    port = receiver.port
    receiver.stop()
    down = tick(channel_settings, warehouse, [obs(False, T0, check="price_range")], T0)
    receiver.port = port
    texts = [rec.getMessage() for rec in caplog.records]
    texts += [failed.summary(), sent.summary(), down.summary(), *failed.errors, *down.errors]
    texts += [json.dumps(r.body) for r in receiver.received]
    texts += [json.dumps(warehouse.read_frame(sa.select(alert_outbox)).astype(str).to_dict("records"))]
    assert any("sendMessage" in t for t in texts)  # httpx's request lines were logged (masked)
    assert any("HTTP 401" in t for t in texts) and any("HTTP 404" in t for t in texts)
    for text in texts:
        for secret in (BOT_TOKEN, BOT_TOKEN.split(":")[1], SLACK_PATH, SLACK_PATH.strip("/"), HOOK_PATH):
            assert secret not in text


@pytest.mark.parametrize("key", ["telegram_token", "slack_webhook_url", "webhook_url"])
def test_channel_secrets_are_read_from_the_environment_only(
    key: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"alerts:\n  {key}: http://127.0.0.1:9/secret-value-1234\n")
    monkeypatch.setenv("KAIZEN_CONFIG", str(config))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert f"alerts.{key}" in str(err.value) and f"KAIZEN_ALERTS__{key.upper()}" in str(err.value)
    assert "secret-value-1234" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://127.0.0.1:notaport/hooks/s3cret-path-9x", "the port is not a number"),
        ("127.0.0.1/hooks/s3cret-path-9x", "expected an http:// or https:// URL"),
    ],
)
def test_a_malformed_webhook_url_is_a_config_error_that_names_the_key_not_the_secret(
    value: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIZEN_ALERTS__WEBHOOK_URL", value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "alerts.webhook_url" in str(err.value) and problem in str(err.value)
    assert "s3cret-path-9x" not in str(err.value)


def test_a_channel_that_fails_before_any_answer_is_retried_and_names_no_secret(
    channel_settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything the HTTP client raises (here: a URL it cannot use) is that message's retry, not a failed tick."""
    import httpx

    def broken(*_: Any, **__: Any) -> Any:
        raise httpx.InvalidURL("Invalid URL http://127.0.0.1/hooks/s3cret-path-9x")

    monkeypatch.setattr(httpx.Client, "post", broken)
    report = tick(channel_settings, warehouse, [obs(False, T0)], T0)
    assert report.failed == 3 and report.sent == 1  # the email still went
    assert all("s3cret-path-9x" not in e for e in report.errors)
    outbox = warehouse.read_frame(sa.select(alert_outbox).where(alert_outbox.c.channel != "email"))
    assert set(outbox["status"]) == {"pending"} and "s3cret-path-9x" not in " ".join(
        map(str, outbox["last_error"])
    )

"""Alert channels beyond email: Telegram (Bot API), Slack (incoming webhooks) and a generic webhook
that receives Alertmanager's webhook format (version 4).

Every channel rides the same outbox as email (ops.alert_store): the message is rendered and
stored when the alert transitions, and a sender here only delivers the stored body. A failed
send raises DeliveryError (a 429's ``Retry-After`` / Telegram's ``retry_after`` carried along) with
every secret (bot token, webhook URL) masked; httpx's own request log lines are masked too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from kaizen_pipeline.ops.alerts import Alert, EmailGroup
from kaizen_pipeline.ops.emails import RenderedEmail, asset_checks_url, run_url
from kaizen_pipeline.ops.mailer import DeliveryError
from kaizen_pipeline.ops.redact import redact
from kaizen_pipeline.settings import AlertSettings

TELEGRAM_MAX_CHARS = 4096  # sendMessage's limit on text
TELEGRAM_MAX_CAPTION = 1024  # sendPhoto's limit on a caption
SLACK_MAX_CHARS = 39_000  # Slack truncates a message's text beyond 40,000 characters
ALERTMANAGER_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert


@dataclass(frozen=True)
class ChannelMessage:
    """A stored outbox message of a chat or webhook channel, as a sender gets it."""

    message_id: str
    channel: str
    subject: str
    body: str  # chat text, or the JSON document the webhook posts
    image_png: bytes | None = None  # a chart, where the channel takes images


class Sender(Protocol):
    def __call__(self, message: ChannelMessage) -> None: ...


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 2] + " …"


def chat_text(rendered: RenderedEmail, limit: int = TELEGRAM_MAX_CHARS) -> str:
    """The plain-text alert as a chat message: the subject line, then the email's text body."""
    return _truncate(f"{rendered.subject}\n\n{rendered.text}", limit)


def _rfc3339(moment: datetime | None) -> str:
    if moment is None:
        return ALERTMANAGER_ZERO_TIME
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": alert.check_name if alert.kind == "check" and alert.check_name else "run_failure",
        "priority": alert.priority,
        "kind": alert.kind,
    }
    if alert.asset_key:
        labels["asset_key"] = alert.asset_key
    if alert.job_name:
        labels["job"] = alert.job_name
    if alert.severity:
        labels["severity"] = alert.severity.lower()
    return labels


def _annotations(alert: Alert) -> dict[str, str]:
    notes = {"summary": alert.title}
    if alert.description:
        notes["description"] = alert.description
    for name, value in (("value", alert.value), ("target", alert.target), ("deviation", alert.deviation)):
        if value is not None:
            notes[name] = f"{value:.6g}"
    if alert.detail:
        notes["detail"] = alert.detail
    return notes


def alertmanager_payload(group: EmailGroup, ui_base_url: str) -> dict[str, Any]:
    """One notification group in Alertmanager's webhook format, version 4.

    ``fingerprint`` is stable per alert key (as Alertmanager's label-set hash is per alert), so a
    receiver pairs a resolved message with the firing one.
    """
    status = "resolved" if group.kind == "resolved" else "firing"
    alerts = []
    for alert in group.alerts:
        generator = (
            asset_checks_url(ui_base_url, alert.asset_key)
            if alert.kind == "check"
            else run_url(ui_base_url, alert.last_run_id)
        )
        alerts.append(
            {
                "status": status,
                "labels": _labels(alert),
                "annotations": _annotations(alert),
                "startsAt": _rfc3339(alert.opened_at),
                "endsAt": _rfc3339(alert.resolved_at) if status == "resolved" else ALERTMANAGER_ZERO_TIME,
                "generatorURL": generator or ui_base_url,
                "fingerprint": _fingerprint(alert.alert_key),
            }
        )
    label_sets = [a["labels"] for a in alerts]
    common = {k: v for k, v in label_sets[0].items() if all(s.get(k) == v for s in label_sets)}
    notes = [a["annotations"] for a in alerts]
    common_notes = {k: v for k, v in notes[0].items() if all(n.get(k) == v for n in notes)}
    group_labels = {"run_id": group.run_id} if group.run_id else {}
    return {
        "version": "4",
        "groupKey": "{}:" + json.dumps(group_labels, sort_keys=True),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "kaizen_pipeline",
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": common_notes,
        "externalURL": ui_base_url,
        "alerts": alerts,
    }


def _fingerprint(alert_key: str) -> str:
    return hashlib.sha256(alert_key.encode()).hexdigest()[:16]


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    """Seconds the service asked us to wait: Telegram's ``parameters.retry_after`` or ``Retry-After``."""
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("retry_after"), (int, float)):
            return float(params["retry_after"])
    header = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


class _HttpSender:
    """POSTs JSON with a deadline; any failure is a DeliveryError with the secrets masked."""

    name = "channel"

    def __init__(self, timeout: float, secrets: Sequence[str]) -> None:
        self._timeout = timeout
        self._secrets = [s for s in secrets if s]

    def _post(
        self,
        url: str,
        payload: Mapping[str, Any] | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> tuple[httpx.Response, Any]:
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                response = client.post(url, json=payload, data=data, files=files)
        except Exception as exc:  # noqa: BLE001 - any failure (also httpx.InvalidURL) is this message's retry
            # the exception's text can carry the URL (the token or the webhook path): never pass it on
            raise DeliveryError(
                redact(f"{self.name}: {type(exc).__name__} talking to the server", self._secrets)
            ) from None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:300]
        return response, body

    def _fail(self, response: httpx.Response, body: Any, what: str) -> DeliveryError:
        retry_after = _retry_after(response, body) if response.status_code == 429 else None
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        text = f"{self.name}: HTTP {response.status_code}: {what}{wait}"
        return DeliveryError(redact(text, self._secrets)[:500], retry_after=retry_after)


class TelegramSender(_HttpSender):
    """Bot API ``sendMessage`` to one chat."""

    name = "Telegram"

    def __init__(
        self, api_url: str, token: str, chat_id: str, timeout: float, secrets: Sequence[str]
    ) -> None:
        super().__init__(timeout, [token, *secrets])
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._chat_id = chat_id

    def __call__(self, message: ChannelMessage) -> None:
        if message.image_png:
            # the chart with the alert as its caption: one message, so delivery stays exactly once
            caption = _truncate(message.body, TELEGRAM_MAX_CAPTION)
            response, body = self._post(
                f"{self._base}/sendPhoto",
                data={"chat_id": self._chat_id, "caption": caption},
                files={"photo": ("chart.png", message.image_png, "image/png")},
            )
        else:
            payload = {"chat_id": self._chat_id, "text": message.body, "disable_web_page_preview": True}
            response, body = self._post(f"{self._base}/sendMessage", payload)
        ok = isinstance(body, dict) and body.get("ok") is True
        if response.status_code == 200 and ok:
            return
        what = body.get("description", "not ok") if isinstance(body, dict) else str(body)
        raise self._fail(response, body, str(what))


class SlackSender(_HttpSender):
    """A Slack incoming webhook (``{"text": ...}``); Slack answers ``ok`` on success."""

    name = "Slack"

    def __init__(self, webhook_url: str, timeout: float, secrets: Sequence[str]) -> None:
        super().__init__(timeout, [webhook_url, *secrets])
        self._url = webhook_url

    def __call__(self, message: ChannelMessage) -> None:
        response, body = self._post(self._url, {"text": message.body})
        if 200 <= response.status_code < 300:
            return
        raise self._fail(response, body, str(body)[:200])


class WebhookSender(_HttpSender):
    """POSTs the stored Alertmanager-format document (version 4) to a generic receiver."""

    name = "webhook"

    def __init__(self, url: str, timeout: float, secrets: Sequence[str]) -> None:
        super().__init__(timeout, [url, *secrets])
        self._url = url

    def __call__(self, message: ChannelMessage) -> None:
        response, body = self._post(self._url, json.loads(message.body))
        if 200 <= response.status_code < 300:
            return
        raise self._fail(response, body, str(body)[:200])


def channel_senders(alerts: AlertSettings, secrets: Sequence[str]) -> dict[str, Sender]:
    """A sender for every configured chat or webhook channel (email has its own, ops.mailer)."""
    mask_httpx_urls(secrets)
    timeout = alerts.channel_timeout_seconds
    senders: dict[str, Sender] = {}
    if alerts.telegram_enabled and alerts.telegram_token is not None and alerts.telegram_chat_id:
        senders["telegram"] = TelegramSender(
            alerts.telegram_api_url,
            alerts.telegram_token.get_secret_value(),
            alerts.telegram_chat_id,
            timeout,
            secrets,
        )
    if alerts.slack_webhook_url is not None:
        senders["slack"] = SlackSender(alerts.slack_webhook_url.get_secret_value(), timeout, secrets)
    if alerts.webhook_url is not None:
        senders["webhook"] = WebhookSender(alerts.webhook_url.get_secret_value(), timeout, secrets)
    return senders


class _MaskSecrets(logging.Filter):
    """Masks secrets in a log record (httpx logs each request's full URL at INFO: a bot token's path)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), sorted(self.secrets, key=len, reverse=True))
            record.args = None
        return True


_HTTPX_MASK = _MaskSecrets()


def mask_httpx_urls(secrets: Sequence[str]) -> None:
    """Install (once) the masking filter on httpx's and httpcore's loggers and add ``secrets`` to it."""
    _HTTPX_MASK.secrets.update(s for s in secrets if s)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _HTTPX_MASK not in logger.filters:
            logger.addFilter(_HTTPX_MASK)

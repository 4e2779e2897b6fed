"""Alert state and the email outbox in the warehouse, and one alerting tick end to end.

Delivery is never lost: a transition's alert rows and its emails are written in one
transaction (the outbox) before any send is tried; a failed send stays pending with a backoff
time and is retried on a later tick; a delivered email is marked sent right away, so a restart
does not send it again.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.ops.alerts import (
    Alert,
    EmailGroup,
    Observation,
    Priority,
    Routing,
    apply_observations,
    backoff_delay,
    group_notifications,
)
from kaizen_pipeline.ops.channels import (
    SLACK_MAX_CHARS,
    TELEGRAM_MAX_CHARS,
    ChannelMessage,
    Sender,
    alertmanager_payload,
    chat_text,
)
from kaizen_pipeline.ops.emails import RenderedEmail, render_email, run_url
from kaizen_pipeline.ops.mailer import DeliveryError, OutgoingEmail
from kaizen_pipeline.ops.redact import redact
from kaizen_pipeline.settings import AlertSettings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import alert_history, alert_outbox, alert_state

SendFn = Callable[[OutgoingEmail], None]
_ALERT_FIELDS = [
    "alert_id",
    "alert_key",
    "kind",
    "asset_key",
    "check_name",
    "job_name",
    "priority",
    "severity",
    "status",
    "opened_at",
    "last_failed_at",
    "resolved_at",
    "failure_count",
    "first_run_id",
    "last_run_id",
    "value",
    "target",
    "deviation",
    "description",
    "detail",
    "notify_count",
    "last_notified_at",
]


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    subject: str
    recipients: list[str]
    body_text: str
    body_html: str
    attempts: int
    channel: str = "email"
    image_png: bytes | None = None

    def email(self) -> OutgoingEmail:
        return OutgoingEmail(self.message_id, self.subject, self.recipients, self.body_text, self.body_html)

    def chat(self) -> ChannelMessage:
        return ChannelMessage(self.message_id, self.channel, self.subject, self.body_text, self.image_png)


@dataclass(frozen=True)
class OutboxEntry:
    """One message of a notification group on one channel, as it is enqueued."""

    group: EmailGroup
    channel: str
    message_id: str
    subject: str
    recipients: list[str]
    body_text: str
    body_html: str
    image_png: bytes | None = None

    @classmethod
    def email(cls, group: EmailGroup, email: OutgoingEmail) -> OutboxEntry:
        return cls(
            group, "email", email.message_id, email.subject, list(email.recipients), email.text, email.html
        )


def channel_entries(
    group: EmailGroup,
    rendered: RenderedEmail,
    alerts: AlertSettings,
    chart: Callable[[Alert], bytes | None] | None = None,
) -> list[OutboxEntry]:
    """The group's messages on the chat and webhook channels its priority is routed to.

    A critical group with a metric alert carries that metric's chart (``chart``) where the channel
    takes images (Telegram).
    """
    entries = []
    # a resolved notice goes where the firing one went: the channels of the alerts' priority
    for channel in alerts.channels_for(group.priority):
        if channel == "email":
            continue
        if channel == "webhook":
            body = json.dumps(alertmanager_payload(group, alerts.ui_base_url))
        else:
            body = chat_text(rendered, TELEGRAM_MAX_CHARS if channel == "telegram" else SLACK_MAX_CHARS)
        recipients = [alerts.telegram_chat_id] if channel == "telegram" and alerts.telegram_chat_id else []
        image = None
        if (
            channel == "telegram"
            and chart is not None
            and group.kind != "resolved"
            and group.priority == "critical"
        ):
            metric_alerts = [a for a in group.alerts if a.priority == "critical" and is_metric_alert(a)]
            image = chart(metric_alerts[0]) if metric_alerts else None
        message_id = hashlib.sha1(f"{channel}|{group.message_id}".encode()).hexdigest()
        entries.append(OutboxEntry(group, channel, message_id, rendered.subject, recipients, body, "", image))
    return entries


def is_metric_alert(alert: Alert) -> bool:
    """A kaizen metric's deviation check (kaizen.checks): its alert can carry the metric's chart."""
    return alert.kind == "check" and alert.asset_key == "kaizen_metrics" and bool(alert.check_name)


def metric_chart(warehouse: Warehouse, days: int = 60) -> Callable[[Alert], bytes | None]:
    """Renders a metric alert's chart from kaizen_metrics: the last ``days`` of daily values and the target."""

    def render(alert: Alert) -> bytes | None:
        # loaded only when a critical metric alert goes to a channel that takes images
        from kaizen_pipeline.kaizen.charts import metric_alert_figure
        from kaizen_pipeline.kaizen.store import metric_history
        from kaizen_pipeline.reporting import figure_png

        metric = (alert.check_name or "").removesuffix("_deviation")
        history = metric_history(warehouse)
        history = history[history["metric"] == metric].tail(days)
        if history.empty:
            return None
        return figure_png(metric_alert_figure(metric, history, alert.target), dpi=90)

    return render


@dataclass
class TickReport:
    """What one alerting tick did (the sensor shows it as its skip reason / log line)."""

    observations: int = 0
    opened: int = 0
    resolved: int = 0
    enqueued: int = 0
    skipped: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.observations} observations: {self.opened} alerts opened, {self.resolved} resolved; "
            f"{self.enqueued} emails enqueued, {self.sent} sent, {self.failed} failed (retry later), "
            f"{self.pending} pending, {self.skipped} recorded only"
        )
        if self.errors:
            text += "; last error: " + self.errors[-1]
        return text


class AlertStore:
    """alert_state and alert_outbox access."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def open_alerts(self) -> dict[str, Alert]:
        with self.wh.engine.connect() as conn:
            rows = conn.execute(sa.select(alert_state).where(alert_state.c.status == "open")).mappings().all()
        alerts = {}
        for row in rows:
            data = {k: row[k] for k in _ALERT_FIELDS}
            data["recipients"] = json.loads(row["recipients"] or "[]")
            alerts[row["alert_key"]] = Alert(**data)
        return alerts

    def commit(
        self,
        changed: Iterable[Alert],
        entries: Sequence[OutboxEntry],
        *,
        now: datetime,
        skip_reason: str | None,
    ) -> int:
        """Write changed alerts and new outbox messages atomically; return the number of new messages."""
        alert_rows = [
            {**{k: getattr(a, k) for k in _ALERT_FIELDS}, "recipients": json.dumps(a.recipients)}
            for a in changed
        ]
        outbox_rows = []
        for entry in entries:
            unaddressed = entry.channel == "email" and not entry.recipients
            outbox_rows.append(
                {
                    "message_id": entry.message_id,
                    "kind": entry.group.kind,
                    "priority": entry.group.priority,
                    "run_id": entry.group.run_id,
                    "alert_ids": json.dumps([a.alert_id for a in entry.group.alerts]),
                    "subject": entry.subject,
                    "recipients": json.dumps(list(entry.recipients)),
                    "body_text": entry.body_text,
                    "body_html": entry.body_html,
                    "created_at": now,
                    "status": "skipped" if skip_reason or unaddressed else "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": skip_reason
                    or ("no recipients configured (alerts.recipients)" if unaddressed else None),
                    "sent_at": None,
                    "channel": entry.channel,
                    "image_png": entry.image_png,
                }
            )
        engine = self.wh.engine
        new = 0
        with engine.begin() as conn:
            if alert_rows:
                stmt = self.wh.dialect_insert(alert_state)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["alert_id"],
                    set_={c: stmt.excluded[c] for c in alert_rows[0] if c != "alert_id"},
                )
                conn.execute(stmt, alert_rows)
            for row in outbox_rows:
                stmt = self.wh.dialect_insert(alert_outbox).on_conflict_do_nothing(
                    index_elements=["message_id"]
                )
                new += conn.execute(stmt, row).rowcount or 0
        return new

    def due(self, now: datetime) -> list[OutboxMessage]:
        stmt = (
            sa.select(alert_outbox)
            .where(alert_outbox.c.status == "pending", alert_outbox.c.next_attempt_at <= now)
            .order_by(alert_outbox.c.created_at, alert_outbox.c.message_id)
        )
        with self.wh.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            OutboxMessage(
                r["message_id"],
                r["subject"],
                json.loads(r["recipients"]),
                r["body_text"],
                r["body_html"],
                r["attempts"],
                r["channel"] or "email",
                r["image_png"],
            )
            for r in rows
        ]

    def mark_sent(self, message_id: str, now: datetime, attempts: int) -> None:
        with self.wh.engine.begin() as conn:
            conn.execute(
                alert_outbox.update()
                .where(alert_outbox.c.message_id == message_id)
                .values(status="sent", sent_at=now, attempts=attempts, last_error=None)
            )

    def mark_failed(self, message_id: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
        with self.wh.engine.begin() as conn:
            conn.execute(
                alert_outbox.update()
                .where(alert_outbox.c.message_id == message_id)
                .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error)
            )

    def pending_count(self) -> int:
        return self.wh.count(alert_outbox, alert_outbox.c.status == "pending")


def routing_for(alerts: AlertSettings) -> Routing:
    return Routing(tuple(alerts.recipients), tuple(alerts.escalation_recipients))


def deliver_due(
    store: AlertStore,
    send: SendFn,
    *,
    now: datetime,
    alerts: AlertSettings,
    secrets: Sequence[str] = (),
    report: TickReport | None = None,
    channels: Mapping[str, Sender] | None = None,
) -> TickReport:
    """Try every pending message whose backoff has passed; mark each sent or schedule its retry.

    Emails go through ``send``, other channels through ``channels`` (ops.channels.channel_senders).
    A retry waits the backoff, or longer when the server asked for it (HTTP 429's retry-after).
    """
    report = report or TickReport()
    channels = channels or {}
    for message in store.due(now):
        attempts = message.attempts + 1
        try:
            if message.channel == "email":
                send(message.email())
            elif message.channel in channels:
                channels[message.channel](message.chat())
            else:
                raise DeliveryError(f"{message.channel}: the channel is no longer configured (alerts.routes)")
        except DeliveryError as exc:
            error = redact(str(exc), secrets)
            delay = backoff_delay(attempts, alerts.retry_base_seconds, alerts.retry_max_seconds)
            if exc.retry_after is not None:
                delay = max(delay, timedelta(seconds=exc.retry_after))
            store.mark_failed(message.message_id, attempts, now + delay, error)
            report.failed += 1
            report.errors.append(error)
            continue
        store.mark_sent(message.message_id, now, attempts)
        report.sent += 1
    report.pending = store.pending_count()
    return report


def process_observations(
    store: AlertStore,
    observations: Sequence[Observation],
    *,
    now: datetime,
    alerts: AlertSettings,
    report: TickReport | None = None,
) -> TickReport:
    """Advance alert state by the observations and enqueue the resulting emails (one transaction)."""
    report = report or TickReport()
    report.observations += len(observations)
    if not observations:
        return report
    chart = metric_chart(store.wh)
    open_before = store.open_alerts()
    known = {a.alert_id for a in open_before.values()}
    transition = apply_observations(
        open_before,
        observations,
        now=now,
        repeat_interval=timedelta(minutes=alerts.repeat_interval_minutes),
        routing=routing_for(alerts),
    )
    entries: list[OutboxEntry] = []
    for group in group_notifications(transition.notifications):
        rendered = render_email(group, alerts.ui_base_url)
        # email when routed (alerts.routes); its recipients come from alerts.recipients as before
        recipients = group.recipients if "email" in alerts.routes.get(group.priority, []) else ()  # type: ignore[call-overload]
        email = OutgoingEmail(group.message_id, rendered.subject, recipients, rendered.text, rendered.html)
        entries.append(OutboxEntry.email(group, email))
        entries += channel_entries(group, rendered, alerts, chart)
    skip = None if alerts.enabled else "alerts.enabled is false: recorded only"
    report.enqueued += store.commit(transition.changed.values(), entries, now=now, skip_reason=skip)
    report.skipped += sum(1 for e in entries if skip or (e.channel == "email" and not e.recipients))
    report.opened += sum(1 for a in transition.changed.values() if a.alert_id not in known)
    report.resolved += sum(1 for a in transition.changed.values() if a.status == "resolved")
    return report


def run_alert_tick(
    warehouse: Warehouse,
    observations: Sequence[Observation],
    *,
    now: datetime,
    alerts: AlertSettings,
    send: SendFn,
    secrets: Sequence[str] = (),
    channels: Mapping[str, Sender] | None = None,
) -> TickReport:
    """One sensor tick: record observations, enqueue messages, deliver whatever is due."""
    store = AlertStore(warehouse)
    report = process_observations(store, observations, now=now, alerts=alerts)
    return deliver_due(store, send, now=now, alerts=alerts, secrets=secrets, report=report, channels=channels)


def enqueue_notice(
    warehouse: Warehouse,
    *,
    key: str,
    subject: str,
    text: str,
    priority: Priority,
    now: datetime,
    alerts: AlertSettings,
) -> bool:
    """Enqueue a one-off notice email (an experiment decided, say): same outbox, delivery and retries.

    ``key`` makes it idempotent: enqueuing the same key twice sends one email. Returns whether it is new.
    """
    recipients = routing_for(alerts).for_priority(priority)
    skip = None if alerts.enabled else "alerts.enabled is false: recorded only"
    row = {
        "message_id": hashlib.sha1(f"notice|{key}".encode()).hexdigest(),
        "kind": "notice",
        "priority": priority,
        "run_id": None,
        "alert_ids": "[]",
        "subject": f"[{priority.upper()}] {subject}" if priority == "critical" else f"[kaizen] {subject}",
        "recipients": json.dumps(recipients),
        "body_text": text,
        "body_html": f"<pre>{html.escape(text)}</pre>",
        "created_at": now,
        "status": "skipped" if skip or not recipients else "pending",
        "attempts": 0,
        # delivery runs on the wall clock (the alert sensor): a pipeline clock frozen ahead of it (a
        # replay, the demo) must not hold the email back
        "next_attempt_at": min(now, datetime.now(UTC).replace(tzinfo=None)),
        "last_error": skip or (None if recipients else "no recipients configured (alerts.recipients)"),
        "sent_at": None,
    }
    rows = [row | {"channel": "email"}]
    # chats hear notices too (a webhook takes alerts only: Alertmanager's format has no notice)
    for channel in alerts.channels_for(priority):
        if channel in ("telegram", "slack"):
            chat = f"{row['subject']}\n\n{text}"
            limit = TELEGRAM_MAX_CHARS if channel == "telegram" else SLACK_MAX_CHARS
            rows.append(
                row
                | {
                    "message_id": hashlib.sha1(f"{channel}|notice|{key}".encode()).hexdigest(),
                    "recipients": json.dumps([alerts.telegram_chat_id] if channel == "telegram" else []),
                    "body_text": chat if len(chat) <= limit else chat[: limit - 2] + " …",
                    "body_html": "",
                    "status": "skipped" if skip else "pending",
                    "last_error": skip,
                    "channel": channel,
                }
            )
    stmt = warehouse.dialect_insert(alert_outbox).on_conflict_do_nothing(index_elements=["message_id"])
    with warehouse.engine.begin() as conn:
        return bool(sum(conn.execute(stmt, r).rowcount or 0 for r in rows))


def alert_history_frame(warehouse: Warehouse, ui_base_url: str) -> pd.DataFrame:
    """Every alert episode with its email delivery counts (the alert_history table)."""
    state = warehouse.read_frame(
        sa.select(alert_state), parse_dates=["opened_at", "last_failed_at", "resolved_at", "last_notified_at"]
    )
    emails = sa.or_(alert_outbox.c.channel.is_(None), alert_outbox.c.channel == "email")
    outbox = warehouse.read_frame(
        sa.select(alert_outbox.c.alert_ids, alert_outbox.c.status, alert_outbox.c.sent_at).where(emails),
        parse_dates=["sent_at"],
    )
    columns = [c.name for c in alert_history.columns]
    if state.empty:
        return pd.DataFrame(columns=columns)
    sent: dict[str, int] = {}
    pending: dict[str, int] = {}
    last_email: dict[str, pd.Timestamp] = {}
    for row in outbox.itertuples(index=False):
        for alert_id in json.loads(row.alert_ids):
            if row.status == "sent":
                sent[alert_id] = sent.get(alert_id, 0) + 1
                if pd.notna(row.sent_at) and (
                    alert_id not in last_email or row.sent_at > last_email[alert_id]
                ):
                    last_email[alert_id] = row.sent_at
            elif row.status == "pending":
                pending[alert_id] = pending.get(alert_id, 0) + 1
    frame = state.copy()
    frame["emails_sent"] = frame["alert_id"].map(lambda a: sent.get(a, 0)).astype(int)
    frame["emails_pending"] = frame["alert_id"].map(lambda a: pending.get(a, 0)).astype(int)
    frame["last_email_at"] = pd.to_datetime(frame["alert_id"].map(lambda a: last_email.get(a)))
    frame["run_url"] = frame["last_run_id"].map(
        lambda r: run_url(ui_base_url, r) if isinstance(r, str) else None
    )
    return (
        frame[columns]
        .sort_values(["status", "last_failed_at"], ascending=[True, False])
        .reset_index(drop=True)
    )


WAREHOUSE_DOWN_NOTE = (
    "NOTE: the warehouse is unreadable, so this alert bypassed the alert state and the outbox; "
    "repeats are limited by the sensor cursor until the warehouse is restored."
)
_MAX_UNSENT = 20


def emergency_tick(
    observations: Sequence[Observation],
    state: dict[str, Any],
    *,
    now: datetime,
    alerts: AlertSettings,
    send: SendFn,
    secrets: Sequence[str] = (),
) -> tuple[TickReport, dict[str, Any]]:
    """Alerting without the warehouse (it is corrupt): send failures directly, dedup in ``state``.

    ``state`` travels in the sensor cursor: ``sent`` maps alert keys to when they were last
    emailed; ``unsent`` holds emails whose send failed, retried on the next tick.
    """
    report = TickReport(observations=len(observations))
    sent: dict[str, str] = dict(state.get("sent", {}))
    unsent: list[dict[str, Any]] = list(state.get("unsent", []))
    repeat = timedelta(minutes=alerts.repeat_interval_minutes)
    fresh = []
    for obs in observations:
        last = sent.get(obs.alert_key)
        if obs.passed or obs.priority == "info":
            continue
        if last is not None and now - datetime.fromisoformat(last) < repeat:
            continue
        sent[obs.alert_key] = now.isoformat()
        fresh.append(obs)
    transition = apply_observations({}, fresh, now=now, repeat_interval=repeat, routing=routing_for(alerts))
    for group in group_notifications(transition.notifications):
        rendered = render_email(group, alerts.ui_base_url)
        unsent.append(
            {
                "message_id": group.message_id,
                "subject": rendered.subject,
                "recipients": list(group.recipients),
                "text": WAREHOUSE_DOWN_NOTE + "\n\n" + rendered.text,
                "html": rendered.html.replace("<body>", f"<body><p><b>{WAREHOUSE_DOWN_NOTE}</b></p>", 1),
            }
        )
        report.enqueued += 1
    still: list[dict[str, Any]] = []
    for item in unsent:
        if not alerts.enabled or not item["recipients"]:
            report.skipped += 1
            continue
        try:
            send(
                OutgoingEmail(
                    item["message_id"], item["subject"], item["recipients"], item["text"], item["html"]
                )
            )
            report.sent += 1
        except DeliveryError as exc:
            report.failed += 1
            report.errors.append(redact(str(exc), secrets))
            still.append(item)
    report.pending = len(still[-_MAX_UNSENT:])
    horizon = now - repeat
    sent = {k: v for k, v in sent.items() if datetime.fromisoformat(v) >= horizon}
    return report, {"sent": sent, "unsent": still[-_MAX_UNSENT:]}

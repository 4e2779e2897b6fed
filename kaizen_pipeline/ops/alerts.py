"""The alert state machine: failing checks and runs become alert episodes and notifications.

Modelled on Alertmanager. Each alert key (a check of an asset, or a job) has at most one open
episode. The first failure opens it and notifies; further failures notify again only after
``repeat_interval`` (or at once when the priority rises); the first pass resolves it and sends
one resolved notice to whoever was told it was firing. Notifications that arise from one run in
one sensor tick are grouped into one email. Pure: no Dagster, no database, no SMTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

Priority = Literal["critical", "warning", "info"]
NotificationKind = Literal["firing", "repeat", "resolved"]

PRIORITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
_VALUE_KEYS = ("value", "metric_value", "actual")
_TARGET_KEYS = ("target", "metric_target", "threshold")
_DEVIATION_KEYS = ("deviation", "metric_deviation")
MAX_DETAIL_CHARS = 2000


def check_alert_key(asset_key: str, check_name: str) -> str:
    return f"check:{asset_key}/{check_name}"


def run_alert_key(job_name: str) -> str:
    return f"run:{job_name}"[:255]


def _tagged(metadata: Mapping[str, Any], word: str) -> bool:
    """True when metadata tags the alert with ``word`` (``priority: critical``, ``critical: true``, ``tags``)."""
    if str(metadata.get("priority", "")).strip().lower() == word:
        return True
    if metadata.get(word) is True:
        return True
    tags = metadata.get("tags")
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",")]
    if isinstance(tags, Mapping):
        return str(tags.get("priority", "")).lower() == word or word in tags
    return isinstance(tags, (list, tuple, set)) and word in {str(t).lower() for t in tags}


def priority_for_check(severity: str, *metadata: Mapping[str, Any]) -> Priority:
    """ERROR severity, or a check/metric tagged critical: critical; tagged info: info; else warning."""
    if severity.upper() == "ERROR" or any(_tagged(m, "critical") for m in metadata):
        return "critical"
    if any(_tagged(m, "info") for m in metadata):
        return "info"
    return "warning"


def _first_number(metadata: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


@dataclass(frozen=True)
class Observation:
    """One input to the state machine: a check evaluation or a finished run."""

    kind: Literal["check", "run"]
    alert_key: str
    passed: bool
    priority: Priority
    occurred_at: datetime
    run_id: str | None = None
    asset_key: str | None = None
    check_name: str | None = None
    job_name: str | None = None
    severity: str | None = None
    value: float | None = None
    target: float | None = None
    deviation: float | None = None
    description: str | None = None
    detail: str | None = None


def check_observation(
    *,
    asset_key: str,
    check_name: str,
    passed: bool,
    severity: str,
    metadata: Mapping[str, Any],
    occurred_at: datetime,
    run_id: str | None,
    description: str | None = None,
    spec_metadata: Mapping[str, Any] | None = None,
    detail: str | None = None,
) -> Observation:
    """An Observation from a check evaluation (metadata already converted to plain values)."""
    spec_metadata = spec_metadata or {}
    return Observation(
        kind="check",
        alert_key=check_alert_key(asset_key, check_name),
        passed=passed,
        priority=priority_for_check(severity, spec_metadata, metadata),
        occurred_at=occurred_at,
        run_id=run_id,
        asset_key=asset_key,
        check_name=check_name,
        severity=severity.upper(),
        value=_first_number(metadata, _VALUE_KEYS),
        target=_first_number(metadata, _TARGET_KEYS),
        deviation=_first_number(metadata, _DEVIATION_KEYS),
        description=description,
        detail=(detail or None) and detail[:MAX_DETAIL_CHARS],
    )


def run_observation(
    *,
    job_name: str,
    run_id: str,
    succeeded: bool,
    occurred_at: datetime,
    priority: Priority,
    detail: str | None = None,
    alert_job_key: str | None = None,
) -> Observation:
    """An Observation from a finished run: a failure opens the job's alert, a success resolves it."""
    return Observation(
        kind="run",
        alert_key=run_alert_key(alert_job_key or job_name),
        passed=succeeded,
        priority=priority,
        occurred_at=occurred_at,
        run_id=run_id,
        job_name=job_name,
        description=f"Run of job {job_name} failed." if not succeeded else None,
        detail=(detail or None) and detail[:MAX_DETAIL_CHARS],
    )


@dataclass
class Alert:
    """One alert episode (a row of alert_state)."""

    alert_id: str
    alert_key: str
    kind: str
    priority: Priority
    status: Literal["open", "resolved"]
    opened_at: datetime
    last_failed_at: datetime
    failure_count: int
    asset_key: str | None = None
    check_name: str | None = None
    job_name: str | None = None
    severity: str | None = None
    resolved_at: datetime | None = None
    first_run_id: str | None = None
    last_run_id: str | None = None
    value: float | None = None
    target: float | None = None
    deviation: float | None = None
    description: str | None = None
    detail: str | None = None
    notify_count: int = 0
    last_notified_at: datetime | None = None
    recipients: list[str] = field(default_factory=list)
    resolved_by_run_id: str | None = None

    @property
    def title(self) -> str:
        if self.kind == "check":
            return f"{self.asset_key} / {self.check_name}"
        return f"job {self.job_name}"

    @classmethod
    def open_from(cls, obs: Observation) -> Alert:
        alert_id = hashlib.sha1(f"{obs.alert_key}|{obs.occurred_at.isoformat()}".encode()).hexdigest()
        return cls(
            alert_id=alert_id,
            alert_key=obs.alert_key,
            kind=obs.kind,
            priority=obs.priority,
            status="open",
            opened_at=obs.occurred_at,
            last_failed_at=obs.occurred_at,
            failure_count=1,
            asset_key=obs.asset_key,
            check_name=obs.check_name,
            job_name=obs.job_name,
            severity=obs.severity,
            first_run_id=obs.run_id,
            last_run_id=obs.run_id,
            value=obs.value,
            target=obs.target,
            deviation=obs.deviation,
            description=obs.description,
            detail=obs.detail,
        )

    def record_failure(self, obs: Observation) -> None:
        self.failure_count += 1
        self.last_failed_at = max(self.last_failed_at, obs.occurred_at)
        self.last_run_id = obs.run_id or self.last_run_id
        self.severity = obs.severity or self.severity
        self.value, self.target, self.deviation = obs.value, obs.target, obs.deviation
        self.description = obs.description or self.description
        self.detail = obs.detail
        if PRIORITY_RANK[obs.priority] > PRIORITY_RANK[self.priority]:
            self.priority = obs.priority


@dataclass(frozen=True)
class Routing:
    """Who hears about which priority."""

    recipients: tuple[str, ...]
    escalation_recipients: tuple[str, ...]

    def for_priority(self, priority: str) -> list[str]:
        if priority == "info":
            return []
        chosen = list(self.recipients)
        if priority == "critical":
            chosen += [r for r in self.escalation_recipients if r not in chosen]
        return chosen


@dataclass(frozen=True)
class Notification:
    kind: NotificationKind
    alert: Alert
    recipients: tuple[str, ...]
    run_id: str | None


@dataclass
class Transition:
    """What one batch of observations changed: alerts to persist and notifications to send."""

    changed: dict[str, Alert] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)


def apply_observations(
    open_alerts: Mapping[str, Alert],
    observations: Iterable[Observation],
    *,
    now: datetime,
    repeat_interval: timedelta,
    routing: Routing,
) -> Transition:
    """Advance the open alerts by the observations (in time order); return changes and notifications.

    Idempotent against re-reading: a failure of an already-notified alert inside the repeat
    interval and a pass of an already-resolved key change nothing that is sent.
    """
    current = {key: replace(alert, recipients=list(alert.recipients)) for key, alert in open_alerts.items()}
    out = Transition()

    def notify(kind: NotificationKind, alert: Alert, run_id: str | None) -> None:
        if kind == "resolved":
            recipients = tuple(alert.recipients)
        else:
            recipients = tuple(routing.for_priority(alert.priority))
            alert.notify_count += 1
            alert.last_notified_at = now
            alert.recipients = list(dict.fromkeys([*alert.recipients, *recipients]))
        out.notifications.append(
            Notification(kind, replace(alert, recipients=list(alert.recipients)), recipients, run_id)
        )

    for obs in sorted(observations, key=lambda o: o.occurred_at):
        alert = current.get(obs.alert_key)
        if not obs.passed:
            if alert is None:
                alert = Alert.open_from(obs)
                current[obs.alert_key] = alert
                if alert.priority != "info":
                    notify("firing", alert, obs.run_id)
            else:
                notified_rank = PRIORITY_RANK[alert.priority] if alert.notify_count else -1
                alert.record_failure(obs)
                if alert.priority == "info":
                    pass
                elif PRIORITY_RANK[alert.priority] > notified_rank:
                    # first time above info, or escalated to critical: tell the wider audience now
                    notify("firing", alert, obs.run_id)
                elif alert.last_notified_at is None or now - alert.last_notified_at >= repeat_interval:
                    notify("repeat", alert, obs.run_id)
            out.changed[alert.alert_id] = alert
        elif alert is not None:
            alert.status = "resolved"
            alert.resolved_at = obs.occurred_at
            alert.resolved_by_run_id = obs.run_id
            del current[obs.alert_key]
            out.changed[alert.alert_id] = alert
            if alert.notify_count and alert.recipients:
                notify("resolved", alert, obs.run_id)
    return out


@dataclass(frozen=True)
class EmailGroup:
    """Notifications that go out as one email."""

    kind: NotificationKind
    run_id: str | None
    alerts: tuple[Alert, ...]
    recipients: tuple[str, ...]

    @property
    def priority(self) -> Priority:
        return max((a.priority for a in self.alerts), key=lambda p: PRIORITY_RANK[p])

    @property
    def message_id(self) -> str:
        # Deterministic: re-processing the same transition enqueues the same message, not a second one.
        parts = sorted(f"{a.alert_id}:{a.notify_count}" for a in self.alerts)
        return hashlib.sha1(f"{self.kind}|{self.run_id}|{'|'.join(parts)}".encode()).hexdigest()


def group_notifications(notifications: Sequence[Notification]) -> list[EmailGroup]:
    """One email per (kind, run): several failures of one run arrive together."""
    buckets: dict[tuple[str, str | None], list[Notification]] = {}
    for note in notifications:
        buckets.setdefault((note.kind, note.run_id), []).append(note)
    groups = []
    for (kind, run_id), notes in buckets.items():
        recipients = tuple(dict.fromkeys(r for n in notes for r in n.recipients))
        # the same alert twice in one group (e.g. firing then escalated): keep the newest snapshot
        alerts = tuple(
            sorted(
                {n.alert.alert_id: n.alert for n in notes}.values(),
                key=lambda a: (-PRIORITY_RANK[a.priority], a.kind != "check", a.title),
            )
        )
        groups.append(EmailGroup(kind, run_id, alerts, recipients))  # type: ignore[arg-type]
    return groups


def backoff_delay(attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Delay before the next send after ``attempts`` failed ones: base, 2 x base, 4 x base, ... capped."""
    exponent = max(0, attempts - 1)
    return timedelta(seconds=min(max_seconds, base_seconds * (2 ** min(exponent, 30))))

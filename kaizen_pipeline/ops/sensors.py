"""alert_sensor: turns asset-check evaluations and failed runs on the Dagster instance into alert emails.

It follows runs, not a global event id: the default SQLite event storage is sharded per run
(storage ids are not unique across runs), so the cursor holds a run-update watermark plus a
per-run event cursor for runs still in progress. This reads every evaluation exactly once on
SQLite, consolidated SQLite and PostgreSQL instance storage alike.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from kaizen_pipeline.ops.alert_store import emergency_tick, run_alert_tick
from kaizen_pipeline.ops.alerts import (
    PRIORITY_RANK,
    Observation,
    Priority,
    check_observation,
    run_observation,
)
from kaizen_pipeline.ops.mailer import SmtpMailer
from kaizen_pipeline.ops.redact import redact, secret_values
from kaizen_pipeline.resources import WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse.backup import quick_integrity

ALERT_PRIORITY_TAG = "kaizen/alert_priority"

# Runs whose update time is within this much of the watermark are re-listed (and skipped when
# already done), so two runs updated in the same instant are never missed.
_OVERLAP_SECONDS = 300.0
_MAX_RUNS_PER_TICK = 500
_TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class AlertSensorCursor:
    """Where the alert sensor is: run-update watermark, runs being followed, runs finished near it."""

    updated_after: float | None = None
    active: dict[str, str | None] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    emergency: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> "AlertSensorCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            data.get("updated_after"),
            dict(data.get("active", {})),
            dict(data.get("done", {})),
            dict(data.get("emergency", {})),
        )

    def dump(self) -> str:
        data = {"updated_after": self.updated_after, "active": self.active, "done": self.done}
        if self.emergency:
            data["emergency"] = self.emergency
        return json.dumps(data)


def _naive_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _plain(value: Any) -> Any:
    """A MetadataValue as a plain Python value."""
    return getattr(value, "value", value)


def _alert_job_key(run: dg.DagsterRun) -> str:
    """Ad-hoc asset runs share a hidden job name; key their alerts by the asset selection too."""
    if run.job_name.startswith("__") and run.asset_selection:
        keys = sorted(k.to_user_string() for k in run.asset_selection)
        return f"{run.job_name}[{','.join(keys)}]"
    return run.job_name


def _run_priority(run: dg.DagsterRun, default: str) -> Priority:
    """A job tagged ``kaizen/alert_priority`` (e.g. the backup job: critical) overrides alerts.run_failure_priority."""
    tagged = str(run.tags.get(ALERT_PRIORITY_TAG, "")).lower()
    return tagged if tagged in PRIORITY_RANK else default  # type: ignore[return-value]


def _run_failure_detail(instance: dg.DagsterInstance, run_id: str, secrets: list[str]) -> str:
    conn = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.PIPELINE_FAILURE}
    )
    lines = []
    for rec in conn.records:
        event = rec.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_failure_data:
            error = event.step_failure_data.error
            # the user's exception is the innermost cause of Dagster's step-execution wrapper
            while error is not None and (error.cause or error.context) is not None:
                error = error.cause or error.context
            message = f"{error.cls_name}: {error.message.strip()}" if error else event.message or ""
            lines.append(f"step {event.step_key}: {message}")
        elif event.message:
            lines.append(event.message)
    return redact("\n".join(lines), secrets)


class InstanceReader:
    """Reads new check evaluations and finished runs from the instance since a cursor."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        *,
        repository_def: Any | None,
        run_failure_priority: str,
        secrets: list[str],
    ) -> None:
        self.instance = instance
        self.repository_def = repository_def
        self.run_failure_priority = run_failure_priority
        self.secrets = secrets

    def _spec(self, asset_key: dg.AssetKey, check_name: str) -> dg.AssetCheckSpec | None:
        if self.repository_def is None:
            return None
        try:
            return self.repository_def.asset_graph.get_check_spec(dg.AssetCheckKey(asset_key, check_name))
        except Exception:  # the check may belong to another code location
            return None

    def _check_observations(
        self, run_id: str, event_cursor: str | None
    ) -> tuple[list[Observation], str | None]:
        observations = []
        while True:
            conn = self.instance.get_records_for_run(
                run_id, cursor=event_cursor, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000
            )
            for rec in conn.records:
                entry = rec.event_log_entry
                evaluation = entry.dagster_event.asset_check_evaluation_data if entry.dagster_event else None
                if evaluation is None:
                    continue
                spec = self._spec(evaluation.asset_key, evaluation.check_name)
                metadata = {k: _plain(v) for k, v in evaluation.metadata.items()}
                observations.append(
                    check_observation(
                        asset_key=evaluation.asset_key.to_user_string(),
                        check_name=evaluation.check_name,
                        passed=evaluation.passed,
                        severity=evaluation.severity.value,
                        metadata=metadata,
                        occurred_at=_naive_utc(entry.timestamp),
                        run_id=run_id,
                        description=(spec.description if spec else None) or evaluation.description,
                        spec_metadata={k: _plain(v) for k, v in (spec.metadata or {}).items()}
                        if spec
                        else {},
                        detail=redact(evaluation.description or "", self.secrets) or None,
                    )
                )
            event_cursor = conn.cursor or event_cursor
            if not conn.has_more:
                return observations, event_cursor

    def read(
        self, cursor: AlertSensorCursor, *, now: float, lookback_minutes: int
    ) -> tuple[list[Observation], AlertSensorCursor]:
        watermark = cursor.updated_after if cursor.updated_after is not None else now - lookback_minutes * 60
        records = list(
            self.instance.get_run_records(
                dg.RunsFilter(updated_after=_naive_utc(watermark - _OVERLAP_SECONDS).replace(tzinfo=UTC)),
                order_by="update_timestamp",
                ascending=True,
                limit=_MAX_RUNS_PER_TICK,
            )
        )
        by_id = {r.dagster_run.run_id: r for r in records if r.dagster_run.run_id not in cursor.done}
        followed = [run_id for run_id in cursor.active if run_id not in by_id]
        if followed:
            for rec in self.instance.get_run_records(dg.RunsFilter(run_ids=followed)):
                by_id[rec.dagster_run.run_id] = rec
        # Advance past every listed run (done ones included), so a window full of finished runs
        # cannot stall the watermark.
        listed = [r.update_timestamp.timestamp() for r in records]
        new = AlertSensorCursor(max([watermark, *listed]), {}, dict(cursor.done), dict(cursor.emergency))
        observations: list[Observation] = []
        for rec in sorted(by_id.values(), key=lambda r: r.update_timestamp):
            run = rec.dagster_run
            status = run.status  # read before the events: every event of a finished run is already stored
            found, event_cursor = self._check_observations(run.run_id, cursor.active.get(run.run_id))
            observations += found
            updated = rec.update_timestamp.timestamp()
            if status not in _TERMINAL:
                new.active[run.run_id] = event_cursor
                continue
            new.done[run.run_id] = updated
            if status == dg.DagsterRunStatus.CANCELED:
                continue
            succeeded = status == dg.DagsterRunStatus.SUCCESS
            observations.append(
                run_observation(
                    job_name=run.job_name,
                    run_id=run.run_id,
                    succeeded=succeeded,
                    occurred_at=_naive_utc(updated),
                    priority=_run_priority(run, self.run_failure_priority),
                    detail=None
                    if succeeded
                    else _run_failure_detail(self.instance, run.run_id, self.secrets),
                    alert_job_key=_alert_job_key(run),
                )
            )
        horizon = (new.updated_after or now) - _OVERLAP_SECONDS
        new.done = {run_id: ts for run_id, ts in new.done.items() if ts >= horizon}
        return observations, new


def build_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    alerts = settings.alerts
    status = (
        dg.DefaultSensorStatus.RUNNING if settings.ops.schedules_running else dg.DefaultSensorStatus.STOPPED
    )

    @dg.sensor(
        name="alert_sensor",
        minimum_interval_seconds=alerts.sensor_interval_seconds,
        default_status=status,
        description="Emails failed asset checks and failed runs (deduplicated, grouped per run, repeated, resolved).",
    )
    def alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SkipReason:
        """Emails failed asset checks and failed runs (deduplicated, grouped per run, repeated, resolved)."""
        secrets = secret_values(settings)
        reader = InstanceReader(
            context.instance,
            repository_def=context.repository_def,
            run_failure_priority=alerts.run_failure_priority,
            secrets=secrets,
        )
        cursor = AlertSensorCursor.parse(context.cursor)
        now = datetime.now(UTC)
        observations, new_cursor = reader.read(
            cursor, now=now.timestamp(), lookback_minutes=alerts.initial_lookback_minutes
        )
        send = SmtpMailer(alerts, secrets).send
        try:
            report = run_alert_tick(
                warehouse.get(),
                observations,
                now=now.replace(tzinfo=None),
                alerts=alerts,
                send=send,
                secrets=secrets,
            )
            new_cursor.emergency = {}
        except sa.exc.SQLAlchemyError:
            if not quick_integrity(warehouse.connect_url()):
                raise  # transient (e.g. locked): the tick fails and re-reads the same runs next time
            report, new_cursor.emergency = emergency_tick(
                observations,
                cursor.emergency,
                now=now.replace(tzinfo=None),
                alerts=alerts,
                send=send,
                secrets=secrets,
            )
            context.log.error("warehouse unreadable: alerts sent directly, bypassing the outbox")
        context.update_cursor(new_cursor.dump())
        context.log.info(report.summary())
        return dg.SkipReason(report.summary())

    return alert_sensor


__all__ = ["AlertSensorCursor", "InstanceReader", "build_alert_sensor"]

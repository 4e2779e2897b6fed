"""The one adapter to the Dagster instance: run, step, check and daemon history on Dagster's public API.

The alert sensor, the kaizen metrics and bottleneck, the health report and the daily ops summary
read the instance only through this module, so a Dagster upgrade touches one file.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from kaizen_pipeline.kaizen.loop import CHECK_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, InstanceHistory
from kaizen_pipeline.ops.alerts import (
    PRIORITY_RANK,
    Observation,
    Priority,
    check_observation,
    run_observation,
)
from kaizen_pipeline.ops.health import DaemonState, ScheduleState
from kaizen_pipeline.ops.redact import redact
from kaizen_pipeline.ops.summary import RunFact
from kaizen_pipeline.warehouse import to_naive_utc

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


def instance_history(
    instance: dg.DagsterInstance,
    start: datetime,
    end: datetime,
    *,
    max_runs: int,
    freshness_assets: list[str],
    include_checks: bool = True,
) -> InstanceHistory:
    """Runs that finished in [start, end), their steps and check evaluations, and the newest ingest materialization."""
    start_ts = pd.Timestamp(start, tz="UTC").timestamp()
    end_ts = pd.Timestamp(end, tz="UTC").timestamp()
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
            updated_after=pd.Timestamp(start, tz="UTC").to_pydatetime(),
            # a run's last update is its end (give an hour for late writes), so a past day's query
            # is not crowded out of the limit by newer runs
            updated_before=(pd.Timestamp(end, tz="UTC") + pd.Timedelta(hours=1)).to_pydatetime(),
        ),
        limit=max_runs,
    )
    runs, steps, checks = [], [], []
    for rec in records:
        if rec.end_time is None or not start_ts <= rec.end_time < end_ts:
            continue
        run = rec.dagster_run
        runs.append(
            {"run_id": run.run_id, "job_name": run.job_name, "status": run.status.value,
             "start": rec.start_time, "end": rec.end_time}
        )  # fmt: skip
        for st in instance.get_run_step_stats(run.run_id):
            steps.append(
                {"run_id": run.run_id, "step_key": st.step_key,
                 "status": st.status.value.lower() if st.status else "unknown",
                 "start": st.start_time, "end": st.end_time}
            )  # fmt: skip
        if include_checks:
            conn = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            for record in conn.records:
                data = record.event_log_entry.dagster_event.event_specific_data
                checks.append(
                    {"run_id": run.run_id, "check": f"{data.asset_key.to_user_string()}:{data.check_name}",
                     "passed": bool(data.passed), "timestamp": record.event_log_entry.timestamp}
                )  # fmt: skip
    latest = None
    for key in freshness_assets:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(key), before_timestamp=end_ts),
            limit=1,
        )
        if result.records:
            ts = result.records[0].timestamp
            latest = ts if latest is None else max(latest, ts)
    return InstanceHistory(
        runs=pd.DataFrame(runs, columns=RUN_COLUMNS),
        steps=pd.DataFrame(steps, columns=STEP_COLUMNS),
        checks=pd.DataFrame(checks, columns=CHECK_COLUMNS),
        latest_ingest=to_naive_utc(latest) if latest is not None else None,
    )


def daemon_states(instance: dg.DagsterInstance) -> list[DaemonState]:
    """Every daemon's health and seconds since its last heartbeat."""
    now = datetime.now(UTC).timestamp()
    states = []
    for daemon_type, status in instance.get_daemon_statuses().items():
        beat = status.last_heartbeat.timestamp if status.last_heartbeat else None
        states.append(DaemonState(daemon_type, bool(status.healthy), None if beat is None else now - beat))
    return states


def schedule_states(instance: dg.DagsterInstance, schedule_defs: list[Any]) -> list[ScheduleState]:
    """Declared schedules with their default and their stored (user-set) status."""
    stored = {
        state.name: state.status.value
        for state in instance.all_instigator_state()
        # compared by value: Dagster exports no public InstigatorType
        if state.instigator_type.value == "SCHEDULE"
    }
    return [
        ScheduleState(s.name, s.default_status == dg.DefaultScheduleStatus.RUNNING, stored.get(s.name))
        for s in schedule_defs
    ]


def runs_created_since(instance: dg.DagsterInstance, since: datetime) -> list[RunFact]:
    """Status and naive-UTC creation time of every run created since ``since`` (naive UTC)."""
    records = instance.get_run_records(dg.RunsFilter(created_after=since.replace(tzinfo=UTC)))
    return [
        RunFact(r.dagster_run.status.value, r.create_timestamp.astimezone(UTC).replace(tzinfo=None))
        for r in records
    ]


@dataclass(frozen=True)
class InstigatorFact:
    """A schedule or sensor as `kaizen status` shows it: running or not, and its newest tick."""

    name: str
    kind: str  # schedule or sensor
    running: bool
    last_tick_at: datetime | None  # naive UTC
    last_tick_status: str | None  # SUCCESS, SKIPPED, FAILURE, STARTED


def instigator_facts(
    instance: dg.DagsterInstance, repository: dg.RepositoryDefinition
) -> list[InstigatorFact]:
    """Every schedule and sensor of ``repository``: effective status (stored, else its default) and last tick."""
    stored = {state.name: state for state in instance.all_instigator_state()}
    facts = []
    declared: list[tuple[str, Any, bool]] = [
        ("schedule", s, s.default_status == dg.DefaultScheduleStatus.RUNNING)
        for s in repository.schedule_defs
    ]
    declared += [
        ("sensor", s, s.default_status == dg.DefaultSensorStatus.RUNNING) for s in repository.sensor_defs
    ]
    for kind, definition, default_running in declared:
        state = stored.get(definition.name)
        running = default_running
        last_at = last_status = None
        if state is not None:
            # compared by value: Dagster exports no public InstigatorStatus
            if state.status.value in ("RUNNING", "STOPPED"):
                running = state.status.value == "RUNNING"
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            if ticks:
                last_at = _naive_utc(ticks[0].timestamp)
                last_status = ticks[0].status.value
        facts.append(InstigatorFact(definition.name, kind, running, last_at, last_status))
    return facts


@dataclass(frozen=True)
class JobRunFact:
    job_name: str
    status: str | None  # None: never ran
    started_at: datetime | None  # naive UTC
    seconds: float | None


def last_job_runs(instance: dg.DagsterInstance, job_names: list[str]) -> list[JobRunFact]:
    """The newest run of each job (status, start, duration)."""
    facts = []
    for name in job_names:
        records = instance.get_run_records(dg.RunsFilter(job_name=name), limit=1)
        if not records:
            facts.append(JobRunFact(name, None, None, None))
            continue
        record = records[0]
        start, end = record.start_time, record.end_time
        facts.append(
            JobRunFact(
                name,
                record.dagster_run.status.value,
                _naive_utc(start) if start else None,
                (end - start) if start and end else None,
            )
        )
    return facts

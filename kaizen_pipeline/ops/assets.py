"""Ops assets: health_report (with its checks), database_backup, warehouse_maintenance,
alert_history and daily_ops_summary. Thin wiring over the pure ops and warehouse modules."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.ops import health
from kaizen_pipeline.ops.alert_store import alert_history_frame
from kaizen_pipeline.ops.health import DaemonState, ProbeResult, ScheduleState
from kaizen_pipeline.ops.redact import secret_values
from kaizen_pipeline.ops.sensors import ALERT_PRIORITY_TAG
from kaizen_pipeline.ops.summary import RunFact, daily_summary_row, day_start
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SourcesResource, WarehouseResource
from kaizen_pipeline.settings import Settings, pipeline_now
from kaizen_pipeline.warehouse import Warehouse, to_naive_utc, utcnow
from kaizen_pipeline.warehouse.backup import (
    backup_warehouse,
    list_backups,
    maintain_warehouse,
    newest_verified_backup,
    quick_integrity,
    sqlite_path,
)
from kaizen_pipeline.warehouse.schema import alert_outbox, alert_state, health_report

OPS_GROUP = "ops"

# check name -> (probes it covers, description shown in the UI and in alert emails)
HEALTH_CHECKS: dict[str, tuple[tuple[str, ...], str]] = {
    "warehouse_integrity_ok": (
        ("warehouse_integrity",),
        "The warehouse passes SQLite's quick_check; when it fails, the alert says which backup to restore.",
    ),
    "warehouse_size_ok": (
        ("warehouse_size",),
        "Warehouse size below database.warn_size_gb (WARN) and database.max_size_gb (ERROR).",
    ),
    "price_data_fresh": (
        ("price_freshness",),
        "Newest price_points row younger than quality.stale_after_minutes.",
    ),
    "apis_reachable": (
        ("api_gamma", "api_clob", "api_data", "api_x"),
        "Every source (Gamma, CLOB, Data API, X) answers a cheap request in the configured demo/live mode.",
    ),
    "free_disk_ok": (
        ("free_disk",),
        "Free disk for the warehouse, backups and logs above ops.min_free_disk_mb.",
    ),
    "daemon_heartbeat_ok": (
        ("dagster_daemon",),
        "The Dagster daemon heartbeats (without it no schedule or sensor, alerts included, runs).",
    ),
    "schedules_running": (("schedules",), "No schedule that runs by default has been stopped."),
    "backups_recent": (("backup_age",), "A verified backup younger than two database.backup_interval_hours."),
    "alert_delivery_ok": (("alert_delivery",), "No alert email is stuck in the outbox (SMTP reachable)."),
}


def _sqlite_files_size(url: str) -> int:
    path = sqlite_path(url)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _daemon_states(instance: dg.DagsterInstance) -> list[DaemonState]:
    now = datetime.now(UTC).timestamp()
    states = []
    for daemon_type, status in instance.get_daemon_statuses().items():
        beat = status.last_heartbeat.timestamp if status.last_heartbeat else None
        states.append(DaemonState(daemon_type, bool(status.healthy), None if beat is None else now - beat))
    return states


def _schedule_states(context: dg.AssetExecutionContext) -> list[ScheduleState] | None:
    """Declared schedules with their effective state; None when the run has no repository (dg.materialize)."""
    try:
        schedule_defs = context.repository_def.schedule_defs
    except Exception:
        return None
    stored = {
        state.name: state.status.value
        for state in context.instance.all_instigator_state()
        # compared by value: Dagster exports no public InstigatorType
        if state.instigator_type.value == "SCHEDULE"
    }
    return [
        ScheduleState(s.name, s.default_status == dg.DefaultScheduleStatus.RUNNING, stored.get(s.name))
        for s in schedule_defs
    ]


def gather_health(
    context: dg.AssetExecutionContext,
    settings: Settings,
    warehouse: WarehouseResource,
    sources: SourcesResource,
) -> tuple[list[ProbeResult], Warehouse | None]:
    """Run every probe; the warehouse is only opened when it passed the integrity probe."""
    db = settings.database
    warehouse_url = warehouse.connect_url()
    now = utcnow()
    secrets = secret_values(settings)
    is_sqlite = sa.make_url(warehouse_url).get_backend_name() == "sqlite"
    newest_backup = newest_verified_backup(db.backup_dir)
    problems = quick_integrity(warehouse_url)
    results = [health.probe_integrity(problems, str(newest_backup.path) if newest_backup else None)]
    wh = None if problems else warehouse.get()
    if wh is not None:
        size = wh.size_bytes()
    elif is_sqlite:
        size = _sqlite_files_size(warehouse_url)
    else:
        size = 0
    results.append(health.probe_warehouse_size(size, db.warn_size_gb, db.max_size_gb))
    token_id = None
    if wh is not None:
        newest = to_naive_utc(wh.scalar("SELECT max(ts) FROM price_points"))
        results.append(
            health.probe_price_freshness(
                newest, pipeline_now(settings), settings.quality.stale_after_minutes, "price_points.ts"
            )
        )
        token_id = wh.scalar("SELECT yes_token_id FROM market_snapshots ORDER BY snapshot_ts DESC LIMIT 1")
    else:
        results.append(ProbeResult("price_freshness", "skipped", "warehouse unreadable"))
    results += health.probe_sources(
        sources.settings(),
        timeout_seconds=settings.ops.api_probe_timeout_seconds,
        token_id=token_id,
        secrets=secrets,
    )
    paths = [db.backup_dir, settings.logging.log_dir]
    if is_sqlite:
        paths.insert(0, str(sqlite_path(warehouse_url).parent))
    results.append(health.probe_free_disk(paths, settings.ops.min_free_disk_mb))
    try:
        results.append(
            health.probe_daemon(_daemon_states(context.instance), ephemeral=context.instance.is_ephemeral)
        )
    except Exception as exc:  # instance storage trouble is itself the finding
        results.append(
            ProbeResult("dagster_daemon", "warn", f"cannot read daemon heartbeats: {type(exc).__name__}")
        )
    schedules = _schedule_states(context)
    if schedules is None:
        results.append(ProbeResult("schedules", "skipped", "run outside a code location: schedules unknown"))
    else:
        results.append(health.probe_schedules(schedules))
    results.append(
        health.probe_backup_age(
            newest_backup.created_at if newest_backup else None, now, db.backup_interval_hours
        )
    )
    if wh is not None:
        pending = wh.count(alert_outbox, alert_outbox.c.status == "pending")
        oldest = to_naive_utc(
            wh.scalar(
                sa.select(sa.func.min(alert_outbox.c.created_at)).where(alert_outbox.c.status == "pending")
            )
        )
        results.append(health.probe_alert_outbox(pending, oldest, now))
    return results, wh


def _check_result(check_name: str, results: list[ProbeResult]) -> dg.AssetCheckResult:
    probes, _ = HEALTH_CHECKS[check_name]
    covered = [r for r in results if r.probe in probes]
    failing = [r for r in covered if not r.passed]
    worst = health.worst(covered)
    first = (failing or covered or [None])[0]
    metadata: dict[str, object] = {"status": worst}
    if first is not None and first.value is not None:
        metadata["value"] = float(first.value)
    if first is not None and first.threshold is not None:
        metadata["target"] = float(first.threshold)
    if first is not None and first.unit:
        metadata["unit"] = first.unit
    detail = "; ".join(r.detail for r in (failing or covered)) or "not measured"
    metadata["detail"] = detail
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR if worst == "error" else dg.AssetCheckSeverity.WARN,
        description=detail,
        metadata=metadata,
    )


def build_ops_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    db = settings.database

    @dg.asset(
        name="health_report",
        group_name=OPS_GROUP,
        check_specs=[
            dg.AssetCheckSpec(name, asset="health_report", description=desc)
            for name, (_, desc) in HEALTH_CHECKS.items()
        ],
    )
    def health_report_asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
    ) -> dg.MaterializeResult:
        """Warehouse integrity and size, price freshness, API reachability, disk, daemon, schedules, backups."""
        checked_at = utcnow().replace(microsecond=0)
        results, wh = gather_health(context, settings, warehouse, sources)
        frame = pd.DataFrame([r.row(checked_at) for r in results])
        written = "not written: the warehouse is unreadable"
        if wh is not None:
            wh.upsert(health_report, frame)
            cutoff = checked_at - timedelta(days=settings.ops.health_history_days)
            with wh.engine.begin() as conn:
                conn.execute(health_report.delete().where(health_report.c.checked_at < cutoff))
            written = f"{len(frame)} rows at {checked_at:%Y-%m-%d %H:%M:%S} UTC"
        counts = health.summarize(results)
        return dg.MaterializeResult(
            metadata={
                "overall": health.worst(results),
                "ok": counts["ok"],
                "warn": counts["warn"],
                "error": counts["error"],
                "health_report_table": written,
                "probes": dg.MetadataValue.md(
                    markdown_table(
                        frame[["probe", "status", "value", "threshold", "unit", "detail"]], max_rows=50
                    )
                ),
            },
            check_results=[_check_result(name, results) for name in HEALTH_CHECKS],
        )

    @dg.asset(name="database_backup", group_name=OPS_GROUP)
    def database_backup_asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """A consistent online copy of the warehouse, compressed and restore-tested; keeps the newest database.backup_keep."""
        wh = warehouse.get()  # creates the warehouse on a fresh install, so there is something to copy
        info = backup_warehouse(warehouse.connect_url(), db.backup_dir, db.backup_keep)
        backups = list_backups(db.backup_dir)
        catalogue = pd.DataFrame(
            [
                {
                    "file_name": b.path.name,
                    "created_at": b.created_at,
                    "dialect": b.dialect,
                    "size_bytes": b.size_bytes,
                    "source_rows": b.source_rows,
                    "tables": b.tables,
                    "verified": b.verified,
                    "verified_at": b.verified_at,
                    "sha256": b.sha256,
                    "duration_seconds": b.duration_seconds,
                }
                for b in backups
            ]
        )
        # The catalogue mirrors the backup directory (after retention), so it is replaced whole.
        wh.replace("database_backup", catalogue)
        context.log.info(
            f"backup {info.path.name}: {info.source_rows} rows in {info.tables} tables, verified"
        )
        return dg.MaterializeResult(
            metadata={
                "file": str(info.path),
                "size_bytes": info.size_bytes,
                "source_rows": info.source_rows,
                "tables": info.tables,
                "verified": info.verified,
                "duration_seconds": info.duration_seconds or 0.0,
                "backups_kept": len(backups),
                "backups": dg.MetadataValue.md(
                    markdown_table(
                        catalogue[["file_name", "created_at", "size_bytes", "source_rows", "verified"]]
                    )
                ),
                "restore_with": f"kaizen restore --backup {info.path} --yes",
            }
        )

    @dg.asset(name="warehouse_maintenance", group_name=OPS_GROUP)
    def warehouse_maintenance_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Weekly upkeep: SQLite checkpoint, VACUUM and ANALYZE (PostgreSQL: VACUUM ANALYZE)."""
        ran_at = utcnow().replace(microsecond=0)
        result = maintain_warehouse(warehouse.connect_url())
        row = {
            "ran_at": ran_at,
            "dialect": result.dialect,
            "operations": "; ".join(result.operations),
            "size_before_bytes": result.size_before_bytes,
            "size_after_bytes": result.size_after_bytes,
            "duration_seconds": result.duration_seconds,
        }
        warehouse.get().upsert("warehouse_maintenance", [row])
        return dg.MaterializeResult(
            metadata={
                "operations": row["operations"],
                "size_before_bytes": result.size_before_bytes,
                "size_after_bytes": result.size_after_bytes,
                "reclaimed_bytes": result.size_before_bytes - result.size_after_bytes,
                "duration_seconds": result.duration_seconds,
            }
        )

    @dg.asset(name="alert_history", group_name=OPS_GROUP)
    def alert_history_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Open, resolved and emailed alerts (from the alert sensor's state and outbox) as one table."""
        wh = warehouse.get()
        frame = alert_history_frame(wh, settings.alerts.ui_base_url)
        wh.replace("alert_history", frame)
        open_alerts = frame[frame["status"] == "open"]
        shown = [
            "status",
            "priority",
            "alert_key",
            "opened_at",
            "last_failed_at",
            "resolved_at",
            "failure_count",
        ]
        return dg.MaterializeResult(
            metadata={
                "open": len(open_alerts),
                "resolved": int((frame["status"] == "resolved").sum()),
                "emails_sent": int(frame["emails_sent"].sum()) if not frame.empty else 0,
                "emails_pending": wh.count(alert_outbox, alert_outbox.c.status == "pending"),
                "open_alerts": dg.MetadataValue.md(markdown_table(open_alerts[shown])),
                "recent_alerts": dg.MetadataValue.md(
                    markdown_table(frame[shown].sort_values("opened_at", ascending=False))
                ),
            }
        )

    @dg.asset(name="daily_ops_summary", group_name=OPS_GROUP)
    def daily_ops_summary_asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Runs, failures, alerts, emails and data volume per UTC day (yesterday final, today so far)."""
        wh = warehouse.get()
        now = utcnow()
        today = day_start(now)
        yesterday = today - timedelta(days=1)
        records = context.instance.get_run_records(dg.RunsFilter(created_after=yesterday.replace(tzinfo=UTC)))
        runs = [
            RunFact(r.dagster_run.status.value, r.create_timestamp.astimezone(UTC).replace(tzinfo=None))
            for r in records
        ]
        alerts = wh.read_frame(
            sa.select(alert_state.c.opened_at, alert_state.c.resolved_at),
            parse_dates=["opened_at", "resolved_at"],
        )
        outbox = wh.read_frame(
            sa.select(alert_outbox.c.created_at, alert_outbox.c.status, alert_outbox.c.sent_at),
            parse_dates=["created_at", "sent_at"],
        )
        ingestion = wh.read_frame(
            "SELECT started_at, new_rows FROM ingestion_runs WHERE started_at >= :since",
            {"since": yesterday},
            parse_dates=["started_at"],
        )
        row_counts = wh.table_row_counts()
        size = wh.size_bytes()
        rows = [
            daily_summary_row(
                day,
                now=now,
                runs=runs,
                alerts=alerts,
                outbox=outbox,
                ingestion=ingestion,
                warehouse_rows=sum(row_counts.values()),
                warehouse_size_bytes=size,
            )
            for day in (yesterday, today)
        ]
        wh.upsert("daily_ops_summary", rows)
        frame = pd.DataFrame(rows).drop(columns=["updated_at"])
        biggest = pd.DataFrame(sorted(row_counts.items(), key=lambda kv: -kv[1]), columns=["table", "rows"])
        return dg.MaterializeResult(
            metadata={
                "summary": dg.MetadataValue.md(markdown_table(frame)),
                "rows_by_table": dg.MetadataValue.md(markdown_table(biggest, max_rows=15)),
                "runs_failed_today": rows[1]["runs_failed"],
                "warehouse_size_bytes": size,
            }
        )

    return [
        health_report_asset,
        database_backup_asset,
        warehouse_maintenance_asset,
        alert_history_asset,
        daily_ops_summary_asset,
    ]


__all__ = ["ALERT_PRIORITY_TAG", "HEALTH_CHECKS", "OPS_GROUP", "build_ops_assets"]

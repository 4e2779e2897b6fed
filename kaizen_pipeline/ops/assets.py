"""Ops assets: health_report (with its checks), database_backup, warehouse_maintenance,
alert_history and daily_ops_summary. Thin wiring over the pure ops and warehouse modules."""

from datetime import timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.instance import ALERT_PRIORITY_TAG, daemon_states, runs_created_since, schedule_states
from kaizen_pipeline.ops import health
from kaizen_pipeline.ops.alert_store import alert_history_frame
from kaizen_pipeline.ops.health import ProbeResult
from kaizen_pipeline.ops.summary import daily_summary_row, day_start
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.warehouse import utcnow
from kaizen_pipeline.warehouse.backup.catalogue import list_backups
from kaizen_pipeline.warehouse.backup.dispatch import backup_warehouse
from kaizen_pipeline.warehouse.backup.maintenance import maintain_warehouse
from kaizen_pipeline.warehouse.schema import alert_outbox, alert_state
from kaizen_pipeline.warehouse.schema import health_report as health_report_table

GROUP = "ops"

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
    "schedules_running": (
        ("schedules",),
        "No schedule that runs by default (data_collection.schedules_running) has been stopped by hand.",
    ),
    "backups_recent": (
        ("backup_age",),
        "A verified backup younger than twice database.backup_interval_hours.",
    ),
    "alert_delivery_ok": (("alert_delivery",), "No alert email is stuck in the outbox (SMTP reachable)."),
}


def _instance_facts(context: dg.AssetExecutionContext) -> health.InstanceFacts:
    """Daemon heartbeats and schedule states from the instance; a read failure is itself a finding."""
    try:
        daemons, error = daemon_states(context.instance), None
    except Exception as exc:  # instance storage trouble is itself the finding
        daemons, error = None, f"cannot read daemon heartbeats: {type(exc).__name__}"
    try:
        schedule_defs = context.repository_def.schedule_defs
    except Exception:  # dg.materialize runs have no repository: schedules unknown
        schedules = None
    else:
        schedules = schedule_states(context.instance, list(schedule_defs))
    return health.InstanceFacts(daemons, error, context.instance.is_ephemeral, schedules)


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


@dg.asset(
    group_name=GROUP,
    check_specs=[
        dg.AssetCheckSpec(name, asset="health_report", description=desc)
        for name, (_, desc) in HEALTH_CHECKS.items()
    ],
)
def health_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Warehouse integrity and size, price freshness, API reachability, disk, daemon, schedules, backups."""
    current = settings.get()
    checked_at = utcnow().replace(microsecond=0)
    results, wh = health.gather_health(
        current, warehouse.connect_url(), warehouse.get, _instance_facts(context)
    )
    frame = pd.DataFrame([r.row(checked_at) for r in results])
    written = "not written: the warehouse is unreadable"
    if wh is not None:
        wh.upsert(health_report_table, frame)
        cutoff = checked_at - timedelta(days=current.ops.health_history_days)
        with wh.engine.begin() as conn:
            conn.execute(health_report_table.delete().where(health_report_table.c.checked_at < cutoff))
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


@dg.asset(group_name=GROUP)
def database_backup(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """A consistent online copy of the warehouse, compressed and restore-tested; keeps the newest database.backup_keep."""
    db = settings.get().database
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
    context.log.info(f"backup {info.path.name}: {info.source_rows} rows in {info.tables} tables, verified")
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


@dg.asset(group_name=GROUP)
def warehouse_maintenance(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Upkeep on ops.maintenance_cron: SQLite checkpoint, VACUUM and ANALYZE (PostgreSQL: VACUUM ANALYZE)."""
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


@dg.asset(group_name=GROUP)
def alert_history(warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """Open, resolved and emailed alerts (from the alert sensor's state and outbox) as one table."""
    wh = warehouse.get()
    frame = alert_history_frame(wh, settings.get().alerts.ui_base_url)
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


@dg.asset(group_name=GROUP)
def daily_ops_summary(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Runs, failures, alerts, emails and data volume per UTC day (yesterday final, today so far)."""
    wh = warehouse.get()
    now = utcnow()
    today = day_start(now)
    yesterday = today - timedelta(days=1)
    runs = runs_created_since(context.instance, yesterday)
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


OPS_ASSETS = [health_report, database_backup, warehouse_maintenance, alert_history, daily_ops_summary]

__all__ = ["ALERT_PRIORITY_TAG", "HEALTH_CHECKS", "OPS_ASSETS", "GROUP"]

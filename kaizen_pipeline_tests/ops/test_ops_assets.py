"""Ops wiring: schedules and sensor defaults, backup/maintenance assets, the daily summary."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from kaizen_pipeline.ingest.schedules import frequency_cron
from kaizen_pipeline.ops.assets import OPS_ASSETS
from kaizen_pipeline.ops.defs import build_defs
from kaizen_pipeline.ops.schedules import hours_cron
from kaizen_pipeline.ops.summary import RunFact, daily_summary_row
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse, utcnow
from kaizen_pipeline.warehouse.backup.catalogue import list_backups


def _asset(settings: Settings, name: str) -> dg.AssetsDefinition:
    return next(a for a in OPS_ASSETS if a.key.path == [name])


def test_cron_helpers() -> None:
    assert frequency_cron(5, "ops.health_interval_minutes") == "*/5 * * * *"
    with pytest.raises(ValueError, match="ops.health_interval_minutes=7 has no cron form"):
        frequency_cron(7, "ops.health_interval_minutes")
    assert hours_cron(24) == "15 2 * * *"
    assert hours_cron(6) == "15 */6 * * *"
    assert hours_cron(48) == "15 2 */2 * *"


def _repo(settings: Settings) -> dg.RepositoryDefinition:
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(resources=build_resources(settings)))
    return defs.get_repository_def()


def test_schedules_and_alert_sensor_follow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(
        s.default_status == dg.DefaultScheduleStatus.STOPPED for s in _repo(load_settings()).schedule_defs
    )
    monkeypatch.setenv("KAIZEN_SOURCE", "live")  # key empty: a live source starts them
    repo = _repo(load_settings())
    schedules = {s.name: s for s in repo.schedule_defs}
    assert schedules["ops_health_schedule"].cron_schedule == "*/5 * * * *"
    assert schedules["database_backup_schedule"].cron_schedule == "15 2 * * *"
    assert schedules["warehouse_maintenance_schedule"].cron_schedule == "30 3 * * 0"
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())
    sensor = repo.get_sensor_def("alert_sensor")
    assert sensor.minimum_interval_seconds == 60 and sensor.default_status == dg.DefaultSensorStatus.RUNNING

    monkeypatch.setenv("KAIZEN_DATA_COLLECTION__SCHEDULES_RUNNING", "false")
    monkeypatch.setenv("KAIZEN_DATABASE__BACKUP_INTERVAL_HOURS", "6")
    monkeypatch.setenv("KAIZEN_ALERTS__SENSOR_INTERVAL_SECONDS", "120")
    repo = _repo(load_settings())
    assert repo.get_schedule_def("database_backup_schedule").cron_schedule == "15 */6 * * *"
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in repo.schedule_defs)
    assert repo.get_sensor_def("alert_sensor").minimum_interval_seconds == 120


def test_backup_and_maintenance_assets_write_their_tables(settings: Settings, warehouse: Warehouse) -> None:
    warehouse.upsert(
        "price_points",
        [
            {
                "token_id": "t",
                "ts": datetime(2026, 1, 1) + timedelta(minutes=i),
                "market_id": "m",
                "outcome": "Yes",
                "price": 0.5,
            }
            for i in range(500)
        ],
    )
    assets = [_asset(settings, "database_backup"), _asset(settings, "warehouse_maintenance")]
    result = dg.materialize(assets, resources=build_resources(settings))
    assert result.success
    (backup,) = list_backups(settings.database.backup_dir)
    catalogue = warehouse.read_frame("SELECT * FROM database_backup")
    assert list(catalogue["file_name"]) == [backup.path.name]
    assert bool(catalogue["verified"].iloc[0]) and int(catalogue["source_rows"].iloc[0]) >= 500
    md = result.asset_materializations_for_node("database_backup")[0].metadata
    assert md["restore_with"].value == f"kaizen restore --backup {backup.path} --yes"
    maintenance = warehouse.read_frame("SELECT * FROM warehouse_maintenance")
    assert len(maintenance) == 1 and "VACUUM" in maintenance["operations"].iloc[0]


def test_daily_summary_counts_one_day() -> None:
    day = datetime(2026, 3, 1)
    now = datetime(2026, 3, 2, 6)
    runs = [
        RunFact("SUCCESS", day + timedelta(hours=1)),
        RunFact("FAILURE", day + timedelta(hours=2)),
        RunFact("FAILURE", day - timedelta(hours=1)),
    ]
    alerts = pd.DataFrame(
        {
            "opened_at": [day + timedelta(hours=2), day - timedelta(days=1)],
            "resolved_at": [pd.NaT, day + timedelta(hours=5)],
        }
    )
    outbox = pd.DataFrame(
        {
            "created_at": [day + timedelta(hours=2), day + timedelta(hours=3)],
            "status": ["sent", "pending"],
            "sent_at": [day + timedelta(hours=2), pd.NaT],
        }
    )
    ingestion = pd.DataFrame(
        {"started_at": [day + timedelta(hours=4), day + timedelta(days=1)], "new_rows": [120, 80]}
    )
    row = daily_summary_row(
        day,
        now=now,
        runs=runs,
        alerts=alerts,
        outbox=outbox,
        ingestion=ingestion,
        warehouse_rows=1000,
        warehouse_size_bytes=4096,
    )
    assert (row["runs_started"], row["runs_succeeded"], row["runs_failed"]) == (2, 1, 1)
    assert (row["alerts_opened"], row["alerts_resolved"], row["alerts_open_at_end"]) == (1, 1, 1)
    assert (row["emails_sent"], row["emails_pending"], row["rows_ingested"]) == (1, 1, 120)


def test_daily_ops_summary_asset_reads_the_instance_and_is_idempotent(
    settings: Settings, warehouse: Warehouse
) -> None:
    @dg.asset
    def flaky() -> None:
        raise RuntimeError("boom")

    warehouse.upsert(
        "ingestion_runs",
        [
            {
                "run_id": "r1",
                "asset": "market_prices",
                "source": "demo",
                "started_at": utcnow(),
                "finished_at": utcnow(),
                "status": "success",
                "api_calls": 10,
                "retries": 0,
                "errors": 0,
                "rate_limited": 0,
                "rows_written": 300,
                "new_rows": 250,
                "rejects": 0,
                "degraded": False,
                "degraded_reason": None,
            }
        ],
    )
    summary = _asset(settings, "daily_ops_summary")
    with dg.instance_for_test() as instance:
        assert not dg.materialize([flaky], instance=instance, raise_on_error=False).success
        dg.materialize([summary], instance=instance, resources=build_resources(settings))
        first = warehouse.read_frame("SELECT * FROM daily_ops_summary ORDER BY day")
        dg.materialize([summary], instance=instance, resources=build_resources(settings))
        second = warehouse.read_frame("SELECT * FROM daily_ops_summary ORDER BY day")
    assert len(first) == len(second) == 2
    today = second.iloc[-1]
    assert today["runs_failed"] == 1 and today["runs_started"] >= 2
    assert today["rows_ingested"] == 250 and today["warehouse_rows"] >= 1

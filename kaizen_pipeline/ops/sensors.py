"""alert_sensor: turns asset-check evaluations and failed runs on the Dagster instance into alert emails.

The instance is read by kaizen_pipeline.instance.InstanceReader (every evaluation exactly once);
the alert state, outbox and emails live in ops.alert_store.
"""

from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from kaizen_pipeline.ingest.schedules import sensor_status
from kaizen_pipeline.instance import AlertSensorCursor, InstanceReader
from kaizen_pipeline.ops.alert_store import emergency_tick, run_alert_tick
from kaizen_pipeline.ops.channels import channel_senders
from kaizen_pipeline.ops.mailer import SmtpMailer
from kaizen_pipeline.ops.redact import secret_values
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse.backup.maintenance import quick_integrity


def build_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    """The alert sensor; only its tick interval and default status are read at load.

    It starts as data_collection.schedules_running says (empty: on live, off in a demo).
    """
    status = sensor_status(settings)

    @dg.sensor(
        name="alert_sensor",
        minimum_interval_seconds=settings.alerts.sensor_interval_seconds,
        default_status=status,
        description="Emails failed asset checks and failed runs, and posts them to the chat and webhook channels "
        "of alerts.routes (deduplicated, grouped per run, repeated, resolved); ticks every alerts.sensor_interval_seconds, starts as data_collection.schedules_running says (empty: on live, off in a demo).",
    )
    def alert_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource, settings: SettingsResource
    ) -> dg.SkipReason:
        """Emails failed asset checks and failed runs and posts them to alerts.routes' channels (deduplicated, grouped
        per run, repeated, resolved)."""
        current = settings.get()
        alerts = current.alerts
        secrets = secret_values(current)
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
                channels=channel_senders(alerts, secrets),
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


__all__ = ["build_alert_sensor"]

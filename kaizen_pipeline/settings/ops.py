"""Sections of the ops domain: alert emails, logging, and the health monitor and ops schedules."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from kaizen_pipeline.settings._base import _reject_moved, _Section

Channel = Literal["email", "telegram", "slack", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "telegram", "slack", "webhook")


class AlertSettings(_Section):
    enabled: bool = Field(
        True, description="Send alert emails (false: alerts are still recorded in alert_history)."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server host for alert emails.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "none", description="none: plain SMTP; starttls: upgrade after connect; ssl: TLS from the start."
    )
    smtp_username: str | None = Field(
        None, description="SMTP login user (its password: alerts.smtp_password, env only)."
    )
    smtp_password: SecretStr | None = Field(None, description="Env only: KAIZEN_ALERTS__SMTP_PASSWORD.")
    sender: str = Field("kaizen-pipeline@localhost", description="From address of alert emails.")
    recipients: list[str] = Field(
        default_factory=list,
        description="Addresses of warning and critical alert emails (info alerts are recorded only).",
    )
    escalation_recipients: list[str] = Field(
        default_factory=list, description="Extra addresses that also receive critical alerts."
    )
    repeat_interval_minutes: int = Field(
        240, ge=1, description="A still-firing alert is emailed again after this long."
    )
    ui_base_url: str = Field(
        "http://127.0.0.1:3000",
        description="Dagster UI address used for run links in emails and alert_history.",
    )
    smtp_timeout_seconds: float = Field(
        20, gt=0, le=300, description="Connect/command timeout of one SMTP send."
    )
    sensor_interval_seconds: int = Field(
        60, ge=10, le=3600, description="Minimum time between alert sensor ticks."
    )
    initial_lookback_minutes: int = Field(
        60, ge=0, le=10_080, description="Runs the alert sensor reads back on its first tick (no cursor yet)."
    )
    run_failure_priority: Literal["critical", "warning", "info"] = Field(
        "warning", description="Priority of a failed-run alert (critical also goes to escalation_recipients)."
    )
    retry_base_seconds: int = Field(
        60, ge=1, le=86_400, description="First retry delay of a failed send; doubles."
    )
    retry_max_seconds: int = Field(3600, ge=1, le=86_400, description="Longest retry delay of a failed send.")
    routes: dict[Literal["critical", "warning"], list[Channel]] = Field(
        default_factory=lambda: {"critical": list(CHANNELS), "warning": list(CHANNELS)},
        description="Channels each priority goes to (email, telegram, slack, webhook); a channel that is "
        "not configured is left out. Info alerts are recorded only.",
    )
    telegram_enabled: bool = Field(
        False, description="Send alerts to a Telegram chat (needs telegram_chat_id and telegram_token)."
    )
    telegram_chat_id: str | None = Field(None, description="Telegram chat id (or @channel) the bot posts to.")
    telegram_token: SecretStr | None = Field(None, description="Env only: KAIZEN_ALERTS__TELEGRAM_TOKEN.")
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Telegram Bot API base URL (a local Bot API server, a test)."
    )
    slack_webhook_url: SecretStr | None = Field(
        None, description="Env only: KAIZEN_ALERTS__SLACK_WEBHOOK_URL (a Slack incoming webhook)."
    )
    webhook_url: SecretStr | None = Field(
        None,
        description="Env only: KAIZEN_ALERTS__WEBHOOK_URL; receives Alertmanager's webhook format (version 4).",
    )
    channel_timeout_seconds: float = Field(
        20, gt=0, le=300, description="Deadline of one Telegram, Slack or webhook request."
    )

    @field_validator("slack_webhook_url", "webhook_url", "telegram_api_url")
    @classmethod
    def _http_url(cls, value: Any) -> Any:
        """An http(s) URL with a host and a valid port; the message never repeats a secret URL."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None:
            return value
        parts = urlsplit(str(text))
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("the port is not a number") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        return value

    def channels_for(self, priority: str) -> list[Channel]:
        """The configured channels a notification of ``priority`` goes to (email needs recipients)."""
        configured = {
            "email": True,
            "telegram": self.telegram_enabled
            and bool(self.telegram_chat_id)
            and self.telegram_token is not None,
            "slack": self.slack_webhook_url is not None,
            "webhook": self.webhook_url is not None,
        }
        return [c for c in self.routes.get(priority, []) if configured[c]]  # type: ignore[call-overload]


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to the log files."
    )
    json_logs: bool = Field(True, description="One JSON object per line (.jsonl); false: plain text (.log).")
    log_dir: str = Field("data/logs", description="Directory of the daily log files.")
    retention_days: int = Field(30, ge=1, le=3650, description="Log files older than this are deleted.")


class OpsSettings(_Section):
    """Health monitor thresholds and the ops schedules (alerts, database and logging have their own sections).

    Whether the schedules run by default is data_collection.schedules_running.
    """

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return _reject_moved(data, "ops")

    health_interval_minutes: int = Field(5, ge=1, le=1440, description="health_report schedule period.")
    min_free_disk_mb: int = Field(
        500, ge=0, description="Free disk below this (warehouse, backups, logs): error."
    )
    api_probe_timeout_seconds: float = Field(
        5, gt=0, le=120, description="Timeout of one API reachability probe."
    )
    health_history_days: int = Field(
        30, ge=1, le=3650, description="health_report rows older than this are pruned."
    )
    maintenance_cron: str = Field("30 3 * * 0", description="Weekly VACUUM/ANALYZE (cron, UTC).")
    daily_summary_cron: str = Field("15 0 * * *", description="daily_ops_summary schedule (cron, UTC).")
    max_runtime_seconds: int = Field(
        3600,
        ge=60,
        description="Every job's dagster/max_runtime tag: run monitoring fails a run still going after this.",
    )


class ExecutionSettings(_Section):
    """How runs execute their steps: one process, a process per step, or Celery workers (deploy profile)."""

    executor: Literal["auto", "in_process", "multiprocess", "celery"] = Field(
        "auto",
        description="auto: each job's own choice (in_process where steps are short, multiprocess where "
        "parallel steps pay); in_process, multiprocess or celery: every job (celery: the PostgreSQL + "
        "Celery deploy profile, docs/deploy.md).",
    )
    max_concurrent_steps: int = Field(
        0, ge=0, le=64, description="Steps a multiprocess run executes at once (0: the number of CPUs)."
    )
    # URLs, not SecretStr: most carry no password (guest@127.0.0.1); one that does must come from the
    # environment (checked where the executor is built, ops/executors.py, as database.url is)
    celery_broker_url: str = Field(
        "pyamqp://guest@127.0.0.1//",
        min_length=1,
        description="executor celery: the Celery broker (RabbitMQ) the steps are sent to; the workers' "
        "-y file names the same one. A password only in KAIZEN_EXECUTION__CELERY_BROKER_URL.",
    )
    celery_backend_url: str = Field(
        "rpc://",
        min_length=1,
        description="executor celery: where workers put step results (rpc://: back through the broker). "
        "A password only in KAIZEN_EXECUTION__CELERY_BACKEND_URL.",
    )
    celery_queue: str = Field(
        "dagster",
        min_length=1,
        description="executor celery: the queue steps are sent to; workers listen on it (-q). "
        "Deployments sharing one broker use different queues.",
    )

"""Structured JSON logs: one line per record, a file per UTC day, the last N days kept, secrets masked.

``KaizenLogHandler`` is referenced from dagster.yaml (``python_logs.dagster_handler_config``) so
every run's log lines (Dagster events and the ``kaizen_pipeline`` loggers) land in
``logging.log_dir``; ``configure_logging`` attaches the same handler in the ``kaizen`` CLI.

Rotation writes straight into ``kaizen-YYYY-MM-DD.jsonl`` instead of renaming a live file at
midnight: Dagster runs steps in several processes, and rename-based rotation
(TimedRotatingFileHandler) loses lines when two processes rotate the same file.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kaizen_pipeline.ops.redact import redact, secret_values
from kaizen_pipeline.settings import Settings, get_settings

LOG_PREFIX = "kaizen-"
_DAY_RE = re.compile(r"^kaizen-(\d{4}-\d{2}-\d{2})\.(jsonl|log)$")
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "dagster_meta",
}


def redact_record(record: logging.LogRecord, secrets: list[str] | None = None) -> logging.LogRecord:
    """Redact a record in place: its formatted message, Dagster's original message and exception text.

    The record is only rewritten when redaction changes something, so other handlers see it unchanged.
    """
    known = secret_values() if secrets is None else secrets
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not stop logging; str() is what logging would show
        message = str(record.msg)
    clean = redact(message, known)
    if clean != message:
        record.msg, record.args = clean, None
    meta = getattr(record, "dagster_meta", None)
    if isinstance(meta, dict) and isinstance(meta.get("orig_message"), str):
        meta["orig_message"] = redact(meta["orig_message"], known)
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info))
        clean_exc = redact(text, known)
        if clean_exc != text:
            # the exception object still carries the secret: keep only its redacted text
            record.exc_info, record.exc_text = None, clean_exc
    elif record.exc_text:
        record.exc_text = redact(record.exc_text, known)
    return record


class RedactingFilter(logging.Filter):
    """A handler or logger filter that redacts every record passing it (see ``redact_record``)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.secrets)
        return True


_factory_lock = threading.Lock()
_factory_installed = False


def install_log_redaction() -> None:
    """Redact every ``kaizen_pipeline.*`` log record as it is created (idempotent, process-wide).

    A filter on the ``kaizen_pipeline`` logger would not see its children's records, and Dagster adds
    its own handlers to the managed loggers; creating the record is the one step they all share.
    """
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if isinstance(record.name, str) and record.name.startswith("kaizen_pipeline"):
                redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, Dagster run/step/event, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        meta: dict[str, Any] = getattr(record, "dagster_meta", None) or {}
        message = meta.get("orig_message") if meta.get("orig_message") is not None else record.getMessage()
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for key in ("run_id", "job_name", "step_key", "resource_name"):
            if meta.get(key):
                doc[key] = meta[key]
        event = meta.get("dagster_event")
        if event is not None:
            doc["event"] = getattr(event, "event_type_value", str(event))
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith(("_", "dagster_")):
                doc[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc, default=str)


class DailyFileHandler(logging.Handler):
    """Appends each record to ``<log_dir>/kaizen-<UTC day>.<ext>``; keeps the newest ``retention_days`` files."""

    def __init__(
        self,
        log_dir: str | Path,
        retention_days: int,
        *,
        json_logs: bool = True,
        secrets: list[str] | None = None,
    ):
        super().__init__()
        self.log_dir = Path(log_dir).expanduser()
        self.retention_days = retention_days
        self.extension = "jsonl" if json_logs else "log"
        self.secrets = list(secrets or [])
        self._stream: TextIO | None = None
        self._day: str | None = None
        self._io_lock = threading.Lock()
        self.addFilter(RedactingFilter(self.secrets))
        self.setFormatter(
            JsonFormatter()
            if json_logs
            else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )

    def path_for(self, day: str) -> Path:
        return self.log_dir / f"{LOG_PREFIX}{day}.{self.extension}"

    def _prune(self) -> None:
        files = sorted(
            p for p in self.log_dir.iterdir() if _DAY_RE.match(p.name) and p.name.endswith(self.extension)
        )
        for old in files[: max(0, len(files) - self.retention_days)]:
            old.unlink(missing_ok=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = redact(self.format(record), self.secrets)
            day = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d")
            with self._io_lock:
                if self._stream is None or day != self._day:
                    if self._stream is not None:
                        self._stream.close()
                    self.log_dir.mkdir(parents=True, exist_ok=True)
                    # O_APPEND: lines from concurrent step processes interleave whole, never overwrite.
                    self._stream = open(self.path_for(day), "a", encoding="utf-8")  # noqa: SIM115
                    self._day = day
                    self._prune()
                self._stream.write(line + "\n")
                self._stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        # logging.config.dictConfig (which Dagster calls per run) closes every handler: reopen lazily.
        with self._io_lock:
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._day = None
        super().close()


class KaizenLogHandler(DailyFileHandler):
    """The handler dagster.yaml names: directory, retention, format and level from config (logging.*)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        cfg = settings.logging
        super().__init__(
            cfg.log_dir, cfg.retention_days, json_logs=cfg.json_logs, secrets=secret_values(settings)
        )
        self.setLevel(cfg.level)
        install_log_redaction()


def configure_logging(
    settings: Settings | None = None, logger_name: str = "kaizen_pipeline"
) -> KaizenLogHandler:
    """Attach the daily JSON file handler to the ``kaizen_pipeline`` logger (idempotent)."""
    settings = settings or get_settings()
    logger = logging.getLogger(logger_name)
    for existing in [h for h in logger.handlers if isinstance(h, KaizenLogHandler)]:
        logger.removeHandler(existing)
        existing.close()
    handler = KaizenLogHandler(settings)
    logger.addHandler(handler)
    logger.setLevel(settings.logging.level)
    return handler


def log_files(log_dir: str | Path) -> list[Path]:
    directory = Path(log_dir).expanduser()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _DAY_RE.match(p.name))


__all__ = [
    "DailyFileHandler",
    "JsonFormatter",
    "KaizenLogHandler",
    "RedactingFilter",
    "configure_logging",
    "install_log_redaction",
    "log_files",
    "redact_record",
]

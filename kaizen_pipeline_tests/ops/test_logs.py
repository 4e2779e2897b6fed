"""Structured logs: JSON lines, a file per day with retention, secrets masked, wired through dagster.yaml."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from kaizen_pipeline.ops.logs import DailyFileHandler, configure_logging, log_files
from kaizen_pipeline.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bearer-Secret-abcdef123456"


def _record(msg: str, when: datetime, level: int = logging.INFO) -> logging.LogRecord:
    record = logging.LogRecord("kaizen_pipeline.test", level, __file__, 1, msg, (), None)
    record.created = when.timestamp()
    return record


def test_one_json_object_per_line_with_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", TOKEN)
    handler = configure_logging(load_settings())
    log = logging.getLogger("kaizen_pipeline.test_logs")
    log.info("calling X with %s", TOKEN, extra={"market_id": "m-1"})
    log.warning("db at postgresql://kaizen:hunter2pw@db.internal/kaizen failed")
    try:
        raise ValueError(f"Authorization: Bearer {TOKEN}")
    except ValueError:
        log.exception("request failed")
    handler.close()
    logging.getLogger("kaizen_pipeline").removeHandler(handler)

    (path,) = log_files(load_settings().logging.log_dir)
    raw = path.read_text()
    assert TOKEN not in raw and "hunter2pw" not in raw
    lines = [json.loads(line) for line in raw.splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert lines[0]["message"] == "calling X with ***"
    assert lines[0]["market_id"] == "m-1" and lines[0]["logger"] == "kaizen_pipeline.test_logs"
    assert "postgresql://kaizen:***@db.internal" in lines[1]["message"]
    assert "ValueError" in lines[2]["exception"]
    assert path.name == f"kaizen-{datetime.now(UTC):%Y-%m-%d}.jsonl"


def test_a_file_per_day_and_only_the_newest_thirty_kept(tmp_path: Path) -> None:
    handler = DailyFileHandler(tmp_path / "logs", retention_days=30)
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for day in range(35):
        handler.emit(_record(f"day {day}", start + timedelta(days=day)))
    handler.close()
    files = log_files(tmp_path / "logs")
    assert len(files) == 30
    assert files[0].name == "kaizen-2026-01-06.jsonl" and files[-1].name == "kaizen-2026-02-04.jsonl"
    assert json.loads(files[-1].read_text())["message"] == "day 34"


def test_dagster_yaml_python_logs_write_run_logs_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    python_logs = yaml.safe_load((REPO / "dagster.yaml").read_text())["python_logs"]
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", TOKEN)

    @dg.asset
    def chatty(context) -> None:  # noqa: ANN001 (string annotations confuse Dagster here)
        context.log.info("from the context logger")
        logging.getLogger("kaizen_pipeline.ingest.demo").info("from a module logger, token %s", TOKEN)

    with dg.instance_for_test(overrides={"python_logs": python_logs}) as instance:
        result = dg.materialize([chatty], instance=instance)
    assert result.success
    (path,) = log_files(load_settings().logging.log_dir)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_message = {line["message"]: line for line in lines}
    assert by_message["from the context logger"]["run_id"] == result.run_id
    assert by_message["from the context logger"]["step_key"] == "chatty"
    assert "from a module logger, token ***" in by_message
    assert all(
        line["level"] != "DEBUG" for line in lines
    )  # logging.level (INFO) filters Dagster debug events
    assert TOKEN not in path.read_text()

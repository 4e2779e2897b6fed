"""`kaizen backfill` ends with what ran, where the data is and how to open the UI; a failure names its steps."""

from pathlib import Path

import pytest

from kaizen_pipeline.ingest.cli import backfill_summary
from kaizen_pipeline.settings import load_settings


def test_the_summary_says_what_ran_where_the_data_is_and_what_to_do_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    settings = load_settings()
    text = backfill_summary(settings, "run-1", True, 31.6, [])
    assert text.splitlines()[0] == "run run-1 succeeded in 32 s"
    assert (
        f"SQLite file {Path(settings.database.path).resolve()}" in text and f"DAGSTER_HOME={tmp_path}" in text
    )
    assert "kaizen start" in text and "127.0.0.1:3000" in text
    failed = backfill_summary(settings, "run-2", False, 5, ["market_prices", "tweets"])
    assert "run run-2 FAILED at market_prices, tweets" in failed and "Runs" in failed


def test_a_database_url_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    url = "postgresql+psycopg2://kaizen:s3cret-pw@127.0.0.1:5432/kaizen"
    settings = load_settings(database={"url": url})
    text = backfill_summary(settings, "run-3", True, 1, [])
    assert "s3cret-pw" not in text and "database.url" in text

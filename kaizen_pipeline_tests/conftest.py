"""Shared fixtures: an isolated environment, settings, a SQLite warehouse, an optional PostgreSQL one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import metadata
from kaizen_pipeline_tests.smtp import SmtpServer

POSTGRES_ENV = "KAIZEN_TEST_POSTGRES_URL"
# Read at import: the autouse kaizen_env fixture clears KAIZEN_* variables before each test runs.
UPDATE_SNAPSHOTS = os.environ.get("KAIZEN_UPDATE_SNAPSHOTS", "") == "1"


@pytest.fixture
def update_snapshots() -> bool:
    """True when KAIZEN_UPDATE_SNAPSHOTS=1: snapshot tests rewrite their files instead of failing."""
    return UPDATE_SNAPSHOTS


@pytest.fixture(autouse=True)
def kaizen_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own config file, data directory and no inherited KAIZEN_* variables."""
    for name in list(os.environ):
        if name.startswith("KAIZEN_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    monkeypatch.setenv("KAIZEN_CONFIG", str(config))
    monkeypatch.setenv("KAIZEN_DATABASE__PATH", str(tmp_path / "warehouse.sqlite"))
    monkeypatch.setenv("KAIZEN_DATABASE__BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("KAIZEN_LOGGING__LOG_DIR", str(tmp_path / "logs"))
    # tests measure what the pipeline records; the seeded demo history has its own tests (kaizen/test_demo_history.py)
    monkeypatch.setenv("KAIZEN_DEMO__KAIZEN_HISTORY_DAYS", "0")
    yield tmp_path


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    wh = Warehouse(settings.database.sqlalchemy_url())
    yield wh
    wh.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A clean PostgreSQL warehouse URL from KAIZEN_TEST_POSTGRES_URL, or skip."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (CI sets it to the local PostgreSQL)")
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} is not reachable: {exc.orig}")
    metadata.drop_all(engine)
    engine.dispose()
    yield url
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_warehouse(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Warehouse]:
    """The same test on SQLite and, when configured, on PostgreSQL."""
    if request.param == "sqlite":
        url = settings.database.sqlalchemy_url()
    else:
        url = request.getfixturevalue("postgres_url")
    wh = Warehouse(url)
    yield wh
    wh.dispose()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 with AUTH, for the tests that send email."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()

"""Ops fixtures: a real SMTP server (aiosmtpd) on 127.0.0.1 with AUTH, and alert settings pointing at it.

The server itself lives in kaizen_pipeline_tests/smtp.py (the end-to-end tests use it too).
"""

from __future__ import annotations

import pytest

from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline_tests.smtp import AUTH_WITHOUT_TLS_WARNING, SmtpServer, point_alerts_at


@pytest.fixture
def alert_settings(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Alerts to the test SMTP server with AUTH; the password only in the environment."""
    point_alerts_at(smtp_server, monkeypatch)
    return load_settings()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/ops/" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings(AUTH_WITHOUT_TLS_WARNING))

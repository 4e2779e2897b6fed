"""Fixtures of the kaizen tests: settings with a short impact window, resources bound to the test warehouse."""

from __future__ import annotations

import pytest

from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings


@pytest.fixture
def kaizen_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Seven-day impact windows, so a fortnight of simulated days measures an improvement."""
    monkeypatch.setenv("KAIZEN_KAIZEN__IMPACT_WINDOW_DAYS", "7")
    return load_settings()


@pytest.fixture
def resources(kaizen_settings: Settings) -> dict:
    return build_resources(kaizen_settings)

"""Research fixtures: one frozen demo world ingested into a temporary warehouse, shared by a module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.ingest.assets import INGEST_ASSETS
from kaizen_pipeline.research.assets import RESEARCH_ASSETS
from kaizen_pipeline.research.checks import RESEARCH_CHECKS
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings

FROZEN_NOW = "2026-11-20T12:05:00Z"
# The full 50-market world; 8 days of prices cover the 7-day X window (plus warm-up for the windows).
DEMO_ENV = {
    "KAIZEN_DEMO__FROZEN_NOW": FROZEN_NOW,
    "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "8",
    "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "7",
}


@dataclass
class DemoRun:
    env: dict[str, str]
    settings: Settings
    instance: dg.DagsterInstance
    research: dg.ExecuteInProcessResult


@contextmanager
def demo_env(env: dict[str, str]) -> Iterator[Settings]:
    """Only ``env`` as KAIZEN_* variables inside the block; yields the settings they make."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("KAIZEN_") and name != "KAIZEN_TEST_POSTGRES_URL":
                mp.delenv(name)
        for key, value in env.items():
            mp.setenv(key, value)
        yield load_settings()


def materialize_research(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*RESEARCH_ASSETS, *RESEARCH_CHECKS], resources=build_resources(settings), instance=instance
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Ingest the demo world once (frozen clock), then materialize the research group on it."""
    tmp: Path = tmp_path_factory.mktemp("research_demo")
    (tmp / "config.yaml").write_text("{}\n")
    env = {
        **DEMO_ENV,
        "KAIZEN_CONFIG": str(tmp / "config.yaml"),
        "KAIZEN_DATABASE__PATH": str(tmp / "wh.sqlite"),
    }
    with demo_env(env) as settings:
        instance = dg.DagsterInstance.ephemeral()
        dg.materialize([*INGEST_ASSETS], resources=build_resources(settings), instance=instance)
        research = materialize_research(settings, instance)
    return DemoRun(env=env, settings=settings, instance=instance, research=research)

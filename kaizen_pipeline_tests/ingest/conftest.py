"""Ingest fixtures: a small frozen demo world and a real HTTP simulator server on 127.0.0.1."""

from collections.abc import Iterator

import httpx
import pytest

from kaizen_pipeline.ingest.simulator.server import SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.settings import Settings, load_settings

FROZEN_NOW = "2026-11-20T12:05:00Z"


@pytest.fixture
def small_world() -> DemoWorld:
    frozen = load_settings(demo={"frozen_now": FROZEN_NOW}).demo.frozen_now
    assert frozen is not None
    return DemoWorld(seed=11, n_markets=12, history_days=3, clock=frozen.timestamp)


@pytest.fixture
def server(small_world: DemoWorld) -> Iterator[SimulatorServer]:
    with SimulatorServer(small_world, timeout_fault_s=1.0) as srv:
        yield srv


@pytest.fixture
def live_server() -> Iterator[SimulatorServer]:
    """A server whose world follows the wall clock, as a live API would."""
    world = DemoWorld(seed=11, n_markets=12, history_days=5)
    world.handle(httpx.Request("GET", "http://warm-up/markets/keyset?limit=100"))  # build the series up front
    with SimulatorServer(world, timeout_fault_s=1.0) as srv:
        yield srv


def live_settings(url: str, **overrides: object) -> Settings:
    """Live-mode settings pointed at a local server, with tiny backoff so retries are quick."""
    sections: dict[str, object] = {
        "source": "live",
        "polymarket": {"gamma_url": url, "clob_url": url, "data_url": url},
        "twitter": {"api_url": url},
        "transport": {"backoff_base_seconds": 0.01, "timeout_seconds": 0.5, "max_retries": 5},
        "data_collection": {
            "max_markets": 12,
            "history_days": 3,
            "trade_history_days": 2,
            "min_volume_24h": 50000,
        },
        "demo": {"frozen_now": FROZEN_NOW},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(sections.get(key), dict):
            sections[key] = {**sections[key], **value}  # type: ignore[dict-item]
        else:
            sections[key] = value
    return load_settings(**sections)

"""A demo project home for end-to-end tests that run the real Dagster programs (webserver, daemon, CLI)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

FROZEN_NOW = "2026-02-01T00:00:00Z"
DAGSTER_YAML = "storage:\n  sqlite:\n    base_dir: {home}/dagster\ntelemetry:\n  enabled: false\n"
WORKSPACE_YAML = "load_from:\n  - python_module:\n      module_name: kaizen_pipeline.definitions\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_home(home: Path, markets: int = 10) -> dict[str, str]:
    """Write ``home``'s dagster.yaml, workspace.yaml and an empty config; return the environment of its commands."""
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home))
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    (home / "config.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_")}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "KAIZEN_CONFIG": str(home / "config.yaml"),
            "KAIZEN_DATABASE__PATH": str(home / "warehouse.sqlite"),
            "KAIZEN_DATABASE__BACKUP_DIR": str(home / "backups"),
            "KAIZEN_LOGGING__LOG_DIR": str(home / "logs"),
            "KAIZEN_DEMO__FROZEN_NOW": FROZEN_NOW,
            "KAIZEN_DEMO__N_MARKETS": str(markets),
            "KAIZEN_DATA_COLLECTION__MAX_MARKETS": str(markets),
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env

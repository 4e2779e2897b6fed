"""The code location as the UI sees it: it loads, every definition is described, the house rules hold."""

import ast
from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.resources import WarehouseResource, build_resources
from kaizen_pipeline.settings import get_settings

PACKAGE = Path(__file__).resolve().parents[1] / "kaizen_pipeline"
WIRING = {"assets.py", "checks.py", "schedules.py", "sensors.py", "jobs.py", "defs.py", "definitions.py",
          "resources.py", "cli.py", "__init__.py"}  # fmt: skip


def test_every_asset_check_schedule_sensor_and_job_has_a_description() -> None:
    defs = build_defs(get_settings())
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    missing = [
        f"asset {k.to_user_string()}" for k in graph.get_all_asset_keys() if not graph.get(k).description
    ]
    missing += [f"check {k.name}" for k in graph.asset_check_keys if not graph.get(k).description]
    missing += [f"schedule {s.name}" for s in repo.schedule_defs if not s.description]
    missing += [f"sensor {s.name}" for s in repo.sensor_defs if not s.description]
    missing += [
        f"job {j.name}" for j in repo.get_all_jobs() if not j.description and not j.name.startswith("__")
    ]
    assert missing == []
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"ingest", "research", "backtest", "kaizen"} <= groups
    assert repo.has_job("main_job") and repo.has_job("ingest_job")


def test_pure_modules_import_no_dagster() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in WIRING:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "dagster" or n.startswith("dagster.") for n in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_database_password_never_reaches_dagster_config(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    url = postgres_url.replace("postgres@", "postgres:pw-9f8e7d@", 1)  # trust auth ignores the password
    monkeypatch.setenv("KAIZEN_DATABASE__URL", url)
    get_settings.cache_clear()
    resource = build_resources(get_settings())["warehouse"]
    assert isinstance(resource, WarehouseResource)
    assert "pw-9f8e7d" not in resource.url and "***" in resource.url
    assert resource.connect_url() == url
    assert resource.get().count("price_points") == 0
    shown = dg.Definitions(resources={"warehouse": resource}).get_repository_def().get_top_level_resources()
    assert "pw-9f8e7d" not in str(shown)

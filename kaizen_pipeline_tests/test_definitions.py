"""The code location as the UI sees it: it loads, every definition is described, the house rules hold."""

import ast
from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.resources import WarehouseResource, build_resources
from kaizen_pipeline.settings import ConfigError, load_settings

PACKAGE = Path(__file__).resolve().parents[1] / "kaizen_pipeline"
# replay.py runs the assets in process on a frozen clock (bench and end-to-end tests): wiring too
WIRING = {"assets.py", "checks.py", "schedules.py", "sensors.py", "jobs.py", "defs.py", "definitions.py",
          "resources.py", "cli.py", "__init__.py", "instance.py", "table_docs.py",
          "replay.py", "partitions.py"}  # fmt: skip
# Where the settings may be loaded from config.yaml and the environment directly: the resource, the code
# location at load (partitions.py: the partitions' start), the log handler dagster.yaml builds, the CLIs.
# Everything else gets them passed or from the SettingsResource.
LOADS_SETTINGS = {"resources.py", "definitions.py", "logs.py", "cli.py", "partitions.py"}


def test_every_asset_check_schedule_sensor_and_job_has_a_description() -> None:
    defs = build_defs(load_settings())
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
    resource = build_resources(load_settings())["warehouse"]
    assert isinstance(resource, WarehouseResource)
    assert isinstance(resource.url, dg.EnvVar) and resource.url.env_var_name == "KAIZEN_DATABASE__URL"
    assert "pw-9f8e7d" not in resource.url.env_var_name
    assert resource.connect_url() == url
    assert resource.get().count("price_points") == 0
    shown = dg.Definitions(resources={"warehouse": resource}).get_repository_def().get_top_level_resources()
    assert "pw-9f8e7d" not in str(shown)


def test_run_time_code_gets_settings_from_the_resource() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in LOADS_SETTINGS or "settings" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "get_settings",
                "load_settings",
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_no_module_imports_dagster_internals() -> None:
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.parent.joinpath("kaizen_pipeline_tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.startswith("dagster._") for n in names):
                offenders.append(str(path))
    assert offenders == []


def test_a_database_password_in_config_yaml_is_refused(
    kaizen_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = kaizen_env / "config.yaml"
    config.write_text("database:\n  url: postgresql+psycopg2://kaizen:hunter2@127.0.0.1:5432/test\n")
    with pytest.raises(ConfigError, match="database.url: a password belongs in KAIZEN_DATABASE__URL") as err:
        build_resources(load_settings())
    assert "hunter2" not in str(err.value)


def test_one_group_per_domain_kinds_not_compute_kind_and_string_deps_across_domains() -> None:
    from kaizen_pipeline.definitions import DOMAINS

    settings = load_settings()
    for domain in DOMAINS:
        name = domain.__name__.split(".")[-2]
        groups = {spec.group_name for a in domain.build_defs(settings).assets or [] for spec in a.specs}
        assert groups == {name}, (name, groups)
    sources = {p.relative_to(PACKAGE): p.read_text() for p in PACKAGE.rglob("*.py")}
    assert [str(p) for p, text in sources.items() if "compute_kind" in text] == []
    # other domains' assets are named by key string in deps (not AssetKey constants)
    assert [str(p) for p, text in sources.items() if p.name == "assets.py" and "dg.AssetKey(" in text] == []

"""Settings: the plan's defaults, the documented env-var names, and errors that name the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from kaizen_pipeline.settings import ConfigError, load_settings
from kaizen_pipeline.settings._base import MOVED_KEYS

REPO = Path(__file__).resolve().parents[1]


def test_defaults_match_the_trading_plan() -> None:
    s = load_settings()
    assert s.source == "demo"
    assert (
        s.data_collection.frequency_minutes,
        s.data_collection.min_volume_24h,
        s.data_collection.max_markets,
    ) == (
        15,
        50_000,
        50,
    )
    assert s.twitter.keywords == ["polymarket.com", "#Polymarket"]
    assert s.twitter.max_tweets_per_query == 100 and s.twitter.bot_detection is True
    assert (s.database.backup_interval_hours, s.database.max_size_gb) == (24, 5)
    assert (s.signals.rvr_threshold, s.signals.roc_threshold, s.signals.hype_threshold) == (2.0, 0.10, 70)
    assert (s.signals.max_position_pct, s.signals.max_exposure_pct) == (5, 25)
    assert (s.risk.daily, s.risk.weekly, s.risk.monthly, s.risk.circuit_breaker) == (0.05, 0.10, 0.20, 0.15)


def test_repository_config_yaml_is_valid() -> None:
    repo_config = Path(__file__).resolve().parents[1] / "config.yaml"
    s = load_settings(repo_config)
    assert s.source == "demo"
    # the quickstart's demo must not start fetching and mailing on its own when the UI starts
    assert s.data_collection.schedules_running is None and not s.schedules_on


def test_documented_env_vars_override_yaml(kaizen_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (kaizen_env / "config.yaml").write_text(
        "signals:\n  rvr_threshold: 3.0\ndata_collection:\n  max_markets: 20\n"
    )
    monkeypatch.setenv("KAIZEN_SOURCE", "live")
    monkeypatch.setenv("KAIZEN_POLYMARKET__GAMMA_URL", "http://127.0.0.1:8900")
    monkeypatch.setenv("KAIZEN_POLYMARKET__CLOB_URL", "http://127.0.0.1:8901")
    monkeypatch.setenv("KAIZEN_TWITTER__API_URL", "http://127.0.0.1:8902")
    monkeypatch.setenv("KAIZEN_DATA_COLLECTION__MAX_MARKETS", "7")
    monkeypatch.setenv("KAIZEN_DATABASE__URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("KAIZEN_SIGNALS__ROC_THRESHOLD", "0.2")
    s = load_settings()
    assert s.source == "live"
    assert s.polymarket.gamma_url == "http://127.0.0.1:8900"
    assert s.polymarket.clob_url == "http://127.0.0.1:8901"
    assert s.twitter.api_url == "http://127.0.0.1:8902"
    assert s.data_collection.max_markets == 7  # env beats YAML
    assert s.signals.rvr_threshold == 3.0 and s.signals.roc_threshold == 0.2  # nested sections merge
    assert s.database.sqlalchemy_url().startswith("postgresql+psycopg2://")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("signals:\n  rvr_treshold: 2\n", "signals.rvr_treshold: unknown config key"),
        (
            "data_collection:\n  max_markets: many\n",
            "data_collection.max_markets: Input should be a valid integer",
        ),
        ("signals:\n  roc_threshold: -0.1\n", "signals.roc_threshold: Input should be greater than 0"),
        (
            "signals:\n  hype_threshold: 140\n",
            "signals.hype_threshold: Input should be less than or equal to 100",
        ),
        ("source: paper\n", "source: Input should be 'demo' or 'live'"),
        ("signals:\n  max_position_pct: 30\n", "max_position_pct must not exceed max_exposure_pct"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_bad_config_names_the_key_and_the_problem(kaizen_env: Path, yaml_text: str, expected: str) -> None:
    (kaizen_env / "config.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert expected in str(err.value)


def test_missing_config_file_named_by_env_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAIZEN_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="file not found"):
        load_settings()


def test_secrets_only_from_env_and_never_echoed(kaizen_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (kaizen_env / "config.yaml").write_text("twitter:\n  bearer_token: hunter2-in-yaml\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "KAIZEN_TWITTER__BEARER_TOKEN" in str(err.value)
    assert "hunter2-in-yaml" not in str(err.value)

    (kaizen_env / "config.yaml").write_text("{}\n")
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", "s3cr3t-token-value")
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_PASSWORD", "pw-value-123")
    s = load_settings()
    assert s.twitter.bearer_token is not None
    assert s.twitter.bearer_token.get_secret_value() == "s3cr3t-token-value"
    dumped = repr(s) + str(s) + s.model_dump_json()
    assert "s3cr3t-token-value" not in dumped and "pw-value-123" not in dumped


def test_configuration_reference_documents_every_config_key() -> None:
    from kaizen_pipeline.settings import config_reference

    reference = (REPO / "docs" / "configuration.md").read_text()
    missing = [row.key for row in config_reference() if f"`{row.key}`" not in reference]
    assert missing == [], f"docs/configuration.md does not document: {missing}"


def test_every_config_key_says_what_it_does() -> None:
    """The reference is a user's only map of a knob: no key, and no field of a list entry, without a description."""
    from kaizen_pipeline.settings import config_reference

    rows = config_reference()
    undescribed = [row.key for row in rows if not row.description.strip()]
    undescribed += [
        f"{row.key}[].{name}"
        for row in rows
        if row.item_model is not None
        for name, info in row.item_model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert undescribed == [], f"config keys without a description: {undescribed}"


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated: after changing a setting run python -m kaizen_pipeline.settings --write."""
    from kaizen_pipeline.settings import render_reference

    assert (REPO / "docs" / "configuration.md").read_text() == render_reference()
    result = subprocess.run(
        [sys.executable, "-m", "kaizen_pipeline.settings", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_reference_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kaizen_pipeline.settings.__main__ import main

    target = tmp_path / "docs" / "configuration.md"
    assert main(["--check", "--path", str(target)]) == 1  # missing
    assert main(["--write", "--path", str(target)]) == 0
    assert main(["--check", "--path", str(target)]) == 0
    target.write_text(target.read_text().replace("| `source` |", "| `sauce` |"))
    assert main(["--check", "--path", str(target)]) == 1
    assert "--write" in capsys.readouterr().err


def test_reference_escapes_pipes_hides_secrets_and_tables_the_kaizen_lists() -> None:
    from kaizen_pipeline.settings import default_kaizen_catalogue, default_kaizen_metrics, render_reference

    text = render_reference()
    lines = text.splitlines()
    tolerance = next(line for line in lines if line.startswith("| `quality.binary_sum_tolerance` |"))
    assert r"Allowed \|YES + NO - 1\| at the same timestamp." in tolerance
    assert tolerance.replace("\\|", "").count("|") == 5  # four cells: key | default | env var | description
    token = next(line for line in lines if line.startswith("| `twitter.bearer_token` |"))
    assert "(env only)" in token and "`KAIZEN_TWITTER__BEARER_TOKEN`" in token

    # kaizen.metrics: its own table, one row per metric and one column per field, no Python repr
    start = lines.index("### `kaizen.metrics` defaults")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| name |"))
    assert lines[header] == (
        "| name | description | unit | direction | target | severity | owner | category | importance "
        "| value_per_unit |"
    )
    metrics = default_kaizen_metrics()
    rows = lines[header + 2 : header + 2 + len(metrics)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [m.name for m in metrics]
    assert rows[0].startswith(
        "| run_success_rate | Share of finished Dagster runs that succeeded | fraction |"
    )
    assert "KaizenMetricSettings(" not in text and "'name':" not in text and '"name":' not in text
    catalogue_row = next(line for line in lines if line.startswith("| raise_retry_budget |"))
    assert "| transport.max_retries | 7 |" in catalogue_row
    assert len(default_kaizen_catalogue()) == sum(
        1 for c in default_kaizen_catalogue() if any(line.startswith(f"| {c.key} |") for line in lines)
    )


def test_kaizen_defaults_are_package_data() -> None:
    from importlib import resources

    text = resources.files("kaizen_pipeline.settings").joinpath("kaizen_defaults.yaml").read_text()
    assert "raise_retry_budget" in text
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"kaizen_pipeline.settings" = ["kaizen_defaults.yaml"]' in pyproject


def test_every_default_catalogue_parameter_is_a_config_key() -> None:
    from kaizen_pipeline.settings import default_kaizen_catalogue, scalar_config_keys

    parameters = {c.parameter for c in default_kaizen_catalogue() if c.parameter is not None}
    assert parameters and parameters <= scalar_config_keys()
    assert "transport.max_retries" in scalar_config_keys()
    assert "twitter.keywords" not in scalar_config_keys()  # a list, not one value
    assert "twitter.bearer_token" not in scalar_config_keys()  # a secret
    assert "backtest.monte_carlo" not in scalar_config_keys()  # a section
    assert "backtest.monte_carlo.runs" in scalar_config_keys()
    s = load_settings(REPO / "config.yaml")
    assert {c.parameter for c in s.kaizen.catalogue if c.parameter} <= scalar_config_keys()


@pytest.mark.parametrize("parameter", ["transport.max_retry", "twitter.keywords", "transport"])
def test_catalogue_parameter_that_is_no_config_key_is_rejected(kaizen_env: Path, parameter: str) -> None:
    (kaizen_env / "config.yaml").write_text(
        "kaizen:\n  catalogue:\n"
        "    - {key: more_retries, title: More retries, target_metric: api_error_rate, predicted_effect: -0.01,\n"
        f"       parameter: {parameter}, proposed_value: '7'}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert f"kaizen.catalogue[more_retries].parameter: {parameter!r} is not a config key" in message
    assert "(got" not in message  # the whole settings input (secrets included) is never echoed
    if parameter == "transport.max_retry":
        assert "did you mean transport.max_retries?" in message


@pytest.mark.parametrize("via_env", [False, True], ids=["config.yaml", "env"])
@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_moved_keys_fail_naming_the_key_that_replaced_them(
    kaizen_env: Path, monkeypatch: pytest.MonkeyPatch, old: str, via_env: bool
) -> None:
    section, key = old.split(".")
    if via_env:
        monkeypatch.setenv(f"KAIZEN_{section.upper()}__{key.upper()}", "4")
    else:
        (kaizen_env / "config.yaml").write_text(f"{section}:\n  {key}: 4\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    new = MOVED_KEYS[old][0]
    assert f"{old} was removed: set {new} instead" in str(err.value)
    assert "(got {" not in str(err.value), "a section's check must not echo the whole section"


def test_one_switch_stops_every_schedule_and_sensor(kaizen_env: Path) -> None:
    import dagster as dg

    from kaizen_pipeline.definitions import build_defs

    (kaizen_env / "config.yaml").write_text("data_collection:\n  schedules_running: false\n")
    repo = build_defs(load_settings()).get_repository_def()
    assert repo.schedule_defs and repo.sensor_defs
    assert {s.default_status for s in repo.schedule_defs} == {dg.DefaultScheduleStatus.STOPPED}
    assert {s.default_status for s in repo.sensor_defs} == {dg.DefaultSensorStatus.STOPPED}
    (kaizen_env / "config.yaml").write_text("{}\n")  # empty: stopped on the demo source
    repo = build_defs(load_settings()).get_repository_def()
    assert {s.default_status for s in repo.schedule_defs} == {dg.DefaultScheduleStatus.STOPPED}
    (kaizen_env / "config.yaml").write_text("data_collection:\n  schedules_running: true\n")
    repo = build_defs(load_settings()).get_repository_def()
    assert {s.default_status for s in repo.schedule_defs} == {dg.DefaultScheduleStatus.RUNNING}
    assert {s.default_status for s in repo.sensor_defs} == {dg.DefaultSensorStatus.RUNNING}


def test_cli_prints_effective_config_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kaizen_pipeline.cli import main

    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", "tok-abc-123")
    monkeypatch.setenv("KAIZEN_DATA_COLLECTION__MAX_MARKETS", "9")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "max_markets: 9" in out and "tok-abc-123" not in out and "**********" in out
    monkeypatch.setenv("KAIZEN_SIGNALS__RVR_THRESHOLD", "-1")
    assert main(["config"]) == 2
    assert "signals.rvr_threshold: Input should be greater than 0" in capsys.readouterr().err


def test_cli_reference_is_the_docs_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    from kaizen_pipeline.cli import main
    from kaizen_pipeline.settings import render_reference

    assert main(["config", "--reference"]) == 0
    assert capsys.readouterr().out == render_reference()

"""Settings: the plan's defaults, the documented env-var names, and errors that name the key."""

from pathlib import Path

import pytest

from kaizen_pipeline.settings import ConfigError, load_settings


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


def test_readme_documents_every_config_key() -> None:
    from kaizen_pipeline.settings import config_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [key for key, _, _ in config_reference() if f"`{key}`" not in readme]
    assert missing == [], f"README.md does not document: {missing}"


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

"""The settings resource: the one way run-time code gets settings, per run and per unit."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.resources import SettingsResource, build_resources
from kaizen_pipeline.settings import SECRET_KEYS, Settings, load_settings


def test_pinned_settings_are_exactly_the_ones_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(signals={"roc_threshold": 0.3})
    resource = SettingsResource.of(settings)
    # neither the environment nor config.yaml of the run changes pinned settings
    monkeypatch.setenv("KAIZEN_SIGNALS__ROC_THRESHOLD", "0.9")
    assert resource.get() == settings
    assert resource.for_unit("market", "m-1").signals.roc_threshold == 0.3


def test_the_code_location_reads_config_and_environment_when_the_run_starts(
    kaizen_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = build_resources(load_settings(), pinned=False)["settings"]
    (kaizen_env / "config.yaml").write_text("signals:\n  rvr_threshold: 2.5\n")
    monkeypatch.setenv("KAIZEN_SIGNALS__HYPE_THRESHOLD", "80")

    @dg.asset
    def reads(settings: SettingsResource) -> None:
        run = settings.for_unit("run", "r-1")
        assert (run.signals.rvr_threshold, run.signals.hype_threshold) == (2.5, 80)

    assert dg.materialize([reads], resources={"settings": resource}).success


def test_secrets_are_env_vars_the_ui_shows_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", "tok-5ecret-77")
    for resource in (
        SettingsResource.from_environment(),
        SettingsResource.of(load_settings()),
    ):
        assert isinstance(resource.twitter_bearer_token, dg.EnvVar)
        assert "tok-5ecret-77" not in resource.pinned_json
        shown = (
            dg.Definitions(resources={"settings": resource}).get_repository_def().get_top_level_resources()
        )
        assert "tok-5ecret-77" not in str(shown)

        @dg.asset
        def reads(settings: SettingsResource) -> None:
            token = settings.get().twitter.bearer_token
            assert token is not None and token.get_secret_value() == "tok-5ecret-77"

        assert dg.materialize([reads], resources={"settings": resource}).success


def test_for_unit_names_a_bad_kind() -> None:
    with pytest.raises(ValueError, match="for_unit kind: expected 'market' or 'run', got 'trader'"):
        SettingsResource.of(load_settings()).for_unit("trader", "x")  # type: ignore[arg-type]


def test_a_bad_config_fails_the_run_naming_the_key(kaizen_env: Path) -> None:
    (kaizen_env / "config.yaml").write_text("signals:\n  roc_threshold: -1\n")

    @dg.asset
    def reads(settings: SettingsResource) -> Settings:
        return settings.get()

    result = dg.materialize([reads], resources={"settings": SettingsResource()}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    text = str(failure.cause.message if failure.cause else failure.message)
    assert "signals.roc_threshold" in text


def test_every_secret_reaches_the_run_through_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {dotted: f"s3cret-{i}-value-for-{dotted}" for i, dotted in enumerate(SECRET_KEYS)}
    for dotted in ("alerts.slack_webhook_url", "alerts.webhook_url"):  # these must be URLs
        values[dotted] = f"http://127.0.0.1:9/hooks/{values[dotted]}"
    for dotted, value in values.items():
        monkeypatch.setenv(SECRET_KEYS[dotted], value)
    monkeypatch.setenv("KAIZEN_ALERTS__TELEGRAM_ENABLED", "true")
    for resource in (SettingsResource.from_environment(), SettingsResource.of(load_settings())):
        settings = resource.get()
        for dotted, value in values.items():
            section, key = dotted.split(".")
            assert getattr(getattr(settings, section), key).get_secret_value() == value, dotted
            assert value not in resource.pinned_json

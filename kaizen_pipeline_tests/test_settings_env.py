"""KAIZEN_* environment mistakes fail loudly, in one line, naming the variable and the key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaizen_pipeline.cli import main
from kaizen_pipeline.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[1]


def _cli_config(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["config"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "variable",
    ["KAIZEN_SIGNAL__ROC_THRESHOLD", "KAIZEN_SIGNALS_ROC_THRESHOLD", "KAIZEN_SIGNALS__ROC_TRESHOLD"],
)
def test_unknown_variable_fails_naming_it_and_the_closest_key(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, "0.2")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert variable in str(err.value)
    assert "KAIZEN_SIGNALS__ROC_THRESHOLD" in str(err.value)
    code, output = _cli_config(capsys)
    assert code != 0
    assert variable in output and "did you mean KAIZEN_SIGNALS__ROC_THRESHOLD" in output
    assert "Traceback" not in output


def test_valid_and_non_config_variables_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_SIGNALS__ROC_THRESHOLD", "0.2")
    monkeypatch.setenv("KAIZEN_BACKTEST__MONTE_CARLO__RUNS", "100")
    monkeypatch.setenv("kaizen_source", "demo")
    monkeypatch.setenv("KAIZEN_TEST_POSTGRES_URL", "postgresql://x@127.0.0.1/none")
    monkeypatch.setenv("KAIZEN_DAGSTER_POSTGRES_URL", "postgresql://x@127.0.0.1/none")
    s = load_settings()
    assert s.signals.roc_threshold == 0.2 and s.backtest.monte_carlo.runs == 100


def test_list_key_without_json_names_the_key_and_shows_an_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAIZEN_TWITTER__KEYWORDS", "polymarket")
    code, output = _cli_config(capsys)
    assert code != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "twitter.keywords wants a JSON value" in output
    assert "KAIZEN_TWITTER__KEYWORDS='[" in output
    monkeypatch.setenv("KAIZEN_TWITTER__KEYWORDS", '["polymarket"]')
    assert load_settings().twitter.keywords == ["polymarket"]


def test_frozen_now_before_epoch_names_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", "2025-06-01T00:00:00Z")
    monkeypatch.setenv("KAIZEN_DEMO__EPOCH", "2026-01-01T00:00:00Z")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "demo.frozen_now" in str(err.value) and "demo.epoch" in str(err.value)
    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", "2026-02-01T00:00:00Z")
    assert load_settings().demo.frozen_now is not None


def test_kaizen_config_command_in_a_subprocess_prints_one_line(kaizen_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_")}
    env.update(
        KAIZEN_CONFIG=str(kaizen_env / "config.yaml"),
        KAIZEN_TWITTER__KEYWORDS="polymarket",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "kaizen_pipeline.cli", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=kaizen_env,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "KAIZEN_TWITTER__KEYWORDS" in proc.stderr and "twitter.keywords" in proc.stderr

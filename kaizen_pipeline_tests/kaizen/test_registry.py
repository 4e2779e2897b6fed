"""The deviation rule fires exactly when a metric is strictly beyond factor x target (or target / factor)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaizen_pipeline.kaizen.registry import deviation_line, evaluate, is_deviation, relative_gap
from kaizen_pipeline.settings import ConfigError, KaizenMetricSettings, load_settings


def spec(direction: str, target: float, severity: str = "warning") -> KaizenMetricSettings:
    return KaizenMetricSettings(
        name="m", direction=direction, target=target, severity=severity, category="outcome", unit="u"
    )


def test_higher_is_better_deviates_only_below_ninety_percent_of_target() -> None:
    s = spec("higher", 0.95)
    assert deviation_line(s, 0.9) == pytest.approx(0.855)
    assert not is_deviation(s, 0.95, 0.9)
    assert not is_deviation(s, 0.855, 0.9)  # on the line: not yet a deviation
    assert is_deviation(s, 0.8549, 0.9)
    assert not is_deviation(s, 2.0, 0.9)


def test_lower_is_better_deviates_only_above_target_over_factor() -> None:
    s = spec("lower", 30)
    assert deviation_line(s, 0.9) == pytest.approx(33.3333333)
    assert not is_deviation(s, 33.33, 0.9)
    assert is_deviation(s, 33.34, 0.9)
    assert not is_deviation(s, 0.0, 0.9)


def test_the_factor_is_configurable() -> None:
    s = spec("higher", 100)
    assert is_deviation(s, 79, 0.8)
    assert not is_deviation(s, 81, 0.8)
    assert is_deviation(s, 99, 1.0)


@given(
    target=st.floats(0.01, 1e6),
    value=st.floats(0, 2e6),
    factor=st.floats(0.5, 1.0),
    direction=st.sampled_from(["higher", "lower"]),
)
def test_rule_matches_its_definition(target: float, value: float, factor: float, direction: str) -> None:
    s = spec(direction, target)
    expected = value < factor * target if direction == "higher" else value > target / factor
    assert is_deviation(s, value, factor) == expected


def test_evaluate_reports_value_target_and_signed_deviation() -> None:
    result = evaluate(spec("lower", 0.02, "critical"), 0.03, 0.9)
    assert result.deviates
    assert result.deviation == pytest.approx(-0.5)  # 50% worse than target
    meta = result.as_metadata()
    assert meta["value"] == 0.03 and meta["target"] == 0.02 and meta["severity"] == "critical"
    assert relative_gap(spec("higher", 4.0), 3.0) == pytest.approx(0.25)
    assert relative_gap(spec("higher", 4.0), 5.0) == 0.0


def test_missing_value_is_an_error_naming_the_metric() -> None:
    with pytest.raises(ValueError, match="m: value is missing"):
        is_deviation(spec("higher", 1.0), float("nan"), 0.9)


def test_registry_validation_names_the_problem(kaizen_env) -> None:
    config = kaizen_env / "config.yaml"
    config.write_text("kaizen:\n  timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match="timezone"):
        load_settings()
    config.write_text(
        "kaizen:\n  catalogue:\n    - {key: x, title: X, target_metric: nope, predicted_effect: 1}\n"
    )
    with pytest.raises(ConfigError, match="target_metric not in metrics"):
        load_settings()
    config.write_text("kaizen:\n  deviation_factor: 1.5\n")
    with pytest.raises(ConfigError, match="deviation_factor"):
        load_settings()


def test_default_registry_has_targets_and_owners() -> None:
    ks = load_settings().kaizen
    names = [m.name for m in ks.metrics]
    assert {"run_success_rate", "signal_hit_rate", "backtest_sharpe", "feedback_score"} <= set(names)
    assert all(m.owner for m in ks.metrics)
    assert any(m.severity == "critical" for m in ks.metrics)

"""The constraint on constructed run histories: critical paths, failures, and importance-weighted metric gaps."""

from __future__ import annotations

import pandas as pd
import pytest

from kaizen_pipeline.kaizen.bottleneck import (
    choose_constraint,
    critical_path,
    outcome_ranking,
    pipeline_ranking,
)
from kaizen_pipeline.settings import KaizenMetricSettings


def steps(run_id: str, spans: dict[str, tuple[float, float]], failed: tuple[str, ...] = ()) -> list[dict]:
    return [
        {
            "run_id": run_id,
            "step_key": key,
            "status": "failure" if key in failed else "success",
            "start": s,
            "end": e,
        }
        for key, (s, e) in spans.items()
    ]


# ingest (0-10) feeds features (10-40) and hype (10-15, in parallel); signals waits for both (40-45).
DIAMOND = {"ingest": (0, 10), "features": (10, 40), "hype": (10, 15), "signals": (40, 45)}


def test_critical_path_walks_back_through_the_step_each_one_waited_for() -> None:
    frame = pd.DataFrame(steps("r1", DIAMOND))
    assert critical_path(frame) == ["ingest", "features", "signals"]


def test_sequential_runs_put_every_step_on_the_critical_path() -> None:
    frame = pd.DataFrame(steps("r1", {"a": (0, 1), "b": (1, 3), "c": (3, 4)}))
    assert critical_path(frame) == ["a", "b", "c"]


def test_the_step_dominating_critical_path_time_ranks_first() -> None:
    history = pd.DataFrame(steps("r1", DIAMOND) + steps("r2", DIAMOND))
    ranking = pipeline_ranking(history)
    assert ranking["step_key"].tolist()[0] == "features"
    features = ranking.set_index("step_key").loc["features"]
    assert features["critical_seconds"] == 60  # 30 s in each of two runs
    assert features["critical_share"] == pytest.approx(60 / (20 + 60 + 10))
    assert ranking.set_index("step_key").loc["hype", "critical_seconds"] == 0  # off the critical path


def test_failures_can_make_a_short_step_the_bottleneck() -> None:
    history = pd.DataFrame(
        steps("r1", DIAMOND, failed=("hype",)) + steps("r2", DIAMOND, failed=("hype",)) + steps("r3", DIAMOND)
    )
    ranking = pipeline_ranking(history).set_index("step_key")
    assert ranking.loc["hype", "failures"] == 2 and ranking.loc["hype", "failure_share"] == 1.0
    assert ranking["score"].idxmax() == "hype"  # 0 + 1.0 beats features' 0.667


def metric(
    name: str, direction: str, target: float, category: str, importance: float = 1.0
) -> KaizenMetricSettings:
    return KaizenMetricSettings(
        name=name, direction=direction, target=target, category=category, importance=importance
    )


SPECS = [
    metric("run_success_rate", "higher", 0.95, "pipeline", 3),
    metric("signal_hit_rate", "higher", 0.55, "outcome", 3),
    metric("backtest_sharpe", "higher", 1.0, "outcome", 1),
]


def test_outcome_gap_is_weighted_by_importance() -> None:
    # hit rate 10% short (weight 3: 0.30) outranks sharpe 20% short (weight 1: 0.20)
    ranking = outcome_ranking(
        {"run_success_rate": 0.99, "signal_hit_rate": 0.495, "backtest_sharpe": 0.8}, SPECS, 0.9
    )
    assert ranking["metric"].tolist() == ["signal_hit_rate", "backtest_sharpe", "run_success_rate"]
    assert ranking["weighted_gap"].iloc[0] == pytest.approx(0.3)
    constraint = choose_constraint(ranking, pipeline_ranking(pd.DataFrame(steps("r1", DIAMOND))))
    assert (constraint.kind, constraint.name) == ("outcome", "signal_hit_rate")
    assert "weighted gap" in constraint.explanation


def test_a_deviating_pipeline_metric_puts_the_constraint_in_the_pipeline() -> None:
    ranking = outcome_ranking(
        {"run_success_rate": 0.6, "signal_hit_rate": 0.3, "backtest_sharpe": 0.1}, SPECS, 0.9
    )
    history = pd.DataFrame(steps("r1", DIAMOND, failed=("features",)) + steps("r2", DIAMOND))
    constraint = choose_constraint(ranking, pipeline_ranking(history))
    assert (constraint.kind, constraint.name, constraint.metric) == (
        "pipeline",
        "features",
        "run_success_rate",
    )
    assert "critical path" in constraint.explanation
    without_steps = choose_constraint(ranking, pipeline_ranking(pd.DataFrame()))
    assert (without_steps.kind, without_steps.name) == ("pipeline", "run_success_rate")


def test_all_targets_met_still_names_the_tightest_outcome() -> None:
    ranking = outcome_ranking(
        {"run_success_rate": 1.0, "signal_hit_rate": 0.60, "backtest_sharpe": 2.0}, SPECS, 0.9
    )
    constraint = choose_constraint(ranking, pipeline_ranking(pd.DataFrame()))
    assert constraint.name == "signal_hit_rate" and "every target is met" in constraint.explanation
    assert choose_constraint(outcome_ranking({}, SPECS, 0.9), pipeline_ranking(pd.DataFrame())) is None

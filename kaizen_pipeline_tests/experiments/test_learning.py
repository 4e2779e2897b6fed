"""What ended experiments teach the recommender: measured effects correct the predictions per parameter,
a shipped change proposes its next step once config holds it, and a change stopped for harm cools its
direction down."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from kaizen_pipeline.experiments.learning import (
    cooldowns,
    cooled,
    experiment_impacts,
    refinements,
    rollout_cooldowns,
)
from kaizen_pipeline.kaizen.improvements import bias_factor
from kaizen_pipeline.kaizen.loop import learned_from_experiments
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.settings.experiments import ParameterBounds
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.experiments.test_runner import NOW, _run_experiment

RVR_BOUNDS = {"signals.rvr_threshold": ParameterBounds(min=1.0, max=3.2, max_step=1.0)}


def _experiment(
    exp_id: str, status: str, control: float, treatment: float, **extra: object
) -> dict[str, object]:
    return {
        "experiment_id": exp_id, "catalogue_key": exp_id.split("-")[0], "parameter": "signals.rvr_threshold",
        "status": status, "control_value": str(control), "treatment_value": str(treatment), "mde": 0.005,
        "direction": "higher", "target_metric": "backtest_sharpe", "predicted_effect": 0.4, "decision": None,
        "ended_at": NOW, **extra,
    }  # fmt: skip


def _look(exp_id: str, estimate: float, outcome: str, day: int = 10) -> dict[str, object]:
    return {"experiment_id": exp_id, "look_at": NOW - timedelta(days=30 - day), "role": "primary",
            "estimate": estimate, "outcome": outcome}  # fmt: skip


def test_a_measured_effect_becomes_an_impact_signed_so_better_is_positive() -> None:
    experiments = pd.DataFrame([
        _experiment("a-1", "shipped", 2.0, 2.5),
        _experiment("b-1", "stopped", 2.0, 1.5, direction="lower", decision="stop_primary_loses"),
        _experiment("c-1", "running", 2.0, 3.0),
    ])  # fmt: skip
    looks = pd.DataFrame(
        [_look("a-1", 0.001, "neutral", 3), _look("a-1", 0.004, "wins"), _look("b-1", 0.002, "loses")]
    )
    impacts = experiment_impacts(experiments, looks).set_index("experiment_id")
    assert set(impacts.index) == {"a-1", "b-1"}  # the running one has taught nothing yet
    assert impacts.loc["a-1", "measured"] == 0.004 and impacts.loc["a-1", "verdict"] == "improved"
    assert abs(impacts.loc["a-1", "relative_bias"] - 0.2) < 1e-12  # predicted 0.005, measured 0.004
    assert impacts.loc["b-1", "measured"] == -0.002 and impacts.loc["b-1", "verdict"] == "worsened"
    # the same parameter's experiments correct its predictions before the metric's other impacts do
    others = pd.DataFrame([{"target_metric": "backtest_sharpe", "verdict": "improved", "relative_bias": 0.9,
                            "parameter": None}])  # fmt: skip
    pool = pd.concat([impacts.reset_index().iloc[:1], others], ignore_index=True)
    assert bias_factor(pool, "backtest_sharpe", 1, "signals.rvr_threshold") == (0.8, 1, "parameter")
    assert bias_factor(pool, "backtest_sharpe", 1, "signals.roc_threshold")[2] == "metric"


def test_a_shipped_step_proposes_the_next_once_config_holds_it_and_within_bounds() -> None:
    experiments = pd.DataFrame([_experiment("raise-1", "shipped", 2.0, 2.5)])
    impacts = experiment_impacts(experiments, pd.DataFrame([_look("raise-1", 0.0025, "wins")]))
    [nxt], waiting = refinements(
        experiments, impacts, config_values={"signals.rvr_threshold": 2.5}, bounds=RVR_BOUNDS
    )
    assert (nxt.key, nxt.parameter, nxt.proposed_value) == (
        "next_rvr_threshold_3",
        "signals.rvr_threshold",
        "3",
    )
    assert abs(nxt.predicted_effect - 0.2) < 1e-12  # 0.4 predicted, half of it measured: expect half again
    assert waiting == {}
    none, waiting = refinements(
        experiments, impacts, config_values={"signals.rvr_threshold": 2.0}, bounds=RVR_BOUNDS
    )
    assert none == [] and "waits until config.yaml sets signals.rvr_threshold: 2.5" in waiting["raise-1"]
    tight = {"signals.rvr_threshold": ParameterBounds(min=1.0, max=2.8, max_step=1.0)}
    none, waiting = refinements(
        experiments, impacts, config_values={"signals.rvr_threshold": 2.5}, bounds=tight
    )
    assert none == [] and "would leave experiments.autonomy" in waiting["raise-1"]


def test_harm_cools_its_direction_down_and_a_persons_stop_does_not() -> None:
    experiments = pd.DataFrame([
        _experiment("drop-1", "stopped", 70.0, 0.0, parameter="signals.hype_threshold", decision="stop_guardrail",
                    ended_at=NOW - timedelta(days=5)),
        _experiment("old-1", "stopped", 2.0, 2.5, decision="stop_guardrail", ended_at=NOW - timedelta(days=40)),
        _experiment("mine-1", "stopped", 0.1, 0.2, parameter="signals.roc_threshold", decision="stopped_by_ana"),
    ])  # fmt: skip
    blocks = cooldowns(experiments, days=28, now=NOW)
    assert [(b.parameter, b.direction) for b in blocks] == [("signals.hype_threshold", -1)]
    assert blocks[0].until == NOW + timedelta(days=23)
    assert cooled("signals.hype_threshold", 70.0, 50.0, blocks) is blocks[0]
    assert cooled("signals.hype_threshold", 70.0, 80.0, blocks) is None
    assert cooled("signals.rvr_threshold", 2.0, 2.5, blocks) is None  # its cool-down ended
    rollouts = pd.DataFrame([
        {"deployment_id": "r1", "parameter": "signals.roc_threshold", "before_value": "0.1", "after_value": "0.05",
         "state": "rolled_back", "ended_at": NOW, "reason": "guardrail harmed at 5%: pnl_per_market_day -0.02"},
        {"deployment_id": "r2", "parameter": "signals.rvr_threshold", "before_value": "2.0", "after_value": "2.5",
         "state": "rolled_back", "ended_at": NOW, "reason": "changed my mind"},  # a person's: no cool-down
    ])  # fmt: skip
    [block] = rollout_cooldowns(rollouts, days=28, now=NOW)
    assert (block.parameter, block.direction, block.experiment_id) == ("signals.roc_threshold", -1, "r1")


def test_the_recommender_learns_from_a_real_shipped_experiment(
    warehouse: Warehouse, settings: Settings
) -> None:
    result = _run_experiment(warehouse, settings, effect=0.01)
    assert result.decision is not None and result.decision.decision == "ship"
    learned = learned_from_experiments(warehouse, settings)
    row = learned.impacts.iloc[0]
    assert (row["source"], row["parameter"], row["target_metric"]) == (
        "experiment", "signals.rvr_threshold", "backtest_sharpe",
    )  # fmt: skip
    assert row["measured"] > 0 and row["verdict"] == "improved"
    assert any("waits until config.yaml sets signals.rvr_threshold: 2.5" in n for n in learned.notes)
    adopted = Settings(signals={"rvr_threshold": 2.5})
    learned = learned_from_experiments(warehouse, adopted)
    nxt = next(c for c in learned.catalogue if c.key == "next_rvr_threshold_3")
    assert nxt.parameter == "signals.rvr_threshold" and nxt.proposed_value == "3" and nxt.predicted_effect > 0


def test_the_recommender_stops_proposing_a_harmful_direction(
    warehouse: Warehouse, settings: Settings
) -> None:
    result = _run_experiment(warehouse, settings, effect=-0.01)
    assert result.decision is not None and result.decision.status == "stopped"
    learned = learned_from_experiments(
        warehouse, Settings(demo={"frozen_now": datetime(2026, 12, 1)})
    )  # the pipeline clock a few days after the stop
    keys = {c.key for c in learned.catalogue}
    assert "raise_rvr_threshold" not in keys and "lower_rvr_threshold" in keys
    assert any(n.startswith("raise_rvr_threshold: cooling down until") for n in learned.notes)

"""The human override on a real warehouse: the freeze holds every automatic change, the loop acts alone only
within experiments.autonomy, every decision is logged with who, and undo takes one back exactly once."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.cli import main
from kaizen_pipeline.experiments import runner
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import DecisionLog, LoopControl, OverrideRefused
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.loop.undo import undo
from kaizen_pipeline.resources import SettingsResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.experiments.test_runner import MARKETS, NOW, recommendation, unit_data


def _draft(warehouse: Warehouse, settings: Settings, **changes: object) -> str:
    data = unit_data(np.random.default_rng(1), start=NOW - timedelta(days=14), days=14)
    report = runner.draft_experiments(
        warehouse, settings, pd.DataFrame([recommendation(**changes)]), data, now=NOW
    )
    return report.drafted[0]


def _winning_data(warehouse: Warehouse, settings: Settings, exp_id: str) -> runner.UnitData:
    resolutions = SettingsResource.of(settings).resolve_units("market", MARKETS)
    with warehouse.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE flag_assignments SET first_exposure_at = ?", (NOW,))
    treated = {m: 0.01 for m, r in resolutions.items() if r.variants.get(exp_id) == "treatment"}
    rng = np.random.default_rng(4)
    pre = unit_data(rng, start=NOW - timedelta(days=14), days=14)
    post = unit_data(rng, start=NOW + timedelta(days=1), days=27, effect=treated)
    return runner.UnitData(pd.concat([pre.market_days, post.market_days]), pre.runs, MARKETS, 96.0)


def test_concurrent_freezes_succeed_once_and_the_log_says_who(any_warehouse: Warehouse) -> None:
    control = LoopControl(any_warehouse)
    outcomes: list[str] = []

    def freeze(who: str) -> None:
        try:
            control.freeze(actor=who, reason="FOMC day", now=NOW)
            outcomes.append("frozen")
        except OverrideRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=freeze, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("frozen") == 1
    assert all("already frozen since" in o for o in outcomes if o != "frozen")
    frozen = control.current()
    assert frozen is not None and frozen.reason == "FOMC day"
    log = DecisionLog(any_warehouse).frame()
    assert list(log["action"]) == ["freeze"] and log["actor"].iloc[0] == frozen.actor
    with pytest.raises(OverrideRefused, match="reason: say why"):
        control.freeze(actor="ana", reason=" ", now=NOW)
    control.unfreeze(actor="ana", reason="over", now=NOW)
    assert control.current() is None
    with pytest.raises(OverrideRefused, match="not frozen"):
        control.unfreeze(actor="ana", reason="again", now=NOW)


def test_a_freeze_holds_decisions_and_starts_until_it_is_lifted(
    warehouse: Warehouse, settings: Settings
) -> None:
    exp_id = _draft(warehouse, settings)
    runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
    data = _winning_data(warehouse, settings, exp_id)
    second = _draft(warehouse, settings, catalogue_key="lower_roc", parameter="signals.roc_threshold",
                    proposed_value="0.08")  # fmt: skip
    LoopControl(warehouse).freeze(actor="ana", reason="earnings week", now=NOW)
    assert runner.auto_start(warehouse, settings, now=NOW).frozen is not None
    assert ExperimentStore(warehouse).get(second)["status"] == "draft"
    deferred = []
    for day in range(7, 20):
        [result] = runner.look_and_decide(warehouse, settings, data, now=NOW + timedelta(days=day))
        assert result.decision is None
        deferred.append(result.deferred)
    assert any(d is not None and d.decision == "ship" for d in deferred)  # it would have shipped
    assert ExperimentStore(warehouse).get(exp_id)["status"] == "running"
    flag = FlagStore(warehouse).get(exp_id)
    assert not flag.is_static and flag.weights["treatment"] == 0.5  # the flag stays where it is
    assert ExperimentStore(warehouse).looks(exp_id)["look_at"].nunique() == 13  # looks go on

    LoopControl(warehouse).unfreeze(actor="ana", reason="done", now=NOW + timedelta(days=20))
    [result] = runner.look_and_decide(warehouse, settings, data, now=NOW + timedelta(days=20))
    assert result.decision is not None and result.decision.decision == "ship"
    assert runner.auto_start(warehouse, settings, now=NOW + timedelta(days=20)).started == [second]
    actions = DecisionLog(warehouse).frame()[["action", "actor", "subject_id"]].values.tolist()
    rollout = runner.rollout_id(exp_id)
    assert actions[:3] == [["start_experiment", "kaizen-loop", second], ["start_rollout", "kaizen-loop", rollout],
                           ["ship", "kaizen-loop", exp_id]]  # fmt: skip
    assert ["start_experiment", "ana", exp_id] in actions


def test_the_loop_starts_only_within_its_bounds_and_a_person_may_go_further(
    warehouse: Warehouse, settings: Settings
) -> None:
    big_step = _draft(warehouse, settings, catalogue_key="much_stricter", proposed_value="4.0")
    auto = runner.auto_start(warehouse, settings, now=NOW)
    assert auto.started == []
    assert auto.held == {big_step: "signals.rvr_threshold: 2 -> 4 is a step above 1.5"}
    roc_only = Settings(
        experiments={"autonomy": {"signals.roc_threshold": {"min": 0.05, "max": 0.2, "max_step": 0.05}}}
    )
    assert runner.auto_start(warehouse, roc_only, now=NOW).held == {
        big_step: "signals.rvr_threshold is not in experiments.autonomy: a person starts it"
    }
    runner.start(warehouse, settings, big_step, actor="ana", now=NOW)  # a person decides
    assert ExperimentStore(warehouse).get(big_step)["status"] == "running"
    entry = DecisionLog(warehouse).frame().iloc[0]
    assert (entry["action"], entry["actor"], json.loads(entry["after"])) == ("start_experiment", "ana", 4.0)


def test_undo_takes_back_a_start_or_a_ship_once_and_refuses_what_changed_nothing(
    warehouse: Warehouse, settings: Settings
) -> None:
    exp_id = _draft(warehouse, settings)
    runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
    data = _winning_data(warehouse, settings, exp_id)
    for day in range(7, 29):
        runner.look_and_decide(warehouse, settings, data, now=NOW + timedelta(days=day))
        if ExperimentStore(warehouse).get(exp_id)["status"] != "running":
            break
    log = DecisionLog(warehouse)
    ship = log.frame(subject_id=exp_id).iloc[0]
    assert ship["action"] == "ship" and ship["actor"] == "kaizen-loop"
    rollout = DeploymentStore(warehouse).for_source(exp_id)
    assert rollout is not None and rollout["state"] == "ramping"
    resource = SettingsResource.of(settings)
    on_change = [m for m in MARKETS if resource.for_unit("market", m).signals.rvr_threshold == 2.5]
    assert on_change  # the rollout's first step

    outcomes: list[str] = []

    def take_back() -> None:
        try:
            undo(warehouse, settings, int(ship["decision_id"]), actor="bo", reason="holiday week", now=NOW)
            outcomes.append("undone")
        except OverrideRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=take_back) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("undone") == 1, outcomes
    assert all("already" in o for o in outcomes if o != "undone"), outcomes
    assert DeploymentStore(warehouse).get(rollout["deployment_id"])["state"] == "rolled_back"
    assert FlagStore(warehouse).get(rollout["flag_key"]).status == "killed"
    assert SettingsResource.of(settings).for_unit("market", on_change[0]).signals.rvr_threshold == 2.0
    entries = log.frame(subject_id=exp_id)
    assert entries.iloc[0]["action"] == "undo" and entries.iloc[0]["undo_of"] == ship["decision_id"]
    assert entries.set_index("decision_id").loc[ship["decision_id"], "undone_by"] == "bo"

    stopped = _draft(warehouse, settings, catalogue_key="lower_roc", parameter="signals.roc_threshold",
                     proposed_value="0.08")  # fmt: skip
    runner.start(warehouse, settings, stopped, actor="ana", now=NOW)
    start_id = int(log.frame(subject_id=stopped).iloc[0]["decision_id"])
    undo(warehouse, settings, start_id, actor="bo", reason="wrong week", now=NOW)
    assert ExperimentStore(warehouse).get(stopped)["status"] == "stopped"
    stop_id = int(log.frame(subject_id=stopped).query("action == 'stop'").iloc[0]["decision_id"])
    with pytest.raises(OverrideRefused, match="changed nothing to undo"):
        undo(warehouse, settings, stop_id, actor="bo", reason="x", now=NOW)


def test_the_cli_freezes_lists_and_undoes_with_one_line_errors(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["freeze", "--reason", "FOMC day", "--actor", "ana"]) == 0
    assert "loop frozen by ana" in capsys.readouterr().out
    assert main(["freeze", "--reason", "again", "--actor", "bo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loop is already frozen since") and "by ana: FOMC day" in err
    assert main(["decisions"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FROZEN since") and "freeze" in out and "ana" in out
    assert main(["decisions", "undo", "1", "--reason", "moved", "--actor", "bo"]) == 0
    assert "decision 1 undone" in capsys.readouterr().out
    assert LoopControl(warehouse).current() is None
    assert main(["decisions", "undo", "1", "--reason", "again"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: decision 1 was already undone") and err.count("\n") == 1
    assert main(["decisions", "undo", "42", "--reason", "x"]) == 1
    assert "no decision 42" in capsys.readouterr().err

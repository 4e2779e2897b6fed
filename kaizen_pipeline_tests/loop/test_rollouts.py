"""Guarded rollouts: the step logic in its order, and the deployments table moving a flag 5% -> 25% -> 100%
atomically: racing ticks never advance a step twice, a rollback is final, approvals gate their steps."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.cli import main
from kaizen_pipeline.experiments.analysis import MetricLook
from kaizen_pipeline.experiments.runner import UnitData
from kaizen_pipeline.experiments.store import TransitionRefused
from kaizen_pipeline.flags.bucketing import Split
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import DecisionLog, OverrideRefused
from kaizen_pipeline.loop.deployments import DeploymentNotFound, DeploymentStore
from kaizen_pipeline.loop.rollout import Gates, canary_allocation, step_action
from kaizen_pipeline.loop.runner import look_at_rollouts
from kaizen_pipeline.loop.undo import undo
from kaizen_pipeline.resources import SettingsResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

NOW = datetime(2026, 11, 20, 12, 0)
STEPS = (0.05, 0.25, 1.0)
MARKETS = [f"m{i:03d}" for i in range(400)]
GATES = Gates(min_hours=24, min_units=3, approval=frozenset())


def _guardrail(outcome: str) -> MetricLook:
    return MetricLook("pnl_per_market_day", "guardrail", "higher", 20, 3, 0.0, -0.01, -0.01, -0.02, -0.001, 0.01,
                      0.02, 0.0, outcome)  # fmt: skip


def _act(**changes: object) -> str:
    args: dict[str, object] = dict(
        step_index=0, steps=STEPS, step_started_at=NOW, now=NOW + timedelta(hours=25), units_on_change=5,
        guardrails=[_guardrail("neutral")], srm_p=0.5, srm_threshold=0.001, gates=GATES, frozen=False,
    )  # fmt: skip
    action = step_action(**(args | changes))  # type: ignore[arg-type]
    return f"{action.kind}:{action.to_step}"


def test_each_look_holds_rolls_back_or_moves_in_its_order() -> None:
    assert _act() == "advance:1"
    assert _act(step_index=1) == "advance:2"
    assert _act(step_index=2) == "complete:None"
    assert _act(frozen=True, guardrails=[_guardrail("loses")]) == "hold:None"  # a freeze holds even harm
    assert _act(srm_p=0.0001) == "rollback:None"
    # right after a step starts its units are not resolved at the new share yet: the split waits for the hours
    assert _act(srm_p=0.0001, now=NOW) == "hold:None"
    assert _act(guardrails=[_guardrail("loses")], now=NOW + timedelta(hours=1)) == "rollback:None"  # at once
    assert _act(now=NOW + timedelta(hours=23)) == "hold:None"
    assert _act(units_on_change=2) == "hold:None"
    unmeasured = MetricLook("drawdown", "guardrail", "lower", 1, 1)
    assert _act(guardrails=[unmeasured]) == "hold:None"  # no step on a guardrail nobody measured
    assert _act(guardrails=[unmeasured], step_index=2) == "complete:None"  # at 100% no control is left
    assert _act(gates=Gates(24, 3, frozenset({2})), step_index=1) == "await_approval:2"
    reason = step_action(step_index=0, steps=STEPS, step_started_at=NOW, now=NOW + timedelta(hours=1),
                         units_on_change=5, guardrails=[_guardrail("loses")], srm_p=0.5, srm_threshold=0.001,
                         gates=GATES).reason  # fmt: skip
    assert reason.startswith("guardrail harmed at 5%: pnl_per_market_day -0.01")
    assert _act(allocation=0.05, canary=0.062) == "widen:None"  # before the hours and the unit gates
    assert _act(allocation=0.05, canary=0.062, guardrails=[_guardrail("loses")]) == "rollback:None"
    assert _act(allocation=0.062, canary=0.062) == "advance:1"


def test_a_canary_too_small_for_its_gate_is_widened_to_exactly_the_units_it_needs() -> None:
    fifty = [f"0x{i:04x}" for i in range(50)]
    salts = [f"rollout:r{i}" for i in range(200)]
    for salt in salts:
        split = Split(salt, canary_allocation(0.05, salt, fifty, 2), {"change": 1.0})
        on = sum(split.included(m) for m in fifty)
        at_share = sum(Split(salt, 0.05, {"change": 1.0}).included(m) for m in fifty)
        assert on == max(at_share, 2)  # widened to exactly two, never narrowed
    assert canary_allocation(0.05, "rollout:x", [], 3) == 0.05  # runs: the units are not known ahead
    few = canary_allocation(0.05, "rollout:x", fifty[:2], 3)  # fewer units than the gate: all of them
    assert all(Split("rollout:x", few, {"change": 1.0}).included(m) for m in fifty[:2])


def _share_on_change(settings: Settings, flag_key: str) -> tuple[float, set[str]]:
    resource = SettingsResource.of(settings)
    on = {m for m, r in resource.resolve_units("market", MARKETS).items() if flag_key in r.variants}
    return len(on) / len(MARKETS), on


def test_a_rollout_ramps_its_flag_keeping_every_unit_already_on_it(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(warehouse)
    row = store.create(settings, deployment_id="rvr-25", parameter="signals.rvr_threshold", value="2.5",
                       source="raise_rvr_threshold-20261120", actor="kaizen-loop", reason="experiment shipped",
                       now=NOW)  # fmt: skip
    assert (row["state"], row["step_index"], row["unit_kind"]) == ("ramping", 0, "market")
    share, first = _share_on_change(settings, "rvr-25")
    assert 0.02 < share < 0.09
    store.advance(settings, "rvr-25", from_step=0, actor="kaizen-loop", reason="gates met", now=NOW)
    share, second = _share_on_change(settings, "rvr-25")
    assert 0.19 < share < 0.31 and first <= second  # nobody already on the change leaves it
    done = store.advance(settings, "rvr-25", from_step=1, actor="kaizen-loop", reason="gates met", now=NOW)
    assert done["state"] == "ramping" and done["step_index"] == 2
    done = store.complete(settings, "rvr-25", actor="kaizen-loop", reason="no harm at 100%", now=NOW)
    assert done["state"] == "complete" and done["ended_at"] == NOW
    assert FlagStore(warehouse).get("rvr-25").is_static
    assert SettingsResource.of(settings).for_unit("market", "m000").signals.rvr_threshold == 2.5
    actions = DecisionLog(warehouse).frame(subject_id="rvr-25")["action"].tolist()
    assert actions == ["complete", "advance", "advance", "start_rollout"]


def test_racing_ticks_advance_once_and_a_rollback_is_final(
    any_warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(any_warehouse)
    store.create(settings, deployment_id="hype-0", parameter="signals.hype_threshold", value="0", source="person",
                 actor="ana", reason="try it", now=NOW)  # fmt: skip
    outcomes: list[str] = []

    def tick() -> None:
        try:
            store.advance(settings, "hype-0", from_step=0, actor="kaizen-loop", reason="gates met", now=NOW)
            outcomes.append("advanced")
        except TransitionRefused as exc:
            outcomes.append(str(exc))

    def person() -> None:
        try:
            store.rollback(settings, "hype-0", actor="bo", reason="P&L looks wrong", now=NOW)
            outcomes.append("rolled back")
        except TransitionRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=tick) for _ in range(3)] + [
        threading.Thread(target=person) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("advanced") <= 1 and outcomes.count("rolled back") == 1, outcomes
    row = store.get("hype-0")
    assert row["state"] == "rolled_back" and row["step_index"] <= 1
    assert FlagStore(any_warehouse).get("hype-0").status == "killed"
    assert SettingsResource.of(settings).for_unit("market", "m000").signals.hype_threshold == 70.0
    with pytest.raises(TransitionRefused, match="is rolled_back"):
        store.advance(
            settings, "hype-0", from_step=row["step_index"], actor="kaizen-loop", reason="x", now=NOW
        )
    with pytest.raises(TransitionRefused, match="is rolled_back"):
        store.resume(settings, "hype-0", actor="ana", reason="x", now=NOW)
    log = DecisionLog(any_warehouse).frame(subject_id="hype-0")
    assert log["action"].tolist().count("rollback") == 1 and log["action"].tolist().count("advance") <= 1


def test_approvals_gate_their_steps_and_unknown_or_finished_rollouts_say_so(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(warehouse)
    sizing = store.create(settings, deployment_id="pos-4", parameter="signals.max_position_pct", value="4",
                          source="person", actor="ana", reason="smaller positions", now=NOW)  # fmt: skip
    assert sizing["state"] == "awaiting_approval"
    assert _share_on_change(settings, "pos-4")[0] == 0.0  # nothing moves before a person approves
    approved = store.approve(settings, "pos-4", actor="bo", reason="ok", now=NOW)
    assert (approved["state"], approved["step_index"]) == ("ramping", 0)
    assert 0.02 < _share_on_change(settings, "pos-4")[0] < 0.09
    store.await_approval(settings, "pos-4", from_step=0, actor="kaizen-loop", reason="25% waits", now=NOW)
    with pytest.raises(TransitionRefused, match="is awaiting_approval"):
        store.advance(settings, "pos-4", from_step=0, actor="kaizen-loop", reason="x", now=NOW)
    assert store.approve(settings, "pos-4", actor="bo", reason="ok", now=NOW)["step_index"] == 1
    store.pause(settings, "pos-4", actor="ana", reason="earnings", now=NOW)
    assert store.get("pos-4")["state"] == "held"
    assert store.resume(settings, "pos-4", actor="ana", reason="over", now=NOW)["state"] == "ramping"
    with pytest.raises(DeploymentNotFound, match="no deployment 'nope'"):
        store.approve(settings, "nope", actor="bo", reason="x", now=NOW)
    store.rollback(settings, "pos-4", actor="ana", reason="done testing", now=NOW)
    with pytest.raises(TransitionRefused, match="is rolled_back at step 2; approve needs awaiting_approval"):
        store.approve(settings, "pos-4", actor="bo", reason="x", now=NOW)
    with pytest.raises(ValueError, match="value: signals.rvr_threshold is already 2.0"):
        store.create(settings, deployment_id="same", parameter="signals.rvr_threshold", value="2.0",
                     source="person", actor="ana", reason="x", now=NOW)  # fmt: skip


def test_a_complete_rollout_is_taken_back_only_by_an_undo_and_a_rolled_back_one_never_returns(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(warehouse)
    store.create(settings, deployment_id="rvr-3", parameter="signals.rvr_threshold", value=3.0, source="person",
                 actor="ana", reason="stricter", now=NOW)  # fmt: skip
    for step in range(3):  # 5% -> 25% -> 100%, then complete
        store.advance(settings, "rvr-3", from_step=step, actor="kaizen-loop", reason="gates met", now=NOW)
    assert store.get("rvr-3")["state"] == "complete" and _share_on_change(settings, "rvr-3")[0] == 1.0
    with pytest.raises(TransitionRefused, match="is complete at step 3; rollback needs"):
        store.rollback(settings, "rvr-3", actor="ana", reason="x", now=NOW)
    store.rollback(settings, "rvr-3", actor="ana", reason="undo of the ship", now=NOW, finished_too=True)
    assert store.get("rvr-3")["state"] == "rolled_back" and _share_on_change(settings, "rvr-3")[0] == 0.0
    with pytest.raises(TransitionRefused, match="is rolled_back"):
        store.rollback(settings, "rvr-3", actor="ana", reason="again", now=NOW, finished_too=True)


def _market_days(effect: dict[str, float], start: datetime, days: int, seed: int) -> UnitData:
    rng = np.random.default_rng(seed)
    level = dict(zip(MARKETS, rng.normal(0.0, 0.003, len(MARKETS)), strict=True))
    rows = []
    for m in MARKETS:
        for d in range(days):
            pnl = 0.01 * rng.standard_t(3) / 3 + level[m] + effect.get(m, 0.0)
            day = pd.Timestamp(start).normalize() + pd.Timedelta(days=d)
            rows += [(m, day, "pnl_per_market_day", pnl), (m, day, "drawdown", max(-pnl, 0.0))]
    frame = pd.DataFrame(rows, columns=["market_id", "day", "metric", "value"])
    return UnitData(frame, pd.DataFrame(columns=["run_id", "started_at", "metric", "value"]), MARKETS, 96.0)


def _ramp(warehouse: Warehouse, settings: Settings, harm: float) -> list[str]:
    """A rollout of rvr 2 -> 2.5 looked at daily for 12 days; the change moves P&L by ``harm`` where it runs."""
    store = DeploymentStore(warehouse)
    store.create(settings, deployment_id="rvr", parameter="signals.rvr_threshold", value="2.5", source="person",
                 actor="ana", reason="try it", now=NOW)  # fmt: skip
    trail = []
    for day in range(1, 13):
        now = NOW + timedelta(days=day)
        SettingsResource.of(settings).resolve_units("market", MARKETS)  # today's exposures (wall clock)
        with warehouse.engine.begin() as conn:  # ... recorded as of the day the unit first got the change
            conn.exec_driver_sql(
                "UPDATE flag_assignments SET first_exposure_at = ? WHERE first_exposure_at > ?", (now, now)
            )
        on = {
            m for m, r in SettingsResource.of(settings).resolve_units("market", MARKETS).items() if r.variants
        }
        data = _market_days({m: harm for m in on}, NOW, day + 1, seed=day)
        [look] = look_at_rollouts(warehouse, settings, data, now=now) or [None]
        row = store.get("rvr")
        trail.append(f"{day}:{look.action.kind if look else '-'}:{row['state']}:{row['step_index']}")
        if row["state"] in ("complete", "rolled_back"):
            break
    return trail


def test_a_harmless_change_ramps_through_5_25_and_100_percent(
    warehouse: Warehouse, settings: Settings
) -> None:
    trail = _ramp(warehouse, settings, harm=0.0)
    assert trail[-1].endswith("complete:complete:2"), trail
    assert [t.split(":")[3] for t in trail].count("1") >= 1  # it stood at 25% on the way
    assert FlagStore(warehouse).get("rvr").is_static


def test_a_harmful_change_rolls_back_at_the_first_step_with_a_critical_notice(
    warehouse: Warehouse, settings: Settings
) -> None:
    trail = _ramp(warehouse, settings, harm=-0.02)
    assert trail[-1].endswith("rollback:rolled_back:0"), trail
    assert FlagStore(warehouse).get("rvr").status == "killed"
    outbox = warehouse.read_frame("SELECT priority, subject, body_text FROM alert_outbox")
    assert outbox["priority"].tolist() == ["critical"] and "rolled back" in outbox["subject"].iloc[0]
    assert "guardrail harmed at 5%: pnl_per_market_day" in outbox["body_text"].iloc[0]
    reason = DecisionLog(warehouse).frame(subject_id="rvr").iloc[0]
    assert (reason["action"], reason["actor"]) == ("rollback", "kaizen-loop")


def test_the_rollout_cli_starts_lists_and_overrides_with_one_line_errors(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "rollout",
                "start",
                "signals.rvr_threshold",
                "2.5",
                "--reason",
                "volume confirms",
                "--actor",
                "ana",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ramping: signals.rvr_threshold 2.0 -> 2.5 on 5% of markets" in out
    rollout_id = out.split()[1]
    assert main(["rollout", "pause", rollout_id, "--reason", "earnings", "--actor", "bo"]) == 0
    assert main(["rollout", "pause", rollout_id, "--reason", "again"]) == 1
    err = capsys.readouterr().err
    assert (
        err == f"error: deployment {rollout_id} is held at step 1; pause needs ramping or awaiting_approval\n"
    )
    assert main(["rollout", "rollback", rollout_id, "--reason", "no", "--actor", "bo"]) == 0
    assert main(["rollout", "show", rollout_id]) == 0
    shown = capsys.readouterr().out
    assert "rolled_back at step 1 of 3" in shown and "pause           by bo: earnings" in shown
    assert main(["rollout", "resume", "nope", "--reason", "x"]) == 1
    assert "no deployment 'nope'" in capsys.readouterr().err


def test_undo_steps_a_rollout_back_once_and_refuses_what_cannot_come_back(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(warehouse)
    store.create(settings, deployment_id="rvr-25", parameter="signals.rvr_threshold", value=2.5, source="person",
                 actor="ana", reason="volume confirms", now=NOW)  # fmt: skip
    store.advance(settings, "rvr-25", from_step=0, actor="kaizen-loop", reason="gates met", now=NOW)
    store.advance(settings, "rvr-25", from_step=1, actor="kaizen-loop", reason="gates met", now=NOW)
    log = DecisionLog(warehouse)
    moves = log.frame(subject_id="rvr-25")
    first, last = (int(moves.query("action == 'advance'")["decision_id"].iloc[i]) for i in (-1, 0))
    with pytest.raises(OverrideRefused, match="is not the rollout's last move"):
        undo(warehouse, settings, first, actor="bo", reason="too fast", now=NOW)
    undo(warehouse, settings, last, actor="bo", reason="too fast", now=NOW)
    back = store.get("rvr-25")
    assert (back["state"], back["step_index"]) == ("held", 1)
    assert _share_on_change(settings, "rvr-25")[0] == pytest.approx(0.25, abs=0.12)  # 100% -> 25% again
    with pytest.raises(OverrideRefused, match="already undone"):
        undo(warehouse, settings, last, actor="bo", reason="again", now=NOW)
    store.resume(settings, "rvr-25", actor="bo", reason="go on", now=NOW)
    store.rollback(settings, "rvr-25", actor="kaizen-loop", reason="guardrail harmed", now=NOW)
    rolled = int(log.frame(subject_id="rvr-25").query("action == 'rollback'")["decision_id"].iloc[0])
    with pytest.raises(OverrideRefused, match="never comes back by itself"):
        undo(warehouse, settings, rolled, actor="bo", reason="x", now=NOW)
    started = int(log.frame(subject_id="rvr-25").query("action == 'start_rollout'")["decision_id"].iloc[0])
    with pytest.raises(OverrideRefused, match="already rolled back"):
        undo(warehouse, settings, started, actor="bo", reason="x", now=NOW)

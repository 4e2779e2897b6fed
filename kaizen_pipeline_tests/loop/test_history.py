"""The rollout dashboard: DORA-style figures from a hand-built history with known answers, one
deployment_steps row per look and guardrail (a repeated look adds none), and the rollout_history asset."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from kaizen_pipeline.experiments.analysis import MetricLook
from kaizen_pipeline.experiments.assets import rollout_history
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.loop.history import (
    FROM_EXPERIMENT,
    FROM_PERSON,
    FROM_RECOMMENDATION,
    RolloutHistory,
    dora_figures,
    per_deployment,
    read_history,
    timeline,
    weekly,
)
from kaizen_pipeline.loop.rollout import StepAction
from kaizen_pipeline.loop.runner import NO_GUARDRAIL, RolloutLook, look_at_rollouts, record_look
from kaizen_pipeline.resources import SettingsResource, build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import flag_assignments
from kaizen_pipeline_tests.loop.test_rollouts import MARKETS, NOW, _market_days, _ramp

STEPS = json.dumps([0.05, 0.25, 1.0])
T = pd.Timestamp


def _deployment(dep: str, source: str, created: str, state: str, step: int, step_started: str,
                ended: str | None = None) -> dict[str, object]:  # fmt: skip
    return {"deployment_id": dep, "parameter": f"signals.{dep}", "source": source, "steps": STEPS,
            "step_index": step, "state": state, "step_started_at": T(step_started), "created_at": T(created),
            "ended_at": T(ended) if ended else pd.NaT}  # fmt: skip


def _history() -> RolloutHistory:
    """Five rollouts, as of 2026-11-21:

    - rvr: from experiment rvr-1101 (key raise_rvr, first recommended 11-01 since its earlier test ended
      10-10), 100% on 11-13, complete 11-14: lead time 12 days;
    - hype: a person's, rolled back by the loop 6 h after its start;
    - pos: a person's, started 11-14, 100% on 11-18, complete 11-19: lead time 4 days;
    - spread: a person's, started 11-15, 100% on 11-17, complete 11-18, undone 11-20 (120 h after start);
    - wide: a person's, ramping.
    """
    deployments = pd.DataFrame([
        _deployment("rvr", "rvr-1101", "2026-11-10", "complete", 2, "2026-11-13", "2026-11-14"),
        _deployment("hype", "person", "2026-11-12", "rolled_back", 0, "2026-11-12", "2026-11-12 06:00"),
        _deployment("pos", "ana", "2026-11-14", "complete", 2, "2026-11-18", "2026-11-19"),
        _deployment("spread", "person", "2026-11-15", "rolled_back", 2, "2026-11-17", "2026-11-20"),
        _deployment("wide", "person", "2026-11-19", "ramping", 0, "2026-11-19"),
    ])  # fmt: skip
    decisions = pd.DataFrame(
        [("rvr", "complete", "kaizen-loop", "2026-11-14"), ("hype", "rollback", "kaizen-loop", "2026-11-12 06:00"),
         ("pos", "complete", "kaizen-loop", "2026-11-19"), ("spread", "complete", "kaizen-loop", "2026-11-18"),
         ("spread", "rollback", "ana", "2026-11-20")],
        columns=["subject_id", "action", "actor", "decided_at"],
    ).astype({"decided_at": "datetime64[ns]"})  # fmt: skip
    experiments = pd.DataFrame(
        [("rvr-1001", "raise_rvr", "2026-10-01", "2026-10-10"), ("rvr-1101", "raise_rvr", "2026-11-03", "2026-11-10")],
        columns=["experiment_id", "catalogue_key", "created_at", "ended_at"],
    ).astype({"created_at": "datetime64[ns]", "ended_at": "datetime64[ns]"})  # fmt: skip
    recommendations = pd.DataFrame(
        [("raise_rvr", "2026-09-28"), ("raise_rvr", "2026-11-01"), ("raise_rvr", "2026-11-02"),
         ("raise_rvr", "2026-11-05"), ("other", "2026-10-20")],
        columns=["catalogue_key", "as_of"],
    ).astype({"as_of": "datetime64[ns]"})  # fmt: skip
    return RolloutHistory(deployments, decisions, experiments, recommendations, pd.DataFrame())


def test_dora_figures_of_a_known_history() -> None:
    history = _history()
    frame = per_deployment(history).set_index("deployment_id")
    assert frame["lead_time_days"].to_dict() == pytest.approx(
        {"rvr": 12.0, "hype": float("nan"), "pos": 4.0, "spread": 2.0, "wide": float("nan")}, nan_ok=True
    )
    assert frame.loc["rvr", "recommended_from"] == FROM_RECOMMENDATION
    assert set(frame.drop(index="rvr")["recommended_from"]) == {FROM_PERSON}
    assert frame.loc["spread", "rolled_back_by"] == "ana" and frame.loc["pos", "step"] == "3 of 3 (100%)"
    dora = dora_figures(frame.reset_index(), datetime(2026, 11, 21))
    # shipped: rvr, pos and spread (its later undo is a failure, not an unshipping) in the 11 days since
    # the first rollout began
    assert (dora.shipped, dora.rolled_back, dora.finished, dora.in_progress) == (3, 2, 4, 1)
    assert dora.shipped_per_week == pytest.approx(3 / (11 / 7))
    assert (dora.lead_time_days_median, dora.lead_time_days_mean) == pytest.approx((4.0, 6.0))
    assert dora.change_failure_rate == 0.5
    assert dora.hours_to_roll_back_median == pytest.approx((6 + 120) / 2)
    # a month later only the last four weeks count; nothing shipped in them
    assert dora_figures(frame.reset_index(), datetime(2026, 12, 31)).shipped_per_week == 0.0
    assert weekly(frame.reset_index()).to_dict("list") == {
        "week_start": [T("2026-11-09"), T("2026-11-16")],
        "shipped": [1, 2],
        "rolled_back": [1, 1],
    }


def test_the_recommendation_time_is_the_earliest_the_tables_honestly_show() -> None:
    history = _history()
    # without the earlier test of the same key, its first recommendation (09-28) starts the lead time
    first_test = RolloutHistory(history.deployments, history.decisions, history.experiments.iloc[1:],
                                history.recommendations, history.steps)  # fmt: skip
    rvr = per_deployment(first_test).set_index("deployment_id").loc["rvr"]
    assert (rvr["recommended_at"], rvr["recommended_from"]) == (T("2026-09-28"), FROM_RECOMMENDATION)
    # no recommendation row kept: the day the experiment was drafted
    unkept = RolloutHistory(history.deployments, history.decisions, history.experiments,
                            history.recommendations.iloc[4:], history.steps)  # fmt: skip
    rvr = per_deployment(unkept).set_index("deployment_id").loc["rvr"]
    assert (rvr["recommended_at"], rvr["recommended_from"], rvr["lead_time_days"]) == (
        T("2026-11-03"),
        FROM_EXPERIMENT,
        10.0,
    )


def test_an_empty_history_has_no_figures_but_does_not_fail() -> None:
    empty = RolloutHistory(*(pd.DataFrame(columns=list(c)) for c in (
        _history().deployments.columns, ["subject_id", "action", "actor", "decided_at"],
        ["experiment_id", "catalogue_key", "created_at", "ended_at"], ["catalogue_key", "as_of"], [],
    )))  # fmt: skip
    dora = dora_figures(per_deployment(empty), NOW)
    assert (dora.shipped_per_week, dora.shipped, dora.change_failure_rate, dora.lead_time_days_median) == (
        0.0,
        0,
        None,
        None,
    )
    assert weekly(per_deployment(empty)).empty


def _steps(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read_frame(
        "SELECT * FROM deployment_steps ORDER BY look_at, metric", parse_dates=["look_at"]
    )


def test_every_look_is_kept_once_per_guardrail_and_a_repeated_look_adds_nothing(
    warehouse: Warehouse, settings: Settings
) -> None:
    store = DeploymentStore(warehouse)
    store.create(settings, deployment_id="rvr", parameter="signals.rvr_threshold", value="2.5", source="person",
                 actor="ana", reason="try it", now=NOW)  # fmt: skip
    SettingsResource.of(settings).resolve_units("market", MARKETS)
    with warehouse.engine.begin() as conn:  # every unit on the change since the rollout began
        conn.execute(flag_assignments.update().values(first_exposure_at=NOW))
    on = {m for m, r in SettingsResource.of(settings).resolve_units("market", MARKETS).items() if r.variants}
    data = _market_days(dict.fromkeys(on, 0.0), NOW, 3, seed=1)

    early = NOW + timedelta(hours=1)  # a hold: the step has not run its hours
    [hold] = look_at_rollouts(warehouse, settings, data, now=early)
    later = NOW + timedelta(days=2)
    [first] = look_at_rollouts(warehouse, settings, data, now=later)
    [again] = look_at_rollouts(warehouse, settings, data, now=later)  # a retried run at the same time
    assert (hold.action.kind, first.action.kind, again.action.kind) == ("hold", "advance", "hold")

    steps = _steps(warehouse)
    guardrails = ["drawdown", "pnl_per_market_day"]
    assert steps["metric"].tolist() == guardrails * 2  # one row per look and guardrail; the repeat added none
    kept = steps[steps["look_at"] == later]
    # the look that moved the rollout is the one kept, with its exposure and bounds
    assert set(kept["action"]) == {"advance"} and kept["applied"].astype(bool).all()
    assert set(kept["share"]) == {0.05} and set(kept["step_index"]) == {0}
    assert set(kept["units_on_change"]) == {len(on)}
    assert set(kept["units_in_control"]) == {len(MARKETS) - len(on)}
    assert (kept["lower"] <= kept["estimate"]).all() and (kept["estimate"] <= kept["upper"]).all()
    assert steps.loc[steps["look_at"] == early, "reason"].str.contains("h more").all()

    line = timeline(steps, store.get("rvr"))
    assert line.drop_duplicates("time")["allocation"].tolist() == [0.05, 0.25]  # after the advance: 25%


def test_a_look_is_written_once_on_either_dialect(any_warehouse: Warehouse) -> None:
    guardrail = MetricLook("drawdown", "guardrail", "lower", 40, 3, 0.01, 0.012, 0.002, -0.004, 0.008)
    look = RolloutLook("rvr", 0, 0.05, 3, [guardrail], 0.4, StepAction("hold", "5% for 23.0 h more"), 40)
    assert record_look(any_warehouse, look, NOW, applied=True) == 1
    assert record_look(any_warehouse, look, NOW, applied=True) == 0  # the same look again: nothing added
    # a unit kind without guardrails still keeps its look, on one '-' row
    bare = RolloutLook("runs", 1, 0.25, 5, [], 1.0, StepAction("advance", "25% -> 100%", 2), 12)
    assert record_look(any_warehouse, bare, NOW, applied=False) == 1
    rows = _steps(any_warehouse).set_index("deployment_id")
    rvr = rows.loc["rvr"]
    assert rvr[["metric", "estimate", "upper", "units_in_control"]].tolist() == ["drawdown", 0.002, 0.008, 40]
    assert rows.loc["runs", ["metric", "action", "applied"]].tolist() == [NO_GUARDRAIL, "advance", False]


def test_rollout_history_shows_the_figures_the_table_and_a_timeline(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = _ramp(warehouse, settings, harm=0.0)  # rvr ramps to complete through daily looks
    assert trail[-1].endswith("complete:complete:2"), trail
    store = DeploymentStore(warehouse)
    done = NOW + timedelta(days=len(trail))
    store.create(settings, deployment_id="hype", parameter="signals.hype_threshold", value="0", source="person",
                 actor="ana", reason="try it", now=done)  # fmt: skip
    store.rollback(settings, "hype", actor="bo", reason="P&L looks wrong", now=done + timedelta(hours=3))
    history = read_history(warehouse)
    # a person's rollback between looks ends its timeline at 0%
    hype = timeline(history.steps, store.get("hype"))
    assert hype[["time", "allocation", "action"]].values.tolist() == [
        [done + timedelta(hours=3), 0.0, "rollback"]
    ]
    rvr = per_deployment(history).set_index("deployment_id").loc["rvr"]
    lead_days = (store.get("rvr")["step_started_at"] - NOW) / timedelta(days=1)
    assert rvr["lead_time_days"] == pytest.approx(lead_days) and rvr["recommended_from"] == FROM_PERSON

    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", f"{done.isoformat()}Z")
    result = dg.materialize([rollout_history], resources=build_resources(load_settings()))
    assert result.success
    [event] = result.asset_materializations_for_node("rollout_history")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert (meta["shipped"], meta["rolled_back"], meta["in_progress"]) == (1, 1, 0)
    assert meta["change_failure_rate"] == 0.5
    assert meta["hours_to_roll_back_median"] == pytest.approx(3.0)
    assert meta["lead_time_days_median"] == pytest.approx(lead_days)
    assert meta["shipped_per_week"] == pytest.approx(1.0)  # one shipped in a loop younger than a week
    assert "| rvr | signals.rvr_threshold | complete | 3 of 3 (100%) |" in meta["deployments"]
    assert "rollout start (2)" in meta["lead_time_from"]
    prefix = "![rollout timeline](data:image/png;base64,"
    assert meta["timeline"].startswith(prefix)
    png = base64.b64decode(meta["timeline"][len(prefix) : -1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

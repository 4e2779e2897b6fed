"""The experiment loop on a real warehouse: drafts, starting through a flag, atomic transitions,
looks and decisions that ship or kill the flag and enqueue a notice."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.experiments import runner
from kaizen_pipeline.experiments.store import ExperimentNotFound, ExperimentStore, TransitionRefused
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import DecisionLog
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.resources import SettingsResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

NOW = datetime(2026, 11, 20, 12, 0)
MARKETS = [f"m{i:02d}" for i in range(50)]


def recommendation(key: str = "raise_rvr_threshold", **changes: object) -> dict[str, object]:
    row = {
        "catalogue_key": key, "title": "Raise the RVR threshold from 2.0 to 2.5", "target_metric": "backtest_sharpe",
        "parameter": "signals.rvr_threshold", "proposed_value": "2.5", "predicted_effect": 0.3,
        "corrected_effect": 40.0,
    }  # fmt: skip
    return row | changes


MARKET_EFFECTS = dict(zip(MARKETS, np.random.default_rng(0).normal(0.0, 0.005, len(MARKETS)), strict=True))


def unit_data(
    rng: np.random.Generator, *, start: datetime, days: int, effect: dict[str, float] | None = None
) -> runner.UnitData:
    """Market-day values from ``start`` for ``days`` days: heavy tails, lasting market effects, per-market shifts."""
    market = MARKET_EFFECTS
    rows = []
    for m in MARKETS:
        for d in range(days):
            shift = (effect or {}).get(m, 0.0)
            pnl = 0.01 * rng.standard_t(3) / 3 + market[m] + shift
            day = pd.Timestamp(start).normalize() + pd.Timedelta(days=d)
            rows += [(m, day, "pnl_per_market_day", pnl), (m, day, "drawdown", max(-pnl, 0.0)),
                     (m, day, "signals_per_day", 1.0)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["market_id", "day", "metric", "value"])
    runs = pd.DataFrame(columns=["run_id", "started_at", "metric", "value"])
    return runner.UnitData(frame, runs, MARKETS, 96.0)


def test_a_testable_recommendation_becomes_one_draft_and_others_say_why_not(
    warehouse: Warehouse, settings: Settings
) -> None:
    data = unit_data(np.random.default_rng(1), start=NOW - timedelta(days=14), days=14)
    recs = pd.DataFrame([
        recommendation(),
        recommendation("weekly_report_digest", target_metric="feedback_score", parameter=None, proposed_value=None),
        recommendation("collect_every_10_minutes", parameter="data_collection.frequency_minutes", proposed_value="10"),
        recommendation("too_strict", proposed_value="500"),
    ])  # fmt: skip
    report = runner.draft_experiments(warehouse, settings, recs, data, now=NOW)
    assert report.drafted == ["raise_rvr_threshold-20261120"]
    assert "names no parameter" in report.skipped["weekly_report_digest"]
    assert "cannot be flagged" in report.skipped["collect_every_10_minutes"]
    assert "proposed_value: 500 is not a valid signals.rvr_threshold" in report.skipped["too_strict"]
    row = ExperimentStore(warehouse).get("raise_rvr_threshold-20261120")
    assert (
        row["status"] == "draft"
        and row["unit_kind"] == "market"
        and row["primary_metric"] == "pnl_per_market_day"
    )
    assert row["guardrails"] == '["drawdown"]' and row["mde"] > 0 and "2.5" in row["hypothesis"]
    again = runner.draft_experiments(warehouse, settings, recs, data, now=NOW + timedelta(days=1))
    assert again.drafted == []  # a recommendation is drafted once


def test_an_underpowered_draft_is_not_started(warehouse: Warehouse, settings: Settings) -> None:
    data = unit_data(np.random.default_rng(2), start=NOW - timedelta(days=14), days=14)
    recs = pd.DataFrame([recommendation(corrected_effect=0.01)])  # a Sharpe change too small to see
    runner.draft_experiments(warehouse, settings, recs, data, now=NOW)
    row = ExperimentStore(warehouse).frame().iloc[0]
    assert bool(row["underpowered"]) and row["decision"] == "underpowered"
    assert "even after 28 days" in row["decision_reason"]
    assert runner.auto_start(warehouse, settings, now=NOW).started == []
    with pytest.raises(ValueError, match="underpowered"):
        runner.start(warehouse, settings, row["experiment_id"], actor="ana", now=NOW)


def _drafted(warehouse: Warehouse, settings: Settings) -> str:
    data = unit_data(np.random.default_rng(3), start=NOW - timedelta(days=14), days=14)
    runner.draft_experiments(warehouse, settings, pd.DataFrame([recommendation()]), data, now=NOW)
    return "raise_rvr_threshold-20261120"


def test_starting_creates_the_flag_and_two_racing_starts_succeed_once(
    warehouse: Warehouse, settings: Settings
) -> None:
    exp_id = _drafted(warehouse, settings)
    outcomes: list[str] = []

    def try_start() -> None:
        try:
            runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
            outcomes.append("started")
        except TransitionRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=try_start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("started") == 1
    assert all("is running; only draft can become running" in o for o in outcomes if o != "started")
    flag = FlagStore(warehouse).get(exp_id)
    assert flag.status == "active" and flag.experiment_id == exp_id and flag.salt == f"experiment:{exp_id}"
    assert dict(flag.variants) == {"control": 2.0, "treatment": 2.5}
    assert dict(flag.weights) == {"control": 0.5, "treatment": 0.5}
    assert len(FlagStore(warehouse).changes(exp_id)) == 1


def test_stopping_kills_the_flag_and_unknown_or_finished_experiments_say_so(
    warehouse: Warehouse, settings: Settings
) -> None:
    exp_id = _drafted(warehouse, settings)
    runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
    runner.stop(warehouse, settings, exp_id, actor="bo", reason="regime change", now=NOW)
    assert FlagStore(warehouse).get(exp_id).status == "killed"
    assert ExperimentStore(warehouse).get(exp_id)["status"] == "stopped"
    with pytest.raises(TransitionRefused, match="is stopped"):
        runner.stop(warehouse, settings, exp_id, actor="bo", reason="again", now=NOW)
    with pytest.raises(ExperimentNotFound, match="no experiment 'nope'"):
        runner.stop(warehouse, settings, "nope", actor="bo", reason="x", now=NOW)


def _run_experiment(warehouse: Warehouse, settings: Settings, effect: float) -> runner.LookResult:
    exp_id = _drafted(warehouse, settings)
    runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
    resolutions = SettingsResource.of(settings).resolve_units(
        "market", MARKETS
    )  # exposures at the wall clock
    with warehouse.engine.begin() as conn:  # ... recorded as of the start
        conn.exec_driver_sql("UPDATE flag_assignments SET first_exposure_at = ?", (NOW,))
    treated = {m: effect for m, r in resolutions.items() if r.variants.get(exp_id) == "treatment"}
    rng = np.random.default_rng(4)
    pre = unit_data(rng, start=NOW - timedelta(days=14), days=14)
    post = unit_data(rng, start=NOW + timedelta(days=1), days=27, effect=treated)
    data = runner.UnitData(pd.concat([pre.market_days, post.market_days]), pre.runs, MARKETS, 96.0)
    results = []
    for day in range(3, 29):
        results += runner.look_and_decide(warehouse, settings, data, now=NOW + timedelta(days=day))
        if ExperimentStore(warehouse).get(exp_id)["status"] != "running":
            break
    return results[-1]


def test_a_winner_is_handed_to_a_rollout_at_its_first_step_and_sends_a_notice(
    warehouse: Warehouse, settings: Settings
) -> None:
    result = _run_experiment(warehouse, settings, effect=0.01)
    assert result.decision is not None and result.decision.decision == "ship"
    row = ExperimentStore(warehouse).get(result.experiment_id)
    assert row["status"] == "shipped" and "pnl_per_market_day improved" in row["decision_reason"]
    # the experiment's flag is retired; the rollout's flag serves 2.5 to the first 5% of markets
    assert FlagStore(warehouse).get(result.experiment_id).status == "killed"
    rollout = DeploymentStore(warehouse).for_source(result.experiment_id)
    assert rollout is not None and rollout["state"] == "ramping" and rollout["step_index"] == 0
    flag = FlagStore(warehouse).get(rollout["flag_key"])
    assert flag.status == "active" and flag.allocation == 0.05 and flag.variants == {"change": 2.5}
    on_change = [
        m for m in MARKETS if SettingsResource.of(settings).for_unit("market", m).signals.rvr_threshold == 2.5
    ]
    assert 0 < len(on_change) < 10
    looks = ExperimentStore(warehouse).looks(result.experiment_id)
    assert set(looks["metric"]) == {"pnl_per_market_day", "drawdown"}
    assert (looks.loc[looks["metric"] == "pnl_per_market_day", "cuped_reduction"] > 0).any()
    outbox = warehouse.read_frame("SELECT kind, subject, body_text FROM alert_outbox")
    assert list(outbox["kind"]) == ["notice"] and "shipped" in outbox["subject"].iloc[0]
    assert (
        f"handed to rollout {rollout['deployment_id']}: 5% of units first, then 25% -> 100%"
        in (outbox["body_text"].iloc[0])
    )
    actions = DecisionLog(warehouse).frame()["action"].tolist()
    assert actions[:2] == ["start_rollout", "ship"]  # newest first


def test_a_winner_waits_to_ship_while_rollouts_max_running_rollouts_ramp(
    warehouse: Warehouse, settings: Settings
) -> None:
    busy = settings.model_copy(update={"rollouts": settings.rollouts.model_copy(update={"max_running": 1})})
    DeploymentStore(warehouse).create(
        busy, deployment_id="retries-by-hand", parameter="transport.max_retries", value=3, source="ana",
        actor="ana", reason="fewer retries", now=NOW,
    )  # fmt: skip
    result = _run_experiment(warehouse, busy, effect=0.01)
    assert result.decision is None and result.deferred is not None and result.deferred.decision == "ship"
    assert "rollouts.max_running (1)" in str(result.deferred_because)
    assert ExperimentStore(warehouse).get(result.experiment_id)["status"] == "running"
    assert DeploymentStore(warehouse).for_source(result.experiment_id) is None


def test_a_harmful_change_is_stopped_and_everyone_returns_to_control(
    warehouse: Warehouse, settings: Settings
) -> None:
    result = _run_experiment(warehouse, settings, effect=-0.01)
    assert result.decision is not None and result.decision.status == "stopped"
    assert FlagStore(warehouse).get(result.experiment_id).status == "killed"
    assert SettingsResource.of(settings).for_unit("market", "m00").signals.rvr_threshold == 2.0


def test_an_assignment_bug_makes_the_experiment_invalid(warehouse: Warehouse, settings: Settings) -> None:
    exp_id = _drafted(warehouse, settings)
    runner.start(warehouse, settings, exp_id, actor="ana", now=NOW)
    rows = [{"flag_key": exp_id, "unit_kind": "market", "unit_id": f"u{i}", "variant": "control" if i < 700 else "treatment",
             "reason": "SPLIT", "first_exposure_at": NOW} for i in range(1000)]  # fmt: skip
    warehouse.upsert("flag_assignments", rows)
    data = unit_data(np.random.default_rng(5), start=NOW - timedelta(days=14), days=14)
    [result] = runner.look_and_decide(warehouse, settings, data, now=NOW + timedelta(days=2))
    assert result.decision is not None and result.decision.status == "invalid"
    assert FlagStore(warehouse).get(exp_id).status == "killed"
    outbox = warehouse.read_frame("SELECT priority FROM alert_outbox")
    assert list(outbox["priority"]) == ["critical"]

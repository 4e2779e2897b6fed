"""End to end on replayed demo runs (frozen clocks, real demo ingest, the real assets): recommendations
become experiments, runs are assigned through flags, looks accumulate, the planted beneficial change
ships (handed to a rollout at its first step) and the planted harmful change is stopped.

The demo world's planted truth (docs/experiments.md): ``demo.transient_error_rate`` of requests are
answered 503 and succeed on retry, so waiting before a retry only costs time (lowering
``transport.backoff_base_seconds`` shortens runs and harms nothing), while not retrying at all
(``transport.max_retries: 0``) fails most runs.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from kaizen_pipeline.experiments.assets import experiment_results, experiments
from kaizen_pipeline.experiments.replay import RUN_TRUTH_CONFIG
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets
from kaizen_pipeline.kaizen.assets import kaizen_metrics, recommendations
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings

START = datetime(2026, 11, 20, 0, 5)
RUNS_PER_DAY = 8
CONFIG = {
    **RUN_TRUTH_CONFIG,
    "experiments": {"max_days": 14, "min_units_per_arm": 5, "pre_period_days": 2},
    "kaizen": {
        "catalogue": [
            {
                "key": "faster_backoff",
                "title": "Retry at once",
                "target_metric": "run_duration_seconds",
                "predicted_effect": -2.5,
                "cost_hours": 0.5,
                "parameter": "transport.backoff_base_seconds",
                "proposed_value": "0",
            },
            {
                "key": "no_retries",
                "title": "Stop retrying failed requests",
                "target_metric": "api_retry_rate",
                "predicted_effect": -0.2,
                "cost_hours": 0.5,
                "parameter": "transport.max_retries",
                "proposed_value": "0",
            },
        ]  # fmt: skip
    },
}


def at(monkeypatch: pytest.MonkeyPatch, now: datetime) -> Settings:
    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", now.isoformat() + "Z")
    return load_settings()


def ingest_run(settings: Settings, instance: dg.DagsterInstance) -> None:
    """One ingest run (markets and prices): the run is the experiment's unit."""
    dg.materialize([polymarket_markets, market_prices], resources=build_resources(settings), instance=instance,
                   raise_on_error=False)  # fmt: skip


@pytest.mark.slow
def test_replayed_runs_ship_the_planted_winner_and_stop_the_planted_harm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    monkeypatch.setenv("KAIZEN_CONFIG", str(tmp_path / "config.yaml"))
    instance = dg.DagsterInstance.ephemeral()
    step = timedelta(hours=24 / RUNS_PER_DAY)
    now = START
    for _ in range(2 * RUNS_PER_DAY):  # the pre-period: two days of runs on the config values
        ingest_run(at(monkeypatch, now), instance)
        now += step
    settings = at(monkeypatch, now)
    resources = build_resources(settings)
    dg.materialize([kaizen_metrics, recommendations], resources=resources, instance=instance,
                   run_config={"ops": {"kaizen_metrics": {"config": {"as_of": now.isoformat()}}}})  # fmt: skip
    assert dg.materialize([experiments], resources=resources, instance=instance).success
    wh = warehouse_for(settings.database.sqlalchemy_url())
    store = ExperimentStore(wh)
    drafted = store.frame().set_index("catalogue_key")
    assert set(drafted.index) == {"faster_backoff", "no_retries"}
    assert (drafted["status"] == "running").all(), drafted[["status", "decision_reason"]]
    ids = drafted["experiment_id"].to_dict()

    looks = 0
    while store.frame("running").shape[0] and looks < CONFIG["experiments"]["max_days"]:
        for _ in range(RUNS_PER_DAY):
            ingest_run(at(monkeypatch, now), instance)
            now += step
        settings = at(monkeypatch, now)
        assert dg.materialize(
            [experiment_results], resources=build_resources(settings), instance=instance
        ).success
        looks += 1

    final = store.frame().set_index("catalogue_key")
    winner, harm = final.loc["faster_backoff"], final.loc["no_retries"]
    trail = store.looks().drop(columns=["experiment_id", "look_at"]).to_string()
    assert winner["status"] == "shipped", f"{winner['decision_reason']}\n{trail}"
    assert harm["status"] == "stopped" and harm["decision"] == "stop_guardrail", harm["decision_reason"]
    assert "run_success_rate" in harm["decision_reason"]

    flags = FlagStore(wh)
    assert flags.get(ids["faster_backoff"]).status == "killed"  # retired: the winner's rollout carries it
    rollout = DeploymentStore(wh).for_source(ids["faster_backoff"])
    assert rollout is not None and (rollout["state"], rollout["step_index"]) == ("ramping", 0)
    assert flags.get(rollout["flag_key"]).variants == {"change": 0.0}
    assert flags.get(ids["no_retries"]).status == "killed"
    assert at(monkeypatch, now).transport.max_retries == 5  # config untouched: the flag carries the change
    assignments = flags.assignments(ids["faster_backoff"])
    assert set(assignments["unit_kind"]) == {"run"} and set(assignments["variant"]) == {
        "control",
        "treatment",
    }
    runs = wh.read_frame("SELECT run_id, variants FROM ingestion_runs WHERE variants IS NOT NULL")
    assert ids["faster_backoff"] in json.loads(runs["variants"].iloc[-1])
    recorded = store.looks()
    assert recorded["look_at"].nunique() == looks and {"primary", "guardrail"} <= set(recorded["role"])
    notices = wh.read_frame("SELECT subject FROM alert_outbox WHERE kind = 'notice'")["subject"].tolist()
    assert any("shipped" in s for s in notices) and any("stopped" in s for s in notices)
    assert os.environ["KAIZEN_DEMO__FROZEN_NOW"]  # every run above ran on the replayed clock

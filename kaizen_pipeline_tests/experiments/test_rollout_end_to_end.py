"""End to end on replayed demo runs: a person rolls out a planted harmful change, the ``deployments``
asset rolls it back at the 5% step, and one critical email reaches a real SMTP server (127.0.0.1).

The demo world's planted truth (docs/experiments.md): ``demo.transient_error_rate`` of requests are
answered 503 and succeed on retry, so ``transport.max_retries: 0`` fails most runs. Every unit is a
real demo ingest run on the frozen demo clock (``KAIZEN_DEMO__FROZEN_NOW``); the rollout's flag buckets
runs by their Dagster run id. The run ids come from a seeded generator, so the runs that land on the
change (about 1 in 20) are the same on every replay; the planted faults stay random per process.
The notice travels the way a user gets it: ``alert_outbox``, then the alert sensor's SMTP delivery.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from kaizen_pipeline.cli import main
from kaizen_pipeline.experiments.assets import deployments
from kaizen_pipeline.experiments.replay import RUN_TRUTH_CONFIG
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets
from kaizen_pipeline.loop.control import LOOP_ACTOR, DecisionLog
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.ops.sensors import build_alert_sensor
from kaizen_pipeline.resources import SettingsResource, build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import alert_outbox, deployment_steps
from kaizen_pipeline_tests.smtp import AUTH_WITHOUT_TLS_WARNING, SMTP_PASSWORD, SmtpServer, point_alerts_at

# Before the wall clock on purpose: the alert sensor sends an outbox row once the wall clock reaches
# its next_attempt_at, and a notice takes that from the (frozen) pipeline clock.
START = datetime(2026, 11, 20, 0, 5)
PRE_PERIOD_RUNS = 6
RUNS_PER_DAY = 24  # hourly: about 1.2 runs a day land on the 5% step
MIN_UNITS_PER_STEP = 3  # below the default 5: keeps the replay short; a run harm this gross needs no more
MAX_DAYS = 8  # looks before the test gives up waiting for the rollback
RUNS_AFTER = 4
SEED = 20261120
PERSON = "dana"
PARAMETER, VALUE = "transport.max_retries", "0"
# Shorter waits between retries only save time (the planted truth): runs still retry 5 times.
CONFIG = {
    **RUN_TRUTH_CONFIG,
    "transport": {**RUN_TRUTH_CONFIG["transport"], "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.02},
    "rollouts": {"min_units_per_step": MIN_UNITS_PER_STEP},
}
INGEST = dg.define_asset_job("ingest_runs", selection=[polymarket_markets, market_prices])


def at(monkeypatch: pytest.MonkeyPatch, now: datetime) -> Settings:
    monkeypatch.setenv("KAIZEN_DEMO__FROZEN_NOW", now.isoformat() + "Z")
    return load_settings()


class Replay:
    """One Dagster instance: ingest runs with seeded run ids, looks, and the alert sensor with its cursor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance) -> None:
        self.monkeypatch = monkeypatch
        self.instance = instance
        self.rng = random.Random(SEED)
        self.cursor: str | None = None
        self.run_ids: list[str] = []

    def _defs(self, now: datetime) -> tuple[dg.Definitions, dict[str, Any]]:
        settings = at(self.monkeypatch, now)
        resources = build_resources(settings)
        defs = dg.Definitions(
            assets=[polymarket_markets, market_prices, deployments],
            jobs=[INGEST],
            sensors=[build_alert_sensor(settings)],
            resources=resources,
        )
        return defs, resources

    def ingest_run(self, now: datetime) -> None:
        """One real demo ingest run (markets and prices) at ``now``: the rollout's unit."""
        run_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        job = self._defs(now)[0].resolve_job_def(INGEST.name)
        job.execute_in_process(instance=self.instance, run_id=run_id, raise_on_error=False)
        self.run_ids.append(run_id)

    def look(self, now: datetime) -> None:
        """The deployments asset at ``now``, then an alert sensor tick (the outbox's SMTP delivery)."""
        settings = at(self.monkeypatch, now)
        assert dg.materialize(
            [deployments], resources=build_resources(settings), instance=self.instance
        ).success
        self.alert_tick(now)

    def alert_tick(self, now: datetime) -> None:
        defs, resources = self._defs(now)
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=defs, resources=resources
        )
        assert isinstance(defs.resolve_sensor_def("alert_sensor")(context), dg.SkipReason)
        self.cursor = context.cursor


def state(wh: Warehouse) -> list[pd.DataFrame]:
    """What a look may change: the rollouts, their looks, the decisions and the outbox."""
    return [
        DeploymentStore(wh).frame(),
        wh.read_frame(sa.select(deployment_steps)),
        DecisionLog(wh).frame(),
        wh.read_frame(sa.select(alert_outbox).where(alert_outbox.c.kind == "notice")),
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings(AUTH_WITHOUT_TLS_WARNING)
def test_a_planted_harmful_change_is_rolled_back_at_5_percent_with_one_alert_email(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    monkeypatch.setenv("KAIZEN_CONFIG", str(tmp_path / "config.yaml"))
    point_alerts_at(smtp_server, monkeypatch)
    step = timedelta(hours=24 / RUNS_PER_DAY)
    now = START
    with dg.DagsterInstance.ephemeral() as instance:  # in memory: a run on SQLite storage costs 2 s more
        replay = Replay(monkeypatch, instance)
        for _ in range(PRE_PERIOD_RUNS):  # the pre-period: runs on the config values
            replay.ingest_run(now)
            now += step
        replay.alert_tick(now)
        before_rollout = len(smtp_server.messages)

        # a person rolls out the planted harm at the default steps
        settings = at(monkeypatch, now)
        reason = "fewer retries, shorter runs"
        capsys.readouterr()
        assert main(["rollout", "start", PARAMETER, VALUE, "--reason", reason, "--actor", PERSON]) == 0
        dep_id = f"max_retries-{now:%Y%m%d%H%M}"
        assert capsys.readouterr().out.strip() == (
            f"rollout {dep_id} ramping: {PARAMETER} 5 -> 0 on 5% of runs"
        )
        wh = warehouse_for(settings.database.sqlalchemy_url())
        store = DeploymentStore(wh)
        started = store.get(dep_id)
        assert (started["state"], started["step_index"], json.loads(started["steps"])) == (
            "ramping",
            0,
            [0.05, 0.25, 1.0],
        )

        days = 0
        while store.get(dep_id)["state"] == "ramping" and days < MAX_DAYS:
            for _ in range(RUNS_PER_DAY):
                replay.ingest_run(now)
                now += step
            replay.look(now)  # once a day: experiments.look_interval_hours
            days += 1
        looked_at = now

        # rolled back at the 5% step, for the harmed run success rate
        trail = wh.read_frame(sa.select(deployment_steps).order_by(deployment_steps.c.look_at)).to_string()
        row = store.get(dep_id)
        assert (row["state"], row["step_index"]) == ("rolled_back", 0), f"{row['reason']}\n{trail}"
        assert row["reason"].startswith("guardrail harmed at 5%: run_success_rate"), row["reason"]
        flags = FlagStore(wh)
        assert flags.get(row["flag_key"]).status == "killed"
        rolled_back = wh.read_frame(
            sa.select(deployment_steps).where(deployment_steps.c.action == "rollback")
        )
        harmed = rolled_back.set_index("metric").loc["run_success_rate"]
        assert harmed["outcome"] == "loses" and harmed["step_index"] == 0 and harmed["applied"], trail
        assert harmed["units_on_change"] >= MIN_UNITS_PER_STEP and harmed["units_in_control"] > 20, trail

        # the units on the change before the rollback: a few runs, which ran on 0 retries and failed
        assignments = flags.assignments(row["flag_key"])
        exposed = set(assignments.loc[assignments["variant"] == "change", "unit_id"])
        assert exposed <= set(replay.run_ids[PRE_PERIOD_RUNS:])
        assert MIN_UNITS_PER_STEP <= len(exposed) < 10, f"{len(exposed)} runs on the change\n{trail}"
        ingested = wh.read_frame("SELECT run_id, status, variants FROM ingestion_runs")
        on_change = ingested[ingested["run_id"].isin(exposed)]
        assert set(on_change["run_id"]) == exposed
        assert all(json.loads(v) == {dep_id: "change"} for v in on_change["variants"])
        assert (on_change.groupby("run_id")["status"].apply(lambda s: (s == "failed").any())).mean() >= 0.5

        # exactly one email about it, critical (the escalation list too), naming the change, no secret
        about = [m for m in smtp_server.messages if dep_id in m.subject or dep_id in m.body("plain")]
        assert len(about) == 1, [m.subject for m in smtp_server.messages]
        (mail,) = about
        assert mail.subject == f"[CRITICAL] rollout {dep_id} rolled back"
        assert sorted(mail.rcpt_tos) == ["lead@example.test", "oncall@example.test", "research@example.test"]
        text = mail.body("plain")
        assert f"({PARAMETER}: 5 -> 0) was rolled back at 5%" in text and "every unit is on 5 again" in text
        assert "run_success_rate" in text and PARAMETER in mail.body("html")
        for received in smtp_server.messages:
            assert SMTP_PASSWORD not in received.raw.decode(errors="replace")
        (notice,) = state(wh)[3].to_dict("records")
        assert (notice["priority"], notice["status"], notice["attempts"]) == ("critical", "sent", 1)
        # every other email is the alert sensor's about failed ingest runs (and their recovery)
        others = [m.subject for m in smtp_server.messages[before_rollout:] if m is not mail]
        assert all(f"job {INGEST.name}" in s for s in others), others

        # the decision log: the person started it, the loop rolled it back
        log = DecisionLog(wh).frame(subject_id=dep_id).sort_values("decision_id")
        assert [(r.action, r.actor) for r in log.itertuples()] == [
            ("start_rollout", PERSON),
            ("rollback", LOOP_ACTOR),
        ]
        assert reason in log.iloc[0]["evidence"] and "run_success_rate" in log.iloc[1]["evidence"]

        # another tick at the same pipeline time (a retried look): nothing changes, no second email
        before = state(wh)
        sent = len(smtp_server.messages)
        replay.look(looked_at)
        for frame, again in zip(before, state(wh), strict=True):
            pd.testing.assert_frame_equal(again, frame)
        assert len(smtp_server.messages) == sent

        # the runs after it resolve transport.max_retries to the config value again, the exposed ones too
        for _ in range(RUNS_AFTER):
            replay.ingest_run(now)
            now += step
        after = replay.run_ids[-RUNS_AFTER:]
        later = wh.read_frame("SELECT run_id, variants FROM ingestion_runs")
        assert set(after) <= set(later["run_id"])
        assert all(
            dep_id not in json.loads(v) for v in later.loc[later["run_id"].isin(after), "variants"].dropna()
        )
        settings = at(monkeypatch, now)
        assert settings.transport.max_retries == 5  # config.yaml untouched: the flag carried the change
        resource = SettingsResource.of(settings)
        for run_id in [*after, *sorted(exposed)]:
            assert resource.for_unit("run", run_id).transport.max_retries == 5, run_id

        # and the next day's look neither moves it nor writes about it again
        replay.look(now)
        for frame, again in zip(before, state(wh), strict=True):
            pd.testing.assert_frame_equal(again, frame)
        assert [m for m in smtp_server.messages if dep_id in m.subject or dep_id in m.body("plain")] == [mail]

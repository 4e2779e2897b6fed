"""The alert state machine and email rendering (pure: no SMTP, no Dagster)."""

from __future__ import annotations

from datetime import datetime, timedelta

from kaizen_pipeline.ops.alerts import (
    Alert,
    Routing,
    apply_observations,
    backoff_delay,
    check_observation,
    group_notifications,
    priority_for_check,
    run_observation,
)
from kaizen_pipeline.ops.emails import render_email

T0 = datetime(2026, 3, 1, 12, 0)
REPEAT = timedelta(hours=4)
ROUTING = Routing(("oncall@x.test",), ("lead@x.test",))


def failing(
    check: str = "price_freshness", at: datetime = T0, run: str = "run-1", severity: str = "WARN", **meta
):
    return check_observation(
        asset_key="market_prices",
        check_name=check,
        passed=False,
        severity=severity,
        metadata={"value": 42.0, "target": 30.0, "deviation": 0.4, **meta},
        occurred_at=at,
        run_id=run,
        description="Prices must be younger than 30 minutes.",
    )


def passing(check: str = "price_freshness", at: datetime = T0, run: str = "run-9"):
    return check_observation(
        asset_key="market_prices",
        check_name=check,
        passed=True,
        severity="WARN",
        metadata={},
        occurred_at=at,
        run_id=run,
    )


def step(open_alerts: dict[str, Alert], observations, now: datetime):
    out = apply_observations(open_alerts, observations, now=now, repeat_interval=REPEAT, routing=ROUTING)
    state = dict(open_alerts)
    for alert in out.changed.values():
        if alert.status == "open":
            state[alert.alert_key] = alert
        else:
            state.pop(alert.alert_key, None)
    return state, out.notifications


def test_priority_follows_severity_and_critical_tags() -> None:
    assert priority_for_check("ERROR", {}) == "critical"
    assert priority_for_check("WARN", {}) == "warning"
    assert priority_for_check("WARN", {"priority": "critical"}) == "critical"
    assert priority_for_check("WARN", {}, {"tags": ["kaizen", "critical"]}) == "critical"
    assert priority_for_check("WARN", {"priority": "info"}) == "info"


def test_first_failure_notifies_once_then_repeats_only_after_the_interval() -> None:
    state, notes = step({}, [failing()], now=T0)
    assert [n.kind for n in notes] == ["firing"]
    assert notes[0].recipients == ("oncall@x.test",)

    # the same failure seen again within the repeat interval: no email
    state, notes = step(
        state, [failing(at=T0 + timedelta(hours=1), run="run-2")], now=T0 + timedelta(hours=1)
    )
    assert notes == []

    later = T0 + timedelta(hours=4, minutes=1)
    state, notes = step(state, [failing(at=later, run="run-3")], now=later)
    assert [n.kind for n in notes] == ["repeat"]
    assert notes[0].alert.failure_count == 3
    assert len(state) == 1


def test_pass_resolves_and_tells_whoever_was_told_it_fired() -> None:
    state, _ = step({}, [failing(severity="ERROR")], now=T0)
    state, notes = step(state, [passing(at=T0 + timedelta(minutes=20))], now=T0 + timedelta(minutes=20))
    assert [n.kind for n in notes] == ["resolved"]
    assert set(notes[0].recipients) == {"oncall@x.test", "lead@x.test"}
    assert state == {}
    # passing again: nothing left to resolve
    _, notes = step(state, [passing(at=T0 + timedelta(minutes=30))], now=T0 + timedelta(minutes=30))
    assert notes == []


def test_critical_goes_to_escalation_and_a_warning_escalating_to_critical_notifies_at_once() -> None:
    state, notes = step({}, [failing()], now=T0)
    assert notes[0].recipients == ("oncall@x.test",)
    state, notes = step(
        state, [failing(at=T0 + timedelta(minutes=5), severity="ERROR")], now=T0 + timedelta(minutes=5)
    )
    assert [n.kind for n in notes] == ["firing"]
    assert notes[0].recipients == ("oncall@x.test", "lead@x.test")


def test_info_is_recorded_without_email() -> None:
    state, notes = step({}, [failing(priority="info")], now=T0)
    assert notes == []
    assert state["check:market_prices/price_freshness"].priority == "info"
    # an info alert that resolves sends nothing either
    _, notes = step(state, [passing()], now=T0)
    assert notes == []


def test_failures_of_one_run_are_grouped_into_one_email() -> None:
    observations = [
        failing("price_freshness"),
        failing("price_range", severity="ERROR"),
        run_observation(
            job_name="ingest_job", run_id="run-1", succeeded=False, occurred_at=T0, priority="warning"
        ),
        failing("price_gaps", run="run-2"),
    ]
    _, notes = step({}, observations, now=T0)
    groups = group_notifications(notes)
    by_run = {g.run_id: g for g in groups}
    assert len(by_run["run-1"].alerts) == 3
    assert by_run["run-1"].priority == "critical"
    assert set(by_run["run-1"].recipients) == {"oncall@x.test", "lead@x.test"}
    assert len(by_run["run-2"].alerts) == 1
    # the grouping key is stable: re-deriving the same transition gives the same message id
    _, again = step({}, observations, now=T0)
    assert {g.message_id for g in group_notifications(again)} == {g.message_id for g in groups}


def test_rendered_email_names_severity_asset_check_and_links_the_run() -> None:
    _, notes = step({}, [failing(severity="ERROR")], now=T0)
    (group,) = group_notifications(notes)
    rendered = render_email(group, "http://ui.test:3000/")
    assert rendered.subject == "[CRITICAL] market_prices / price_freshness failed in run run-1"
    for body in (rendered.text, rendered.html):
        assert "http://ui.test:3000/runs/run-1" in body
        assert "42" in body and "30" in body and "0.4" in body
        assert "Prices must be younger than 30 minutes." in body
    assert "<script" not in render_email(group, "http://ui.test:3000").html


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_delay(n, 60, 600).total_seconds() for n in range(1, 7)]
    assert delays == [60, 120, 240, 480, 600, 600]

"""`kaizen status`: the whole pipeline at a glance, in colour (green good, yellow warning, red error).

Facts come from the supervisor's state file (processes), the Dagster instance (schedules, sensors,
last runs: gathered by the CLI through kaizen_pipeline.instance) and the warehouse (open alerts,
data freshness, flags, rollouts, the loop's freeze). Rendering uses rich. Pure: no Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kaizen_pipeline.ops.supervisor import pid_alive
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import alert_state, deployments, feature_flags, loop_state

GOOD, WARN, BAD, DIM = "green", "yellow", "red", "dim"
# data a cycle writes, and the column that says how new it is
FRESHNESS_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("prices", "price_points", "ts"),
    ("markets", "market_snapshots", "snapshot_ts"),
    ("order books", "order_book_snapshots", "book_ts"),
    ("posts", "tweets", "created_at"),
    ("signals", "trading_signals", "bucket_ts"),
    ("kaizen metrics", "kaizen_metrics", "ts"),
)
ACTIVE_ROLLOUT_STATES = ("ramping", "held", "awaiting_approval")


@dataclass(frozen=True)
class Freshness:
    name: str
    newest: datetime | None
    age: timedelta | None


@dataclass
class WarehouseFacts:
    """What the warehouse says; ``error`` when it could not be read."""

    open_alerts: dict[str, int] = field(default_factory=dict)
    newest_alerts: list[tuple[str, str, datetime]] = field(default_factory=list)  # priority, title, since
    freshness: list[Freshness] = field(default_factory=list)
    active_flags: int = 0
    rollouts: list[tuple[str, str, int, str]] = field(default_factory=list)  # id, parameter, step, state
    frozen: bool = False
    error: str | None = None


def warehouse_facts(wh: Warehouse, now: datetime) -> WarehouseFacts:
    """Open alerts by priority, the age of each kind of data at ``now`` (naive UTC), flags, rollouts, freeze."""
    facts = WarehouseFacts()
    try:
        with wh.engine.connect() as conn:
            for priority, count in conn.execute(
                sa.select(alert_state.c.priority, sa.func.count())
                .where(alert_state.c.status == "open")
                .group_by(alert_state.c.priority)
            ):
                facts.open_alerts[str(priority)] = int(count)
            newest = conn.execute(
                sa.select(
                    alert_state.c.priority,
                    alert_state.c.asset_key,
                    alert_state.c.check_name,
                    alert_state.c.job_name,
                    alert_state.c.opened_at,
                )
                .where(alert_state.c.status == "open")
                .order_by(alert_state.c.last_failed_at.desc())
                .limit(5)
            )
            for priority, asset, check, job, opened in newest:
                title = f"{asset} / {check}" if check else f"job {job}"
                facts.newest_alerts.append((str(priority), title, opened))
            for name, table, column in FRESHNESS_SOURCES:
                t = wh.table(table)
                ts = conn.execute(sa.select(sa.func.max(t.c[column]))).scalar()
                facts.freshness.append(Freshness(name, ts, (now - ts) if ts is not None else None))
            facts.active_flags = int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(feature_flags)
                    .where(feature_flags.c.status == "active")
                ).scalar_one()
            )
            for row in conn.execute(
                sa.select(deployments.c.deployment_id, deployments.c.parameter, deployments.c.step_index,
                          deployments.c.state)
                .where(deployments.c.state.in_(ACTIVE_ROLLOUT_STATES))
                .order_by(deployments.c.created_at)
            ):  # fmt: skip
                facts.rollouts.append((row[0], row[1], int(row[2]) + 1, row[3]))
            freeze = conn.execute(sa.select(loop_state.c.active).where(loop_state.c.key == "freeze")).scalar()
            facts.frozen = bool(freeze)
    except sa.exc.SQLAlchemyError as exc:
        facts.error = f"warehouse unreadable: {type(exc).__name__}"
    return facts


def _age(age: timedelta | None) -> str:
    if age is None:
        return "never"
    seconds = max(0.0, age.total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def freshness_colour(age: timedelta | None, stale_after: timedelta) -> str:
    """Green within ``stale_after``, yellow within 4x, red beyond (or never written)."""
    if age is None or age > 4 * stale_after:
        return BAD
    return GOOD if age <= stale_after else WARN


_RUN_COLOURS = {"SUCCESS": GOOD, "FAILURE": BAD, "CANCELED": WARN, "STARTED": WARN, "QUEUED": WARN}
_TICK_COLOURS = {"SUCCESS": GOOD, "SKIPPED": GOOD, "FAILURE": BAD, "STARTED": WARN}


def render(
    console: Console,
    *,
    processes: dict[str, Any],
    url: str,
    instigators: Sequence[Any] | None,
    job_runs: Sequence[Any] | None,
    instance_error: str | None,
    facts: WarehouseFacts,
    now: datetime,
    stale_after: timedelta,
    channels: Sequence[str] = (),
) -> None:
    """Print every section; ``instigators`` / ``job_runs`` are kaizen_pipeline.instance facts (None: unreadable)."""
    console.print(_processes_table(processes, url))
    if instance_error:
        console.print(Text(f"Dagster instance: {instance_error}", style=BAD))
    else:
        console.print(_instigators_table(instigators or [], now))
        console.print(_runs_table(job_runs or [], now))
    if facts.error:
        console.print(Text(facts.error, style=BAD))
        return
    console.print(_alerts_panel(facts, now, channels))
    console.print(_freshness_table(facts, stale_after))
    console.print(_loop_panel(facts))


def _processes_table(state: dict[str, Any], url: str) -> Table:
    table = Table(title="Processes (kaizen start / kaizen stop)", title_justify="left")
    for column in ("process", "state", "pid", "up", "restarts"):
        table.add_column(column)
    supervisor = state.get("supervisor_pid")
    alive = pid_alive(supervisor)
    table.add_row(
        "supervisor",
        Text("running", style=GOOD) if alive else Text("stopped", style=WARN),
        str(supervisor or "-") if alive else "-",
        "",
        "",
    )
    children = {c["name"]: c for c in state.get("children", [])}
    for name in ("webserver", "daemon"):
        child = children.get(name, {})
        running = alive and pid_alive(child.get("pid"))
        if running:
            status = Text("running", style=GOOD)
        elif alive:
            status = Text(f"restarting (exit {child.get('last_exit')})", style=BAD)
        else:
            status = Text("stopped", style=WARN)
        up = (
            _age(timedelta(seconds=time.time() - child["started_at"])).removesuffix(" ago") if running else ""
        )
        restarts = int(child.get("restarts", 0))
        table.add_row(
            name + (f"  {url}" if name == "webserver" and running else ""),
            status,
            str(child.get("pid")) if running else "-",
            up,
            Text(str(restarts), style=WARN if restarts else GOOD),
        )
    return table


def _instigators_table(instigators: Sequence[Any], now: datetime) -> Table:
    table = Table(title="Schedules and sensors", title_justify="left")
    for column in ("name", "kind", "state", "last tick"):
        table.add_column(column)
    for fact in instigators:
        state = Text("on", style=GOOD) if fact.running else Text("off", style=DIM)
        if fact.last_tick_at is None:
            tick = Text("never", style=DIM)
        else:
            tick = Text(
                f"{fact.last_tick_status.lower()} {_age(now - fact.last_tick_at)}",
                style=_TICK_COLOURS.get(fact.last_tick_status or "", DIM),
            )
        table.add_row(fact.name, fact.kind, state, tick)
    return table


def _runs_table(job_runs: Sequence[Any], now: datetime) -> Table:
    table = Table(title="Last run of each job", title_justify="left")
    for column in ("job", "status", "started", "took"):
        table.add_column(column)
    for fact in job_runs:
        if fact.status is None:
            table.add_row(fact.job_name, Text("never ran", style=DIM), "", "")
            continue
        table.add_row(
            fact.job_name,
            Text(fact.status.lower(), style=_RUN_COLOURS.get(fact.status, DIM)),
            _age(now - fact.started_at) if fact.started_at else "",
            f"{fact.seconds:.0f} s" if fact.seconds is not None else "",
        )
    return table


def _alerts_panel(facts: WarehouseFacts, now: datetime, channels: Sequence[str]) -> Panel:
    counts = facts.open_alerts
    line = Text()
    for priority, colour in (("critical", BAD), ("warning", WARN), ("info", DIM)):
        n = counts.get(priority, 0)
        line.append(f"{priority} {n}   ", style=colour if n else GOOD)
    lines: list[Any] = [line]
    for priority, title, since in facts.newest_alerts:
        style = BAD if priority == "critical" else WARN if priority == "warning" else DIM
        lines.append(Text(f"  {priority:<8} {title}  (open since {_age(now - since)})", style=style))
    if not facts.newest_alerts:
        lines.append(Text("  no open alerts", style=GOOD))
    if channels:
        lines.append(Text(f"delivered by: {', '.join(channels)}", style=DIM))
    else:
        lines.append(
            Text("delivered by: nothing (alerts.recipients and the chat channels are empty)", style=WARN)
        )
    return Panel(Group(*lines), title="Open alerts", title_align="left")


def _freshness_table(facts: WarehouseFacts, stale_after: timedelta) -> Table:
    table = Table(
        title=f"Data freshness (stale after {_age(stale_after).removesuffix(' ago')})", title_justify="left"
    )
    for column in ("data", "newest", "age"):
        table.add_column(column)
    for item in facts.freshness:
        # metrics are daily: they are fresh for a day
        allowed = timedelta(days=2) if item.name == "kaizen metrics" else stale_after
        colour = freshness_colour(item.age, allowed)
        table.add_row(
            item.name,
            f"{item.newest:%Y-%m-%d %H:%M}" if item.newest else "-",
            Text(_age(item.age), style=colour),
        )
    return table


def _loop_panel(facts: WarehouseFacts) -> Panel:
    lines: list[Any] = [
        Text("loop FROZEN: no automatic change (kaizen unfreeze)", style=WARN)
        if facts.frozen
        else Text("loop running (kaizen freeze stops every automatic change)", style=GOOD),
        Text(f"active flags: {facts.active_flags}"),
    ]
    if not facts.rollouts:
        lines.append(Text("rollouts in progress: none", style=DIM))
    for deployment_id, parameter, step, state in facts.rollouts:
        style = WARN if state in ("held", "awaiting_approval") else GOOD
        lines.append(Text(f"rollout {deployment_id}: {parameter} at step {step}, {state}", style=style))
    return Panel(Group(*lines), title="Flags and rollouts", title_align="left")

"""What the loop did and the human override: the decision_log and the freeze (no Dagster).

Every automatic decision (start an experiment, ship, stop, inconclusive, invalid) and every
person's override (start, stop, freeze, unfreeze, undo) is one ``decision_log`` row with who,
when, the value before and after, and the evidence. ``kaizen freeze`` sets one row of
``loop_state``: while it holds, nothing changes by itself (no experiment starts, no decision is
applied; looks are still taken and flags stay where they are) until ``kaizen unfreeze``.

Freezing and unfreezing are conditional UPDATEs of that row, so two people (or a person and a
sensor tick) racing cannot both succeed; the loser is told who got there first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import decision_log, loop_state

LOOP_ACTOR = "kaizen-loop"
FREEZE = "freeze"


@dataclass(frozen=True)
class LoggedDecision:
    """One decision to write to decision_log (``before``/``after`` are stored as JSON)."""

    action: str
    subject_kind: str
    subject_id: str
    actor: str
    evidence: str
    parameter: str | None = None
    before: Any = None
    after: Any = None
    undo_of: int | None = None


class DecisionNotFound(KeyError):
    def __str__(self) -> str:
        return f"decision_id: no decision {self.args[0]!r} (kaizen decisions lists them)"


class OverrideRefused(ValueError):
    """A freeze, unfreeze or undo that does not apply in the current state (the message says why)."""


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def record(conn: sa.Connection, entry: LoggedDecision, now: datetime) -> int:
    """Write ``entry`` in the caller's transaction; returns its decision_id."""
    result = conn.execute(
        decision_log.insert().values(
            decided_at=now,
            actor=entry.actor,
            action=entry.action,
            subject_kind=entry.subject_kind,
            subject_id=entry.subject_id,
            parameter=entry.parameter,
            before=_json(entry.before),
            after=_json(entry.after),
            evidence=entry.evidence,
            undo_of=entry.undo_of,
        )
    )
    return int(result.inserted_primary_key[0])


class DecisionLog:
    """Read and append the decision_log."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def record(self, entry: LoggedDecision, now: datetime) -> int:
        with self.wh.engine.begin() as conn:
            return record(conn, entry, now)

    def frame(self, *, subject_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Newest first."""
        stmt = sa.select(decision_log).order_by(decision_log.c.decision_id.desc())
        if subject_id is not None:
            stmt = stmt.where(decision_log.c.subject_id == subject_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self.wh.read_frame(stmt, parse_dates=["decided_at", "undone_at"])

    def get(self, decision_id: int) -> dict[str, Any]:
        with self.wh.engine.connect() as conn:
            row = (
                conn.execute(sa.select(decision_log).where(decision_log.c.decision_id == decision_id))
                .mappings()
                .first()
            )
        if row is None:
            raise DecisionNotFound(decision_id)
        return dict(row)

    def mark_undone(self, decision_id: int, undo: LoggedDecision, now: datetime) -> int:
        """Mark ``decision_id`` undone and log ``undo`` in one transaction; refused if already undone."""
        with self.wh.engine.begin() as conn:
            result = conn.execute(
                decision_log.update()
                .where(decision_log.c.decision_id == decision_id, decision_log.c.undone_at.is_(None))
                .values(undone_at=now, undone_by=undo.actor)
            )
            if result.rowcount != 1:
                row = self.get(decision_id)
                raise OverrideRefused(
                    f"decision {decision_id} was already undone at {row['undone_at']:%Y-%m-%d %H:%M} "
                    f"by {row['undone_by']}"
                )
            return record(conn, undo, now)


@dataclass(frozen=True)
class Freeze:
    """The freeze in force: since when, by whom, why."""

    since: datetime
    actor: str
    reason: str


class LoopControl:
    """The global freeze: ``current()`` is None while the loop may act by itself."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def current(self) -> Freeze | None:
        with self.wh.engine.connect() as conn:
            row = conn.execute(sa.select(loop_state).where(loop_state.c.key == FREEZE)).mappings().first()
        if row is None or not row["active"]:
            return None
        return Freeze(row["since"], row["actor"], row["reason"] or "")

    def freeze(self, *, actor: str, reason: str, now: datetime) -> Freeze:
        """Stop every automatic change until unfreeze; refused (naming the freeze) if one holds."""
        if not reason.strip():
            raise OverrideRefused("reason: say why the loop is frozen (it is kept in decision_log)")
        return self._set(True, actor=actor, reason=reason, now=now)

    def unfreeze(self, *, actor: str, reason: str, now: datetime) -> Freeze:
        """Let the loop act again; refused if it is not frozen."""
        return self._set(False, actor=actor, reason=reason or "unfrozen", now=now)

    def _set(self, active: bool, *, actor: str, reason: str, now: datetime) -> Freeze:
        with self.wh.engine.begin() as conn:
            conn.execute(
                self.wh.dialect_insert(loop_state)
                .values(key=FREEZE, active=False, since=None, actor=None, reason=None)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            result = conn.execute(
                loop_state.update()
                .where(loop_state.c.key == FREEZE, loop_state.c.active.is_(not active))
                .values(active=active, since=now, actor=actor, reason=reason)
            )
            if result.rowcount != 1:
                row = conn.execute(sa.select(loop_state).where(loop_state.c.key == FREEZE)).mappings().one()
                if active:
                    raise OverrideRefused(
                        f"the loop is already frozen since {row['since']:%Y-%m-%d %H:%M} by {row['actor']}: "
                        f"{row['reason']}"
                    )
                raise OverrideRefused("the loop is not frozen (kaizen freeze --reason ... stops it)")
            record(
                conn,
                LoggedDecision(
                    action=FREEZE if active else "unfreeze",
                    subject_kind="loop",
                    subject_id="loop",
                    actor=actor,
                    evidence=reason,
                ),
                now,
            )
        return Freeze(now, actor, reason)

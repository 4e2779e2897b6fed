"""The deployments table: a rollout's state, moved only from an expected state and step (no Dagster).

Every change of a deployment is one transaction holding three writes: the conditional UPDATE of its
row (``WHERE state IN (...) AND step_index = ...``), its flag's allocation (or the kill on rollback)
through ``FlagStore.save(conn=...)``, and a ``decision_log`` row. Two sensor ticks, or a tick racing a
person's rollback, cannot both advance a step, and nothing resurrects a rolled-back change: the loser
gets ``TransitionRefused`` naming the state it found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.experiments.store import TransitionRefused
from kaizen_pipeline.flags.model import FeatureFlag
from kaizen_pipeline.flags.parameters import FLAGGABLE, config_value, validated_value
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import LoggedDecision, record
from kaizen_pipeline.loop.rollout import ACTIVE
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import deployments

CHANGE = "change"


class DeploymentNotFound(KeyError):
    def __str__(self) -> str:
        return f"deployment_id: no deployment {self.args[0]!r} (kaizen rollout list shows them)"


class DeploymentStore:
    """Create rollouts and move them step by step, atomically (module docstring)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse
        self.flags = FlagStore(warehouse)

    def for_source(self, source: str) -> dict[str, Any] | None:
        """The newest rollout started from ``source`` (an experiment id), if any."""
        frame = self.frame()
        mine = frame[frame["source"] == source] if not frame.empty else frame
        return None if mine.empty else self.get(str(mine.iloc[-1]["deployment_id"]))

    def frame(self, states: Iterable[str] | None = None) -> pd.DataFrame:
        stmt = sa.select(deployments).order_by(deployments.c.created_at, deployments.c.deployment_id)
        if states is not None:
            stmt = stmt.where(deployments.c.state.in_(tuple(states)))
        return self.wh.read_frame(
            stmt, parse_dates=["step_started_at", "created_at", "ended_at", "last_look_at", "updated_at"]
        )

    def get(self, deployment_id: str) -> dict[str, Any]:
        with self.wh.engine.connect() as conn:
            row = self._row(conn, deployment_id)
        if row is None:
            raise DeploymentNotFound(deployment_id)
        return row

    def create(
        self,
        settings: Any,
        *,
        deployment_id: str,
        parameter: str,
        value: Any,
        source: str,
        actor: str,
        reason: str,
        now: datetime,
        approved_first_step: bool = False,
        retire_flag: str | None = None,
    ) -> dict[str, Any]:
        """Start rolling ``parameter`` = ``value`` out at the first of ``rollouts.steps`` (its flag and its row).

        ``retire_flag``: a flag on the same parameter killed in the same transaction (the shipped
        experiment's), so the parameter never has two active flags and never none in between.
        """
        after = validated_value(settings, parameter, value, field="value")
        before = config_value(settings, parameter)
        if after == before:
            raise ValueError(f"value: {parameter} is already {before!r} in config.yaml")
        steps = list(settings.rollouts.steps)
        needs_approval = parameter in settings.rollouts.approval_parameters or any(
            abs(steps[0] - a) < 1e-9 for a in settings.rollouts.approval_steps
        )
        state = "awaiting_approval" if needs_approval and not approved_first_step else "ramping"
        flag = FeatureFlag(
            flag_key=deployment_id,
            parameter=parameter,
            variants={CHANGE: after},
            weights={CHANGE: 1.0},
            allocation=0.0 if state == "awaiting_approval" else steps[0],
            salt=f"rollout:{deployment_id}",
            owner=actor,
            description=reason,
        )
        row = {
            "deployment_id": deployment_id, "parameter": parameter, "unit_kind": FLAGGABLE[parameter].unit_kind,
            "before_value": json.dumps(before), "after_value": json.dumps(after), "source": source,
            "flag_key": deployment_id, "steps": json.dumps(steps), "step_index": 0, "state": state,
            "step_started_at": now, "reason": reason, "created_at": now, "created_by": actor, "ended_at": None,
            "last_look_at": None, "updated_at": now,
        }  # fmt: skip
        with self.wh.engine.begin() as conn:
            if self._row(conn, deployment_id) is not None:
                raise TransitionRefused(f"deployment {deployment_id} exists already")
            conn.execute(deployments.insert().values(**row))
            if retire_flag is not None:
                old = self.flags.get(retire_flag)
                if old.status == "active":
                    self.flags.save(replace(old, status="killed"), settings, actor=actor,
                                    reason=f"handed to rollout {deployment_id}", now=now, conn=conn)  # fmt: skip
            self.flags.save(flag, settings, actor=actor, reason=f"rollout {deployment_id}: {reason}", now=now,
                            conn=conn)  # fmt: skip
            record(
                conn, self._logged(row, "start_rollout", actor, f"{state} at {steps[0]:.0%}: {reason}"), now
            )
        return self.get(deployment_id)

    def move(
        self,
        settings: Any,
        deployment_id: str,
        *,
        expected: Iterable[str],
        to: str,
        action: str,
        actor: str,
        reason: str,
        now: datetime,
        from_step: int | None = None,
        to_step: int | None = None,
        allocation: float | None = None,
    ) -> dict[str, Any]:
        """One change of state (and step), its flag and its log row, or TransitionRefused naming the state found.

        ``allocation``: the flag's share set by this move instead of the step's (a widened canary)."""
        allowed = tuple(expected)
        with self.wh.engine.begin() as conn:
            current = self._row(conn, deployment_id)
            if current is None:
                raise DeploymentNotFound(deployment_id)
            step = current["step_index"] if from_step is None else from_step
            new_step = step if to_step is None else to_step
            # a step-bound move (advance, approve) must find the step it was decided at; a person's
            # pause, resume or rollback applies at whatever step the rollout is
            at_step = deployments.c.step_index == step if from_step is not None else sa.true()
            values: dict[str, Any] = {
                "state": to,
                "step_index": new_step,
                "reason": reason,
                "updated_at": now,
            }
            if new_step != step:
                values["step_started_at"] = now
            if to in ("complete", "rolled_back"):
                values["ended_at"] = now
            result = conn.execute(
                deployments.update()
                .where(
                    deployments.c.deployment_id == deployment_id,
                    deployments.c.state.in_(allowed),
                    at_step,
                )
                .values(**values)
            )
            if result.rowcount != 1:
                found = self._row(conn, deployment_id)
                where = f" at step {step + 1}" if from_step is not None else ""
                raise TransitionRefused(
                    f"deployment {deployment_id} is {found['state']} at step {found['step_index'] + 1}; "
                    f"{action} needs {' or '.join(allowed)}{where}"
                )
            flag = self.flags.get(current["flag_key"])
            steps = json.loads(current["steps"])
            if to == "rolled_back":
                changed = replace(flag, status="killed")
            elif allocation is not None:
                changed = replace(flag, allocation=allocation)
            elif to == "ramping" or to == "complete":
                # never below a widened canary: a unit on the change stays on it as the share grows
                changed = replace(flag, allocation=max(steps[new_step], flag.allocation))
            else:
                changed = flag  # held or awaiting approval: the flag stays where it is
            if changed != flag:
                self.flags.save(changed, settings, actor=actor, reason=f"rollout {deployment_id} {action}: {reason}",
                                now=now, conn=conn)  # fmt: skip
            record(conn, self._logged(current, action, actor, reason), now)
            return dict(self._row(conn, deployment_id) or {})

    # the moves people and the rollout sensor make
    def advance(self, settings: Any, deployment_id: str, *, from_step: int, actor: str, reason: str,
                now: datetime) -> dict[str, Any]:  # fmt: skip
        steps = json.loads(self.get(deployment_id)["steps"])
        to = "complete" if from_step + 1 >= len(steps) else "ramping"
        return self.move(settings, deployment_id, expected=["ramping"], to=to, action="advance", actor=actor,
                         reason=reason, now=now, from_step=from_step, to_step=min(from_step + 1, len(steps) - 1))  # fmt: skip

    def complete(
        self, settings: Any, deployment_id: str, *, actor: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        return self.move(settings, deployment_id, expected=["ramping"], to="complete", action="complete",
                         actor=actor, reason=reason, now=now)  # fmt: skip

    def widen(self, settings: Any, deployment_id: str, *, from_step: int, allocation: float, actor: str,
              reason: str, now: datetime) -> dict[str, Any]:  # fmt: skip
        """Raise a ramping step's allocation so that rollouts.min_units_per_step units are on the change
        (loop.rollout.canary_allocation); the step and its clock stay."""
        return self.move(settings, deployment_id, expected=["ramping"], to="ramping", action="widen", actor=actor,
                         reason=reason, now=now, from_step=from_step, allocation=allocation)  # fmt: skip

    def step_back(self, settings: Any, deployment_id: str, *, undo_of: str, actor: str, reason: str,
                  now: datetime) -> dict[str, Any]:  # fmt: skip
        """Take back the last advance or completion (the step before, held) or widening (the step's own
        share, held): a person's undo; the rollout waits for kaizen rollout resume."""
        row = self.get(deployment_id)
        steps = json.loads(row["steps"])
        step = row["step_index"]
        to_step = step if undo_of == "widen" else max(step - 1, 0)
        return self.move(settings, deployment_id, expected=["ramping", "held", "awaiting_approval", "complete"],
                         to="held", action="step_back", actor=actor, reason=reason, now=now, from_step=step,
                         to_step=to_step, allocation=steps[to_step])  # fmt: skip

    def await_approval(self, settings: Any, deployment_id: str, *, from_step: int, actor: str, reason: str,
                       now: datetime) -> dict[str, Any]:  # fmt: skip
        return self.move(settings, deployment_id, expected=["ramping"], to="awaiting_approval",
                         action="await_approval", actor=actor, reason=reason, now=now, from_step=from_step)  # fmt: skip

    def approve(
        self, settings: Any, deployment_id: str, *, actor: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        """A person lets the next step start (or the first one, for a rollout created awaiting approval)."""
        row = self.get(deployment_id)
        steps = json.loads(row["steps"])
        first = row["step_index"] == 0 and self.flags.get(row["flag_key"]).allocation == 0.0
        to_step = row["step_index"] if first else min(row["step_index"] + 1, len(steps) - 1)
        return self.move(settings, deployment_id, expected=["awaiting_approval"], to="ramping", action="approve",
                         actor=actor, reason=reason, now=now, from_step=row["step_index"], to_step=to_step)  # fmt: skip

    def pause(
        self, settings: Any, deployment_id: str, *, actor: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        return self.move(settings, deployment_id, expected=["ramping", "awaiting_approval"], to="held",
                         action="pause", actor=actor, reason=reason, now=now)  # fmt: skip

    def resume(
        self, settings: Any, deployment_id: str, *, actor: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        return self.move(settings, deployment_id, expected=["held"], to="ramping", action="resume", actor=actor,
                         reason=reason, now=now)  # fmt: skip

    def rollback(
        self, settings: Any, deployment_id: str, *, actor: str, reason: str, now: datetime,
        finished_too: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """Every unit back on the config value (the flag is killed); from any state that is not finished,
        or (``finished_too``: the undo of a ship) from complete as well. Never from rolled_back."""
        expected = (*ACTIVE, "complete") if finished_too else ACTIVE
        return self.move(settings, deployment_id, expected=expected, to="rolled_back", action="rollback",
                         actor=actor, reason=reason, now=now)  # fmt: skip

    def looked(self, deployment_id: str, now: datetime) -> None:
        """Record the time of a look (not a change of state)."""
        with self.wh.engine.begin() as conn:
            conn.execute(
                deployments.update()
                .where(deployments.c.deployment_id == deployment_id)
                .values(last_look_at=now)
            )

    @staticmethod
    def _row(conn: sa.Connection, deployment_id: str) -> dict[str, Any] | None:
        row = conn.execute(
            sa.select(deployments).where(deployments.c.deployment_id == deployment_id)
        ).mappings()
        first = row.first()
        return dict(first) if first is not None else None

    @staticmethod
    def _logged(row: dict[str, Any], action: str, actor: str, evidence: str) -> LoggedDecision:
        return LoggedDecision(
            action=action,
            subject_kind="deployment",
            subject_id=row["deployment_id"],
            actor=actor,
            evidence=evidence,
            parameter=row["parameter"],
            before=json.loads(row["before_value"]),
            after=json.loads(row["after_value"]),
        )

"""Undo a logged decision: the human override of one step (no Dagster).

- ``start_experiment``: the experiment stops (if still running) and its flag is killed;
- ``ship``: the rollout the winner was handed to is rolled back, whatever step it reached (complete
  included: undo is the one way to take back a finished change), so every unit is back on the config
  value; the experiment keeps its record;
- ``freeze`` / ``unfreeze``: the opposite is applied;
- ``stop``, ``inconclusive``, ``invalid``: refused, since those ended on the control (their flag was
  killed) and changed nothing to take back; a new experiment tests the change again.

The undone entry is marked (``undone_at``, ``undone_by``) and the undo is its own row, in one
transaction; a second undo of the same entry is refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kaizen_pipeline.experiments import runner
from kaizen_pipeline.experiments.store import ExperimentStore, TransitionRefused
from kaizen_pipeline.loop.control import DecisionLog, LoggedDecision, LoopControl, OverrideRefused
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.warehouse import Warehouse

UNDOABLE = ("start_experiment", "ship", "freeze", "unfreeze")


def undo(
    wh: Warehouse, settings: Any, decision_id: int, *, actor: str, reason: str, now: datetime
) -> dict[str, Any]:
    """Take back decision ``decision_id`` (module docstring); returns the undo's log row."""
    if not reason.strip():
        raise OverrideRefused("reason: say why the decision is undone (it is kept in decision_log)")
    log = DecisionLog(wh)
    entry = log.get(decision_id)
    if entry["undone_at"] is not None:
        raise OverrideRefused(
            f"decision {decision_id} was already undone at {entry['undone_at']:%Y-%m-%d %H:%M} by {entry['undone_by']}"
        )
    action, subject = entry["action"], entry["subject_id"]
    if action not in UNDOABLE:
        raise OverrideRefused(
            f"decision {decision_id} ({action} {subject}) ended on the control and changed nothing to undo; "
            "a new experiment tests the change again"
        )
    why = f"undo of decision {decision_id}: {reason}"
    if action == "start_experiment":
        try:
            runner.stop(wh, settings, subject, actor=actor, reason=why, now=now)
        except TransitionRefused:
            status = ExperimentStore(wh).get(subject)["status"]
            raise OverrideRefused(
                f"experiment {subject} is already {status}: nothing left to undo (for a shipped one, undo its ship)"
            ) from None
    elif action == "ship":
        rollout = DeploymentStore(wh).for_source(subject)
        if rollout is None:
            raise OverrideRefused(f"experiment {subject} has no rollout to take back")
        try:
            DeploymentStore(wh).rollback(
                settings, rollout["deployment_id"], actor=actor, reason=why, now=now, finished_too=True
            )
        except TransitionRefused:
            raise OverrideRefused(
                f"rollout {rollout['deployment_id']} of experiment {subject} is already rolled back"
            ) from None
    elif action == "freeze":
        LoopControl(wh).unfreeze(actor=actor, reason=why, now=now)
    else:
        LoopControl(wh).freeze(actor=actor, reason=why, now=now)
    before = json.loads(entry["after"]) if entry["after"] else None
    after = json.loads(entry["before"]) if entry["before"] else None
    undo_id = log.mark_undone(
        decision_id,
        LoggedDecision(
            action="undo",
            subject_kind=entry["subject_kind"],
            subject_id=subject,
            actor=actor,
            evidence=why,
            parameter=entry["parameter"],
            before=before,
            after=after,
            undo_of=decision_id,
        ),
        now,
    )
    return log.get(undo_id)

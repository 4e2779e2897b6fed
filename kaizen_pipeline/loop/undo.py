"""Undo a logged decision: the human override of one step (no Dagster).

- ``start_experiment``: the experiment stops (if still running) and its flag is killed;
- ``ship``: the rollout the winner was handed to is rolled back, whatever step it reached (complete
  included: undo is the one way to take back a finished change), so every unit is back on the config
  value; the experiment keeps its record;
- ``start_rollout``: the rollout is rolled back;
- ``advance``, ``complete``, ``widen`` (the rollout's last move only): the rollout steps back to the
  step (or the share) before, and is held until ``kaizen rollout resume``;
- ``rollback`` and ``await_approval``: refused (a rolled-back change never comes back by itself; an
  approval asked by config is given with ``kaizen rollout approve``);
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

UNDOABLE = ("start_experiment", "ship", "freeze", "unfreeze", "start_rollout", "widen", "advance", "complete")
# what undoing these would mean, and so why it is refused
REFUSED = {
    "rollback": "a rolled-back change never comes back by itself; kaizen rollout start rolls it out anew",
    "await_approval": "the approval was asked by config (rollouts.approval_*); kaizen rollout approve lets it on",
}


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
    if action in REFUSED:
        raise OverrideRefused(f"decision {decision_id} ({action} {subject}): {REFUSED[action]}")
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
    elif action == "start_rollout":
        try:
            DeploymentStore(wh).rollback(
                settings, subject, actor=actor, reason=why, now=now, finished_too=True
            )
        except TransitionRefused:
            raise OverrideRefused(f"rollout {subject} is already rolled back") from None
    elif action in ("widen", "advance", "complete"):
        newest = log.frame(subject_id=subject)
        newest = newest[newest["action"] != "undo"]
        if int(newest.iloc[0]["decision_id"]) != decision_id:
            raise OverrideRefused(
                f"decision {decision_id} ({action} {subject}) is not the rollout's last move "
                f"({newest.iloc[0]['action']} is): undo that first, or kaizen rollout rollback"
            )
        try:
            DeploymentStore(wh).step_back(settings, subject, undo_of=action, actor=actor, reason=why, now=now)
        except TransitionRefused as exc:
            raise OverrideRefused(str(exc)) from None
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

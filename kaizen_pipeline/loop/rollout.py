"""Guarded rollouts, the step logic: what a canary ramp does at one look (pure; no Dagster, no warehouse).

A change ramps through ``rollouts.steps`` (default 5%, 25%, 100% of units) through its flag's
allocation; MurmurHash3 bucketing keeps every unit already on the change when the share grows, and
the units not yet on it are the concurrent control. At each look, in this order:

1. the loop is frozen: **hold** (nothing moves; the flag stays where it is);
2. a guardrail harmed (its always-valid bound on the harmful side of zero): **rollback**, at once;
   the step's share puts fewer than ``rollouts.min_units_per_step`` of the known units (markets) on
   the change (5% of 50 markets can be one): **widen** the allocation to the smallest that does;
3. fewer than ``rollouts.min_hours_per_step`` hours on the step: **hold**; after them, a sample-ratio
   mismatch (p below ``experiments.srm_p_threshold``): **rollback** (the assignment is broken);
4. the step's other gates not met (``rollouts.min_units_per_step`` units on the change with data,
   every guardrail measured with as many units on each side, except at 100% where no control is
   left): **hold**. A canary is a few units by design, so a rollout's guardrails need
   ``rollouts.min_units_per_step`` units a side, not an experiment's ``min_units_per_arm``;
5. the last step: **complete**; the next step needs a person (``rollouts.approval_steps``, or a
   parameter in ``rollouts.approval_parameters``): **await_approval**; else **advance**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kaizen_pipeline.experiments.analysis import MetricLook
from kaizen_pipeline.flags.bucketing import BUCKETS, bucket

STATES = ("ramping", "held", "awaiting_approval", "complete", "rolled_back")
ACTIVE = ("ramping", "held", "awaiting_approval")
ActionKind = Literal["hold", "widen", "advance", "await_approval", "complete", "rollback"]


@dataclass(frozen=True)
class Gates:
    """What a step needs before the next one: time on the step, units on the change, approvals."""

    min_hours: float
    min_units: int
    approval: frozenset[int]  # step indices a person must approve before they start


@dataclass(frozen=True)
class StepAction:
    """The decision at one look, with its evidence in words."""

    kind: ActionKind
    reason: str
    to_step: int | None = None
    allocation: float | None = None  # widen: the flag's new share


def canary_allocation(share: float, salt: str, units: Sequence[str], min_units: int) -> float:
    """The smallest allocation at or above ``share`` that puts ``min_units`` of the known ``units`` on the
    change (the flag's bucketing decides who), or ``share`` when it already does or the units are unknown.

    5% of 50 markets is one market for some salts: a canary its guardrails cannot measure, which would
    hold the rollout forever. Widening to the k-th smallest bucket adds exactly the units needed.
    """
    if not units or min_units <= 0:
        return share
    buckets = sorted(bucket(salt, u) for u in set(units))
    k = min(min_units, len(buckets))
    if buckets[k - 1] < round(share * BUCKETS):
        return share
    return min((buckets[k - 1] + 1) / BUCKETS, 1.0)


def gates_for(settings: object, parameter: str, steps: Sequence[float]) -> Gates:
    """The gates of a rollout of ``parameter`` from the rollouts section."""
    ro = settings.rollouts  # type: ignore[attr-defined]
    every = parameter in ro.approval_parameters
    approval = frozenset(
        i for i, share in enumerate(steps) if every or any(abs(share - a) < 1e-9 for a in ro.approval_steps)
    )
    return Gates(ro.min_hours_per_step, ro.min_units_per_step, approval)


def step_action(
    *,
    step_index: int,
    steps: Sequence[float],
    step_started_at: datetime,
    now: datetime,
    units_on_change: int,
    guardrails: Sequence[MetricLook],
    srm_p: float,
    srm_threshold: float,
    gates: Gates,
    frozen: bool = False,
    allocation: float | None = None,
    canary: float | None = None,
) -> StepAction:
    """The action at this look (module docstring: the order). ``allocation``: the flag's share now;
    ``canary``: the share that puts ``gates.min_units`` known units on the change (canary_allocation)."""
    share = steps[step_index]
    if frozen:
        return StepAction("hold", f"the loop is frozen: held at {share:.0%}")
    harmed = [g for g in guardrails if g.harmful]
    if harmed:
        detail = ", ".join(f"{g.metric} {g.estimate:+.4g} [{g.lower:+.4g}, {g.upper:+.4g}]" for g in harmed)
        return StepAction("rollback", f"guardrail harmed at {share:.0%}: {detail}")
    if canary is not None and allocation is not None and canary > allocation + 1e-9:
        return StepAction(
            "widen",
            f"{allocation:.1%} of the known units puts fewer than {gates.min_units} on the change; "
            f"{canary:.1%} puts {gates.min_units} (rollouts.min_units_per_step)",
            allocation=canary,
        )
    waited = now - step_started_at
    if waited < timedelta(hours=gates.min_hours):
        left = timedelta(hours=gates.min_hours) - waited
        return StepAction("hold", f"{share:.0%} for {left.total_seconds() / 3600:.1f} h more")
    # the split is judged once the step has run its hours: right after a step starts, the units are
    # not yet resolved at the new share and the count would be a false mismatch
    if srm_p < srm_threshold:
        return StepAction(
            "rollback", f"sample-ratio mismatch at {share:.0%}: p = {srm_p:.2g} < {srm_threshold:g}"
        )
    if units_on_change < gates.min_units:
        return StepAction("hold", f"{units_on_change} of {gates.min_units} units on the change have data")
    unmeasured = [g.metric for g in guardrails if g.outcome == "no_data"]
    if unmeasured and step_index < len(steps) - 1:
        # no step is taken on guardrails nobody measured (at 100% there is no control left to measure)
        return StepAction("hold", f"{', '.join(unmeasured)}: too few units per arm to measure yet")
    if step_index == len(steps) - 1:
        return StepAction("complete", f"at {share:.0%} with no guardrail harmed")
    nxt = step_index + 1
    if nxt in gates.approval:
        return StepAction("await_approval", f"{steps[nxt]:.0%} waits for kaizen rollout approve", nxt)
    return StepAction("advance", f"{share:.0%} -> {steps[nxt]:.0%}: gates met, no guardrail harmed", nxt)

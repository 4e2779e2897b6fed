"""`kaizen freeze|unfreeze|decisions|rollout`: the human override of the self-improving loop.

kaizen rollout list
kaizen rollout start signals.rvr_threshold 2.5 --reason "volume confirms"   # 5% -> 25% -> 100%, guarded
kaizen rollout show rvr_threshold-20261204
kaizen rollout approve|pause|resume|rollback rvr_threshold-20261204 --reason ...

kaizen freeze --reason "FOMC day"        # no automatic change until unfreeze (flags stay where they are)
kaizen unfreeze [--reason ...]
kaizen decisions [--subject ID] [--limit 20]
kaizen decisions undo 12 --reason "shipped on a holiday week"
"""

from __future__ import annotations

import argparse
import getpass
import json

from kaizen_pipeline.cli import command_warehouse
from kaizen_pipeline.settings import get_settings

SHOWN = [
    "decision_id",
    "decided_at",
    "actor",
    "action",
    "subject_id",
    "parameter",
    "before",
    "after",
    "undone_by",
]


def _freeze(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.loop.control import LoopControl

    settings = get_settings()
    with command_warehouse() as wh:
        LoopControl(wh).freeze(actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(
        f"loop frozen by {args.actor}: no experiment starts or is decided until `kaizen unfreeze`; flags stay"
    )
    return 0


def _unfreeze(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.loop.control import LoopControl

    settings = get_settings()
    with command_warehouse() as wh:
        LoopControl(wh).unfreeze(actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(f"loop unfrozen by {args.actor}: decisions held back are taken at the next look")
    return 0


def _decisions(args: argparse.Namespace) -> int:
    from kaizen_pipeline.loop.control import DecisionLog, LoopControl

    with command_warehouse() as wh:
        frozen = LoopControl(wh).current()
        frame = DecisionLog(wh).frame(subject_id=args.subject, limit=args.limit)
    if frozen is not None:
        print(f"FROZEN since {frozen.since:%Y-%m-%d %H:%M} by {frozen.actor}: {frozen.reason}")
    if frame.empty:
        print("no decisions yet" + (f" about {args.subject}" if args.subject else ""))
        return 0
    frame["decided_at"] = frame["decided_at"].dt.strftime("%Y-%m-%d %H:%M")
    print(frame[SHOWN].fillna("").to_string(index=False))
    if args.evidence:
        for row in frame.itertuples(index=False):
            print(f"\n#{row.decision_id} {row.action} {row.subject_id}: {row.evidence}")
    return 0


def _undo(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.loop.undo import undo

    settings = get_settings()
    with command_warehouse() as wh:
        row = undo(wh, settings, args.id, actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(f"decision {args.id} undone (decision {row['decision_id']}): {row['evidence']}")
    return 0


ROLLOUT_SHOWN = ["deployment_id", "state", "parameter", "before_value", "after_value", "step_index", "steps",
                 "created_by", "reason"]  # fmt: skip


def _rollout_list(args: argparse.Namespace) -> int:
    from kaizen_pipeline.loop.deployments import DeploymentStore

    with command_warehouse() as wh:
        frame = DeploymentStore(wh).frame()
    if frame.empty:
        print("no rollouts (kaizen rollout start, or a shipped experiment, begins one)")
        return 0
    frame["step_index"] = frame["step_index"] + 1
    print(frame[ROLLOUT_SHOWN].rename(columns={"step_index": "step"}).to_string(index=False))
    return 0


def _rollout_show(args: argparse.Namespace) -> int:
    from kaizen_pipeline.loop.control import DecisionLog
    from kaizen_pipeline.loop.deployments import DeploymentStore

    with command_warehouse() as wh:
        row = DeploymentStore(wh).get(args.id)
        log = DecisionLog(wh).frame(subject_id=args.id)
    steps = json.loads(row["steps"])
    print(f"rollout {row['deployment_id']}: {row['state']} at step {row['step_index'] + 1} of {len(steps)} "
          f"({steps[row['step_index']]:.0%} of {row['unit_kind']}s)")  # fmt: skip
    print(f"  {row['parameter']}: {row['before_value']} -> {row['after_value']} (from {row['source']})")
    print(f"  {row['reason']}")
    for entry in log.sort_values("decision_id").itertuples(index=False):
        print(f"  {entry.decided_at:%Y-%m-%d %H:%M} {entry.action:<15} by {entry.actor}: {entry.evidence}")
    return 0


def _rollout_start(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.loop.deployments import DeploymentStore

    settings = get_settings()
    now = pipeline_now(settings)
    deployment_id = f"{args.parameter.split('.')[-1]}-{now:%Y%m%d%H%M}"
    with command_warehouse() as wh:
        row = DeploymentStore(wh).create(settings, deployment_id=deployment_id, parameter=args.parameter,
                                         value=args.value, source="person", actor=args.actor, reason=args.reason,
                                         now=now)  # fmt: skip
    print(f"rollout {row['deployment_id']} {row['state']}: {row['parameter']} {row['before_value']} -> "
          f"{row['after_value']} on {json.loads(row['steps'])[0]:.0%} of {row['unit_kind']}s")  # fmt: skip
    if row["unit_kind"] == "market":
        # bench/closed_loop.py: a day of a few canary markets resolves gross harm only; an effect the size
        # of a threshold change needs the weeks of a powered experiment
        print("note: a market canary catches gross harm only; a change worth a few tenths of a between-market "
              "sd needs a powered experiment first (kaizen experiments list shows the drafts)")  # fmt: skip
    return 0


def _rollout_move(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.loop.deployments import DeploymentStore

    settings = get_settings()
    with command_warehouse() as wh:
        move = getattr(DeploymentStore(wh), args.move)
        row = move(settings, args.id, actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(f"rollout {row['deployment_id']}: {row['state']} at step {row['step_index'] + 1}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    actor = getpass.getuser()
    p = subparsers.add_parser(
        "rollout", help="guarded rollouts: list, show, start, approve, pause, resume, rollback"
    )
    sub = p.add_subparsers(dest="rollout_command", required=True)
    r = sub.add_parser("list", help="every rollout and its state")
    r.set_defaults(func=_rollout_list)
    r = sub.add_parser("show", help="one rollout and its decisions")
    r.add_argument("id")
    r.set_defaults(func=_rollout_show)
    r = sub.add_parser(
        "start", help="ramp a change through rollouts.steps, guarded (the rollout sensor moves it)"
    )
    r.add_argument("parameter")
    r.add_argument("value")
    r.add_argument("--reason", required=True, help="why (kept in decision_log)")
    r.add_argument("--actor", default=actor, help="who starts it (default: the login name)")
    r.set_defaults(func=_rollout_start)
    for move, text in (("approve", "let the next step start"), ("pause", "hold where it is"),
                       ("resume", "let the sensor move it again"), ("rollback", "every unit back on the config value")):  # fmt: skip
        r = sub.add_parser(move, help=text)
        r.add_argument("id")
        r.add_argument("--reason", required=True, help="why (kept in decision_log)")
        r.add_argument("--actor", default=actor, help="who (default: the login name)")
        r.set_defaults(func=_rollout_move, move=move)

    p = subparsers.add_parser("freeze", help="stop every automatic change of the loop until unfreeze")
    p.add_argument("--reason", required=True, help="why (kept in decision_log)")
    p.add_argument("--actor", default=actor, help="who freezes it (default: the login name)")
    p.set_defaults(func=_freeze)

    p = subparsers.add_parser("unfreeze", help="let the loop act by itself again")
    p.add_argument("--reason", default="", help="why (kept in decision_log)")
    p.add_argument("--actor", default=actor, help="who lifts the freeze (default: the login name)")
    p.set_defaults(func=_unfreeze)

    p = subparsers.add_parser("decisions", help="what the loop and people decided (decision_log); undo one")
    p.add_argument("--subject", help="only decisions about this experiment id")
    p.add_argument("--limit", type=int, default=20, help="newest N (default 20)")
    p.add_argument("--evidence", action="store_true", help="also print each decision's evidence")
    p.set_defaults(func=_decisions)
    sub = p.add_subparsers(dest="decisions_command")
    u = sub.add_parser(
        "undo",
        help="take back one decision (a start, ship, freeze or unfreeze; a rollout's start or last move)",
    )
    u.add_argument("id", type=int)
    u.add_argument("--reason", required=True, help="why (kept in decision_log)")
    u.add_argument("--actor", default=actor, help="who undoes it (default: the login name)")
    u.set_defaults(func=_undo)

"""`kaizen freeze|unfreeze|decisions`: the human override of the self-improving loop.

kaizen freeze --reason "FOMC day"        # no automatic change until unfreeze (flags stay where they are)
kaizen unfreeze [--reason ...]
kaizen decisions [--subject ID] [--limit 20]
kaizen decisions undo 12 --reason "shipped on a holiday week"
"""

from __future__ import annotations

import argparse
import getpass

from kaizen_pipeline.cli import command_warehouse
from kaizen_pipeline.clock import pipeline_now
from kaizen_pipeline.loop.control import DecisionLog, LoopControl
from kaizen_pipeline.loop.undo import undo
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
    settings = get_settings()
    with command_warehouse() as wh:
        LoopControl(wh).freeze(actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(
        f"loop frozen by {args.actor}: no experiment starts or is decided until `kaizen unfreeze`; flags stay"
    )
    return 0


def _unfreeze(args: argparse.Namespace) -> int:
    settings = get_settings()
    with command_warehouse() as wh:
        LoopControl(wh).unfreeze(actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(f"loop unfrozen by {args.actor}: decisions held back are taken at the next look")
    return 0


def _decisions(args: argparse.Namespace) -> int:
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
    settings = get_settings()
    with command_warehouse() as wh:
        row = undo(wh, settings, args.id, actor=args.actor, reason=args.reason, now=pipeline_now(settings))
    print(f"decision {args.id} undone (decision {row['decision_id']}): {row['evidence']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    actor = getpass.getuser()
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
    u = sub.add_parser("undo", help="take back one decision (start, ship, freeze, unfreeze)")
    u.add_argument("id", type=int)
    u.add_argument("--reason", required=True, help="why (kept in decision_log)")
    u.add_argument("--actor", default=actor, help="who undoes it (default: the login name)")
    u.set_defaults(func=_undo)

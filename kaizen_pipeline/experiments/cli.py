"""`kaizen experiments`: list, show, start and stop controlled experiments.

kaizen experiments list [--status running]
kaizen experiments show raise_rvr_threshold-20261204
kaizen experiments start raise_rvr_threshold-20261204 [--force]
kaizen experiments stop raise_rvr_threshold-20261204 --reason "market regime changed"
"""

from __future__ import annotations

import argparse
import getpass

from kaizen_pipeline.cli import command_warehouse
from kaizen_pipeline.experiments.lifecycle import STATUSES
from kaizen_pipeline.settings import get_settings

LIST_COLUMNS = ["experiment_id", "status", "parameter", "control_value", "treatment_value", "primary_metric",
                "expected_days", "underpowered", "decision"]  # fmt: skip
LOOK_COLUMNS = ["metric", "role", "units_control", "units_treatment", "estimate", "lower", "upper", "p_value",
                "p_holm", "cuped_reduction", "srm_p", "outcome"]  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    from kaizen_pipeline.experiments.store import ExperimentStore

    with command_warehouse() as wh:
        frame = ExperimentStore(wh).frame(args.status)
    if frame.empty:
        print(
            "no experiments"
            + (f" {args.status}" if args.status else "")
            + " (the experiments asset drafts them)"
        )
        return 0
    print(frame[LIST_COLUMNS].to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from kaizen_pipeline.experiments.store import ExperimentStore

    with command_warehouse() as wh:
        store = ExperimentStore(wh)
        row = store.get(args.id)
        looks = store.looks(args.id)
    print(f"experiment {row['experiment_id']}: {row['status']}")
    print(f"  {row['hypothesis']}")
    print(
        f"  {row['parameter']} per {row['unit_kind']}: control {row['control_value']}, treatment {row['treatment_value']}"
    )
    print(f"  primary {row['primary_metric']} ({row['direction']} is better), guardrails {row['guardrails']}")
    print(f"  MDE {row['mde']:.4g}, alpha {row['alpha']}, power {row['power']}, units per arm {row['units_per_arm']}, "
          f"expected days {row['expected_days']}, max days {row['max_days']}")  # fmt: skip
    if row["decision"] or row["decision_reason"]:
        print(f"  decision: {row['decision'] or '-'}: {row['decision_reason'] or ''}")
    if looks.empty:
        print("no looks yet")
        return 0
    last = looks[looks["look_at"] == looks["look_at"].max()]
    print(
        f"latest look {last['look_at'].iloc[0]:%Y-%m-%d %H:%M} ({last['days'].iloc[0]:.1f} days, {looks['look_at'].nunique()} looks):"
    )
    print(last[LOOK_COLUMNS].to_string(index=False))
    return 0


def _start(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.experiments import runner  # statsmodels: loaded by the commands that need it

    settings = get_settings()
    with command_warehouse() as wh:
        row = runner.start(
            wh, settings, args.id, actor=args.actor, now=pipeline_now(settings), force=args.force
        )
    print(f"experiment {row['experiment_id']} running: flag {row['flag_key']} assigns {row['unit_kind']}s")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.experiments import runner

    settings = get_settings()
    with command_warehouse() as wh:
        row = runner.stop(
            wh, settings, args.id, actor=args.actor, reason=args.reason, now=pipeline_now(settings)
        )
    print(f"experiment {row['experiment_id']} stopped; every unit is back on the config value")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("experiments", help="list, show, start and stop experiments")
    sub = parser.add_subparsers(dest="experiments_command", required=True)
    actor = getpass.getuser()

    p = sub.add_parser("list", help="experiments and their state")
    p.add_argument("--status", choices=STATUSES)
    p.set_defaults(func=_list)

    p = sub.add_parser("show", help="one experiment: design, decision and its latest look")
    p.add_argument("id")
    p.set_defaults(func=_show)

    p = sub.add_parser("start", help="start a draft (its flag assigns units)")
    p.add_argument("id")
    p.add_argument("--force", action="store_true", help="start an underpowered draft anyway")
    p.add_argument("--actor", default=actor, help="who starts it (default: the login name)")
    p.set_defaults(func=_start)

    p = sub.add_parser("stop", help="stop a draft or running experiment; its flag is killed")
    p.add_argument("id")
    p.add_argument("--reason", required=True, help="why (kept with the experiment)")
    p.add_argument("--actor", default=actor, help="who stops it (default: the login name)")
    p.set_defaults(func=_stop)

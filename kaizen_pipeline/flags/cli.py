"""`kaizen flags`: list, show, set and kill feature flags (every change audited in flag_changes).

    kaizen flags list [--all]
    kaizen flags show quiet_hours
    kaizen flags set rvr_test --parameter signals.rvr_threshold --variant control=2.0 --variant strict=2.5 \
        --weight control=50 --weight strict=50 --allocation 20 --reason "try a stricter RVR on 20% of markets"
    kaizen flags set rvr_test --allocation 50 --reason "widen"
    kaizen flags kill rvr_test --reason "hurts the hit rate"
"""

from __future__ import annotations

import argparse
import getpass
from dataclasses import replace

from kaizen_pipeline.cli import command_warehouse
from kaizen_pipeline.flags.model import FeatureFlag
from kaizen_pipeline.flags.parameters import FLAGGABLE, FlagValueError
from kaizen_pipeline.settings import get_settings


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FlagValueError(f"{option}: expected name=value, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _percent(text: str, option: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise FlagValueError(f"{option}: expected a percentage, got {text!r}") from None
    return value / 100.0


def _list(args: argparse.Namespace) -> int:
    from kaizen_pipeline.flags.store import FlagStore, flags_frame

    with command_warehouse() as wh:
        store = FlagStore(wh)
        flags = store.list() if args.all else store.active()
        exposures = wh.read_frame("SELECT flag_key, unit_id, variant FROM flag_assignments")
    if not flags:
        print("no flags" if args.all else "no active flags (--all shows killed ones)")
        return 0
    frame = flags_frame(flags, exposures).drop(columns=["updated_at"])
    print(frame.to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from kaizen_pipeline.flags.store import FlagStore

    with command_warehouse() as wh:
        store = FlagStore(wh)
        flag = store.get(args.key)
        assignments = store.assignments(args.key)
        changes = store.changes(args.key)
    print(f"flag {flag.flag_key}: {flag.parameter} per {flag.unit_kind} ({FLAGGABLE[flag.parameter].why})")
    print(f"  status {flag.status}, allocation {flag.allocation:.0%}, owner {flag.owner}, salt {flag.salt}")
    for name, value in flag.variants.items():
        units = (
            assignments[assignments["variant"] == name]["unit_id"].nunique() if not assignments.empty else 0
        )
        print(f"  variant {name} = {value!r}: weight {flag.weights.get(name, 0):.0%}, {units} units exposed")
    for unit, variant in flag.targets.items():
        print(f"  target {unit} -> {variant}")
    if flag.description:
        print(f"  {flag.description}")
    print("changes:")
    for row in changes.itertuples(index=False):
        print(f"  {row.changed_at:%Y-%m-%d %H:%M} {row.action:<6} by {row.actor}: {row.reason}")
    return 0


def _set(args: argparse.Namespace) -> int:
    from kaizen_pipeline.flags.store import FlagNotFound, FlagStore

    settings = get_settings()
    with command_warehouse() as wh:
        store = FlagStore(wh)
        try:
            flag = store.get(args.key)
        except FlagNotFound:
            if not args.parameter or not args.variant:
                raise FlagValueError(
                    f"flag_key: {args.key!r} is new: --parameter and at least one --variant are required"
                ) from None
            flag = FeatureFlag(args.key, args.parameter, {}, {}, owner=args.actor)
        variants = _pairs(args.variant, "--variant") or dict(flag.variants)
        weights = {k: _percent(v, "--weight") for k, v in _pairs(args.weight, "--weight").items()}
        if not weights:
            weights = dict(flag.weights) if set(flag.weights) == set(variants) else {
                name: 1.0 / len(variants) for name in variants
            }  # fmt: skip
        changed = replace(
            flag,
            parameter=args.parameter or flag.parameter,
            variants=variants,
            weights=weights,
            allocation=_percent(args.allocation, "--allocation")
            if args.allocation is not None
            else flag.allocation,
            targets={**flag.targets, **_pairs(args.target, "--target")},
            status="active" if args.activate else flag.status,
            description=args.description or flag.description,
        )
        saved = store.save(changed, settings, actor=args.actor, reason=args.reason)
    split = ", ".join(f"{k}={v!r} {saved.weights[k]:.0%}" for k, v in saved.variants.items())
    print(
        f"flag {saved.flag_key} ({saved.parameter}, {saved.status}): {saved.allocation:.0%} of units: {split}"
    )
    return 0


def _kill(args: argparse.Namespace) -> int:
    from kaizen_pipeline.flags.store import FlagStore

    settings = get_settings()
    with command_warehouse() as wh:
        flag = FlagStore(wh).kill(args.key, settings, actor=args.actor, reason=args.reason)
    print(f"flag {flag.flag_key} killed: every unit gets the config value of {flag.parameter} again")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    flags = subparsers.add_parser("flags", help="list, show, set and kill feature flags")
    sub = flags.add_subparsers(dest="flags_command", required=True)
    actor = getpass.getuser()

    p = sub.add_parser("list", help="active flags with their split and units exposed")
    p.add_argument("--all", action="store_true", help="include killed and archived flags")
    p.set_defaults(func=_list)

    p = sub.add_parser("show", help="one flag: variants, units exposed, change history")
    p.add_argument("key")
    p.set_defaults(func=_show)

    p = sub.add_parser("set", help="create or change a flag (one audited transaction)")
    p.add_argument("key")
    p.add_argument("--parameter", help=f"config key to override: {', '.join(sorted(FLAGGABLE))}")
    p.add_argument(
        "--variant", action="append", metavar="NAME=VALUE", help="a variant and its value (repeat)"
    )
    p.add_argument("--weight", action="append", metavar="NAME=PCT", help="a variant's share in %% (sum 100)")
    p.add_argument("--allocation", metavar="PCT", help="share of units included, in %% (others: config)")
    p.add_argument("--target", action="append", metavar="UNIT=VARIANT", help="pin a unit to a variant")
    p.add_argument("--activate", action="store_true", help="re-activate a killed flag")
    p.add_argument("--description", help="why the flag exists")
    p.add_argument("--reason", required=True, help="why this change (kept in flag_changes)")
    p.add_argument("--actor", default=actor, help="who changes it (default: the login name)")
    p.set_defaults(func=_set)

    p = sub.add_parser("kill", help="turn a flag off: every unit gets the config value")
    p.add_argument("key")
    p.add_argument("--reason", required=True, help="why (kept in flag_changes)")
    p.add_argument("--actor", default=actor, help="who kills it (default: the login name)")
    p.set_defaults(func=_kill)

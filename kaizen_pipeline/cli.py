"""The `kaizen` command: operational commands that sit beside the Dagster UI.

Each domain registers its subcommands (``register(subparsers)``) so the CLI stays one entry point.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import yaml

from kaizen_pipeline.settings import (
    ConfigError,
    effective_config,
    get_settings,
    load_settings,
    render_reference,
)

if TYPE_CHECKING:  # the warehouse (pandas, SQLAlchemy) loads only for commands that use it
    from kaizen_pipeline.warehouse import Warehouse


@contextmanager
def command_warehouse() -> Iterator[Warehouse]:
    """The configured warehouse for one command, disposed afterwards (its errors reach ``main``)."""
    from kaizen_pipeline.warehouse import Warehouse

    wh = Warehouse(get_settings().database.sqlalchemy_url())
    try:
        yield wh
    finally:
        wh.dispose()


def user_errors() -> tuple[type[Exception], ...]:
    """What a command reports as one line on stderr with exit code 1: bad input, unknown ids, refused changes."""
    from kaizen_pipeline.experiments.store import ExperimentNotFound
    from kaizen_pipeline.flags.store import FlagNotFound
    from kaizen_pipeline.loop.control import DecisionNotFound
    from kaizen_pipeline.loop.deployments import DeploymentNotFound

    return (ValueError, FlagNotFound, ExperimentNotFound, DecisionNotFound, DeploymentNotFound)


def build_parser() -> argparse.ArgumentParser:
    from kaizen_pipeline.experiments import cli as experiments_cli
    from kaizen_pipeline.flags import cli as flags_cli
    from kaizen_pipeline.ingest import cli as ingest_cli
    from kaizen_pipeline.kaizen import cli as kaizen_cli
    from kaizen_pipeline.loop import cli as loop_cli
    from kaizen_pipeline.ops import cli as ops_cli

    parser = argparse.ArgumentParser(prog="kaizen", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    config = subparsers.add_parser("config", help="print the effective configuration (secrets masked)")
    config.add_argument(
        "--reference",
        action="store_true",
        help="print every config key as markdown (the text of docs/configuration.md)",
    )
    config.set_defaults(func=_config)
    for domain in (ingest_cli, kaizen_cli, flags_cli, experiments_cli, loop_cli, ops_cli):
        domain.register(subparsers)
    return parser


def _config(args: argparse.Namespace) -> int:
    if args.reference:
        sys.stdout.write(render_reference())
        return 0
    print(yaml.safe_dump(effective_config(load_settings()), sort_keys=False), end="")
    return 0


SIGPIPE_EXIT = 141  # 128 + SIGPIPE: how a Unix tool ends when its reader goes away

# `kaizen` alone, in a terminal: the common tasks, one key each
MENU: tuple[tuple[str, str, list[str]], ...] = (
    ("s", "status: processes, schedules, last runs, alerts, freshness, rollouts", ["status"]),
    ("u", "start the UI and the daemon in the background", ["start"]),
    ("d", "stop them", ["stop"]),
    ("b", "backfill the last 30 days (main_job)", ["backfill", "--days", "30"]),
    ("k", "take a verified backup of the warehouse", ["backup"]),
    ("f", "list feature flags", ["flags", "list"]),
    ("r", "list rollouts", ["rollout", "list"]),
    ("e", "list experiments", ["experiments", "list"]),
    ("h", "every command (kaizen --help)", ["--help"]),
)


def choose_task(ask: Callable[[str], str], say: Callable[[str], None]) -> list[str] | None:
    """The menu of common tasks: the arguments of the chosen one, or None to quit (q, empty, end of input)."""
    say("kaizen: what would you like to do?")
    for key, text, _ in MENU:
        say(f"  [{key}] {text}")
    say("  [q] quit")
    while True:
        try:
            answer = ask("choice: ").strip().lower()
        except EOFError:
            return None
        if answer in ("", "q", "quit"):
            return None
        for key, _, argv in MENU:
            if answer == key:
                return list(argv)
        say(f"no task {answer!r}: type one of {', '.join(k for k, _, _ in MENU)} or q")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if argv is None and len(sys.argv) == 1 and sys.stdin.isatty() and sys.stdout.isatty():
        chosen = choose_task(input, print)
        if chosen is None:
            return 0
        argv = chosen
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # `kaizen ... | head`: the reader has what it wanted; stop quietly (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

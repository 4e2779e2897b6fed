"""The `kaizen` command: operational commands that sit beside the Dagster UI.

Each domain registers its subcommands (``register(subparsers)``) so the CLI stays one entry point.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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

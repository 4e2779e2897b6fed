"""The `kaizen` command: operational commands that sit beside the Dagster UI.

Each domain registers its subcommands (``register(subparsers)``) so the CLI stays one entry point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kaizen_pipeline.settings import ConfigError


def build_parser() -> argparse.ArgumentParser:
    from kaizen_pipeline.kaizen import cli as kaizen_cli
    from kaizen_pipeline.ops import cli as ops_cli

    parser = argparse.ArgumentParser(prog="kaizen", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for domain in (kaizen_cli, ops_cli):
        domain.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""Subcommands of the `kaizen` CLI for this domain."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this domain's subcommands (each sets ``func`` taking the parsed args, returning an exit code)."""

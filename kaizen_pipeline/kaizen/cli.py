"""Subcommands of the `kaizen` CLI for this domain: log improvements and record feedback.

They write the same warehouse tables as the ``log_improvement`` and ``submit_feedback`` jobs:

    kaizen improvement log --title "Raise the retry budget" --metric api_error_rate --effect -0.01 --hours 1
    kaizen improvement ship raise_the_retry_budget [--at 2026-03-01T00:00]
    kaizen improvement list
    kaizen feedback --rating 4 --text "The weekly report is useful"
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from kaizen_pipeline.cli import command_warehouse
from kaizen_pipeline.kaizen.lifecycle import IMPROVEMENT_STATUSES
from kaizen_pipeline.settings import get_settings


def _log(args: argparse.Namespace) -> int:
    from kaizen_pipeline.kaizen import store

    with command_warehouse() as wh:
        row = store.log_improvement(
            wh,
            get_settings().kaizen,
            title=args.title,
            target_metric=args.metric,
            predicted_effect=args.effect,
            cost_hours=args.hours,
            cost_money=args.money,
            status=args.status,
            shipped_at=args.shipped_at,
            improvement_id=args.id,
            catalogue_key=args.catalogue_key,
            notes=args.notes,
        )
    shipped = f", shipped {row['shipped_at']:%Y-%m-%d %H:%M}" if row["shipped_at"] else ""
    print(f"logged improvement {row['improvement_id']} ({row['status']}{shipped})")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from kaizen_pipeline.kaizen import store

    with command_warehouse() as wh:
        row = store.set_improvement_status(wh, args.id, args.status, shipped_at=args.at)
    print(f"improvement {row['improvement_id']} is now {row['status']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from kaizen_pipeline.kaizen import store

    with command_warehouse() as wh:
        frame = store.read_improvements(wh)
        impacts = wh.read_frame("SELECT improvement_id, verdict, actual_effect, roi FROM improvement_impact")
    if frame.empty:
        print("no improvements logged")
        return 0
    frame = frame.merge(impacts, on="improvement_id", how="left")
    cols = [
        "improvement_id",
        "status",
        "target_metric",
        "predicted_effect",
        "shipped_at",
        "verdict",
        "actual_effect",
        "roi",
    ]
    print(frame[cols].to_string(index=False))
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from kaizen_pipeline.kaizen import store

    with command_warehouse() as wh:
        row = store.record_feedback(wh, rating=args.rating, text=args.text, author=args.author, source="cli")
    print(f"thank you: rating {row['rating']}, sentiment {row['sentiment_label']} ({row['sentiment']:+.2f})")
    return 0


def utc_time(text: str) -> datetime:
    """A command-line time: YYYY-MM-DD or ISO 8601, naive UTC; anything else is a one-line usage error."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (use YYYY-MM-DD or ISO 8601, e.g. 2026-12-01T14:30, UTC)"
        ) from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this domain's subcommands (each sets ``func`` taking the parsed args, returning an exit code)."""
    improvement = subparsers.add_parser("improvement", help="log, ship and list kaizen improvements")
    sub = improvement.add_subparsers(dest="improvement_command", required=True)

    log = sub.add_parser("log", help="log or update an improvement (same id: updated)")
    log.add_argument("--title", required=True)
    log.add_argument("--metric", required=True, help="registered metric it should move")
    log.add_argument(
        "--effect", required=True, type=float, help="predicted change of the metric (signed units)"
    )
    log.add_argument("--hours", type=float, default=0.0, help="cost in engineering hours")
    log.add_argument("--money", type=float, default=0.0, help="cost in USD")
    log.add_argument("--status", choices=IMPROVEMENT_STATUSES, default="proposed")
    log.add_argument(
        "--shipped-at",
        type=utc_time,
        help="when it went live: YYYY-MM-DD or ISO 8601 time (UTC); default now when --status shipped",
    )
    log.add_argument("--id", help="stable id (default: slug of the title)")
    log.add_argument("--catalogue-key", help="catalogue entry it implements")
    log.add_argument("--notes")
    log.set_defaults(func=_log)

    ship = sub.add_parser("ship", help="mark an improvement shipped (or set another status)")
    ship.add_argument("id")
    ship.add_argument(
        "--at", type=utc_time, help="when it went live: YYYY-MM-DD or ISO 8601 time (UTC); default now"
    )
    ship.add_argument("--status", choices=IMPROVEMENT_STATUSES, default="shipped")
    ship.set_defaults(func=_ship)

    listing = sub.add_parser("list", help="improvements with their measured impact")
    listing.set_defaults(func=_list)

    feedback = subparsers.add_parser("feedback", help="record a rating (1-5) and text")
    feedback.add_argument("--rating", required=True, type=int, choices=range(1, 6), metavar="{1..5}")
    feedback.add_argument("--text", default="")
    feedback.add_argument("--author")
    feedback.set_defaults(func=_feedback)

"""`kaizen backfill`: fill a range of daily partitions in one run, the way the UI's range backfill does.

    kaizen backfill --days 30                 # main_job over the last 30 UTC days, today included
    kaizen backfill --days 7 --job ingest_job --end 2026-11-20

Runs on the Dagster instance of DAGSTER_HOME (like ``dagster job execute``); the range goes in the run's
``dagster/asset_partition_range_start``/``_end`` tags, so the daily-partitioned assets (market_prices,
trade_volumes, kaizen_metrics) fetch the whole range once and every partition in it is marked filled.
"""

from __future__ import annotations

import argparse
import os
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dagster is imported by the command itself: `kaizen --help` stays fast
    import dagster as dg


def location_job(name: str) -> dg.JobDefinition:
    """Job ``name`` of the code location: what execute_job's step processes rebuild."""
    from kaizen_pipeline.definitions import defs

    return defs.resolve_job_def(name)


def _backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.partitions import DAILY_PARTITIONS, backfill_range, range_tags
    from kaizen_pipeline.settings import get_settings

    if not os.environ.get("DAGSTER_HOME"):
        raise ValueError("DAGSTER_HOME is not set: run as `DAGSTER_HOME=$PWD kaizen backfill ...` (README)")
    settings = get_settings()
    end = datetime.combine(args.end, datetime.min.time()) if args.end else pipeline_now(settings)
    first, last = backfill_range(end, args.days, settings.data_collection.history_start)
    if last not in DAILY_PARTITIONS.get_partition_keys():
        raise ValueError(
            f"{last} is not a daily partition yet (they run to today, from data_collection.history_start)"
        )
    print(f"{args.job}: partitions {first} to {last} in one run")
    job = dg.build_reconstructable_job(__name__, location_job.__name__, reconstructable_args=(args.job,))
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance=instance, tags=range_tags(first, last))
    print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    return 0 if result.success else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="run a job over a range of daily partitions in one run (default: main_job, the last 30 days)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--days", type=int, default=30, help="days in the range, the end day included (30)")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="last day (YYYY-MM-DD); default: today on the pipeline clock",
    )
    parser.add_argument(
        "--job", default="main_job", help="job to run (main_job; ingest_job, kaizen_daily_job)"
    )
    parser.set_defaults(func=_backfill)

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
import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dagster is imported by the command itself: `kaizen --help` stays fast
    import dagster as dg

    from kaizen_pipeline.settings import Settings


def location_job(name: str) -> dg.JobDefinition:
    """Job ``name`` of the code location: what execute_job's step processes rebuild."""
    from kaizen_pipeline.definitions import defs

    return defs.resolve_job_def(name)


def _backfill(args: argparse.Namespace) -> int:
    import warnings

    import dagster as dg

    # Dagster's notes that partition backfill policies and yaml logging handlers are beta features are
    # for the code's authors, not for the person running the command (once per asset and per step).
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

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
    print(
        f"{args.job}: daily partitions {first} to {last} in one run (progress: the UI's Runs page)",
        flush=True,
    )
    job = dg.build_reconstructable_job(__name__, location_job.__name__, reconstructable_args=(args.job,))
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance=instance, tags=range_tags(first, last))
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
    print(backfill_summary(settings, result.run_id, result.success, time.monotonic() - started, failed))
    return 0 if result.success else 1


def backfill_summary(
    settings: Settings, run_id: str, succeeded: bool, seconds: float, failed_steps: list[str]
) -> str:
    """What ran, where the data is, and what to do next: the last lines a user reads."""
    db = settings.database
    where = f"SQLite file {Path(db.path).resolve()}" if not db.url else "the database of database.url"
    status = "succeeded" if succeeded else f"FAILED at {', '.join(failed_steps) or 'a step'}"
    lines = [
        f"run {run_id} {status} in {seconds:.0f} s",
        f"warehouse: {where}; runs: the Dagster instance of DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '')}",
        "open the UI: kaizen start  (http://127.0.0.1:3000: asset graph, charts, checks; kaizen status, kaizen stop)",
    ]
    if not succeeded:
        lines.append(
            "the failed step's error is on its run page (Runs), and in the JSON logs (logging.log_dir)"
        )
    return "\n".join(lines)


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

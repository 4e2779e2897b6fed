"""The one daily partitioning of the by-day assets (market_prices, trade_volumes, kaizen_metrics).

Wiring: the partitions start at config ``data_collection.history_start``, read once when the code
location loads (a partitions definition is part of the asset graph, not of a run).
"""

from collections.abc import Mapping
from datetime import date, datetime, timedelta

import dagster as dg

from kaizen_pipeline.clock import as_naive_utc
from kaizen_pipeline.settings import get_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
DAY_FORMAT = "%Y-%m-%d"


def build_daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    """UTC days from ``start``; end_offset=1 so today's partition exists while the day runs (the
    15-minute ingest schedule fills it), like the warehouse's naive-UTC timestamps."""
    return dg.DailyPartitionsDefinition(start_date=start.strftime(DAY_FORMAT), end_offset=1)


DAILY_PARTITIONS = build_daily_partitions(get_settings().data_collection.history_start)
# A range backfill is one run (one fetch per token or market over the whole range), not one run per day.
DAILY_BACKFILL_POLICY = dg.BackfillPolicy.single_run()


def day_key(ts: datetime) -> str:
    """The partition key of the UTC day holding ``ts`` (naive UTC, or aware)."""
    return as_naive_utc(ts).strftime(DAY_FORMAT)


def partition_window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime] | None:
    """The naive-UTC [start, end) of the run's partition or partition range; None in an unpartitioned run."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return as_naive_utc(window.start), as_naive_utc(window.end)


def backfill_range(now: datetime, days: int, first_day: date | None = None) -> tuple[str, str]:
    """First and last partition key of the ``days`` days ending with the day of ``now`` (today included),
    never before ``first_day`` (the partitions' start)."""
    last = as_naive_utc(now).date()
    first = last - timedelta(days=max(1, days) - 1)
    if first_day is not None:
        first = max(first, first_day)
    return first.strftime(DAY_FORMAT), last.strftime(DAY_FORMAT)


def partition_start(tags: Mapping[str, str]) -> datetime | None:
    """The first day (naive UTC midnight) of the partitions a run's ``tags`` name: a range's start or
    the single partition; None for a run without partitions. Unpartitioned assets in such a run (the
    research chain) rewrite only from that day on."""
    key = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    if not key:
        return None
    try:
        return datetime.strptime(key, DAY_FORMAT)
    except ValueError:
        return None  # another job's partitions (not days): rewrite everything


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions ``first`` to ``last`` (inclusive)."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


__all__ = [
    "DAILY_BACKFILL_POLICY",
    "DAILY_PARTITIONS",
    "RANGE_END_TAG",
    "RANGE_START_TAG",
    "backfill_range",
    "build_daily_partitions",
    "partition_start",
    "day_key",
    "partition_window",
    "range_tags",
]

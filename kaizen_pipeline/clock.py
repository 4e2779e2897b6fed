"""One clock and one time grid: the bucket, bars per year, flooring, next-bar fills, naive-UTC now.

Pure module (no Dagster). Every ``*_buckets`` / ``*_bars`` knob counts buckets of
``bucket_minutes(settings)`` (config ``data_collection.frequency_minutes``); timestamps stored
in the warehouse are naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from kaizen_pipeline.settings import Settings

DEFAULT_BUCKET_MINUTES = 15
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_YEAR = 365 * MINUTES_PER_DAY  # markets trade around the clock


def bucket_minutes(settings: object) -> int:
    """The bucket width of the pipeline (config ``data_collection.frequency_minutes``)."""
    return int(settings.data_collection.frequency_minutes)  # type: ignore[attr-defined]


def bucket_freq(minutes: int = DEFAULT_BUCKET_MINUTES) -> str:
    """The pandas frequency string of a ``minutes`` bucket."""
    return f"{int(minutes)}min"


def buckets(n: int, minutes: int = DEFAULT_BUCKET_MINUTES) -> pd.Timedelta:
    """The duration of ``n`` buckets: how every ``*_buckets`` knob becomes a time span."""
    return pd.Timedelta(minutes=int(n) * int(minutes))


def fill_time(ts: object, minutes: int = DEFAULT_BUCKET_MINUTES) -> object:
    """When a signal at bucket ``ts`` (a timestamp or a Series of them) fills: the next bucket."""
    return ts + buckets(1, minutes)  # type: ignore[operator]


def bars_per_year(minutes: int = DEFAULT_BUCKET_MINUTES) -> float:
    """Bars of ``minutes`` in 365 days."""
    return MINUTES_PER_YEAR / float(minutes)


def bars_per_day(minutes: int = DEFAULT_BUCKET_MINUTES) -> float:
    """Bars of ``minutes`` in one day."""
    return MINUTES_PER_DAY / float(minutes)


def floor_to_bucket(ts: datetime | pd.Timestamp, minutes: int = DEFAULT_BUCKET_MINUTES) -> pd.Timestamp:
    """The start of the bucket holding ``ts``."""
    return pd.Timestamp(ts).floor(bucket_freq(minutes))


def fill_bars(index: pd.DatetimeIndex | np.ndarray, signal_ts: object) -> np.ndarray:
    """Bar positions where signals at ``signal_ts`` fill: the first bar at or after each, plus one.

    A signal at bucket t uses data up to t, so it trades at the next bar; a position equal to
    ``len(index)`` means "never filled" (the signal is on or after the last bar).
    """
    grid = pd.DatetimeIndex(index).to_numpy(dtype="datetime64[ns]")
    ts = pd.to_datetime(pd.Series(signal_ts)).to_numpy(dtype="datetime64[ns]")
    return np.searchsorted(grid, ts, side="left") + 1


def utcnow() -> datetime:
    """Wall-clock now as a naive-UTC datetime (the warehouse's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_naive_utc(ts: datetime) -> datetime:
    """``ts`` as naive UTC (an aware time is converted, a naive one is taken as UTC)."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def pipeline_now(settings: Settings) -> datetime:
    """Naive-UTC 'now' for ingestion and checks: the frozen demo clock when set, else the wall clock."""
    if settings.source == "demo" and settings.demo.frozen_now is not None:
        return as_naive_utc(settings.demo.frozen_now)
    return utcnow()


__all__ = [
    "DEFAULT_BUCKET_MINUTES",
    "as_naive_utc",
    "bars_per_day",
    "bars_per_year",
    "bucket_freq",
    "bucket_minutes",
    "buckets",
    "fill_time",
    "fill_bars",
    "floor_to_bucket",
    "pipeline_now",
    "utcnow",
]

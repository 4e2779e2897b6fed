"""One clock and one time grid; one holding knob (removed keys fail naming the one that replaced them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from kaizen_pipeline import clock
from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.settings import load_settings


def test_the_grid_follows_the_configured_bucket(kaizen_env: Path) -> None:
    (kaizen_env / "config.yaml").write_text("data_collection:\n  frequency_minutes: 30\n")
    settings = load_settings()
    assert clock.bucket_minutes(settings) == 30
    assert BookConfig.from_settings(settings).bars_per_year == 365 * 48
    assert clock.bars_per_year() == 35040.0
    assert clock.floor_to_bucket(datetime(2026, 3, 2, 10, 44), 30) == pd.Timestamp("2026-03-02 10:30")


def test_a_signal_fills_at_the_next_bar() -> None:
    index = pd.date_range("2026-03-02", periods=4, freq="15min")
    # on a bar: the next one; between bars: the bar after the next one at or after it; last bar: never
    bars = clock.fill_bars(index, [index[0], index[1] + pd.Timedelta(minutes=5), index[3]])
    assert bars.tolist() == [1, 3, 4]
    assert clock.fill_time(index[0], 15) == index[1]
    assert clock.buckets(16, 15) == pd.Timedelta(hours=4)


def test_now_is_naive_utc() -> None:
    aware = datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert clock.as_naive_utc(aware) == datetime(2026, 3, 2, 10, 0)
    now = clock.utcnow()
    assert now.tzinfo is None and abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


def test_one_holding_knob_drives_the_backtest(kaizen_env: Path) -> None:
    (kaizen_env / "config.yaml").write_text("research:\n  signal_hold_buckets: 7\n")
    assert BookConfig.from_settings(load_settings()).holding_bars == 7


def test_one_now_helper(kaizen_env: Path) -> None:
    """The warehouse's now and the pipeline's wall clock are the clock's."""
    from kaizen_pipeline import warehouse
    from kaizen_pipeline.clock import pipeline_now

    assert warehouse.utcnow is clock.utcnow
    now = pipeline_now(load_settings())
    assert now.tzinfo is None and abs(now - clock.utcnow()) < timedelta(minutes=1)


def test_bars_per_day_and_per_year_share_the_bucket() -> None:
    assert clock.bars_per_day() == 96.0 and clock.bars_per_day(30) == 48.0
    assert clock.bars_per_year(30) == 365 * clock.bars_per_day(30)

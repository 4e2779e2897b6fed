"""Daily partitions of market_prices and trade_volumes: keys on a frozen clock, one day per run, idempotent
re-runs, and a single-run range backfill equal to its days run one by one."""

from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets, trade_volumes
from kaizen_pipeline.ingest.schedules import build_ingest_schedule, cycle_job
from kaizen_pipeline.partitions import DAILY_PARTITIONS, backfill_range, day_key, range_tags
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings

FROZEN_NOW = "2026-11-20T12:05:00Z"
ASSETS = [polymarket_markets, market_prices, trade_volumes]


def small_demo(db: Path) -> Settings:
    """A 5-market demo world on a frozen clock, in its own warehouse."""
    return load_settings(
        demo={"frozen_now": FROZEN_NOW, "n_markets": 5, "history_days": 5},
        data_collection={"max_markets": 5, "min_volume_24h": 0},
        database={"path": str(db)},
    )


def run(settings: Settings, instance: dg.DagsterInstance, **kwargs: object) -> dict[str, dict[str, object]]:
    result = dg.materialize(ASSETS, resources=build_resources(settings), instance=instance, **kwargs)  # type: ignore[arg-type]
    assert result.success
    meta: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        key = m.asset_key.to_user_string() + (f"@{m.partition}" if m.partition else "")
        meta[key] = {k: v.value for k, v in m.metadata.items()}
    return meta


def table(settings: Settings, name: str, order: list[str]) -> pd.DataFrame:
    wh = warehouse_for(settings.database.sqlalchemy_url())
    frame = wh.read_frame(f"SELECT * FROM {name}", parse_dates=[order[-1]])
    return frame.sort_values(order).reset_index(drop=True)


def test_partition_keys_follow_the_frozen_clock() -> None:
    settings = load_settings(demo={"frozen_now": FROZEN_NOW})
    now = datetime(2026, 11, 20, 12, 5)
    assert DAILY_PARTITIONS.get_first_partition_key() == "2026-01-01"  # data_collection.history_start
    assert day_key(now) in DAILY_PARTITIONS.get_partition_keys()
    assert backfill_range(now, 3) == ("2026-11-18", "2026-11-20")
    assert backfill_range(now, 400, settings.data_collection.history_start)[0] == "2026-01-01"
    schedule = build_ingest_schedule(settings)
    defs = dg.Definitions(
        assets=ASSETS, jobs=[cycle_job], schedules=[schedule], resources=build_resources(settings)
    )
    repo = defs.get_repository_def()
    tick = datetime(2026, 12, 1, 8, 0)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo) as context:
        [request] = list(schedule.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-11-20"  # the pipeline clock's day, not the tick's
    wall = build_ingest_schedule(load_settings())
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo) as context:
        [request] = list(wall.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-12-01"  # no frozen clock: the tick's day


def test_a_partition_collects_only_its_day_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    settings = small_demo(tmp_path / "wh.sqlite")
    instance = dg.DagsterInstance.ephemeral()
    first = run(settings, instance, partition_key="2026-11-19")
    prices = table(settings, "price_points", ["token_id", "ts"])
    volumes = table(settings, "trade_volumes", ["market_id", "bucket_ts"])
    day = (pd.Timestamp("2026-11-19"), pd.Timestamp("2026-11-20"))
    assert prices["ts"].between(*day, inclusive="left").all() and len(prices) > 0
    assert volumes["bucket_ts"].between(*day, inclusive="left").all()
    assert volumes.groupby("market_id").size().eq(96).all()  # every 15-minute bucket of the day, empty ones 0
    assert first["market_prices@2026-11-19"]["new_rows"] == len(prices)

    again = run(settings, instance, partition_key="2026-11-19")
    assert again["market_prices@2026-11-19"]["new_rows"] == 0
    assert again["trade_volumes@2026-11-19"]["new_rows"] == 0
    pd.testing.assert_frame_equal(table(settings, "price_points", ["token_id", "ts"]), prices)
    after = table(settings, "trade_volumes", ["market_id", "bucket_ts"])
    pd.testing.assert_frame_equal(after.drop(columns="collected_at", errors="ignore"),
                                  volumes.drop(columns="collected_at", errors="ignore"))  # fmt: skip

    today = run(settings, instance, partition_key="2026-11-20")  # the running day: up to the clock
    assert table(settings, "price_points", ["token_id", "ts"])["ts"].max() <= pd.Timestamp("2026-11-20 12:05")
    assert today["market_prices@2026-11-20"]["new_rows"] > 0
    # the schedule's next run of the running day: incremental from the newest bucket, nothing new yet
    rerun = run(settings, instance, partition_key="2026-11-20")
    assert rerun["market_prices@2026-11-20"]["new_rows"] == rerun["trade_volumes@2026-11-20"]["new_rows"] == 0
    statuses = instance.get_status_by_partition(
        dg.AssetKey("market_prices"), ["2026-11-19", "2026-11-20"], DAILY_PARTITIONS
    )
    assert statuses is not None and set(statuses.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_a_single_run_range_backfill_equals_its_days_run_one_by_one(tmp_path: Path) -> None:
    ranged = small_demo(tmp_path / "ranged.sqlite")
    instance = dg.DagsterInstance.ephemeral()
    meta = run(ranged, instance, tags=range_tags("2026-11-18", "2026-11-20"))
    assert {k for k in meta if k.startswith("market_prices@")} == {
        f"market_prices@2026-11-{d}" for d in (18, 19, 20)
    }
    assert meta["market_prices@2026-11-18"]["tokens"] == 10  # one request per token for the whole range

    daily = small_demo(tmp_path / "daily.sqlite")
    for key in ("2026-11-18", "2026-11-19", "2026-11-20"):
        run(daily, dg.DagsterInstance.ephemeral(), partition_key=key)
    for name, order in (("price_points", ["token_id", "ts"]), ("trade_volumes", ["market_id", "bucket_ts"])):
        one = table(ranged, name, order).drop(columns="collected_at", errors="ignore")
        three = table(daily, name, order).drop(columns="collected_at", errors="ignore")
        assert len(one) > 0
        pd.testing.assert_frame_equal(one, three)


def test_backfill_command_needs_a_dagster_home(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaizen_pipeline.cli import build_parser, main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    args = build_parser().parse_args(["backfill", "--days", "7", "--end", "2026-11-20"])
    assert (args.days, args.job, f"{args.end}") == (7, "main_job", "2026-11-20")
    assert main(["backfill"]) == 1
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err

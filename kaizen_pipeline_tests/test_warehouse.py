"""Warehouse: idempotent upserts on natural keys, on SQLite and (when configured) PostgreSQL."""

import multiprocessing
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import metadata, price_points
from kaizen_pipeline.warehouse.store import write_batches


def _points(prices: list[float]) -> list[dict]:
    return [
        {
            "token_id": "tok",
            "ts": datetime(2026, 11, 1, 0, 15 * i % 60, 0),
            "market_id": "m1",
            "outcome": "Yes",
            "price": p,
        }
        for i, p in enumerate(prices)
    ]


def test_upsert_twice_adds_nothing_and_updates_values(any_warehouse: Warehouse) -> None:
    first = any_warehouse.upsert(price_points, _points([0.1, 0.2, 0.3, 0.4]))
    assert (first.rows_written, first.new_rows) == (4, 4)
    again = any_warehouse.upsert(price_points, _points([0.1, 0.2, 0.3, 0.4]))
    assert again.new_rows == 0
    changed = any_warehouse.upsert(price_points, _points([0.9]))
    assert changed.new_rows == 0
    frame = any_warehouse.read_frame("SELECT ts, price FROM price_points ORDER BY ts", parse_dates=["ts"])
    assert len(frame) == 4 and frame["price"].iloc[0] == 0.9
    kept = any_warehouse.upsert(price_points, _points([0.5]), update=False)
    assert kept.new_rows == 0
    assert any_warehouse.scalar("SELECT price FROM price_points ORDER BY ts LIMIT 1") == 0.9


def test_duplicate_keys_within_one_batch_collapse_to_the_last(any_warehouse: Warehouse) -> None:
    rows = _points([0.1]) + _points([0.7])
    result = any_warehouse.upsert(price_points, pd.DataFrame(rows))
    assert (result.rows_written, result.new_rows) == (1, 1)
    assert any_warehouse.count(price_points) == 1
    assert any_warehouse.scalar("SELECT price FROM price_points") == 0.7


def test_replace_swaps_a_window_atomically(any_warehouse: Warehouse) -> None:
    any_warehouse.upsert(price_points, _points([0.1, 0.2]))
    result = any_warehouse.replace(price_points, _points([0.3]), where=price_points.c.market_id == "m1")
    assert result.rows_written == 1
    assert any_warehouse.count(price_points) == 1


def test_sqlite_warehouse_uses_wal_and_creates_its_directory(tmp_path) -> None:
    wh = Warehouse(f"sqlite:///{tmp_path}/nested/dir/w.sqlite")
    assert wh.scalar("PRAGMA journal_mode") == "wal"
    assert (tmp_path / "nested" / "dir" / "w.sqlite").exists()
    assert set(wh.table_row_counts()) >= {
        "market_snapshots",
        "price_points",
        "tweets",
        "tweet_authors",
        "rejected_records",
        "ingestion_runs",
    }
    wh.dispose()


def _open_warehouse(url: str, start: Any) -> str:
    try:
        start.wait(timeout=120)  # every process opens at the same moment, as parallel Dagster steps do
    except Exception as exc:  # a worker that never started: report it rather than wait forever
        return f"barrier: {type(exc).__name__}"
    try:
        Warehouse(url).dispose()
    except Exception as exc:  # reported to the parent: a traceback from a pool worker is lost
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_steps_can_create_the_schema_at_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Step processes of one run all open the warehouse; creating the tables must not race."""
    url = (
        f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    processes = 6
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(processes) as pool:
        start = manager.Barrier(processes)
        # a pool worker that dies loses its task and starmap would wait for ever: bound the wait
        outcomes = pool.starmap_async(_open_warehouse, [(url, start)] * processes).get(timeout=300)
    assert outcomes == ["ok"] * processes
    wh = Warehouse(url, create=False)
    assert set(metadata.tables) <= set(sa.inspect(wh.engine).get_table_names())
    wh.dispose()


def test_opening_an_existing_warehouse_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A step starting while another holds a long write transaction opens the warehouse at once."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    Warehouse(url).dispose()
    writer = sqlite3.connect(tmp_path / "wh.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # e.g. a long replace() of a research table
    try:
        wh = Warehouse(url)  # would wait out the busy timeout and fail if it took the write lock
        assert wh.count(price_points) == 0
        wh.dispose()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_warehouse_from_an_older_release_gains_the_new_nullable_columns(any_warehouse: Warehouse) -> None:
    """Opening a warehouse whose trading_signals lacks `variants` adds the column and keeps the rows."""
    wh = any_warehouse
    row = {"market_id": "m1", "bucket_ts": datetime(2026, 1, 1), "fill_ts": datetime(2026, 1, 1, 0, 15),
           "direction": "YES", "strength": 0.5, "yes_price": 0.4, "signal_price": 0.4, "rvr": 3.0, "roc": 0.2,
           "hype_index": 80.0, "computed_at": datetime(2026, 1, 1)}  # fmt: skip
    wh.upsert("trading_signals", [row])
    with wh.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE trading_signals DROP COLUMN variants"))
    reopened = Warehouse(wh.url)
    try:
        columns = {c["name"] for c in sa.inspect(reopened.engine).get_columns("trading_signals")}
        assert "variants" in columns
        frame = reopened.read_frame("SELECT market_id, variants FROM trading_signals")
        assert list(frame["market_id"]) == ["m1"] and frame["variants"].isna().all()
    finally:
        reopened.dispose()


def _hype_rows(seed: int, n_markets: int, n_buckets: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = [
        (f"m{m}", datetime(2026, 11, 1) + pd.Timedelta(minutes=15 * b))
        for m in range(n_markets)
        for b in range(n_buckets)
    ]
    n = len(keys)
    sentiment = rng.normal(size=n).round(1)
    sentiment[rng.random(n) < 0.3] = np.nan  # NULLs must compare equal to NULLs
    return pd.DataFrame(
        {
            "market_id": [k[0] for k in keys],
            "bucket_ts": [k[1] for k in keys],
            "post_count": rng.integers(0, 3, n),
            "unique_authors": rng.integers(0, 2, n),
            "weighted_engagement": rng.integers(0, 3, n).astype(float),
            "sentiment": sentiment,
            "bot_posts": 0,
            "bot_share": None,
            "raw_hype": rng.integers(0, 2, n).astype(float),
            "hype_index": rng.integers(0, 3, n) * 50.0,
            "computed_at": datetime(2026, 11, 2) + pd.Timedelta(seconds=seed),
        }
    )


@pytest.mark.parametrize("seed", range(4))
def test_replace_changed_ends_like_replace_and_writes_only_the_difference(
    any_warehouse: Warehouse, seed: int
) -> None:
    from kaizen_pipeline.warehouse.schema import hype_scores

    first, second = _hype_rows(seed, 4, 12), _hype_rows(seed + 100, 4, 12)
    # the second window drops one market, adds a new one, and keeps half the first one's rows as they were
    second = second[second["market_id"] != "m3"]
    same = first.sample(frac=0.5, random_state=seed).drop(columns="computed_at")
    second = second.set_index(["market_id", "bucket_ts"])
    second.update(same.set_index(["market_id", "bucket_ts"]))
    second = pd.concat([second.reset_index(), _hype_rows(seed, 5, 3).query("market_id == 'm4'")])
    where = hype_scores.c.bucket_ts >= datetime(2026, 11, 1, 1)
    windows = [f[f["bucket_ts"] >= datetime(2026, 11, 1, 1)] for f in (first, second)]
    any_warehouse.upsert(hype_scores, first)
    any_warehouse.replace(hype_scores, windows[0], where=where)
    result = any_warehouse.replace_changed(hype_scores, windows[1], where=where)
    after_changed = any_warehouse.read_frame(
        "SELECT * FROM hype_scores ORDER BY market_id, bucket_ts", parse_dates=["bucket_ts", "computed_at"]
    )
    unchanged = any_warehouse.count(hype_scores, hype_scores.c.computed_at == first["computed_at"].iloc[0])
    any_warehouse.replace(hype_scores, windows[1], where=where)
    after_replace = any_warehouse.read_frame(
        "SELECT * FROM hype_scores ORDER BY market_id, bucket_ts", parse_dates=["bucket_ts", "computed_at"]
    )
    pd.testing.assert_frame_equal(
        after_changed.drop(columns="computed_at"), after_replace.drop(columns="computed_at")
    )
    # rows before the window stay untouched; equal rows inside it were not rewritten
    assert unchanged >= len(first) - len(windows[0]) + 1
    assert 0 < result.rows_written < len(windows[1])
    assert result.new_rows == int((windows[1]["market_id"] == "m4").sum())


def test_sqlite_fast_writes_store_what_sqlalchemy_stores(tmp_path: Path) -> None:
    """Rows handed to the driver as tuples land as the same text as SQLAlchemy's bind processing, so
    natural keys written either way collide; a value the fast path does not know goes the slow way."""
    fast, slow = (Warehouse(f"sqlite:///{tmp_path / name}.sqlite") for name in ("fast", "slow"))
    rows = [
        {"token_id": "t", "ts": datetime(2026, 1, 1), "market_id": "m", "outcome": "Yes", "price": 0.5},
        {
            "token_id": "t",
            "ts": datetime(2026, 1, 1, 0, 15, 0, 7),
            "market_id": "m",
            "outcome": "Yes",
            "price": 1,
        },
        {"token_id": "u", "ts": datetime(2026, 1, 2), "market_id": "m", "outcome": "No", "price": 0.25},
    ]
    try:
        fast.upsert("price_points", rows)
        with slow.engine.begin() as conn:
            conn.execute(slow.table("price_points").insert(), rows)
        query = "SELECT token_id, ts, typeof(ts), market_id, outcome, price FROM price_points ORDER BY 1, 2"
        with fast.engine.connect() as a, slow.engine.connect() as b:
            assert a.exec_driver_sql(query).fetchall() == b.exec_driver_sql(query).fetchall()
        # written the other way, the same keys are duplicates: nothing new
        assert fast.upsert("price_points", rows, update=False).new_rows == 0
        # a date where a datetime belongs is SQLAlchemy's to judge (it refuses, naming the type)
        with fast.engine.begin() as conn, pytest.raises(sa.exc.StatementError, match="datetime"):
            write_batches(
                conn,
                fast.table("price_points").insert(),
                fast.table("price_points"),
                [{**rows[0], "ts": "x"}],
            )
    finally:
        fast.dispose()
        slow.dispose()

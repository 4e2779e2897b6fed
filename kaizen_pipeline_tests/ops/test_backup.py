"""Verified backups and restore: online copies under concurrent writes, retention, refusal of bad files."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kaizen_pipeline.cli import main
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.backup.catalogue import (
    BackupError,
    BackupVerificationError,
    list_backups,
    manifest_path,
)
from kaizen_pipeline.warehouse.backup.dispatch import backup_warehouse, restore_warehouse, verify_backup
from kaizen_pipeline.warehouse.backup.maintenance import maintain_warehouse
from kaizen_pipeline.warehouse.backup.sqlite import backup_sqlite, sqlite_integrity, sqlite_path
from kaizen_pipeline_tests.conftest import POSTGRES_ENV

BASE = datetime(2026, 1, 1)


def add_prices(db: Path, start: int, n: int) -> None:
    with sqlite3.connect(db, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO price_points (token_id, ts, market_id, outcome, price) VALUES (?, ?, 'm1', 'Yes', 0.5)",
            [("tok", (BASE + timedelta(minutes=i)).isoformat(sep=" ")) for i in range(start, start + n)],
        )


def price_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM price_points").fetchone()[0]


@pytest.fixture
def db(warehouse: Warehouse) -> Path:
    path = sqlite_path(warehouse.url)
    add_prices(path, 0, 20_000)
    return path


def test_backup_during_concurrent_writes_restores_a_consistent_snapshot_with_every_committed_row(
    db: Path, settings: Settings, tmp_path: Path
) -> None:
    committed: list[int] = []
    stop = threading.Event()
    started = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30)
        i = 20_000
        while not stop.is_set():
            conn.execute(
                "INSERT INTO price_points (token_id, ts, market_id, outcome, price) VALUES ('tok', ?, 'm1', 'Yes', 0.5)",
                ((BASE + timedelta(minutes=i)).isoformat(sep=" "),),
            )
            conn.commit()
            committed.append(i)
            i += 1
            if len(committed) >= 50:
                started.set()
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert started.wait(30)
    before_backup = len(committed)
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    after_backup = len(committed)
    while len(committed) < after_backup + 50 and thread.is_alive():
        time.sleep(0.001)
    stop.set()
    thread.join(30)

    restored = tmp_path / "restored" / "warehouse.sqlite"
    restore_warehouse(info.path, f"sqlite:///{restored}")
    assert sqlite_integrity(restored) == []
    with sqlite3.connect(restored) as conn:
        minutes = [
            int((datetime.fromisoformat(ts) - BASE).total_seconds() // 60)
            for (ts,) in conn.execute("SELECT ts FROM price_points ORDER BY ts")
        ]
    # every row committed before the backup started is there, and the copy is one snapshot:
    # a gap-free prefix of the writer's sequence, exactly as many rows as the manifest promised
    assert len(minutes) >= 20_000 + before_backup
    assert minutes == list(range(len(minutes)))
    assert len(minutes) == info.row_counts["price_points"]
    assert len(committed) > after_backup  # the writer really kept writing around the copy
    assert info.verified and json.loads(manifest_path(info.path).read_text())["verified"] is True


def test_retention_keeps_exactly_the_newest_seven(db: Path, settings: Settings) -> None:
    stamps = [datetime(2026, 2, 1) + timedelta(hours=h) for h in range(9)]
    for stamp in stamps:
        backup_sqlite(db, settings.database.backup_dir, keep=settings.database.backup_keep, now=stamp)
    kept = list_backups(settings.database.backup_dir)
    assert settings.database.backup_keep == 7
    assert [b.created_at for b in kept] == stamps[2:]
    leftovers = {p.name for p in Path(settings.database.backup_dir).iterdir()}
    assert leftovers == {b.path.name for b in kept} | {manifest_path(b.path).name for b in kept}


def test_truncated_backup_is_refused_and_the_warehouse_is_left_alone(db: Path, settings: Settings) -> None:
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    data = info.path.read_bytes()
    info.path.write_bytes(data[: len(data) // 2])
    add_prices(db, 50_000, 10)

    result = verify_backup(info.path)
    assert not result.ok
    assert any("truncated or corrupt" in p for p in result.problems)
    with pytest.raises(BackupVerificationError, match="refusing to restore"):
        restore_warehouse(info.path, f"sqlite:///{db}")
    assert main(["restore", "--backup", str(info.path), "--yes"]) == 1
    assert price_count(db) == 20_010
    assert sqlite_integrity(db) == []


def test_backup_not_matching_its_manifest_is_refused(db: Path, settings: Settings) -> None:
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    # a different, well-formed database in place of the backup: gzip and integrity are fine, counts are not
    other = db.parent / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE price_points (x)")
    info.path.write_bytes(gzip.compress(other.read_bytes()))
    result = verify_backup(info.path)
    assert not result.ok
    assert any("price_points" in p for p in result.problems)
    assert any("SHA-256" in p for p in result.problems)


def test_cli_backup_list_and_restore_round_trip(
    db: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup"]) == 0
    (info,) = list_backups(settings.database.backup_dir)
    add_prices(db, 90_000, 5)  # written after the backup: gone after the restore
    assert main(["backup", "--list"]) == 0
    assert info.path.name in capsys.readouterr().out

    assert main(["restore", "--backup", str(info.path), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "pre-restore" in out
    assert price_count(db) == 20_000
    # The previous database is kept with its -wal/-shm companions beside it: open the database itself.
    saved = [p for p in db.parent.glob(db.name + ".pre-restore-*") if not p.name.endswith(("-wal", "-shm"))]
    assert (
        saved
        and sqlite3.connect(saved[0]).execute("SELECT count(*) FROM price_points").fetchone()[0] == 20_005
    )
    # the restored warehouse works with the application's own engine (WAL on again)
    wh = Warehouse(f"sqlite:///{db}")
    assert wh.count("price_points") == 20_000
    wh.dispose()


def test_restore_without_yes_and_without_a_terminal_refuses(
    db: Path, settings: Settings, monkeypatch
) -> None:
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115
    assert main(["restore", "--backup", str(info.path)]) == 1


def test_weekly_maintenance_vacuums_and_analyzes(db: Path, warehouse: Warehouse) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "DELETE FROM price_points WHERE ts >= ?", ((BASE + timedelta(minutes=1000)).isoformat(sep=" "),)
        )
    result = maintain_warehouse(warehouse.url)
    assert result.operations[:3] == ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "ANALYZE"]
    assert result.size_after_bytes < result.size_before_bytes
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0


def test_postgres_without_client_tools_says_what_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        BackupError, match="pg_dump was not found on PATH: install the PostgreSQL client tools"
    ):
        backup_warehouse("postgresql+psycopg2://postgres@127.0.0.1:5432/test", tmp_path / "b", keep=7)


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """A database of its own on the test server: pg_restore --clean must not touch tables other tests use."""
    postgres_url = os.environ.get(POSTGRES_ENV)
    if not postgres_url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    name = f"kaizen_ops_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} is not reachable: {exc.orig}")
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgres_backup_verify_and_restore(scratch_postgres: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    wh = Warehouse(scratch_postgres)
    wh.upsert(
        "price_points",
        [
            {
                "token_id": "tok",
                "ts": BASE + timedelta(minutes=i),
                "market_id": "m1",
                "outcome": "Yes",
                "price": 0.5,
            }
            for i in range(300)
        ],
    )
    info = backup_warehouse(scratch_postgres, tmp_path / "pg", keep=7)
    assert info.verified and info.row_counts["public.price_points"] == 300
    wh.upsert(
        "price_points",
        [
            {
                "token_id": "tok",
                "ts": BASE - timedelta(days=1),
                "market_id": "m1",
                "outcome": "Yes",
                "price": 0.1,
            }
        ],
    )
    wh.dispose()
    restore_warehouse(info.path, scratch_postgres)
    wh = Warehouse(scratch_postgres)
    assert wh.count("price_points") == 300
    wh.dispose()
    info.path.write_bytes(info.path.read_bytes()[:200])
    with pytest.raises(BackupVerificationError):
        restore_warehouse(info.path, scratch_postgres)

"""Warehouse upkeep: VACUUM/ANALYZE (maintain_warehouse) and the fast corruption probe (quick_integrity)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass

import sqlalchemy as sa

from kaizen_pipeline.warehouse.backup.catalogue import BackupError
from kaizen_pipeline.warehouse.backup.sqlite import sqlite_integrity, sqlite_path


@dataclass(frozen=True)
class MaintenanceResult:
    dialect: str
    operations: list[str]
    size_before_bytes: int
    size_after_bytes: int
    duration_seconds: float


def maintain_warehouse(url: str) -> MaintenanceResult:
    """Weekly upkeep: SQLite checkpoint + VACUUM + ANALYZE; PostgreSQL VACUUM (ANALYZE)."""
    started = time.monotonic()
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)

        def size() -> int:
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())

        before = size()
        ops = ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "ANALYZE", "PRAGMA optimize"]
        with closing(sqlite3.connect(str(path), timeout=60, isolation_level=None)) as conn:
            conn.execute("PRAGMA busy_timeout=60000")
            for op in ops:
                conn.execute(op).fetchall()
            # VACUUM grows the WAL by the size of the database; fold it back into the file.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        after = size()
    elif backend == "postgresql":
        ops = ["VACUUM (ANALYZE)"]
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                before = int(
                    conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
                )
                conn.execute(sa.text(ops[0]))
                after = int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())
        finally:
            engine.dispose()
    else:
        raise BackupError(f"database.url: maintenance supports sqlite and postgresql, not {backend}")
    return MaintenanceResult(backend, ops, before, after, round(time.monotonic() - started, 3))


def quick_integrity(url: str) -> list[str]:
    """Fast corruption probe of the warehouse (SQLite ``quick_check``; PostgreSQL: connects)."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        return sqlite_integrity(sqlite_path(url), quick=True)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return [f"cannot query the warehouse: {type(exc.orig or exc).__name__}"]
    finally:
        engine.dispose()
    return []

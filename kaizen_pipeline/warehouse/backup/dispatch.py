"""Backup, verify and restore the warehouse at a URL: each call picks the SQLite or PostgreSQL module."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from kaizen_pipeline.warehouse.backup.catalogue import (
    BackupError,
    BackupInfo,
    Progress,
    RestoreResult,
    VerifyResult,
    dialect_of,
    no_progress,
)
from kaizen_pipeline.warehouse.backup.postgres import (
    backup_postgres,
    restore_postgres,
    verify_postgres_backup,
)
from kaizen_pipeline.warehouse.backup.sqlite import (
    backup_sqlite,
    restore_sqlite,
    sqlite_path,
    verify_sqlite_backup,
)


def verify_backup(path: str | Path, *, require_warehouse: bool = False) -> VerifyResult:
    """Restore-test a backup into scratch space: readable, sound, and the row counts it promised.

    ``require_warehouse`` (what a restore needs) also demands this project's manifest and, for SQLite,
    every table and column of the warehouse schema.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        return VerifyResult(path, False, [f"{path}: file not found"])
    try:
        dialect = dialect_of(path)
    except BackupError as exc:
        return VerifyResult(path, False, [str(exc)])
    if dialect == "sqlite":
        return verify_sqlite_backup(path, require_warehouse=require_warehouse)
    return verify_postgres_backup(path, require_warehouse=require_warehouse)


def backup_warehouse(
    url: str, backup_dir: str | Path, keep: int, now: datetime | None = None, progress: Progress = no_progress
) -> BackupInfo:
    """Take a verified backup of the warehouse at ``url`` (SQLite or PostgreSQL) and apply retention."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        return backup_sqlite(sqlite_path(url), backup_dir, keep, now, progress)
    if backend == "postgresql":
        progress("pg_dump and restore test", None, None)
        return backup_postgres(url, backup_dir, keep, now)
    raise BackupError(f"database.url: backups support sqlite and postgresql, not {backend}")


def restore_warehouse(
    backup: str | Path, url: str, now: datetime | None = None, *, force: bool = False
) -> RestoreResult:
    """Verify ``backup`` and restore it into the warehouse at ``url``; refuse one that fails verification.

    A backup without this project's manifest or the warehouse schema is refused unless ``force``.

    Stop the Dagster daemon and webserver first: a writer that keeps the old file open keeps
    writing into the replaced (moved-away) database.
    """
    backup = Path(backup).expanduser()
    if not backup.is_file():
        raise BackupError(f"--backup: {backup} does not exist")
    dialect = dialect_of(backup)
    backend = sa.make_url(url).get_backend_name()
    if dialect != backend:
        raise BackupError(f"{backup.name} is a {dialect} backup but the warehouse is {backend}")
    if backend == "sqlite":
        return restore_sqlite(backup, sqlite_path(url), now, force=force)
    return restore_postgres(backup, url, force=force)

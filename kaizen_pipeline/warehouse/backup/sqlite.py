"""SQLite backup and restore: an online, compressed, restore-tested copy, and putting one in place.

SQLite's online backup API copies the database while writers stay active; the copy is taken inside
the same read transaction that counts each table's rows, so the counts describe exactly the snapshot
that was copied. The copy is gzip-compressed, then verified the way a restore would use it
(decompress, ``PRAGMA integrity_check``, row counts equal to the source snapshot) before it counts.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from kaizen_pipeline.clock import utcnow
from kaizen_pipeline.warehouse.backup.catalogue import (
    CHUNK,
    SQLITE_SUFFIX,
    BackupError,
    BackupInfo,
    BackupVerificationError,
    Progress,
    RestoreResult,
    VerifyResult,
    backup_name,
    copy_with_progress,
    fsync_file,
    manifest_checks,
    manifest_missing,
    no_progress,
    seal_backup,
)
from kaizen_pipeline.warehouse.schema import metadata


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite:///`` URL (error for in-memory databases)."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        raise BackupError(f"not a SQLite URL: {sa_url.get_backend_name()}")
    if not sa_url.database or sa_url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(sa_url.database).expanduser()


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def _sqlite_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _sqlite_tables(conn)}


def sqlite_integrity(path: str | Path, *, quick: bool = False) -> list[str]:
    """Problems reported by ``PRAGMA integrity_check`` (empty: the file is a sound database)."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: file not found"]
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
            pragma = "quick_check" if quick else "integrity_check"
            rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [f"{path.name}: {exc}"]
    return [] if rows == ["ok"] else rows


@contextmanager
def _scratch(directory: Path, stem: str) -> Iterator[Path]:
    """A temporary file path in ``directory`` (same filesystem as the target), removed afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".{stem}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    try:
        yield path
    finally:
        for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm"), Path(str(path) + "-journal")):
            p.unlink(missing_ok=True)


def _decompress(src: Path, dst: Path) -> None:
    with src.open("rb") as head:
        magic = head.read(16)
    if not magic.startswith(b"\x1f\x8b"):
        raise BackupVerificationError(
            f"{src.name}: not a gzip file (a *{SQLITE_SUFFIX} backup is gzip-compressed; "
            f"this one starts with {magic!r})"
        )
    try:
        with gzip.open(src, "rb") as fin, dst.open("wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BackupVerificationError(
            f"{src.name}: cannot be decompressed ({exc}); the file is truncated or corrupt"
        ) from None


def _verify_sqlite_copy(
    db_file: Path, expected: Mapping[str, int] | None
) -> tuple[list[str], dict[str, int]]:
    problems = sqlite_integrity(db_file)
    if problems:
        return [f"integrity_check: {'; '.join(problems[:5])}"], {}
    with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as conn:
        counts = _sqlite_row_counts(conn)
    if expected is not None:
        for table in sorted(set(expected) | set(counts)):
            want, got = expected.get(table), counts.get(table)
            if want != got:
                problems.append(f"table {table}: {got} rows in the backup, {want} in the source snapshot")
    return problems, counts


def backup_sqlite(
    db_path: str | Path,
    backup_dir: str | Path,
    keep: int,
    now: datetime | None = None,
    progress: Progress = no_progress,
) -> BackupInfo:
    """Take, compress and verify an online backup of a live SQLite database; apply retention.

    Raises BackupVerificationError (and leaves no backup behind) when the copy fails verification.
    """
    started = time.monotonic()
    db_path = Path(db_path).expanduser()
    if not db_path.exists():
        raise BackupError(f"database.path: {db_path} does not exist, nothing to back up")
    directory = Path(backup_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    created_at = now or utcnow()
    final = directory / backup_name(created_at, "sqlite")
    with _scratch(directory, "copy") as raw_copy:
        src = sqlite3.connect(str(db_path), timeout=30, isolation_level=None)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            # One read transaction: the counts and the page copy see the same snapshot, while
            # writers keep appending to the WAL. pages=-1 copies everything in one step, so the
            # backup never restarts because another connection wrote in between.
            src.execute("BEGIN")
            progress("counting rows", None, None)
            counts = _sqlite_row_counts(src)
            progress("copying the database (online backup)", None, None)
            with closing(sqlite3.connect(str(raw_copy))) as dst:
                src.backup(dst, pages=-1)
                src.execute("COMMIT")
                # A self-contained file: no WAL to carry along when it is restored.
                dst.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{db_path.name}: online backup failed: {exc}") from exc
        finally:
            src.close()
        gz_tmp = directory / ("." + final.name + ".tmp")
        try:
            with raw_copy.open("rb") as fin, gzip.open(gz_tmp, "wb", compresslevel=6) as fout:
                copy_with_progress(fin, fout, raw_copy.stat().st_size, "compressing", progress)
            fsync_file(gz_tmp)
            os.replace(gz_tmp, final)
        finally:
            gz_tmp.unlink(missing_ok=True)
    return seal_backup(
        final,
        created_at,
        "sqlite",
        counts,
        str(db_path),
        started,
        directory,
        keep,
        verify_sqlite_backup,
        progress,
    )


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def warehouse_schema_problems(db_file: str | Path) -> list[str]:
    """Why the SQLite file ``db_file`` is not this project's warehouse: most tables, or present tables' columns, missing."""
    with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as conn:
        present = set(_sqlite_tables(conn))
        columns = {t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in present}
    problems = []
    missing_tables = sorted(set(metadata.tables) - present)
    # A backup from an older release lacks the tables added since; the warehouse creates those on
    # open, so only a file holding under half of them is taken for someone else's database.
    if len(missing_tables) * 2 > len(metadata.tables):
        problems.append(
            f"not this project's warehouse: missing tables {_listed(missing_tables)} "
            f"({len(missing_tables)} of the {len(metadata.tables)} warehouse tables)"
        )
    missing_columns = [
        f"{name}.{col.name}"
        for name, table in sorted(metadata.tables.items())
        if name in present
        for col in table.columns
        if col.name not in columns[name]
    ]
    if missing_columns:
        problems.append(f"warehouse schema mismatch: missing columns {_listed(missing_columns)}")
    return problems


def verify_sqlite_backup(
    path: Path, keep_copy_as: Path | None = None, *, require_warehouse: bool = False
) -> VerifyResult:
    problems, expected = manifest_checks(path)
    if require_warehouse:
        problems += manifest_missing(path)
    with _scratch(path.parent, "verify") as scratch:
        try:
            _decompress(path, scratch)
        except BackupVerificationError as exc:
            return VerifyResult(path, False, problems + [str(exc)])
        more, counts = _verify_sqlite_copy(scratch, expected)
        problems += more
        if require_warehouse and not more:
            problems += warehouse_schema_problems(scratch)
        if not problems and keep_copy_as is not None:
            os.replace(scratch, keep_copy_as)
    return VerifyResult(path, not problems, problems, counts)


def restore_sqlite(
    backup: Path, db_path: str | Path, now: datetime | None = None, *, force: bool = False
) -> RestoreResult:
    """Verify ``backup`` and put it in place of ``db_path``; the current file is kept beside it.

    Without ``force`` a file lacking this project's manifest or the warehouse schema is refused.
    """
    db_path = Path(db_path).expanduser()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    staged = db_path.with_name(f".{db_path.name}.restore.tmp")
    staged.unlink(missing_ok=True)
    result = verify_sqlite_backup(backup, keep_copy_as=staged, require_warehouse=not force)
    if not result.ok:
        staged.unlink(missing_ok=True)
        raise BackupVerificationError(result.summary() + " -- refusing to restore it")
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    previous = db_path.with_name(f"{db_path.name}.pre-restore-{stamp}")
    saved: Path | None = None
    if db_path.exists():
        os.replace(db_path, previous)
        saved = previous
    # A WAL or shared-memory file left by the old database would be replayed onto the restored
    # one and corrupt it: move them away with the old file.
    for suffix in ("-wal", "-shm", "-journal"):
        side = Path(str(db_path) + suffix)
        if side.exists():
            if saved is not None:
                os.replace(side, Path(str(previous) + suffix))
            else:
                side.unlink()
    os.replace(staged, db_path)
    return RestoreResult(backup, str(db_path), saved, result.row_counts)

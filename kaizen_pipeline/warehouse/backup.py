"""Verified backups, restore and maintenance of the warehouse.

SQLite: SQLite's online backup API copies the database while writers stay active; the copy is
taken inside the same read transaction that counts each table's rows, so the counts describe
exactly the snapshot that was copied. The copy is gzip-compressed, then verified the way a
restore would use it (decompress, ``PRAGMA integrity_check``, row counts equal to the source
snapshot) before it counts as a backup. A JSON manifest beside each file records the counts,
the SHA-256 and the verification.

PostgreSQL: ``pg_dump --format=custom`` on an exported snapshot (counts from the same snapshot),
verified by reading every row back out of the archive with ``pg_restore``; restore with
``pg_restore --clean``. Without the client tools on PATH the error says what to install.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kaizen_pipeline.warehouse.schema import metadata

BACKUP_PREFIX = "warehouse-"
SQLITE_SUFFIX = ".sqlite.gz"
POSTGRES_SUFFIX = ".dump"
MANIFEST_SUFFIX = ".json"
_CHUNK = 1 << 20
_NAME_RE = re.compile(r"^warehouse-(\d{8}T\d{9})Z(\.sqlite\.gz|\.dump)$")


class BackupError(RuntimeError):
    """A backup, restore or maintenance step failed; the message says what and what to do."""


class BackupVerificationError(BackupError):
    """A backup file failed verification (corrupt, truncated or not matching its manifest)."""


@dataclass(frozen=True)
class BackupInfo:
    """One backup file and what its manifest says about it."""

    path: Path
    created_at: datetime
    dialect: str
    size_bytes: int
    row_counts: dict[str, int]
    sha256: str
    verified: bool
    verified_at: datetime | None = None
    duration_seconds: float | None = None

    @property
    def source_rows(self) -> int:
        return sum(self.row_counts.values())

    @property
    def tables(self) -> int:
        return len(self.row_counts)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of restoring a backup into a scratch copy and comparing it with its manifest."""

    path: Path
    ok: bool
    problems: list[str]
    row_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.ok:
            return f"{self.path.name}: verified ({len(self.row_counts)} tables, {sum(self.row_counts.values())} rows)"
        return f"{self.path.name}: FAILED verification: " + "; ".join(self.problems)


@dataclass(frozen=True)
class RestoreResult:
    backup: Path
    target: str
    previous_saved_to: Path | None
    row_counts: dict[str, int]


@dataclass(frozen=True)
class MaintenanceResult:
    dialect: str
    operations: list[str]
    size_before_bytes: int
    size_after_bytes: int
    duration_seconds: float


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite:///`` URL (error for in-memory databases)."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        raise BackupError(f"not a SQLite URL: {sa_url.get_backend_name()}")
    if not sa_url.database or sa_url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(sa_url.database).expanduser()


def backup_name(created_at: datetime, dialect: str) -> str:
    stamp = created_at.strftime("%Y%m%dT%H%M%S") + f"{created_at.microsecond // 1000:03d}Z"
    return BACKUP_PREFIX + stamp + (SQLITE_SUFFIX if dialect == "sqlite" else POSTGRES_SUFFIX)


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def _write_manifest(info: BackupInfo, source: str) -> None:
    data = {
        "format": 1,
        "file": info.path.name,
        "created_at": info.created_at.isoformat(),
        "dialect": info.dialect,
        "source": source,
        "size_bytes": info.size_bytes,
        "sha256": info.sha256,
        "row_counts": info.row_counts,
        "verified": info.verified,
        "verified_at": info.verified_at.isoformat() if info.verified_at else None,
        "duration_seconds": info.duration_seconds,
    }
    target = manifest_path(info.path)
    tmp = target.with_name("." + target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, target)


def read_manifest(backup: Path) -> dict[str, Any] | None:
    path = manifest_path(backup)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _dialect_of(path: Path) -> str:
    if path.name.endswith(SQLITE_SUFFIX):
        return "sqlite"
    if path.name.endswith(POSTGRES_SUFFIX):
        return "postgresql"
    raise BackupError(f"{path.name}: not a backup file (expected *{SQLITE_SUFFIX} or *{POSTGRES_SUFFIX})")


def _created_from_name(path: Path) -> datetime | None:
    match = _NAME_RE.match(path.name)
    if not match:
        return None
    stamp = match.group(1)
    return datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").replace(microsecond=int(stamp[15:]) * 1000)


def backup_info(path: Path) -> BackupInfo:
    """What is known about a backup file from its manifest (unverified when there is none)."""
    manifest = read_manifest(path) or {}
    created = manifest.get("created_at")
    created_at = (
        datetime.fromisoformat(created)
        if created
        else _created_from_name(path)
        or datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    )
    verified_at = manifest.get("verified_at")
    return BackupInfo(
        path=path,
        created_at=created_at,
        dialect=manifest.get("dialect") or _dialect_of(path),
        size_bytes=path.stat().st_size,
        row_counts={str(k): int(v) for k, v in (manifest.get("row_counts") or {}).items()},
        sha256=str(manifest.get("sha256") or ""),
        verified=bool(manifest.get("verified")),
        verified_at=datetime.fromisoformat(verified_at) if verified_at else None,
        duration_seconds=manifest.get("duration_seconds"),
    )


def list_backups(backup_dir: str | Path) -> list[BackupInfo]:
    """Backups in ``backup_dir``, oldest first (the timestamp is in the file name)."""
    directory = Path(backup_dir).expanduser()
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.iterdir() if p.is_file() and _NAME_RE.match(p.name))
    return [backup_info(p) for p in files]


def apply_retention(backup_dir: str | Path, keep: int) -> list[Path]:
    """Keep the newest ``keep`` backups, delete older ones (and their manifests); return the deleted."""
    if keep < 1:
        raise ValueError(f"keep: must be at least 1 (got {keep})")
    backups = list_backups(backup_dir)
    removed = []
    for info in backups[: max(0, len(backups) - keep)]:
        info.path.unlink(missing_ok=True)
        manifest_path(info.path).unlink(missing_ok=True)
        removed.append(info.path)
    return removed


# --- SQLite ---------------------------------------------------------------------------


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
            shutil.copyfileobj(fin, fout, _CHUNK)
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
    db_path: str | Path, backup_dir: str | Path, keep: int, now: datetime | None = None
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
    created_at = now or _utcnow()
    final = directory / backup_name(created_at, "sqlite")
    with _scratch(directory, "copy") as raw_copy:
        src = sqlite3.connect(str(db_path), timeout=30, isolation_level=None)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            # One read transaction: the counts and the page copy see the same snapshot, while
            # writers keep appending to the WAL. pages=-1 copies everything in one step, so the
            # backup never restarts because another connection wrote in between.
            src.execute("BEGIN")
            counts = _sqlite_row_counts(src)
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
                shutil.copyfileobj(fin, fout, _CHUNK)
            _fsync(gz_tmp)
            os.replace(gz_tmp, final)
        finally:
            gz_tmp.unlink(missing_ok=True)
    return _seal_backup(final, created_at, "sqlite", counts, str(db_path), started, directory, keep)


def _manifest_checks(path: Path) -> tuple[list[str], dict[str, int] | None]:
    """Problems found by comparing the file with its manifest; the expected row counts."""
    manifest = read_manifest(path)
    if manifest is None:
        return [], None
    problems = []
    if manifest.get("sha256") and manifest["sha256"] != _sha256(path):
        problems.append("SHA-256 differs from the manifest (the file changed or is truncated)")
    counts = manifest.get("row_counts")
    return problems, ({str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else None)


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _manifest_missing(path: Path) -> list[str]:
    """A restore needs the manifest ``kaizen backup`` writes: it is what says the file is this project's."""
    manifest = read_manifest(path)
    if manifest is None:
        return [f"no manifest {manifest_path(path).name} beside it: not a backup taken by `kaizen backup`"]
    missing = [key for key in ("format", "dialect", "row_counts", "sha256") if not manifest.get(key)]
    if missing:
        return [f"manifest {manifest_path(path).name} lacks {', '.join(missing)}"]
    return []


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


def _verify_sqlite_backup(
    path: Path, keep_copy_as: Path | None = None, *, require_warehouse: bool = False
) -> VerifyResult:
    problems, expected = _manifest_checks(path)
    if require_warehouse:
        problems += _manifest_missing(path)
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


def verify_backup(path: str | Path, *, require_warehouse: bool = False) -> VerifyResult:
    """Restore-test a backup into scratch space: readable, sound, and the row counts it promised.

    ``require_warehouse`` (what a restore needs) also demands this project's manifest and, for SQLite,
    every table and column of the warehouse schema.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        return VerifyResult(path, False, [f"{path}: file not found"])
    try:
        dialect = _dialect_of(path)
    except BackupError as exc:
        return VerifyResult(path, False, [str(exc)])
    if dialect == "sqlite":
        return _verify_sqlite_backup(path, require_warehouse=require_warehouse)
    return _verify_postgres_backup(path, require_warehouse=require_warehouse)


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
    result = _verify_sqlite_backup(backup, keep_copy_as=staged, require_warehouse=not force)
    if not result.ok:
        staged.unlink(missing_ok=True)
        raise BackupVerificationError(result.summary() + " -- refusing to restore it")
    stamp = (now or _utcnow()).strftime("%Y%m%dT%H%M%SZ")
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


# --- PostgreSQL -----------------------------------------------------------------------

_PG_TOOLS_HINT = (
    "install the PostgreSQL client tools matching the server version (Debian/Ubuntu: "
    "apt-get install postgresql-client) so that pg_dump and pg_restore are on PATH"
)


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(f"{name} was not found on PATH: {_PG_TOOLS_HINT}")
    return tool


def _pg_conn_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq arguments and environment; the password goes through PGPASSWORD, never argv."""
    sa_url = sa.make_url(url)
    args = []
    if sa_url.host:
        args += ["--host", sa_url.host]
    if sa_url.port:
        args += ["--port", str(sa_url.port)]
    if sa_url.username:
        args += ["--username", sa_url.username]
    args += ["--dbname", sa_url.database or "postgres"]
    env = dict(os.environ)
    if sa_url.password:
        env["PGPASSWORD"] = str(sa_url.password)
    return args, env


def _pg_source_label(url: str) -> str:
    sa_url = sa.make_url(url)
    return f"postgresql://{sa_url.host or 'localhost'}:{sa_url.port or 5432}/{sa_url.database}"


def _run(cmd: list[str], env: Mapping[str, str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _pg_count_tables(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2"
        )
    ).fetchall()
    counts = {}
    for schema, table in rows:
        counts[f"{schema}.{table}"] = int(
            conn.execute(sa.text(f'SELECT count(*) FROM "{schema}"."{table}"')).scalar_one()
        )
    return counts


def backup_postgres(url: str, backup_dir: str | Path, keep: int, now: datetime | None = None) -> BackupInfo:
    """pg_dump (custom format) of an exported snapshot, verified by reading every row back."""
    started = time.monotonic()
    pg_dump = _pg_tool("pg_dump")
    _pg_tool("pg_restore")
    directory = Path(backup_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    created_at = now or _utcnow()
    final = directory / backup_name(created_at, "postgresql")
    tmp = directory / ("." + final.name + ".tmp")
    args, env = _pg_conn_args(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                counts = _pg_count_tables(conn)
                # pg_dump attaches to the exported snapshot, which lives as long as this transaction.
                _run(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", "--file", str(tmp), *args],
                    env,
                    "pg_dump",
                )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
        engine.dispose()
    return _seal_backup(
        final, created_at, "postgresql", counts, _pg_source_label(url), started, directory, keep
    )


def _seal_backup(
    final: Path,
    created_at: datetime,
    kind: str,
    counts: dict[str, int],
    source: str,
    started: float,
    directory: Path,
    keep: int,
) -> BackupInfo:
    """Write the manifest, verify the file (deleting it on failure), mark it verified, apply retention."""
    sha = _sha256(final)
    info = BackupInfo(final, created_at, kind, final.stat().st_size, counts, sha, verified=False)
    _write_manifest(info, source=source)
    result = verify_backup(final)
    if not result.ok:
        final.unlink(missing_ok=True)
        manifest_path(final).unlink(missing_ok=True)
        raise BackupVerificationError(result.summary())
    info = BackupInfo(
        final,
        created_at,
        kind,
        info.size_bytes,
        counts,
        sha,
        verified=True,
        verified_at=_utcnow(),
        duration_seconds=round(time.monotonic() - started, 3),
    )
    _write_manifest(info, source=source)
    apply_retention(directory, keep)
    return info


_COPY_RE = re.compile(r'^COPY (?P<schema>"?[^". ]+"?)\.(?P<table>"?[^" ]+"?) .*FROM stdin;$')


def _pg_archive_row_counts(path: Path) -> dict[str, int]:
    """Rows per table in a custom-format archive, by streaming its data section out of pg_restore."""
    pg_restore = _pg_tool("pg_restore")
    counts: dict[str, int] = {}
    proc = subprocess.Popen(
        [pg_restore, "--data-only", "--file", "-", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    current: str | None = None
    for line in proc.stdout:
        if current is None:
            match = _COPY_RE.match(line.rstrip("\n"))
            if match:
                current = f"{match['schema'].strip(chr(34))}.{match['table'].strip(chr(34))}"
                counts[current] = 0
        elif line == "\\.\n":
            current = None
        else:
            counts[current] += 1
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        raise BackupVerificationError(
            f"{path.name}: pg_restore cannot read the archive: {stderr.strip()[-500:]}"
        )
    return counts


def _verify_postgres_backup(path: Path, *, require_warehouse: bool = False) -> VerifyResult:
    problems, expected = _manifest_checks(path)
    if require_warehouse:
        problems += _manifest_missing(path)
    try:
        counts = _pg_archive_row_counts(path)
    except BackupVerificationError as exc:
        return VerifyResult(path, False, problems + [str(exc)])
    if expected is not None:
        for table in sorted(set(expected) | set(counts)):
            # pg_restore emits no COPY block for an empty table
            want, got = expected.get(table, 0), counts.get(table, 0)
            if want != got:
                problems.append(f"table {table}: {got} rows in the backup, {want} in the source snapshot")
    return VerifyResult(path, not problems, problems, counts)


def restore_postgres(backup: Path, url: str, *, force: bool = False) -> RestoreResult:
    result = _verify_postgres_backup(backup, require_warehouse=not force)
    if not result.ok:
        raise BackupVerificationError(result.summary() + " -- refusing to restore it")
    args, env = _pg_conn_args(url)
    _run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            *args,
            str(backup),
        ],
        env,
        "pg_restore",
    )
    return RestoreResult(backup, _pg_source_label(url), None, result.row_counts)


# --- dispatch -------------------------------------------------------------------------


def backup_warehouse(url: str, backup_dir: str | Path, keep: int, now: datetime | None = None) -> BackupInfo:
    """Take a verified backup of the warehouse at ``url`` (SQLite or PostgreSQL) and apply retention."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        return backup_sqlite(sqlite_path(url), backup_dir, keep, now)
    if backend == "postgresql":
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
    dialect = _dialect_of(backup)
    backend = sa.make_url(url).get_backend_name()
    if dialect != backend:
        raise BackupError(f"{backup.name} is a {dialect} backup but the warehouse is {backend}")
    if backend == "sqlite":
        return restore_sqlite(backup, sqlite_path(url), now, force=force)
    return restore_postgres(backup, url, force=force)


def newest_verified_backup(backup_dir: str | Path) -> BackupInfo | None:
    verified = [b for b in list_backups(backup_dir) if b.verified]
    return verified[-1] if verified else None


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


__all__ = [
    "BackupError",
    "BackupInfo",
    "BackupVerificationError",
    "MaintenanceResult",
    "RestoreResult",
    "VerifyResult",
    "apply_retention",
    "backup_warehouse",
    "list_backups",
    "maintain_warehouse",
    "newest_verified_backup",
    "quick_integrity",
    "restore_warehouse",
    "sqlite_integrity",
    "verify_backup",
]

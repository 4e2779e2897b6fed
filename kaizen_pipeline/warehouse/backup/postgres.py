"""PostgreSQL backup and restore with the client tools (pg_dump, pg_restore).

``pg_dump --format=custom`` on an exported snapshot (row counts from the same snapshot), verified by
reading every row back out of the archive with ``pg_restore``; restore with ``pg_restore --clean``.
Without the client tools on PATH the error says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from kaizen_pipeline.clock import utcnow
from kaizen_pipeline.warehouse.backup.catalogue import (
    BackupError,
    BackupInfo,
    BackupVerificationError,
    RestoreResult,
    VerifyResult,
    backup_name,
    manifest_checks,
    manifest_missing,
    seal_backup,
)

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
    created_at = now or utcnow()
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
    return seal_backup(
        final,
        created_at,
        "postgresql",
        counts,
        _pg_source_label(url),
        started,
        directory,
        keep,
        verify_postgres_backup,
    )


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


def verify_postgres_backup(path: Path, *, require_warehouse: bool = False) -> VerifyResult:
    problems, expected = manifest_checks(path)
    if require_warehouse:
        problems += manifest_missing(path)
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
    result = verify_postgres_backup(backup, require_warehouse=not force)
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

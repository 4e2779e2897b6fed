"""The backup catalogue: names, manifests, listing, retention, choosing a backup, identity checks.

A backup is a file ``warehouse-<UTC stamp>Z.sqlite.gz`` or ``.dump`` with a JSON manifest beside it
that records its row counts, SHA-256 and verification; the dialect modules write and verify them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaizen_pipeline.clock import utcnow

BACKUP_PREFIX = "warehouse-"
SQLITE_SUFFIX = ".sqlite.gz"
POSTGRES_SUFFIX = ".dump"
MANIFEST_SUFFIX = ".json"
CHUNK = 1 << 20
# progress(phase, done, total): what a long backup step reports (a CLI draws it; done/total in bytes, or None)
Progress = Callable[[str, int | None, int | None], None]


def no_progress(_phase: str, _done: int | None = None, _total: int | None = None) -> None:
    """The default Progress: report nothing."""


def copy_with_progress(fin: Any, fout: Any, total: int, phase: str, progress: Progress) -> None:
    """``shutil.copyfileobj`` in CHUNK steps, reporting ``total`` bytes read as it goes."""
    done = 0
    progress(phase, 0, total)
    while chunk := fin.read(CHUNK):
        fout.write(chunk)
        done += len(chunk)
        progress(phase, min(done, total), total)


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


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


def dialect_of(path: Path) -> str:
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
        dialect=manifest.get("dialect") or dialect_of(path),
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


def newest_verified_backup(backup_dir: str | Path) -> BackupInfo | None:
    verified = [b for b in list_backups(backup_dir) if b.verified]
    return verified[-1] if verified else None


def manifest_checks(path: Path) -> tuple[list[str], dict[str, int] | None]:
    """Problems found by comparing the file with its manifest; the expected row counts."""
    manifest = read_manifest(path)
    if manifest is None:
        return [], None
    problems = []
    if manifest.get("sha256") and manifest["sha256"] != sha256_file(path):
        problems.append("SHA-256 differs from the manifest (the file changed or is truncated)")
    counts = manifest.get("row_counts")
    return problems, ({str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else None)


def manifest_missing(path: Path) -> list[str]:
    """A restore needs the manifest ``kaizen backup`` writes: it is what says the file is this project's."""
    manifest = read_manifest(path)
    if manifest is None:
        return [f"no manifest {manifest_path(path).name} beside it: not a backup taken by `kaizen backup`"]
    missing = [key for key in ("format", "dialect", "row_counts", "sha256") if not manifest.get(key)]
    if missing:
        return [f"manifest {manifest_path(path).name} lacks {', '.join(missing)}"]
    return []


def seal_backup(
    final: Path,
    created_at: datetime,
    kind: str,
    counts: dict[str, int],
    source: str,
    started: float,
    directory: Path,
    keep: int,
    verify: Callable[[Path], VerifyResult],
    progress: Progress = no_progress,
) -> BackupInfo:
    """Write the manifest, verify the file with ``verify`` (deleting it on failure), mark it verified, apply retention."""
    progress("verifying the backup (restore test)", None, None)
    sha = sha256_file(final)
    info = BackupInfo(final, created_at, kind, final.stat().st_size, counts, sha, verified=False)
    _write_manifest(info, source=source)
    result = verify(final)
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
        verified_at=utcnow(),
        duration_seconds=round(time.monotonic() - started, 3),
    )
    _write_manifest(info, source=source)
    apply_retention(directory, keep)
    return info

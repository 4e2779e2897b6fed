"""Subcommands of the `kaizen` CLI for this domain: backup, restore, maintain."""

from __future__ import annotations

import argparse
import sys

from kaizen_pipeline.settings import get_settings


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _backup(args: argparse.Namespace) -> int:
    from kaizen_pipeline.ops.logs import configure_logging
    from kaizen_pipeline.warehouse.backup.catalogue import BackupError, list_backups
    from kaizen_pipeline.warehouse.backup.dispatch import backup_warehouse, verify_backup

    settings = get_settings()
    configure_logging(settings)
    db = settings.database
    if args.verify:
        result = verify_backup(args.verify)
        print(result.summary())
        return 0 if result.ok else 1
    if args.list:
        backups = list_backups(db.backup_dir)
        if not backups:
            print(f"no backups in {db.backup_dir}")
        for b in backups:
            state = "verified" if b.verified else "UNVERIFIED"
            print(
                f"{b.path}  {b.created_at:%Y-%m-%d %H:%M:%S} UTC  {_fmt_size(b.size_bytes):>9}  {b.source_rows} rows  {state}"
            )
        return 0
    try:
        info = backup_warehouse(db.sqlalchemy_url(), db.backup_dir, db.backup_keep)
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"{info.path}: {info.source_rows} rows in {info.tables} tables, {_fmt_size(info.size_bytes)}, verified"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from kaizen_pipeline.ops.logs import configure_logging
    from kaizen_pipeline.warehouse.backup.catalogue import BackupError
    from kaizen_pipeline.warehouse.backup.dispatch import restore_warehouse, verify_backup

    settings = get_settings()
    configure_logging(settings)
    url = settings.database.sqlalchemy_url()
    print(f"verifying {args.backup} ...")
    result = verify_backup(args.backup, require_warehouse=not args.force)
    print(result.summary())
    if not result.ok:
        print(
            "refusing to restore a backup that fails verification"
            + ("" if args.force else " (--force skips the manifest and schema checks, not integrity)"),
            file=sys.stderr,
        )
        return 1
    target = (
        settings.database.path if not settings.database.url else "the PostgreSQL warehouse (database.url)"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            print("not restoring without confirmation: pass --yes", file=sys.stderr)
            return 1
        answer = input(
            f"Replace {target} with this backup? Stop the Dagster daemon and webserver first. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    try:
        restored = restore_warehouse(args.backup, url, force=args.force)
    except BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {restored.backup.name} into {restored.target}: {sum(restored.row_counts.values())} rows")
    if restored.previous_saved_to:
        print(f"the previous database was kept as {restored.previous_saved_to}")
    return 0


def _maintain(args: argparse.Namespace) -> int:
    from kaizen_pipeline.warehouse.backup.maintenance import maintain_warehouse

    settings = get_settings()
    result = maintain_warehouse(settings.database.sqlalchemy_url())
    print(
        f"{'; '.join(result.operations)}: {_fmt_size(result.size_before_bytes)} -> "
        f"{_fmt_size(result.size_after_bytes)} in {result.duration_seconds:.1f} s"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this domain's subcommands (each sets ``func`` taking the parsed args, returning an exit code)."""
    backup = subparsers.add_parser(
        "backup",
        help="take a verified warehouse backup now (or list / verify backups)",
        description="Take a consistent, compressed, restore-tested backup into database.backup_dir.",
    )
    group = backup.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list the backups in database.backup_dir")
    group.add_argument("--verify", metavar="PATH", help="restore-test one backup file without restoring it")
    backup.set_defaults(func=_backup)

    restore = subparsers.add_parser(
        "restore",
        help="verify a backup and restore it into the warehouse",
        description=(
            "Verify the backup (decompress, integrity check, row counts from its manifest) and replace the "
            "warehouse with it; a backup that fails verification is refused. The current SQLite file is kept "
            "beside it as <name>.pre-restore-<time>. Stop the Dagster daemon and webserver first."
        ),
    )
    restore.add_argument(
        "--backup", required=True, metavar="PATH", help="the backup file (*.sqlite.gz or *.dump)"
    )
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even without this project's manifest or warehouse schema (integrity is still checked)",
    )
    restore.set_defaults(func=_restore)

    maintain = subparsers.add_parser("maintain", help="VACUUM and ANALYZE the warehouse now")
    maintain.set_defaults(func=_maintain)

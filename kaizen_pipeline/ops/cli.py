"""Subcommands of the `kaizen` CLI for this domain: start, stop, status, backup, restore, maintain."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from kaizen_pipeline.ops.progress import terminal_progress
from kaizen_pipeline.settings import Settings, get_settings

DEFAULT_PORT = 3000
START_WAIT_SECONDS = 180.0


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
        with terminal_progress("backup") as progress:
            info = backup_warehouse(db.sqlalchemy_url(), db.backup_dir, db.backup_keep, progress=progress)
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
        with terminal_progress("restore") as progress:
            progress("verifying and restoring", None, None)
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
    with terminal_progress("maintenance") as progress:
        progress("VACUUM and ANALYZE", None, None)
        result = maintain_warehouse(settings.database.sqlalchemy_url())
    print(
        f"{'; '.join(result.operations)}: {_fmt_size(result.size_before_bytes)} -> "
        f"{_fmt_size(result.size_after_bytes)} in {result.duration_seconds:.1f} s"
    )
    return 0


def control_dir(settings: Settings) -> Path:
    """Where `kaizen start` keeps its PID and state files: ``run/`` beside logging.log_dir (data/run)."""
    return Path(settings.logging.log_dir).expanduser().resolve().parent / "run"


def _dagster_home() -> str | None:
    """DAGSTER_HOME, or this directory when it holds the project's dagster.yaml (as the README runs it)."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return home
    if Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
        return os.environ["DAGSTER_HOME"]
    return None


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _webserver_answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/server_info", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _start(args: argparse.Namespace) -> int:
    import subprocess

    from kaizen_pipeline.ops import supervisor

    console = _console()
    settings = get_settings()
    control, logs = control_dir(settings), Path(settings.logging.log_dir).expanduser().resolve()
    url = f"http://{args.host}:{args.port}"
    running = supervisor.supervisor_pid(control)
    if running:
        console.print(f"already running (supervisor pid {running}): {url}; `kaizen status` shows the rest")
        return 0
    home = _dagster_home()
    workspace = Path(args.workspace).resolve()
    if home is None:
        print(
            "error: DAGSTER_HOME is not set and ./dagster.yaml is missing (run from the project directory)",
            file=sys.stderr,
        )
        return 1
    if not workspace.is_file():
        print(f"error: --workspace {args.workspace}: no such file", file=sys.stderr)
        return 1
    bin_dir = Path(sys.executable).parent
    logs.mkdir(parents=True, exist_ok=True)
    with console.status("migrating the Dagster instance ..."), (logs / "supervisor.log").open("ab") as log:
        migrated = subprocess.run(
            [str(bin_dir / "dagster"), "instance", "migrate"], stdout=log, stderr=log, check=False
        )
    if migrated.returncode != 0:
        print(f"error: `dagster instance migrate` failed; see {logs / 'supervisor.log'}", file=sys.stderr)
        return 1
    pid = supervisor.spawn(control, logs, bin_dir, workspace, args.host, args.port)
    deadline = time.monotonic() + args.wait
    with console.status(f"starting the webserver and the daemon (supervisor pid {pid}) ..."):
        while not _webserver_answers(url):
            if not supervisor.pid_alive(pid):
                print(f"error: the supervisor stopped; see {logs / 'supervisor.log'}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(
                    f"error: no answer from {url} after {args.wait:g} s; see {logs / 'webserver.log'}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.5)
    console.print(f"[green]started[/green]: the UI at {url}, the daemon runs schedules and sensors")
    console.print(f"  logs: {logs}/webserver.log, daemon.log; crashed processes are restarted")
    console.print("  `kaizen status` shows everything at a glance, `kaizen stop` stops both")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from kaizen_pipeline.ops import supervisor

    console = _console()
    control = control_dir(get_settings())
    pid = supervisor.supervisor_pid(control)
    if pid is None:
        console.print("not running")
        return 0
    with console.status(f"stopping the webserver and the daemon (supervisor pid {pid}) ..."):
        stopped = supervisor.stop(control)
    if not stopped:
        print(f"error: supervisor pid {pid} did not stop in time", file=sys.stderr)
        return 1
    console.print("[green]stopped[/green]")
    return 0


def _status(args: argparse.Namespace) -> int:
    from kaizen_pipeline.clock import pipeline_now
    from kaizen_pipeline.ops import supervisor
    from kaizen_pipeline.ops.status import render, warehouse_facts
    from kaizen_pipeline.warehouse import Warehouse

    console = _console()
    settings = get_settings()
    instigators = job_runs = None
    instance_error = None
    with console.status("reading the Dagster instance and the warehouse ..."):
        if _dagster_home() is None:
            instance_error = "DAGSTER_HOME is not set and ./dagster.yaml is missing"
        else:
            instigators, job_runs, instance_error = _instance_facts()
        wh = Warehouse(settings.database.sqlalchemy_url())  # a new home shows empty tables
        try:
            facts = warehouse_facts(wh, pipeline_now(settings))
        finally:
            wh.dispose()
    render(
        console,
        processes=supervisor.read_state(control_dir(settings)),
        url=f"http://{args.host}:{args.port}",
        instigators=instigators,
        job_runs=job_runs,
        instance_error=instance_error,
        facts=facts,
        now=pipeline_now(settings),
        stale_after=timedelta(minutes=settings.quality.stale_after_minutes),
        channels=_alert_channels(settings),
    )
    return 0


def _alert_channels(settings: Settings) -> list[str]:
    """Where a warning or critical alert goes now (email only with recipients)."""
    a = settings.alerts
    if not a.enabled:
        return []
    found = {c for p in ("critical", "warning") for c in a.channels_for(p)}
    if not a.recipients and not a.escalation_recipients:
        found.discard("email")
    return [c for c in ("email", "telegram", "slack", "webhook") if c in found]


def _instance_facts() -> tuple[Any, Any, str | None]:
    import warnings

    import dagster as dg

    from kaizen_pipeline.instance import instigator_facts, last_job_runs

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from kaizen_pipeline.definitions import defs

    repository = defs.get_repository_def()
    jobs = sorted(j.name for j in repository.get_all_jobs() if not j.name.startswith("__"))
    try:
        with dg.DagsterInstance.get() as instance:
            return instigator_facts(instance, repository), last_job_runs(instance, jobs), None
    except Exception as exc:  # noqa: BLE001 - status shows what it can read
        return None, None, f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this domain's subcommands (each sets ``func`` taking the parsed args, returning an exit code)."""
    for name, helptext, func in (
        ("start", "run the Dagster UI and daemon in the background, restarting them if they crash", _start),
        ("stop", "stop what `kaizen start` started (gracefully)", _stop),
        (
            "status",
            "everything at a glance: processes, schedules, last runs, alerts, freshness, rollouts",
            _status,
        ),
    ):
        command = subparsers.add_parser(
            name, help=helptext, description=helptext[0].upper() + helptext[1:] + "."
        )
        command.add_argument("--host", default="127.0.0.1", help="the UI's address (start; status shows it)")
        command.add_argument("--port", type=int, default=DEFAULT_PORT, help="the UI's port")
        if name == "start":
            command.add_argument(
                "--workspace", default="workspace.yaml", help="the Dagster workspace file to load"
            )
            command.add_argument(
                "--wait", type=float, default=START_WAIT_SECONDS, help="seconds to wait for the UI to answer"
            )
        command.set_defaults(func=func)
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

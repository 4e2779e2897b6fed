"""Health probes: each turns one measurement into ok / warn / error with a detail that says what to do.

Pure functions over plain values, and ``gather_health``, which takes the measurements (warehouse,
backups, sources, disk) and what the Dagster instance reported; the health_report asset is wiring.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import sqlalchemy as sa

from kaizen_pipeline.clock import pipeline_now, utcnow
from kaizen_pipeline.ops.redact import redact, secret_values
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse, to_naive_utc
from kaizen_pipeline.warehouse.backup.catalogue import newest_verified_backup
from kaizen_pipeline.warehouse.backup.maintenance import quick_integrity
from kaizen_pipeline.warehouse.backup.sqlite import sqlite_path
from kaizen_pipeline.warehouse.schema import alert_outbox

Status = Literal["ok", "warn", "error", "skipped"]
_GB = 1024**3
_MB = 1024**2


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    status: Status
    detail: str
    value: float | None = None
    threshold: float | None = None
    unit: str | None = None

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "skipped")

    def row(self, checked_at: datetime) -> dict[str, Any]:
        return {"checked_at": checked_at, **asdict(self)}


def worst(results: Iterable[ProbeResult]) -> Status:
    order = {"skipped": 0, "ok": 0, "warn": 1, "error": 2}
    statuses = [r.status for r in results]
    return max(statuses, key=lambda s: order[s]) if statuses else "ok"


def probe_warehouse_size(size_bytes: int, warn_gb: float, max_gb: float) -> ProbeResult:
    size_gb = size_bytes / _GB
    if size_gb > max_gb:
        status: Status = "error"
        detail = f"warehouse is {size_gb:.2f} GB, above database.max_size_gb={max_gb}: prune old data or move to PostgreSQL"
    elif size_gb > warn_gb:
        status = "warn"
        detail = f"warehouse is {size_gb:.2f} GB, above database.warn_size_gb={warn_gb} (limit {max_gb} GB)"
    else:
        status = "ok"
        detail = f"warehouse is {size_gb:.3f} GB (warn above {warn_gb} GB)"
    return ProbeResult("warehouse_size", status, detail, round(size_gb, 4), warn_gb, "GB")


def probe_price_freshness(
    newest: datetime | None, now: datetime, stale_minutes: int, what: str
) -> ProbeResult:
    """Age of the newest price data (``what`` says which timestamp is measured)."""
    if newest is None:
        return ProbeResult(
            "price_freshness",
            "warn",
            f"no price data yet ({what}): materialize the ingest assets",
            None,
            stale_minutes,
            "min",
        )
    age = max(0.0, (now - newest).total_seconds() / 60)
    if age > stale_minutes:
        detail = (
            f"newest price data ({what}) is {age:.0f} min old, older than quality.stale_after_minutes={stale_minutes}: "
            "check that the ingest schedule is running and its last runs succeeded"
        )
        return ProbeResult("price_freshness", "warn", detail, round(age, 1), stale_minutes, "min")
    return ProbeResult(
        "price_freshness",
        "ok",
        f"newest price data ({what}) is {age:.0f} min old",
        round(age, 1),
        stale_minutes,
        "min",
    )


def _existing_anchor(path: Path) -> Path:
    path = path.expanduser().resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_free_disk(paths: Sequence[str | Path], min_free_mb: int) -> ProbeResult:
    """Free space on the filesystems holding the warehouse, the backups and the logs (the lowest counts)."""
    lowest: tuple[float, Path] | None = None
    for raw in paths:
        anchor = _existing_anchor(Path(raw))
        free_mb = shutil.disk_usage(anchor).free / _MB
        if lowest is None or free_mb < lowest[0]:
            lowest = (free_mb, anchor)
    if lowest is None:
        return ProbeResult(
            "free_disk", "skipped", "no local paths to check (PostgreSQL warehouse, no backup dir)"
        )
    free_mb, where = lowest
    if free_mb < min_free_mb:
        detail = (
            f"only {free_mb:.0f} MB free on the filesystem of {where} (minimum ops.min_free_disk_mb={min_free_mb}): "
            "free space before writes and backups fail"
        )
        return ProbeResult("free_disk", "error", detail, round(free_mb, 1), min_free_mb, "MB")
    return ProbeResult(
        "free_disk", "ok", f"{free_mb:.0f} MB free at {where}", round(free_mb, 1), min_free_mb, "MB"
    )


@dataclass(frozen=True)
class DaemonState:
    daemon_type: str
    healthy: bool
    seconds_since_heartbeat: float | None


def probe_daemon(states: Sequence[DaemonState], *, ephemeral: bool) -> ProbeResult:
    if ephemeral:
        return ProbeResult("dagster_daemon", "skipped", "ephemeral instance: no daemon is expected")
    if not states:
        return ProbeResult("dagster_daemon", "skipped", "this instance requires no daemons")
    unhealthy = [s for s in states if not s.healthy]
    newest = [s.seconds_since_heartbeat for s in states if s.seconds_since_heartbeat is not None]
    age = min(newest) if newest else None
    if unhealthy:
        names = ", ".join(sorted(s.daemon_type for s in unhealthy))
        detail = (
            f"no recent heartbeat from {names}: schedules and sensors (alerts included) are not evaluated; "
            "start it with `dagster-daemon run` (or `dagster dev`)"
        )
        return ProbeResult(
            "dagster_daemon", "warn", detail, None if age is None else round(age, 1), None, "s"
        )
    return ProbeResult(
        "dagster_daemon",
        "ok",
        f"{len(states)} daemons healthy",
        None if age is None else round(age, 1),
        None,
        "s",
    )


@dataclass(frozen=True)
class ScheduleState:
    name: str
    default_running: bool
    stored_status: str | None  # RUNNING / STOPPED when toggled in the UI, None when never toggled

    @property
    def running(self) -> bool:
        if self.stored_status in (None, "DECLARED_IN_CODE"):
            return self.default_running
        return self.stored_status == "RUNNING"


def probe_schedules(schedules: Sequence[ScheduleState]) -> ProbeResult:
    """A schedule declared running by default but stopped by hand is flagged: its data goes stale."""
    if not schedules:
        return ProbeResult("schedules", "skipped", "no schedules in this code location")
    running = [s.name for s in schedules if s.running]
    stopped_defaults = sorted(s.name for s in schedules if s.default_running and not s.running)
    if stopped_defaults:
        detail = f"stopped although they run by default: {', '.join(stopped_defaults)}; turn them on in the UI (Automation)"
        return ProbeResult("schedules", "warn", detail, len(running), len(schedules), "running")
    off = sorted(s.name for s in schedules if not s.running)
    detail = f"{len(running)}/{len(schedules)} running" + (
        f"; off by default: {', '.join(off)}" if off else ""
    )
    return ProbeResult("schedules", "ok", detail, len(running), len(schedules), "running")


def restore_instructions(newest_backup: str | None) -> str:
    if newest_backup:
        return (
            "stop the Dagster daemon and webserver, then restore the newest verified backup with "
            f"`kaizen restore --backup {newest_backup} --yes` (the damaged file is kept beside it)"
        )
    return "no verified backup exists: stop writers, copy the damaged file aside and re-run the ingest assets"


def probe_integrity(problems: Sequence[str], newest_backup: str | None) -> ProbeResult:
    if problems:
        detail = f"warehouse is corrupt ({'; '.join(problems[:3])}). To recover: {restore_instructions(newest_backup)}"
        return ProbeResult("warehouse_integrity", "error", detail, len(problems), 0, "problems")
    return ProbeResult("warehouse_integrity", "ok", "quick_check ok", 0, 0, "problems")


def probe_backup_age(newest_created: datetime | None, now: datetime, interval_hours: int) -> ProbeResult:
    """The newest verified backup should be younger than two backup intervals."""
    limit_h = 2 * interval_hours
    if newest_created is None:
        return ProbeResult(
            "backup_age", "warn", "no verified backup yet: materialize database_backup", None, limit_h, "h"
        )
    age_h = (now - newest_created).total_seconds() / 3600
    if age_h > limit_h:
        detail = f"newest verified backup is {age_h:.1f} h old (backup every {interval_hours} h): is the backup schedule on?"
        return ProbeResult("backup_age", "warn", detail, round(age_h, 2), limit_h, "h")
    return ProbeResult(
        "backup_age", "ok", f"newest verified backup is {age_h:.1f} h old", round(age_h, 2), limit_h, "h"
    )


def probe_alert_outbox(pending: int, oldest_pending: datetime | None, now: datetime) -> ProbeResult:
    """Emails that could not be delivered yet (SMTP down): they are retried, but nobody has heard."""
    if not pending:
        return ProbeResult("alert_delivery", "ok", "no alert emails waiting", 0, 0, "emails")
    age = (now - oldest_pending).total_seconds() / 60 if oldest_pending else 0.0
    detail = f"{pending} alert emails waiting for delivery, oldest {age:.0f} min: check the SMTP settings (alerts.*)"
    return ProbeResult("alert_delivery", "warn", detail, pending, 0, "emails")


def summarize(results: Iterable[ProbeResult]) -> Mapping[str, int]:
    counts = {"ok": 0, "warn": 0, "error": 0, "skipped": 0}
    for r in results:
        counts[r.status] += 1
    return counts


def source_probe_requests(
    settings: Settings, token_id: str | None = None
) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """One cheap GET per source as (transport endpoint, url, params).

    X is asked without credentials: a 401 proves reachability and costs no quota.
    """
    from kaizen_pipeline.ingest.clients import (
        CLOB_PRICES_HISTORY,
        DATA_TRADES,
        GAMMA_MARKETS,
        X_SEARCH_RECENT,
    )

    pm, x = settings.polymarket, settings.twitter
    return {
        "gamma": (
            GAMMA_MARKETS,
            f"{pm.gamma_url.rstrip('/')}/markets/keyset",
            {"limit": 1, "closed": "false"},
        ),
        "clob": (
            CLOB_PRICES_HISTORY,
            f"{pm.clob_url.rstrip('/')}/prices-history",
            {"market": token_id or "0", "interval": "1h", "fidelity": 60},
        ),
        "data": (DATA_TRADES, f"{pm.data_url.rstrip('/')}/trades", {"limit": 1}),
        "x": (
            X_SEARCH_RECENT,
            f"{x.api_url.rstrip('/')}/2/tweets/search/recent",
            {"query": "polymarket", "max_results": 10},
        ),
    }


def probe_sources(
    settings: Settings,
    *,
    timeout_seconds: float,
    token_id: str | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    secrets: Sequence[str] = (),
) -> list[ProbeResult]:
    """Reachability of every source in the configured mode (demo: the simulator; live: the APIs).

    The probe goes through the ingest session (the shared transport, its rate limiters and
    endpoints) with a single attempt: it measures, it does not insist. Any HTTP answer below 500
    means reachable (a 4xx to a credential-less probe is still an answer); 5xx, timeouts and
    connection errors are findings.
    """
    single = settings.model_copy(
        update={
            "transport": settings.transport.model_copy(
                update={
                    "max_retries": 0,
                    "timeout_seconds": timeout_seconds,
                    "request_deadline_seconds": timeout_seconds,
                }
            )
        }
    )
    return asyncio.run(_probe_all(single, token_id, http_transport, secrets))


async def _probe_all(
    settings: Settings,
    token_id: str | None,
    http_transport: httpx.AsyncBaseTransport | None,
    secrets: Sequence[str],
) -> list[ProbeResult]:
    from kaizen_pipeline.ingest.clients import build_clients
    from kaizen_pipeline.ingest.transport import ApiError

    results = []
    async with build_clients(settings, http_transport) as session:
        for source, (endpoint, url, params) in source_probe_requests(settings, token_id).items():
            started = time.monotonic()
            try:
                await session.transport.get_json(endpoint, url, params, wait_on_rate_limit=False)
                answer, problem = 200, None
            except ApiError as exc:
                reachable = exc.status is not None and exc.status < 500
                answer, problem = (exc.status, None) if reachable else (None, f"ApiError: {exc}")
            except Exception as exc:  # any failure of the probe is the finding itself
                answer, problem = None, f"{type(exc).__name__}: {exc}"
            elapsed = (time.monotonic() - started) * 1000
            results.append(_api_result(source, elapsed, answer, problem, secrets))
    return results


def _api_result(
    source: str, elapsed_ms: float, answer: int | None, problem: str | None, secrets: Sequence[str]
) -> ProbeResult:
    if problem is not None:
        reason = redact(problem, secrets)[:500]
        return ProbeResult(
            f"api_{source}", "warn", f"{source} unreachable: {reason}", round(elapsed_ms, 1), None, "ms"
        )
    return ProbeResult(
        f"api_{source}",
        "ok",
        f"{source} answered (HTTP {answer}) in {elapsed_ms:.0f} ms",
        round(elapsed_ms, 1),
        None,
        "ms",
    )


@dataclass(frozen=True)
class InstanceFacts:
    """What the Dagster instance reported: daemon heartbeats and schedule states (None: unknown, and why)."""

    daemons: Sequence[DaemonState] | None
    daemon_error: str | None
    ephemeral: bool
    schedules: Sequence[ScheduleState] | None


def sqlite_files_size(url: str) -> int:
    """Bytes of a SQLite warehouse with its WAL and shared-memory files."""
    path = sqlite_path(url)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def gather_health(
    settings: Settings,
    warehouse_url: str,
    open_warehouse: Callable[[], Warehouse],
    instance: InstanceFacts,
) -> tuple[list[ProbeResult], Warehouse | None]:
    """Run every probe; the warehouse is only opened when it passed the integrity probe."""
    db = settings.database
    now = utcnow()
    secrets = secret_values(settings)
    is_sqlite = sa.make_url(warehouse_url).get_backend_name() == "sqlite"
    newest_backup = newest_verified_backup(db.backup_dir)
    problems = quick_integrity(warehouse_url)
    results = [probe_integrity(problems, str(newest_backup.path) if newest_backup else None)]
    wh = None if problems else open_warehouse()
    if wh is not None:
        size = wh.size_bytes()
    elif is_sqlite:
        size = sqlite_files_size(warehouse_url)
    else:
        size = 0
    results.append(probe_warehouse_size(size, db.warn_size_gb, db.max_size_gb))
    token_id = None
    if wh is not None:
        newest = to_naive_utc(wh.scalar("SELECT max(ts) FROM price_points"))
        results.append(
            probe_price_freshness(
                newest, pipeline_now(settings), settings.quality.stale_after_minutes, "price_points.ts"
            )
        )
        token_id = wh.scalar("SELECT yes_token_id FROM market_snapshots ORDER BY snapshot_ts DESC LIMIT 1")
    else:
        results.append(ProbeResult("price_freshness", "skipped", "warehouse unreadable"))
    results += probe_sources(
        settings, timeout_seconds=settings.ops.api_probe_timeout_seconds, token_id=token_id, secrets=secrets
    )
    paths = [db.backup_dir, settings.logging.log_dir]
    if is_sqlite:
        paths.insert(0, str(sqlite_path(warehouse_url).parent))
    results.append(probe_free_disk(paths, settings.ops.min_free_disk_mb))
    if instance.daemons is None:
        results.append(ProbeResult("dagster_daemon", "warn", instance.daemon_error or "daemon state unknown"))
    else:
        results.append(probe_daemon(instance.daemons, ephemeral=instance.ephemeral))
    if instance.schedules is None:
        results.append(ProbeResult("schedules", "skipped", "run outside a code location: schedules unknown"))
    else:
        results.append(probe_schedules(instance.schedules))
    results.append(
        probe_backup_age(newest_backup.created_at if newest_backup else None, now, db.backup_interval_hours)
    )
    if wh is not None:
        pending = wh.count(alert_outbox, alert_outbox.c.status == "pending")
        oldest = to_naive_utc(
            wh.scalar(
                sa.select(sa.func.min(alert_outbox.c.created_at)).where(alert_outbox.c.status == "pending")
            )
        )
        results.append(probe_alert_outbox(pending, oldest, now))
    return results, wh

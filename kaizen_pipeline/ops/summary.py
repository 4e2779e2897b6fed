"""The daily operations summary: runs, failures, alerts, emails and data volume of one UTC day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd


@dataclass(frozen=True)
class RunFact:
    """One Dagster run as the summary needs it."""

    status: str  # DagsterRunStatus value: SUCCESS, FAILURE, CANCELED, STARTED, ...
    created_at: datetime  # naive UTC


def _between(series: pd.Series, start: datetime, end: datetime) -> pd.Series:
    values = pd.to_datetime(series)
    return (values >= start) & (values < end)


def day_start(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def daily_summary_row(
    day: datetime,
    *,
    now: datetime,
    runs: Sequence[RunFact],
    alerts: pd.DataFrame,
    outbox: pd.DataFrame,
    ingestion: pd.DataFrame,
    warehouse_rows: int,
    warehouse_size_bytes: int,
) -> dict[str, object]:
    """One daily_ops_summary row for the UTC day starting at ``day`` (a day still running counts up to ``now``).

    ``alerts``: opened_at, resolved_at; ``outbox``: created_at, status, sent_at;
    ``ingestion``: started_at, new_rows (ingestion_runs).
    """
    start = day_start(day)
    end = min(start + timedelta(days=1), now)
    in_day = [r for r in runs if start <= r.created_at < end]
    opened = int(_between(alerts["opened_at"], start, end).sum()) if not alerts.empty else 0
    resolved = int(_between(alerts["resolved_at"].dropna(), start, end).sum()) if not alerts.empty else 0
    if alerts.empty:
        open_at_end = 0
    else:
        opened_at = pd.to_datetime(alerts["opened_at"])
        resolved_at = pd.to_datetime(alerts["resolved_at"])
        open_at_end = int(((opened_at < end) & (resolved_at.isna() | (resolved_at >= end))).sum())
    if outbox.empty:
        sent = pending = 0
    else:
        sent = int(_between(outbox["sent_at"].dropna(), start, end).sum())
        pending = int((_between(outbox["created_at"], start, end) & (outbox["status"] == "pending")).sum())
    if ingestion.empty:
        ingested = 0
    else:
        mask = _between(ingestion["started_at"], start, end)
        ingested = int(pd.to_numeric(ingestion.loc[mask, "new_rows"]).fillna(0).sum())
    return {
        "day": start,
        "runs_started": len(in_day),
        "runs_succeeded": sum(1 for r in in_day if r.status == "SUCCESS"),
        "runs_failed": sum(1 for r in in_day if r.status == "FAILURE"),
        "alerts_opened": opened,
        "alerts_resolved": resolved,
        "alerts_open_at_end": open_at_end,
        "emails_sent": sent,
        "emails_pending": pending,
        "rows_ingested": ingested,
        "warehouse_rows": int(warehouse_rows),
        "warehouse_size_bytes": int(warehouse_size_bytes),
        "updated_at": now,
    }

"""Warehouse access of the kaizen domain (pure: no Dagster).

Reads of other domains' tables are defensive: a table that does not exist yet returns None,
so the kaizen loop runs before and after research and backtest land. Writes of user input
(improvements, feedback) live here so the Dagster jobs and the CLI share one code path.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.kaizen.collect import ALL
from kaizen_pipeline.kaizen.feedback import feedback_row
from kaizen_pipeline.kaizen.lifecycle import IMPROVEMENT_STATUSES
from kaizen_pipeline.settings import KaizenSettings
from kaizen_pipeline.warehouse import Warehouse, to_naive_utc, utcnow
from kaizen_pipeline.warehouse.schema import metadata


def table_exists(wh: Warehouse, name: str) -> bool:
    return sa.inspect(wh.engine).has_table(name)


def table_of(wh: Warehouse, name: str) -> sa.Table | None:
    """The table (from the schema, else reflected), or None when it does not exist in the database yet."""
    if not table_exists(wh, name):
        return None
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(name, sa.MetaData(), autoload_with=wh.engine)


def read_window(
    wh: Warehouse,
    name: str,
    column: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    columns: list[str] | None = None,
    end_inclusive: bool = False,
) -> pd.DataFrame | None:
    """Rows of ``name`` with ``start <= column < end`` (None when the table does not exist).

    Core expressions bind datetimes through the column type, so bounds compare correctly on
    SQLite (where datetimes are strings) as well as PostgreSQL.
    """
    table = table_of(wh, name)
    if table is None:
        return None
    stmt = sa.select(*(table.c[c] for c in columns)) if columns else sa.select(table)
    if column is not None and start is not None:
        stmt = stmt.where(table.c[column] >= start)
    if column is not None and end is not None:
        stmt = stmt.where(table.c[column] <= end if end_inclusive else table.c[column] < end)
    return wh.read_frame(stmt)


def newest_slice(
    wh: Warehouse, name: str, column: str = "as_of", before: datetime | None = None
) -> pd.DataFrame:
    """The rows of ``name`` at the newest ``column`` value (strictly before ``before`` when given)."""
    table = wh.table(name)
    top_stmt = sa.select(sa.func.max(table.c[column]))
    if before is not None:
        top_stmt = top_stmt.where(table.c[column] < before)
    with wh.engine.connect() as conn:
        top = conn.execute(top_stmt).scalar()
    if top is None:
        return pd.DataFrame()
    return wh.read_frame(sa.select(table).where(table.c[column] == top))


def backtest_book(wh: Warehouse, as_of: datetime) -> pd.DataFrame:
    """The whole-book row (market_id = direction = '*') of the newest backtest at or before ``as_of``."""
    table = wh.table("backtest_results")
    stmt = (
        sa.select(table)
        .where(table.c.market_id == "*", table.c.direction == "*", table.c.as_of <= as_of)
        .order_by(table.c.as_of.desc())
        .limit(1)
    )
    return wh.read_frame(stmt)


def row_count(wh: Warehouse, table: str) -> int | None:
    table_obj = table_of(wh, table)
    return wh.count(table_obj) if table_obj is not None else None


def metric_history(
    wh: Warehouse, since: datetime | None = None, scope: str = ALL, until: datetime | None = None
) -> pd.DataFrame:
    """kaizen_metrics rows of one scope (metric, ts, value, sample_size), oldest first; ``until`` inclusive."""
    t = wh.table("kaizen_metrics")
    stmt = sa.select(t.c.metric, t.c.ts, t.c.value, t.c.sample_size).where(t.c.scope == scope)
    if since is not None:
        stmt = stmt.where(t.c.ts >= since)
    if until is not None:
        stmt = stmt.where(t.c.ts <= until)
    frame = wh.read_frame(stmt.order_by(t.c.metric, t.c.ts), parse_dates=["ts"])
    return frame


def latest_values(history: pd.DataFrame) -> pd.DataFrame:
    """Newest (metric, ts, value) per metric."""
    if history.empty:
        return history
    return history.sort_values("ts").groupby("metric", as_index=False).tail(1).reset_index(drop=True)


def newest_metric_day(wh: Warehouse) -> datetime | None:
    t = wh.table("kaizen_metrics")
    with wh.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(t.c.ts)).where(t.c.scope == ALL)).scalar()
    return to_naive_utc(value) if value is not None else None


# --- improvements -----------------------------------------------------------------------------


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:64] or "improvement"


def log_improvement(
    wh: Warehouse,
    settings: KaizenSettings,
    *,
    title: str,
    target_metric: str,
    predicted_effect: float,
    cost_hours: float = 0.0,
    cost_money: float = 0.0,
    status: str = "proposed",
    shipped_at: datetime | str | None = None,
    improvement_id: str | None = None,
    catalogue_key: str | None = None,
    notes: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate and upsert one improvement (same id: updated in place, created_at kept). Returns the row."""
    title = (title or "").strip()
    if not title:
        raise ValueError("title: must not be empty")
    names = {m.name for m in settings.metrics}
    if target_metric not in names:
        raise ValueError(
            f"target_metric: {target_metric!r} is not a registered metric ({', '.join(sorted(names))})"
        )
    if status not in IMPROVEMENT_STATUSES:
        raise ValueError(f"status: must be one of {', '.join(IMPROVEMENT_STATUSES)}, got {status!r}")
    if cost_hours < 0 or cost_money < 0:
        raise ValueError("cost_hours / cost_money: must be >= 0")
    if catalogue_key is not None and catalogue_key not in {c.key for c in settings.catalogue}:
        raise ValueError(f"catalogue_key: {catalogue_key!r} is not in kaizen.catalogue")
    now = now or utcnow()
    shipped = to_naive_utc(shipped_at) if shipped_at not in (None, "") else None
    if status == "shipped" and shipped is None:
        shipped = now
    if shipped is not None and status in ("proposed", "in_progress"):
        raise ValueError(f"shipped_at: given, but status is {status!r}; use status 'shipped'")
    key = slugify(improvement_id or title)
    existing = wh.scalar("SELECT created_at FROM improvements WHERE improvement_id = :id", {"id": key})
    row = {
        "improvement_id": key,
        "title": title,
        "target_metric": target_metric,
        "predicted_effect": float(predicted_effect),
        "cost_hours": float(cost_hours),
        "cost_money": float(cost_money),
        "status": status,
        "shipped_at": shipped,
        "catalogue_key": catalogue_key,
        "notes": notes,
        "created_at": to_naive_utc(existing) if existing is not None else now,
        "updated_at": now,
    }
    wh.upsert("improvements", [row])
    return row


def set_improvement_status(
    wh: Warehouse,
    improvement_id: str,
    status: str,
    shipped_at: datetime | str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move an improvement to ``status`` (shipping stamps ``shipped_at``, default now)."""
    if status not in IMPROVEMENT_STATUSES:
        raise ValueError(f"status: must be one of {', '.join(IMPROVEMENT_STATUSES)}, got {status!r}")
    current = wh.read_frame("SELECT * FROM improvements WHERE improvement_id = :id", {"id": improvement_id})
    if current.empty:
        raise ValueError(f"improvement_id: no improvement {improvement_id!r}")
    now = now or utcnow()
    row = current.iloc[0].to_dict()
    row["status"] = status
    if status == "shipped":
        row["shipped_at"] = to_naive_utc(shipped_at) if shipped_at else now
    row["created_at"] = to_naive_utc(row["created_at"])
    row["updated_at"] = now
    wh.upsert("improvements", [row])
    return row


def read_improvements(wh: Warehouse) -> pd.DataFrame:
    return wh.read_frame(
        "SELECT * FROM improvements ORDER BY created_at, improvement_id",
        parse_dates=["shipped_at", "created_at", "updated_at"],
    )


# --- feedback ---------------------------------------------------------------------------------


def record_feedback(
    wh: Warehouse,
    *,
    rating: int,
    text: str,
    source: str,
    author: str | None = None,
    submitted_at: datetime | str | None = None,
) -> dict[str, Any]:
    """Score sentiment and store one feedback row (idempotent on time, rating, author and text)."""
    when = to_naive_utc(submitted_at) if submitted_at not in (None, "") else utcnow()
    row = feedback_row(rating, text, when, source, author)
    wh.upsert("feedback", [row])
    return row

"""Missing values of every pandas/numpy flavour are stored as NULL, whatever the column's type."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen_pipeline.warehouse import Warehouse, to_naive_utc
from kaizen_pipeline.warehouse.schema import alert_history

NULLABLE = [
    "asset_key",
    "check_name",
    "resolved_at",
    "last_run_id",
    "value",
    "target",
    "last_email_at",
    "run_url",
]


def _row(alert_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "alert_id": alert_id,
        "alert_key": f"check:{alert_id}",
        "kind": "check",
        "asset_key": "prices",
        "check_name": "price_jumps",
        "job_name": None,
        "priority": "high",
        "status": "open",
        "opened_at": datetime(2026, 1, 1),
        "last_failed_at": datetime(2026, 1, 2),
        "resolved_at": datetime(2026, 1, 3),
        "failure_count": 1,
        "last_run_id": "r1",
        "value": 1.5,
        "target": 2.5,
        "deviation": 0.1,
        "emails_sent": 0,
        "emails_pending": 0,
        "last_email_at": datetime(2026, 1, 4),
        "run_url": "http://ui/runs/r1",
    }
    row.update(overrides)
    return row


def _stored(wh: Warehouse) -> dict[str, dict[str, object]]:
    with wh.engine.connect() as conn:
        rows = conn.execute(sa.select(alert_history)).mappings().all()
    return {r["alert_id"]: dict(r) for r in rows}


MISSING = {
    "pd.NaT": pd.NaT,
    "pd.NA": pd.NA,
    "nan": float("nan"),
    "np.nan32": np.float32("nan"),
    "np.NaT": np.datetime64("NaT"),
    "None": None,
}


@pytest.mark.parametrize("name", list(MISSING))
def test_every_missing_marker_is_null_in_every_column_type(any_warehouse: Warehouse, name: str) -> None:
    missing = MISSING[name]
    any_warehouse.upsert(alert_history, [_row("a1", **dict.fromkeys(NULLABLE, missing))])
    stored = _stored(any_warehouse)["a1"]
    assert {c: stored[c] for c in NULLABLE} == dict.fromkeys(NULLABLE)


def test_a_frame_with_typed_missing_columns_is_stored_with_nulls(any_warehouse: Warehouse) -> None:
    """The alert_history shape that failed: a never-emailed alert has last_email_at NaT (datetime64)."""
    frame = pd.DataFrame([_row("a1"), _row("a2")])
    frame["last_email_at"] = pd.to_datetime(pd.Series([None, "2026-01-05"]))  # datetime64 with NaT
    frame["resolved_at"] = pd.to_datetime(pd.Series([None, None]))  # all NaT
    frame["value"] = pd.array([pd.NA, 3.0], dtype="Float64")
    frame["failure_count"] = pd.array([1, 2], dtype="Int64")
    frame["target"] = [np.nan, 4.0]
    frame["asset_key"] = pd.array([pd.NA, "x"], dtype="string")
    frame["last_run_id"] = pd.Series([pd.NaT, "r2"], dtype=object)
    any_warehouse.replace(alert_history, frame)
    stored = _stored(any_warehouse)
    assert {
        c: stored["a1"][c]
        for c in ["last_email_at", "resolved_at", "value", "target", "asset_key", "last_run_id"]
    } == {
        "last_email_at": None,
        "resolved_at": None,
        "value": None,
        "target": None,
        "asset_key": None,
        "last_run_id": None,
    }
    assert stored["a2"]["last_email_at"] == datetime(2026, 1, 5)
    assert stored["a2"]["value"] == 3.0 and stored["a2"]["failure_count"] == 2
    assert stored["a2"]["asset_key"] == "x" and stored["a2"]["last_run_id"] == "r2"


@pytest.mark.parametrize("name", list(MISSING))
def test_to_naive_utc_maps_missing_to_none(name: str) -> None:
    assert to_naive_utc(MISSING[name]) is None

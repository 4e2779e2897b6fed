"""Flags in the warehouse: feature_flags, their audit trail flag_changes, and flag_assignments.

Pure module (SQLAlchemy; no Dagster). Every change is one transaction: the flag row and its audit
row are written together or not at all, after the flag has been validated against the settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.clock import utcnow
from kaizen_pipeline.flags.model import Evaluation, FeatureFlag, flag_from_row, flag_to_row, validate_flag
from kaizen_pipeline.flags.parameters import FlagValueError
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import feature_flags, flag_assignments, flag_changes


class FlagNotFound(KeyError):
    """No flag with that key."""

    def __str__(self) -> str:
        return f"flag_key: no flag {self.args[0]!r} (kaizen flags list shows them)"


class FlagStore:
    """Read and change flags; each change audited in flag_changes within the same transaction."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def list(self, *, status: str | None = None) -> list[FeatureFlag]:
        stmt = sa.select(feature_flags).order_by(feature_flags.c.flag_key)
        if status is not None:
            stmt = stmt.where(feature_flags.c.status == status)
        with self.wh.engine.connect() as conn:
            return [flag_from_row(dict(r)) for r in conn.execute(stmt).mappings()]

    def active(self) -> list[FeatureFlag]:
        return self.list(status="active")

    def get(self, flag_key: str) -> FeatureFlag:
        with self.wh.engine.connect() as conn:
            row = (
                conn.execute(sa.select(feature_flags).where(feature_flags.c.flag_key == flag_key))
                .mappings()
                .first()
            )
        if row is None:
            raise FlagNotFound(flag_key)
        return flag_from_row(dict(row))

    def save(
        self,
        flag: FeatureFlag,
        settings: Any,
        *,
        actor: str,
        reason: str,
        now: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> FeatureFlag:
        """Create or replace ``flag`` after validating it; refuse a second active flag on a parameter.

        With ``conn`` the change joins the caller's transaction (a rollout step and its flag move together).
        """
        if not reason.strip():
            raise FlagValueError("reason: say why the flag changes (it is kept in flag_changes)")
        if not actor.strip():
            raise FlagValueError("actor: say who changes the flag")
        checked = validate_flag(flag, settings)
        now = now or utcnow()
        if conn is not None:
            return self._save(conn, checked, actor=actor, reason=reason, now=now)
        with self.wh.engine.begin() as own:
            return self._save(own, checked, actor=actor, reason=reason, now=now)

    def _save(
        self, conn: sa.Connection, checked: FeatureFlag, *, actor: str, reason: str, now: datetime
    ) -> FeatureFlag:
        before_row = (
            conn.execute(sa.select(feature_flags).where(feature_flags.c.flag_key == checked.flag_key))
            .mappings()
            .first()
        )
        before = flag_from_row(dict(before_row)) if before_row else None
        if checked.status == "active":
            clash = conn.execute(
                sa.select(feature_flags.c.flag_key).where(
                    feature_flags.c.parameter == checked.parameter,
                    feature_flags.c.status == "active",
                    feature_flags.c.flag_key != checked.flag_key,
                )
            ).scalar()
            if clash is not None:
                raise FlagValueError(
                    f"parameter: {checked.parameter} already has the active flag {clash!r}; "
                    "kill it first (one active flag per parameter)"
                )
        stored = replace(
            checked,
            salt=checked.salt or (before.salt if before else checked.flag_key),
            created_at=before.created_at if before else now,
            updated_at=now,
        )
        row = flag_to_row(stored)
        stmt = self.wh.dialect_insert(feature_flags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["flag_key"], set_={c: stmt.excluded[c] for c in row if c != "flag_key"}
        )
        conn.execute(stmt, row)
        action = "create" if before is None else _action(before, stored)
        conn.execute(
            flag_changes.insert(),
            {
                "flag_key": stored.flag_key,
                "changed_at": now,
                "actor": actor,
                "action": action,
                "before": json.dumps(before.as_record(), sort_keys=True) if before else None,
                "after": json.dumps(stored.as_record(), sort_keys=True),
                "reason": reason,
            },
        )
        return stored

    def kill(
        self, flag_key: str, settings: Any, *, actor: str, reason: str, now: datetime | None = None
    ) -> FeatureFlag:
        """Turn the flag off: every unit gets the config value again (reason DISABLED)."""
        return self.save(
            replace(self.get(flag_key), status="killed"), settings, actor=actor, reason=reason, now=now
        )

    def changes(self, flag_key: str | None = None) -> pd.DataFrame:
        stmt = sa.select(flag_changes).order_by(flag_changes.c.change_id)
        if flag_key is not None:
            stmt = stmt.where(flag_changes.c.flag_key == flag_key)
        return self.wh.read_frame(stmt, parse_dates=["changed_at"])

    def record_exposures(self, units: Iterable[tuple[str, str, Evaluation]], now: datetime) -> int:
        """First exposure of each (flag, unit, variant) that got a variant; repeats keep the first time."""
        rows = [
            {
                "flag_key": ev.flag_key,
                "unit_kind": kind,
                "unit_id": unit_id,
                "variant": ev.variant,
                "reason": ev.reason,
                "first_exposure_at": now,
            }
            for kind, unit_id, ev in units
            if ev.variant is not None
        ]
        return self.wh.upsert(flag_assignments, rows, update=False).new_rows

    def assignments(self, flag_key: str) -> pd.DataFrame:
        return self.wh.read_frame(
            sa.select(flag_assignments).where(flag_assignments.c.flag_key == flag_key),
            parse_dates=["first_exposure_at"],
        )


def _action(before: FeatureFlag, after: FeatureFlag) -> str:
    if after.status == "killed" and before.status != "killed":
        return "kill"
    if after.is_static and not before.is_static:
        return "ship"
    return "update"


def flags_frame(flags: Sequence[FeatureFlag], exposures: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per flag for the UI and CLI: parameter, unit, status, split and units exposed per variant."""
    rows = []
    for f in flags:
        exposed = {}
        if exposures is not None and not exposures.empty:
            mine = exposures[exposures["flag_key"] == f.flag_key]
            exposed = mine.groupby("variant")["unit_id"].nunique().to_dict()
        rows.append(
            {
                "flag_key": f.flag_key,
                "parameter": f.parameter,
                "unit_kind": f.unit_kind,
                "status": f.status,
                "allocation_pct": round(f.allocation * 100, 2),
                "variants": ", ".join(
                    f"{name}={value} ({f.weights.get(name, 0) * 100:g}%, {exposed.get(name, 0)} units)"
                    for name, value in f.variants.items()
                ),
                "owner": f.owner,
                "experiment_id": f.experiment_id,
                "updated_at": f.updated_at,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["flag_key", "parameter", "unit_kind", "status", "allocation_pct", "variants", "owner",
                 "experiment_id", "updated_at"],
    )  # fmt: skip

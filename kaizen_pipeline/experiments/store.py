"""The experiments and experiment_looks tables: drafts, atomic state transitions, looks (no Dagster)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import experiment_looks, experiments


class ExperimentNotFound(KeyError):
    def __str__(self) -> str:
        return f"experiment_id: no experiment {self.args[0]!r} (kaizen experiments list shows them)"


class TransitionRefused(ValueError):
    """The experiment is not in a state that allows the change (it may have been decided meanwhile)."""


class ExperimentStore:
    """Read experiments; change their state only from an expected state (compare-and-set)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def frame(self, status: str | None = None) -> pd.DataFrame:
        stmt = sa.select(experiments).order_by(experiments.c.created_at, experiments.c.experiment_id)
        if status is not None:
            stmt = stmt.where(experiments.c.status == status)
        return self.wh.read_frame(stmt, parse_dates=["created_at", "started_at", "ended_at", "updated_at"])

    def get(self, experiment_id: str) -> dict[str, Any]:
        with self.wh.engine.connect() as conn:
            row = (
                conn.execute(sa.select(experiments).where(experiments.c.experiment_id == experiment_id))
                .mappings()
                .first()
            )
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return dict(row)

    def catalogue_keys(self) -> set[str]:
        with self.wh.engine.connect() as conn:
            return set(conn.execute(sa.select(experiments.c.catalogue_key)).scalars())

    def add_drafts(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert new drafts; an id that exists is left as it is (re-running drafts nothing twice)."""
        return self.wh.upsert(experiments, list(rows), update=False).new_rows

    def transition(
        self, experiment_id: str, *, expected: Iterable[str], to: str, **fields: Any
    ) -> dict[str, Any]:
        """Move from one of ``expected`` to ``to`` in one conditional UPDATE; refuse otherwise.

        Two callers racing (two sensor ticks, a tick and a person) cannot both succeed: the second
        finds the status already changed and gets TransitionRefused naming the current status.
        """
        allowed = tuple(expected)
        with self.wh.engine.begin() as conn:
            result = conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == experiment_id, experiments.c.status.in_(allowed))
                .values(status=to, **fields)
            )
            if result.rowcount == 1:
                row = (
                    conn.execute(sa.select(experiments).where(experiments.c.experiment_id == experiment_id))
                    .mappings()
                    .one()
                )
                return dict(row)
            current = conn.execute(
                sa.select(experiments.c.status).where(experiments.c.experiment_id == experiment_id)
            ).scalar()
        if current is None:
            raise ExperimentNotFound(experiment_id)
        raise TransitionRefused(
            f"experiment {experiment_id} is {current}; only {', '.join(allowed)} can become {to}"
        )

    def record_looks(self, rows: Sequence[Mapping[str, Any]]) -> int:
        return self.wh.upsert(experiment_looks, list(rows)).rows_written

    def looks(self, experiment_id: str | None = None) -> pd.DataFrame:
        stmt = sa.select(experiment_looks).order_by(experiment_looks.c.look_at, experiment_looks.c.metric)
        if experiment_id is not None:
            stmt = stmt.where(experiment_looks.c.experiment_id == experiment_id)
        return self.wh.read_frame(stmt, parse_dates=["look_at"])

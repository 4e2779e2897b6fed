"""Read the research tables the backtest needs from the warehouse, and write study tables (no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from kaizen_pipeline.warehouse import Warehouse

FEATURE_INPUTS = ["market_id", "bucket_ts", "yes_price", "rvr", "roc", "hype_index"]


@dataclass
class BacktestInputs:
    """market_features (with hype_index when known) and trading_signals, plus notes on what was missing."""

    features: pd.DataFrame
    signals: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def as_of(self) -> pd.Timestamp | None:
        if self.features.empty:
            return None
        return pd.Timestamp(self.features["bucket_ts"].max())


def load_inputs(wh: Warehouse, *, with_signals: bool = True) -> BacktestInputs:
    """market_features and trading_signals as the research group wrote them (empty before its first run)."""
    notes: list[str] = []
    features = wh.read_frame(
        f"SELECT {', '.join(FEATURE_INPUTS)} FROM market_features", parse_dates=["bucket_ts"], raw=True
    )
    for col in ("yes_price", "rvr", "roc", "hype_index"):
        features[col] = pd.to_numeric(features[col], errors="coerce")
    if features.empty:
        notes.append("market_features has no rows (materialize the research group)")
    signals = pd.DataFrame(columns=["market_id", "bucket_ts", "direction"])
    if with_signals:
        signals = wh.read_frame(
            "SELECT market_id, bucket_ts, direction FROM trading_signals", parse_dates=["bucket_ts"], raw=True
        )
        if signals.empty:
            notes.append("trading_signals has no rows: zero-trade backtest")
    return BacktestInputs(features, signals, notes)


def write_slice(wh: Warehouse, table: str, rows: pd.DataFrame, as_of: pd.Timestamp) -> int:
    """Replace the ``as_of`` slice of ``table`` with ``rows`` (idempotent); returns rows written."""
    tbl = wh.table(table)
    frame = rows.copy()
    frame.insert(0, "as_of", as_of.to_pydatetime())
    columns = [c.name for c in tbl.columns]
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        raise ValueError(f"{table}: no column(s) {', '.join(unknown)}")
    for col in tbl.columns:
        if isinstance(col.type, sa.Integer) and col.name in frame:
            frame[col.name] = (
                frame[col.name].astype("Int64").astype(object).where(frame[col.name].notna(), None)
            )
    return wh.replace(tbl, frame, where=tbl.c.as_of == as_of.to_pydatetime()).rows_written

"""SQLAlchemy warehouse: tables, idempotent upserts, backup and restore."""

from kaizen_pipeline.clock import utcnow  # the one naive-UTC now (the warehouse's convention)
from kaizen_pipeline.warehouse.store import UpsertResult, Warehouse, to_naive_utc

__all__ = ["UpsertResult", "Warehouse", "to_naive_utc", "utcnow"]

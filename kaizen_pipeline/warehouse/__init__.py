"""SQLAlchemy warehouse: tables, idempotent upserts, backup and restore."""

from kaizen_pipeline.warehouse.store import UpsertResult, Warehouse, to_naive_utc, utcnow

__all__ = ["UpsertResult", "Warehouse", "to_naive_utc", "utcnow"]

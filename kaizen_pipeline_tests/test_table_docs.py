"""Warehouse tables documented in the UI: every asset that writes a table shows its columns and comments."""

from __future__ import annotations

import dagster as dg
import pytest

from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.settings import load_settings
from kaizen_pipeline.table_docs import ASSET_TABLES
from kaizen_pipeline.warehouse.schema import metadata

# Written by jobs and sensors, not by assets: the launchpad jobs and the alert sensor.
NOT_WRITTEN_BY_ASSETS = {"alert_state", "alert_outbox", "feedback", "improvements"}


@pytest.fixture(scope="module")
def graph():
    return build_defs(load_settings()).resolve_asset_graph()


def test_every_warehouse_column_has_a_comment() -> None:
    missing = [
        f"{t.name}.{c.name}"
        for t in metadata.sorted_tables
        for c in t.columns
        if not (c.comment or "").strip()
    ]
    assert missing == []


def test_every_table_is_mapped_to_the_asset_that_writes_it_or_known_not_to_be(graph) -> None:
    mapped = {table for tables in ASSET_TABLES.values() for table in tables}
    assert mapped <= set(metadata.tables), mapped - set(metadata.tables)
    assert set(metadata.tables) - mapped == NOT_WRITTEN_BY_ASSETS
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(ASSET_TABLES) <= keys, set(ASSET_TABLES) - keys
    # an asset named like a table writes it (schema.py: "tables are named like the asset that writes them")
    assert {k for k in keys if k in metadata.tables} <= set(ASSET_TABLES)


def _columns(schema: dg.TableSchema) -> dict[str, str | None]:
    return {c.name: c.description for c in schema.columns}


def test_every_asset_that_writes_a_table_carries_its_columns_and_comments(graph) -> None:
    for key, tables in ASSET_TABLES.items():
        meta = graph.get(dg.AssetKey.from_user_string(key)).metadata
        schemas = [meta["dagster/column_schema"]]
        schemas += [meta[f"table_schema/{t}"] for t in tables[1:]]
        assert meta["dagster/table_name"] == tables[0], key
        for name, value in zip(tables, schemas, strict=True):
            schema = value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value
            assert isinstance(schema, dg.TableSchema), (key, name)
            expected = {c.name: c.comment for c in metadata.tables[name].columns}
            assert _columns(schema) == expected, (key, name)
            assert all(d for d in _columns(schema).values()), (key, name)

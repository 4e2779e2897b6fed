"""Dagster resources: thin ConfigurableResource wrappers around the warehouse and the API clients.

Connection fields (URLs, mode) are resource config and show in the UI; behaviour knobs come from
the one settings object; secrets are read from the environment through settings at run time,
so they never enter Dagster config, logs or metadata.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from dagster import ConfigurableResource

from kaizen_pipeline.settings import Settings, get_settings
from kaizen_pipeline.warehouse import Warehouse

_WAREHOUSES: dict[str, Warehouse] = {}


def warehouse_for(url: str) -> Warehouse:
    """One Warehouse (engine + pool) per URL per process."""
    if url not in _WAREHOUSES:
        _WAREHOUSES[url] = Warehouse(url)
    return _WAREHOUSES[url]


class WarehouseResource(ConfigurableResource):
    """The warehouse database: a SQLAlchemy URL (SQLite file by default, PostgreSQL by config).

    The URL shown in Dagster has its password masked; the real one is taken from the settings
    (KAIZEN_DATABASE__URL) when the run connects.
    """

    url: str

    def get(self) -> Warehouse:
        return warehouse_for(self.connect_url())

    def connect_url(self) -> str:
        """The URL to connect with (the password restored from the settings)."""
        configured = get_settings().database.sqlalchemy_url()
        if display_url(configured) == self.url:
            return configured
        return self.url


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for the UI, logs and metadata)."""
    return sa.make_url(url).render_as_string(hide_password=True)


class SourcesResource(ConfigurableResource):
    """Where ingest reads from: `demo` (the seeded simulator) or `live` APIs at these base URLs."""

    source: str = "demo"
    gamma_url: str
    clob_url: str
    data_url: str
    twitter_api_url: str

    def settings(self) -> Settings:
        base = get_settings()
        return base.model_copy(
            update={
                "source": self.source,
                "polymarket": base.polymarket.model_copy(
                    update={"gamma_url": self.gamma_url, "clob_url": self.clob_url, "data_url": self.data_url}
                ),
                "twitter": base.twitter.model_copy(update={"api_url": self.twitter_api_url}),
            }
        )

    def clients(self) -> Any:
        """Fresh clients for one run (their call statistics are per run)."""
        from kaizen_pipeline.ingest.clients import build_clients

        return build_clients(self.settings())


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "warehouse": WarehouseResource(url=display_url(settings.database.sqlalchemy_url())),
        "sources": SourcesResource(
            source=settings.source,
            gamma_url=settings.polymarket.gamma_url,
            clob_url=settings.polymarket.clob_url,
            data_url=settings.polymarket.data_url,
            twitter_api_url=settings.twitter.api_url,
        ),
    }

"""The one Definitions object: each domain's defs merged, resources from the settings."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.backtest import defs as backtest_defs
from kaizen_pipeline.ingest import defs as ingest_defs
from kaizen_pipeline.kaizen import defs as kaizen_defs
from kaizen_pipeline.ops import defs as ops_defs
from kaizen_pipeline.research import defs as research_defs
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, get_settings

DOMAINS = (ingest_defs, research_defs, backtest_defs, kaizen_defs, ops_defs)

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.groups("ingest", "research", "backtest", "kaizen"),
    description="The whole pipeline: ingest, research, backtests and the kaizen cycle, with their checks.",
)


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """Merge every domain's definitions and bind the shared resources (settings validated first)."""
    settings = settings or get_settings()
    merged = dg.Definitions.merge(*(domain.build_defs(settings) for domain in DOMAINS))
    return dg.Definitions.merge(merged, dg.Definitions(jobs=[main_job], resources=build_resources(settings)))


defs = build_defs()

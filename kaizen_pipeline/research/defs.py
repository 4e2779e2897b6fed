"""Dagster definitions of the research domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.research.assets import RESEARCH_ASSETS
from kaizen_pipeline.research.checks import RESEARCH_CHECKS
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=RESEARCH_ASSETS, asset_checks=RESEARCH_CHECKS)

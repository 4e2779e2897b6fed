"""Dagster definitions of the flags domain: merged by kaizen_pipeline.definitions."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.flags.assets import feature_flags
from kaizen_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[feature_flags])

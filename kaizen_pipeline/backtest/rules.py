"""Signals re-derived from market features for other thresholds (sensitivity, walk-forward grid search).

The rule itself lives in one place, ``kaizen_pipeline.research.signals.signal_rule``; this module
only calls it with a threshold triple.
"""

from __future__ import annotations

import pandas as pd

from kaizen_pipeline.research.signals import SignalThresholds, signal_rule


def rule_signals(features: pd.DataFrame, thresholds: SignalThresholds, bucket_minutes: int) -> pd.DataFrame:
    """Signals of ``features`` at ``thresholds`` (market_id, bucket_ts, direction, ...)."""
    if features.empty:
        return pd.DataFrame(columns=["market_id", "bucket_ts", "direction"])
    if "hype_index" not in features.columns:
        features = features.assign(hype_index=float("nan"))  # no hype data: the rule never fires
    return signal_rule(
        features, thresholds.rvr, thresholds.roc, thresholds.hype, bucket_minutes=bucket_minutes
    )

"""Signals re-derived from market features for other thresholds (sensitivity, walk-forward grid search).

The rule itself lives in one place, ``kaizen_pipeline.research.signals.signal_rule``; this module
only calls it with a threshold triple.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kaizen_pipeline.research.signals import signal_rule


@dataclass(frozen=True)
class Thresholds:
    """The signal rule's thresholds: relative volume ratio, rate of change, hype index."""

    rvr: float
    roc: float
    hype: float

    def scaled(self, name: str, factor: float) -> Thresholds:
        """One threshold times ``factor`` (hype stays inside its 0..100 scale)."""
        values = {"rvr": self.rvr, "roc": self.roc, "hype": self.hype}
        values[name] = values[name] * factor
        values["hype"] = min(max(values["hype"], 0.0), 100.0)
        return Thresholds(**values)

    @classmethod
    def from_settings(cls, settings: object) -> Thresholds:
        sig = settings.signals  # type: ignore[attr-defined]
        return cls(rvr=sig.rvr_threshold, roc=sig.roc_threshold, hype=sig.hype_threshold)


def rule_signals(features: pd.DataFrame, thresholds: Thresholds, bucket_minutes: int) -> pd.DataFrame:
    """Signals of ``features`` at ``thresholds`` (market_id, bucket_ts, direction, ...)."""
    if features.empty:
        return pd.DataFrame(columns=["market_id", "bucket_ts", "direction"])
    if "hype_index" not in features.columns:
        features = features.assign(hype_index=float("nan"))  # no hype data: the rule never fires
    return signal_rule(
        features, thresholds.rvr, thresholds.roc, thresholds.hype, bucket_minutes=bucket_minutes
    )

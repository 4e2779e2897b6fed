"""The trading signal rule: one pure function, callable with any thresholds (walk-forward grid search).

Rule at bucket t (all inputs are features known at t):
    RVR_t >= rvr_threshold  and  |ROC_t| >= roc_threshold  and  hype_index_t >= hype_threshold
gives a signal in the direction of ROC: ROC > 0 buys YES, ROC < 0 buys NO (the complement, priced
1 - yes_price). A missing input (NaN) never signals.

Strength (0..1) = mean of three excess scores:
    s_rvr  = clip((RVR - rvr_threshold) / rvr_threshold, 0, 1)       (1 at twice the threshold)
    s_roc  = clip((|ROC| - roc_threshold) / roc_threshold, 0, 1)     (1 at twice the threshold)
    s_hype = clip((hype - hype_threshold) / (100 - hype_threshold), 0, 1)   (1 at hype 100)

No look-ahead: the signal of bucket t is decided from row t alone, and it is filled at the next
bar, ``fill_ts`` = t + one bucket (the backtest trades at the price of that bucket).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, fill_time

SIGNAL_COLUMNS = [
    "market_id",
    "bucket_ts",
    "fill_ts",
    "direction",
    "token_id",
    "strength",
    "yes_price",
    "signal_price",
    "rvr",
    "roc",
    "hype_index",
    "category",
]


@dataclass(frozen=True)
class SignalThresholds:
    """The signal rule's thresholds: relative volume ratio, rate of change, hype index."""

    rvr: float
    roc: float
    hype: float

    def scaled(self, name: str, factor: float) -> SignalThresholds:
        """One threshold times ``factor`` (hype stays inside its 0..100 scale)."""
        values = {"rvr": self.rvr, "roc": self.roc, "hype": self.hype}
        values[name] = values[name] * factor
        values["hype"] = min(max(values["hype"], 0.0), 100.0)
        return SignalThresholds(**values)

    @classmethod
    def from_settings(cls, settings: Any) -> SignalThresholds:
        sig = settings.signals
        return cls(rvr=sig.rvr_threshold, roc=sig.roc_threshold, hype=sig.hype_threshold)


def signal_strength(
    rvr: pd.Series | np.ndarray,
    roc: pd.Series | np.ndarray,
    hype_index: pd.Series | np.ndarray,
    rvr_threshold: float,
    roc_threshold: float,
    hype_threshold: float,
) -> np.ndarray:
    """Mean of the three clipped excess scores (module docstring); 0..1."""
    s_rvr = np.clip((np.asarray(rvr, dtype=float) - rvr_threshold) / rvr_threshold, 0, 1)
    s_roc = np.clip((np.abs(np.asarray(roc, dtype=float)) - roc_threshold) / roc_threshold, 0, 1)
    hype_span = max(100.0 - hype_threshold, 1e-9)
    s_hype = np.clip((np.asarray(hype_index, dtype=float) - hype_threshold) / hype_span, 0, 1)
    return (s_rvr + s_roc + s_hype) / 3.0


def signal_rule(
    features: pd.DataFrame,
    rvr_threshold: float,
    roc_threshold: float,
    hype_threshold: float,
    bucket_minutes: int = DEFAULT_BUCKET_MINUTES,
) -> pd.DataFrame:
    """Signals (one row per firing market and bucket) from a market_features frame.

    ``features`` needs market_id, bucket_ts, yes_price, rvr, roc, hype_index; yes_token_id,
    no_token_id and category are passed through when present. Returns SIGNAL_COLUMNS.
    """
    required = ["market_id", "bucket_ts", "yes_price", "rvr", "roc", "hype_index"]
    missing = [c for c in required if c not in features.columns]
    if missing:
        raise ValueError(f"signal_rule: features lack column(s) {', '.join(missing)}")
    for name, value in (("rvr_threshold", rvr_threshold), ("roc_threshold", roc_threshold)):
        if not value > 0:
            raise ValueError(f"signal_rule: {name} must be > 0 (got {value!r})")
    if not 0 <= hype_threshold <= 100:
        raise ValueError(f"signal_rule: hype_threshold must be in [0, 100] (got {hype_threshold!r})")

    rvr = features["rvr"].astype(float)
    roc = features["roc"].astype(float)
    hype = features["hype_index"].astype(float)
    fire = (rvr >= rvr_threshold) & (roc.abs() >= roc_threshold) & (hype >= hype_threshold) & (roc != 0)
    fire &= features["yes_price"].notna()
    hits = features.loc[fire.fillna(False)].copy()
    if hits.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    hits["bucket_ts"] = pd.to_datetime(hits["bucket_ts"])
    hits["fill_ts"] = fill_time(hits["bucket_ts"], bucket_minutes)
    buy_yes = hits["roc"] > 0
    hits["direction"] = np.where(buy_yes, "YES", "NO")
    yes_token = hits["yes_token_id"] if "yes_token_id" in hits else pd.Series(None, index=hits.index)
    no_token = hits["no_token_id"] if "no_token_id" in hits else pd.Series(None, index=hits.index)
    hits["token_id"] = yes_token.where(buy_yes, no_token)
    hits["signal_price"] = hits["yes_price"].where(buy_yes, 1.0 - hits["yes_price"])
    hits["strength"] = signal_strength(
        hits["rvr"], hits["roc"], hits["hype_index"], rvr_threshold, roc_threshold, hype_threshold
    )
    if "category" not in hits:
        hits["category"] = None
    return hits[SIGNAL_COLUMNS].sort_values(["bucket_ts", "market_id"]).reset_index(drop=True)

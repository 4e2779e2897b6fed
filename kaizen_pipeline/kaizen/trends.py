"""Metric trends: Mann-Kendall significance, Sen's slope per day, week-over-week change (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test with the tie-corrected variance and Sen's slope."""

    n: int
    s: int
    z: float
    p_value: float
    tau: float
    sen_slope: float  # median pairwise slope, value units per time unit of ``t``

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha


def mann_kendall(values: np.ndarray | pd.Series, t: np.ndarray | None = None) -> MannKendall:
    """Two-sided Mann-Kendall test of a monotonic trend in ``values`` observed at times ``t``.

    ``t`` defaults to 0, 1, 2, ...; Sen's slope is per unit of ``t``. Serially correlated series
    make the test anticonservative: read small p-values on persistent metrics with care.
    """
    x = np.asarray(values, dtype=float)
    if np.isnan(x).any():
        raise ValueError("values: contains NaN")
    n = len(x)
    if n < 3:
        raise ValueError(f"values: need at least 3 points for a trend test, got {n}")
    times = np.arange(n, dtype=float) if t is None else np.asarray(t, dtype=float)
    if len(times) != n:
        raise ValueError("t: must have the same length as values")
    i, j = np.triu_indices(n, k=1)
    diffs = x[j] - x[i]
    s = int(np.sign(diffs).sum())
    _, tie_counts = np.unique(x, return_counts=True)
    ties = tie_counts[tie_counts > 1]
    var_s = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18.0
    if var_s <= 0:
        z = 0.0
    elif s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    dt = times[j] - times[i]
    valid = dt != 0
    sen = float(np.median(diffs[valid] / dt[valid])) if valid.any() else 0.0
    return MannKendall(n=n, s=s, z=float(z), p_value=p_value, tau=s / (n * (n - 1) / 2), sen_slope=sen)


@dataclass(frozen=True)
class WeekOverWeek:
    last_week_mean: float
    previous_week_mean: float
    change: float
    pct_change: float  # NaN when the previous week's mean is 0


def week_over_week(ts: pd.Series, values: pd.Series) -> WeekOverWeek | None:
    """Mean of the 7 days ending at the newest point against the 7 days before (None: a week is empty)."""
    frame = pd.DataFrame({"ts": pd.to_datetime(ts).to_numpy(), "value": np.asarray(values, dtype=float)})
    if frame.empty:
        return None
    end = frame["ts"].max()
    last = frame.loc[frame["ts"] > end - pd.Timedelta(days=7), "value"]
    prev = frame.loc[
        (frame["ts"] <= end - pd.Timedelta(days=7)) & (frame["ts"] > end - pd.Timedelta(days=14)), "value"
    ]
    if last.empty or prev.empty:
        return None
    last_mean, prev_mean = float(last.mean()), float(prev.mean())
    change = last_mean - prev_mean
    pct = change / abs(prev_mean) if prev_mean else float("nan")
    return WeekOverWeek(last_mean, prev_mean, change, pct)


def metric_trend_row(
    metric: str,
    ts: pd.Series,
    values: pd.Series,
    better_sign: int,
    alpha: float,
    min_points: int,
) -> dict[str, object] | None:
    """One row of the metric_trends table for a daily series (None: too few points)."""
    frame = pd.DataFrame({"ts": pd.to_datetime(ts).to_numpy(), "value": np.asarray(values, dtype=float)})
    frame = frame.dropna().sort_values("ts")
    if len(frame) < max(min_points, 3):
        return None
    days = (frame["ts"] - frame["ts"].iloc[0]).dt.total_seconds().to_numpy() / 86400.0
    mk = mann_kendall(frame["value"].to_numpy(), days)
    significant = mk.significant(alpha)
    if not significant or mk.sen_slope == 0:
        verdict = "flat"
    else:
        verdict = "improving" if mk.sen_slope * better_sign > 0 else "worsening"
    wow = week_over_week(frame["ts"], frame["value"])
    return {
        "metric": metric,
        "as_of": frame["ts"].iloc[-1].to_pydatetime(),
        "n_points": mk.n,
        "slope_per_day": mk.sen_slope,
        "kendall_tau": mk.tau,
        "mk_z": mk.z,
        "p_value": mk.p_value,
        "significant": significant,
        "verdict": verdict,
        "last_week_mean": wow.last_week_mean if wow else None,
        "previous_week_mean": wow.previous_week_mean if wow else None,
        "wow_change": wow.change if wow else None,
        "wow_pct_change": wow.pct_change if wow and not math.isnan(wow.pct_change) else None,
    }

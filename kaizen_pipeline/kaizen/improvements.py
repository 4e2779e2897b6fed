"""Improvements: measured effect (Welch), ROI, prediction accuracy, learning velocity, bias correction (pure).

Conventions (metric units unless said otherwise):
- ``effect`` = mean after shipping - mean before (signed, like the metric).
- ``better effect`` = effect x (+1 if higher is better, -1 if lower): positive means improved.
- value of an effect (USD) = better effect x the metric's ``value_per_unit``.
- cost (USD) = cost_hours x ``hourly_rate_usd`` + cost_money.
- ROI = (value - cost) / cost (undefined for a free improvement).
- prediction error = predicted - actual; relative bias = (predicted - actual) / |predicted| in the
  better direction (> 0: we over-promise); APE = |predicted - actual| / |actual|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from kaizen_pipeline.kaizen.registry import MetricSpec, better_sign


@dataclass(frozen=True)
class WelchResult:
    """Difference of means (after - before) with its Welch t-test and (1 - alpha) confidence interval."""

    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    diff: float
    ci_low: float
    ci_high: float
    t_stat: float
    df: float
    p_value: float


def welch(before: np.ndarray, after: np.ndarray, alpha: float = 0.05) -> WelchResult:
    """Welch's unequal-variance t-test of mean(after) - mean(before), Welch-Satterthwaite df."""
    a = np.asarray(before, dtype=float)
    b = np.asarray(after, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"welch: need at least 2 points on each side, got {len(a)} before and {len(b)} after"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(b.mean() - a.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        # Both sides constant: the difference is known exactly.
        p = 1.0 if diff == 0 else 0.0
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return WelchResult(len(a), len(b), float(a.mean()), float(b.mean()), diff, diff, diff, t, math.inf, p)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df) * se)
    return WelchResult(
        len(a), len(b), float(a.mean()), float(b.mean()), diff, diff - half, diff + half, t, df, p
    )


def improvement_cost(cost_hours: float, cost_money: float, hourly_rate: float) -> float:
    """Cost in USD of an improvement."""
    if cost_hours < 0 or cost_money < 0:
        raise ValueError("cost_hours and cost_money must be >= 0")
    return float(cost_hours * hourly_rate + cost_money)


def effect_value(effect: float, spec: MetricSpec) -> float:
    """USD value of a (signed, metric-unit) effect on ``spec``'s metric."""
    return float(effect * better_sign(spec) * spec.value_per_unit)


def roi(value: float, cost: float) -> float:
    """(value - cost) / cost; NaN for a zero cost (a free change has no finite return ratio)."""
    if cost <= 0:
        return float("nan")
    return float((value - cost) / cost)


def prediction_error(predicted: float, actual: float) -> dict[str, float | None]:
    """Error, absolute percentage error and relative bias of one prediction (see module docstring)."""
    error = predicted - actual
    ape = abs(error) / abs(actual) if actual != 0 else None
    rel_bias = error / abs(predicted) if predicted != 0 else None
    return {"error": float(error), "abs_pct_error": ape, "relative_bias": rel_bias}


def signed_relative_bias(predicted: float, actual: float, spec: MetricSpec) -> float | None:
    """(predicted - actual) / |predicted| in the better direction: > 0 when the gain was over-promised."""
    if predicted == 0:
        return None
    sign = better_sign(spec)
    return float((predicted * sign - actual * sign) / abs(predicted))


def measure_impact(
    history: pd.DataFrame,
    shipped_at: pd.Timestamp,
    *,
    spec: MetricSpec,
    predicted_effect: float,
    cost_usd: float,
    window_days: int,
    min_points: int,
    alpha: float,
) -> dict[str, object]:
    """Measure one shipped improvement on its metric's daily ``history`` (columns ts, value).

    Before = days in [shipped - window, shipped), after = days in [shipped, shipped + window).
    The verdict is 'pending' until both sides have ``min_points`` points and the after
    window has closed (its last day is in the history); then 'improved', 'worsened' or
    'no_effect' by the Welch test at ``alpha``.
    """
    shipped = pd.Timestamp(shipped_at)
    window = pd.Timedelta(days=window_days)
    frame = history.dropna(subset=["value"])
    ts = pd.to_datetime(frame["ts"])
    before = frame.loc[(ts >= shipped - window) & (ts < shipped), "value"].to_numpy(dtype=float)
    after = frame.loc[(ts >= shipped) & (ts < shipped + window), "value"].to_numpy(dtype=float)
    closed = bool(len(ts)) and ts.max() >= shipped + window - pd.Timedelta(days=1)
    row: dict[str, object] = {
        "target_metric": spec.name,
        "shipped_at": shipped.to_pydatetime(),
        "n_before": len(before),
        "n_after": len(after),
        "predicted_effect": float(predicted_effect),
        "cost_usd": float(cost_usd),
        "verdict": "pending",
        "validated_at": None,
    }
    if len(before) < min_points or len(after) < min_points or not closed:
        return row
    test = welch(before, after, alpha)
    value = effect_value(test.diff, spec)
    better = test.diff * better_sign(spec)
    verdict = ("improved" if better > 0 else "worsened") if test.p_value < alpha else "no_effect"
    accuracy = prediction_error(predicted_effect, test.diff)
    row.update(
        {
            "mean_before": test.mean_before,
            "mean_after": test.mean_after,
            "actual_effect": test.diff,
            "ci_low": test.ci_low,
            "ci_high": test.ci_high,
            "t_stat": test.t_stat if math.isfinite(test.t_stat) else None,
            "df": test.df if math.isfinite(test.df) else None,
            "p_value": test.p_value,
            "value_usd": value,
            "roi": roi(value, cost_usd),
            "error": accuracy["error"],
            "abs_pct_error": accuracy["abs_pct_error"],
            "relative_bias": signed_relative_bias(predicted_effect, test.diff, spec),
            "verdict": verdict,
            "validated_at": (shipped + window).to_pydatetime(),
        }
    )
    return row


@dataclass(frozen=True)
class AccuracySummary:
    validated: int
    mean_error: float  # metric units, mixed across metrics: read per metric
    mean_relative_bias: float  # > 0: predictions over-promise
    mape: float  # percent


def accuracy_summary(impacts: pd.DataFrame) -> AccuracySummary:
    """Aggregate prediction accuracy over validated improvements (NaN when none)."""
    done = impacts[impacts["verdict"] != "pending"] if not impacts.empty else impacts
    if done.empty:
        return AccuracySummary(0, float("nan"), float("nan"), float("nan"))
    ape = pd.to_numeric(done["abs_pct_error"], errors="coerce").dropna()
    bias = pd.to_numeric(done["relative_bias"], errors="coerce").dropna()
    return AccuracySummary(
        validated=len(done),
        mean_error=float(pd.to_numeric(done["error"], errors="coerce").mean()),
        mean_relative_bias=float(bias.mean()) if len(bias) else float("nan"),
        mape=float(ape.mean() * 100) if len(ape) else float("nan"),
    )


def bias_factor(
    impacts: pd.DataFrame, metric: str | None, min_validated: int, parameter: str | None = None
) -> tuple[float, int, str]:
    """Multiplier for a new prediction: 1 - mean relative bias of past ones, clipped to [0, 2].

    Uses the validated impacts of the same parameter and metric (experiments) when there are
    ``min_validated`` of them, else the metric's own, else all, else 1 (nothing learned yet).
    Returns (factor, n, basis).
    """
    if impacts is None or impacts.empty:
        return 1.0, 0, "none"
    done = impacts[(impacts["verdict"] != "pending") & impacts["relative_bias"].notna()]
    own = done[done["target_metric"] == metric] if metric is not None else done.iloc[0:0]
    same = (
        own[own["parameter"] == parameter] if parameter is not None and "parameter" in own else own.iloc[0:0]
    )
    for pool, basis in ((same, "parameter"), (own, "metric"), (done, "all")):
        if len(pool) >= min_validated:
            bias = float(pd.to_numeric(pool["relative_bias"]).mean())
            return float(np.clip(1.0 - bias, 0.0, 2.0)), len(pool), basis
    return 1.0, 0, "none"


def learning_velocity(impacts: pd.DataFrame) -> pd.DataFrame:
    """Per ISO week (Monday start) of validation: validations, improvements confirmed, mean APE, cumulative count."""
    columns = [
        "week_start",
        "validated",
        "improved",
        "mean_abs_pct_error",
        "mean_relative_bias",
        "cumulative_validated",
    ]
    if impacts is None or impacts.empty:
        return pd.DataFrame(columns=columns)
    done = impacts[impacts["verdict"] != "pending"].copy()
    if done.empty:
        return pd.DataFrame(columns=columns)
    validated_at = pd.to_datetime(done["validated_at"])
    done["week_start"] = (validated_at - pd.to_timedelta(validated_at.dt.weekday, unit="D")).dt.normalize()
    done["is_improved"] = done["verdict"] == "improved"
    done["ape"] = pd.to_numeric(done["abs_pct_error"], errors="coerce")
    done["bias"] = pd.to_numeric(done["relative_bias"], errors="coerce")
    weekly = (
        done.groupby("week_start")
        .agg(
            validated=("verdict", "size"),
            improved=("is_improved", "sum"),
            mean_abs_pct_error=("ape", "mean"),
            mean_relative_bias=("bias", "mean"),
        )
        .reset_index()
        .sort_values("week_start")
    )
    weekly["improved"] = weekly["improved"].astype(int)
    weekly["cumulative_validated"] = weekly["validated"].cumsum()
    return weekly[columns].reset_index(drop=True)


def error_trend(impacts: pd.DataFrame) -> dict[str, float] | None:
    """OLS slope of absolute percentage error against validation time (per week), with its p-value.

    Negative slope: predictions are getting better. None with fewer than 3 validated errors.
    """
    if impacts is None or impacts.empty:
        return None
    done = impacts[(impacts["verdict"] != "pending")].copy()
    done["ape"] = pd.to_numeric(done["abs_pct_error"], errors="coerce")
    done = done.dropna(subset=["ape", "validated_at"])
    if len(done) < 3:
        return None
    t = pd.to_datetime(done["validated_at"])
    weeks = (t - t.min()).dt.total_seconds().to_numpy() / (7 * 86400)
    if np.ptp(weeks) == 0:
        return None
    fit = stats.linregress(weeks, done["ape"].to_numpy(dtype=float))
    return {"slope_per_week": float(fit.slope), "p_value": float(fit.pvalue), "n": float(len(done))}

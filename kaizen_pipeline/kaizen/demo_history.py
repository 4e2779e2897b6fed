"""A seeded demo history for the kaizen loop, like the demo world for markets.

A new demo install has run for one day, so the kaizen half of the UI (trends, forecasts, anomalies,
impact, learning velocity, recommendations) would have nothing to read. This history stands in for
the months a real install accumulates: ``days`` daily readings of every registered metric before the
pipeline's own, with planted effects the analyses must find, which the tests check:

- a trend: ``run_duration_seconds`` grows ``TREND_PER_DAY`` seconds a day (a slowing pipeline);
- weekly seasonality: ``data_freshness_minutes`` is ``WEEKEND_LIFT`` higher on Saturdays and Sundays;
- an anomaly: ``api_error_rate`` spikes to ``ANOMALY_VALUE`` on one day (``ANOMALY_DAYS_AGO``);
- a level shift after a logged improvement: ``raise_retry_budget`` ships ``SHIFT_DAYS_AGO`` days
  ago and ``api_retry_rate`` drops by ``SHIFT`` from then on (predicted: ``PREDICTED_EFFECT``);
- feedback: weekly ratings that dip and recover after the improvement.

Metrics without a planted effect are drawn around the install's own recorded level when it has one.
Rows carry ``source = demo_history``; they never replace a reading the pipeline recorded (same day
and metric), and seeding twice writes nothing new. Pure: no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.kaizen import store
from kaizen_pipeline.kaizen.feedback import feedback_row
from kaizen_pipeline.settings import KaizenSettings
from kaizen_pipeline.warehouse import Warehouse

SOURCE = "demo_history"
TREND_METRIC, TREND_BASE, TREND_PER_DAY = "run_duration_seconds", 120.0, 0.8
SEASONAL_METRIC, SEASONAL_BASE, WEEKEND_LIFT = "data_freshness_minutes", 12.0, 9.0
ANOMALY_METRIC, ANOMALY_BASE, ANOMALY_VALUE, ANOMALY_DAYS_AGO = "api_error_rate", 0.006, 0.09, 20
SHIFT_METRIC, SHIFT_BASE, SHIFT, SHIFT_DAYS_AGO = "api_retry_rate", 0.032, -0.012, 45
PREDICTED_EFFECT = -0.01
IMPROVEMENT_ID = "demo_raise_retry_budget"

# level and noise (standard deviation) of the metrics without a planted effect
_LEVELS: dict[str, tuple[float, float]] = {
    "run_success_rate": (0.97, 0.012),
    "asset_check_pass_rate": (0.96, 0.015),
    "degraded_runs": (0.3, 0.0),  # a count: drawn as Poisson
    "signals_per_day": (2.2, 0.5),
    "signal_hit_rate": (0.58, 0.05),
    "backtest_sharpe": (1.6, 0.25),
    "backtest_max_drawdown": (0.06, 0.01),
    "feedback_score": (3.9, 0.15),
}
_NOISE: dict[str, float] = {
    TREND_METRIC: 6.0,
    SEASONAL_METRIC: 1.5,
    ANOMALY_METRIC: 0.0015,
    SHIFT_METRIC: 0.003,
}
_BOUNDED = {"run_success_rate", "asset_check_pass_rate", "signal_hit_rate"}  # shares: kept in [0, 1]


@dataclass
class DemoHistory:
    """The rows to seed and what was planted in them (for tests and the asset's metadata)."""

    metrics: pd.DataFrame
    improvement: dict[str, Any]
    feedback: list[dict[str, Any]] = field(default_factory=list)
    planted: dict[str, Any] = field(default_factory=dict)


def build(
    ks: KaizenSettings, end_day: datetime, days: int, seed: int, levels: dict[str, float] | None = None
) -> DemoHistory:
    """``days`` daily readings of every registered metric up to and including ``end_day`` (a UTC midnight).

    ``levels``: the install's own recorded level of a metric; metrics without a planted effect are
    drawn around it, so the history meets the readings that follow it without a jump.
    """
    levels = levels or {}
    rng = np.random.default_rng([seed, 9001])
    day_index = pd.date_range(end=end_day, periods=days, freq="D")
    n = len(day_index)
    ago = np.array([(end_day - d).days for d in day_index.to_pydatetime()])
    weekend = day_index.dayofweek >= 5
    rows = []
    for spec in ks.metrics:
        name = spec.name
        if name == TREND_METRIC:
            values = TREND_BASE + TREND_PER_DAY * np.arange(n) + rng.normal(0, _NOISE[name], n)
        elif name == SEASONAL_METRIC:
            values = SEASONAL_BASE + WEEKEND_LIFT * weekend + rng.normal(0, _NOISE[name], n)
        elif name == ANOMALY_METRIC:
            values = ANOMALY_BASE + rng.normal(0, _NOISE[name], n)
            values[ago == ANOMALY_DAYS_AGO] = ANOMALY_VALUE
        elif name == SHIFT_METRIC:
            values = SHIFT_BASE + SHIFT * (ago < SHIFT_DAYS_AGO) + rng.normal(0, _NOISE[name], n)
        elif name == "degraded_runs":
            values = rng.poisson(_LEVELS[name][0], n).astype(float)
        else:
            level, noise = _LEVELS.get(name, (spec.target, abs(spec.target) * 0.05))
            if name in levels:
                noise *= abs(levels[name]) / level if level else 1.0  # the same relative spread
                level = levels[name]
            values = level + rng.normal(0, noise, n)
        if name in _BOUNDED:
            values = np.clip(values, 0.0, 1.0)
        values = np.maximum(values, 0.0) if name != "backtest_sharpe" else values
        for day, value in zip(day_index.to_pydatetime(), values, strict=True):
            rows.append(
                {"metric": name, "scope": "*", "ts": day, "value": float(value), "sample_size": 24,
                 "source": SOURCE, "as_of": day + timedelta(days=1)}
            )  # fmt: skip
    shipped = end_day - timedelta(days=SHIFT_DAYS_AGO)
    improvement = {
        "improvement_id": IMPROVEMENT_ID,
        "title": "Raise the retry budget (demo history)",
        "target_metric": SHIFT_METRIC,
        "predicted_effect": PREDICTED_EFFECT,
        "cost_hours": 2.0,
        "cost_money": 0.0,
        "status": "shipped",
        "shipped_at": shipped,
        "notes": "planted in the demo history: api_retry_rate drops after it ships",
    }
    feedback = []
    for week in range(days // 7):
        when = end_day - timedelta(days=7 * week + 2, hours=-10)
        after = (end_day - when).days < SHIFT_DAYS_AGO
        rating = int(np.clip(round(rng.normal(4.4 if after else 3.2, 0.4)), 1, 5))
        text = (
            "Fewer retries and the signals arrive on time, thanks."
            if after
            else "Frustrating: runs keep failing and retrying, and the dashboard is slow."
        )
        feedback.append(feedback_row(rating, text, when, SOURCE, author=f"demo-user-{week % 3 + 1}"))
    planted = {
        "trend": (TREND_METRIC, TREND_PER_DAY),
        "weekly_seasonality": (SEASONAL_METRIC, WEEKEND_LIFT),
        "anomaly": (ANOMALY_METRIC, end_day - timedelta(days=ANOMALY_DAYS_AGO)),
        "level_shift": (SHIFT_METRIC, SHIFT, shipped),
    }
    return DemoHistory(pd.DataFrame(rows), improvement, feedback, planted)


def seed(
    wh: Warehouse, ks: KaizenSettings, end_day: datetime, days: int, seed_value: int, now: datetime
) -> int:
    """Write the demo history ending ``end_day``: readings the pipeline has not recorded, the improvement
    and the feedback (idempotent). Returns the number of new metric readings."""
    if days <= 0:
        return 0
    seeded = wh.scalar("SELECT count(*) FROM kaizen_metrics WHERE source = :source", {"source": SOURCE})
    if seeded:  # once: a later run must not move the history under readings already analysed
        return 0
    recorded = store.metric_history(wh)
    recorded = recorded[recorded["metric"].isin(_LEVELS)]
    levels = recorded.groupby("metric")["value"].mean().to_dict() if not recorded.empty else {}
    history = build(ks, end_day, days, seed_value, levels)
    frame = history.metrics.assign(collected_at=now)
    result = wh.upsert("kaizen_metrics", frame, update=False)  # a recorded reading wins
    existing = store.read_improvements(wh)
    if existing.empty or IMPROVEMENT_ID not in set(existing["improvement_id"]):
        store.log_improvement(wh, ks, **history.improvement, now=now)
    wh.upsert("feedback", history.feedback, update=False)
    return result.new_rows

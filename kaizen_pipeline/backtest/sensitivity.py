"""Sensitivity analysis: how the backtest's metrics move when one knob moves (pure).

One knob at a time from the baseline: fees and slippage times each of
``backtest.sensitivity.cost_multipliers``, and each signal threshold (RVR, ROC, hype) times (1 + c)
for c in ``backtest.sensitivity.threshold_changes``. Threshold rows re-derive the signals with the research
signal rule, so the whole table (baseline included) is built on rule-derived signals: every row
differs from the baseline in exactly one knob.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.research.signals import SignalThresholds

SENSITIVITY_METRICS = ["total_return", "sharpe", "max_drawdown", "win_rate", "num_trades"]
THRESHOLD_PARAMETERS = {"rvr_threshold": "rvr", "roc_threshold": "roc", "hype_threshold": "hype"}


@dataclass(frozen=True)
class SensitivityConfig:
    cost_multipliers: tuple[float, ...] = (0.5, 2.0, 4.0)
    threshold_changes: tuple[float, ...] = (-0.2, 0.2)

    @classmethod
    def from_settings(cls, settings: object) -> SensitivityConfig:
        sens = settings.backtest.sensitivity  # type: ignore[attr-defined]
        return cls(tuple(sens.cost_multipliers), tuple(sens.threshold_changes))


def sensitivity_table(
    features: pd.DataFrame,
    config: BookConfig,
    thresholds: SignalThresholds,
    sensitivity: SensitivityConfig,
    bucket_minutes: int,
) -> pd.DataFrame:
    """Rows: parameter, multiplier, value, SENSITIVITY_METRICS and each metric's change from the baseline."""
    grid = price_grid(features, config.price_floor) if len(features) else pd.DataFrame()

    def metrics_for(cfg: BookConfig, th: SignalThresholds) -> dict[str, float]:
        book = build_book(features, rule_signals(features, th, bucket_minutes), cfg, grid=grid)
        return run_book(book, cfg).book_metrics

    base_signals = rule_signals(features, thresholds, bucket_minutes)
    base_book = build_book(features, base_signals, config, grid=grid)
    rows: list[dict[str, object]] = []

    def add(parameter: str, multiplier: float, value: float, metrics: dict[str, float]) -> None:
        rows.append(
            {"parameter": parameter, "multiplier": multiplier, "value": value}
            | {m: metrics[m] for m in SENSITIVITY_METRICS}
        )

    add("baseline", 1.0, float("nan"), run_book(base_book, config).book_metrics)
    for name in ("fees", "slippage"):
        for mult in sensitivity.cost_multipliers:
            value = min(getattr(config, name) * mult, 0.99)
            cfg = replace(config, **{name: value})
            add(name, mult, value, run_book(base_book, cfg).book_metrics)
    for parameter, short in THRESHOLD_PARAMETERS.items():
        for change in sensitivity.threshold_changes:
            th = thresholds.scaled(short, 1 + change)
            add(parameter, 1 + change, getattr(th, short), metrics_for(config, th))
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    for m in SENSITIVITY_METRICS:
        table[f"{m}_change"] = table[m] - base[m]
    return table

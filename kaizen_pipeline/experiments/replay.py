"""Replayed demo days: the ingest and research assets run in process on a frozen demo clock moved forward.

Used by ``bench/ground_truth.py`` (the planted truth over a long window) and the slow end-to-end
experiment tests. The demo X search reaches back ``twitter.window_days`` (at most 7), so a window
longer than that keeps hype on every day only when the clock steps at most that far between runs.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dagster as dg

from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets, trade_volumes, tweets
from kaizen_pipeline.research.assets import hype_scores, market_features, trading_signals
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings

INGEST: tuple[dg.AssetsDefinition, ...] = (polymarket_markets, market_prices, trade_volumes, tweets)
SIGNALS: tuple[dg.AssetsDefinition, ...] = (hype_scores, market_features, trading_signals)


def frozen_at(settings: Settings, now: datetime) -> Settings:
    """``settings`` with the demo clock (and so the pipeline clock) frozen at ``now`` (naive UTC)."""
    return settings.model_copy(update={"demo": settings.demo.model_copy(update={"frozen_now": now})})


def run_at(
    settings: Settings,
    now: datetime,
    assets: Sequence[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` in process as of ``now``."""
    return dg.materialize(
        list(assets),
        resources=build_resources(frozen_at(settings, now)),
        instance=instance,
        raise_on_error=raise_on_error,
    )


# --- the demo configurations whose planted truth docs/experiments.md states (bench/ground_truth.py) ---

# Run unit: planted 503s that clear on retry. Lowering transport.backoff_base_seconds only saves time;
# transport.max_retries 0 fails most runs.
RUN_TRUTH_CONFIG: dict[str, Any] = {
    "data_collection": {"max_markets": 10, "history_days": 1, "trade_history_days": 1, "max_concurrency": 1},
    "demo": {"transient_error_rate": 0.3, "n_markets": 10},
    "transport": {"backoff_base_seconds": 0.25, "backoff_max_seconds": 0.5, "max_retries": 5},
}
# Market unit: a wide-spread book (fees 1%, slippage 2% a fill) that signals on every 2% move. The
# rule's gross edge is the planted hype lead and every extra trade pays costs, so raising
# signals.rvr_threshold 2 -> 3 earns more per market-day and signals.hype_threshold 70 -> 0 loses.
# The book-wide loss limits are lifted: they would halt both arms of an experiment together.
MARKET_TRUTH_CONFIG: dict[str, Any] = {
    "data_collection": {"max_markets": 50, "history_days": 8, "trade_history_days": 8},
    "demo": {"n_markets": 50, "history_days": 30},
    "signals": {"roc_threshold": 0.02},
    "backtest": {"fees": 0.01, "slippage": 0.02},
    "risk": {"daily": 1.0, "weekly": 1.0, "monthly": 1.0, "circuit_breaker": 1.0},
}
MARKET_TRUTH_CHANGES: dict[str, tuple[str, float]] = {
    "beneficial": ("signals.rvr_threshold", 3.0),
    "harmful": ("signals.hype_threshold", 0.0),
}

"""Replayed demo days: the ingest and research assets run in process on a frozen demo clock moved forward.

Used by ``bench/ground_truth.py`` (the planted truth over a long window) and the slow end-to-end
experiment tests. The demo X search reaches back ``twitter.window_days`` (at most 7), so a window
longer than that keeps hype on every day only when the clock steps at most that far between runs.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from kaizen_pipeline.experiments.assets import deployments, experiment_results, experiments, rollout_history
from kaizen_pipeline.experiments.store import ExperimentStore
from kaizen_pipeline.ingest.assets import market_prices, polymarket_markets, trade_volumes, tweets
from kaizen_pipeline.kaizen.assets import kaizen_metrics, recommendations
from kaizen_pipeline.loop.deployments import DeploymentStore
from kaizen_pipeline.research.assets import hype_scores, market_features, trading_signals
from kaizen_pipeline.resources import build_resources, warehouse_for
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
    log_level: str = "DEBUG",
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` in process as of ``now`` (``log_level``: the console's, WARNING for a bench)."""
    return dg.materialize(
        list(assets),
        resources=build_resources(frozen_at(settings, now)),
        instance=instance,
        raise_on_error=raise_on_error,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
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
# The book-wide loss limits are lifted: they would halt both arms of an experiment together. The paper
# book stakes 0.5% a trade (signals.max_position_pct; the per-market simulator stakes each market's own
# cash, so experiment metrics do not change): at 5% its equity is gone within a week of this costly
# rule and the circuit breaker would halt every signal for the rest of a replay.
MARKET_TRUTH_CONFIG: dict[str, Any] = {
    "data_collection": {"max_markets": 50, "history_days": 8, "trade_history_days": 8},
    "demo": {"n_markets": 50, "history_days": 30},
    # The planted changes move momentum thresholds, and the truth was measured on the momentum rule:
    # hype_lead's trades (the demo's planted edge, untouched by these changes) would only add noise
    # to every market's P&L, so the truth book runs the momentum rule alone.
    "signals": {"roc_threshold": 0.02, "max_position_pct": 0.5, "rules": ["momentum"]},
    "backtest": {"fees": 0.01, "slippage": 0.02},
    "risk": {"daily": 1.0, "weekly": 1.0, "monthly": 1.0, "circuit_breaker": 1.0},
}
MARKET_TRUTH_CHANGES: dict[str, tuple[str, float]] = {
    "beneficial": ("signals.rvr_threshold", 3.0),
    "harmful": ("signals.hype_threshold", 0.0),
}

# The closed loop on markets (the slow market end-to-end test and bench/closed_loop.py): two catalogue
# entries become experiments on the market truth; the winner ships and ramps through a rollout.
MARKET_LOOP_CONFIG: dict[str, Any] = {
    **MARKET_TRUTH_CONFIG,
    "experiments": {
        "max_days": 14,
        "min_units_per_arm": 10,
        "pre_period_days": 5,
        # dropping the hype filter is a step of 70, beyond the default autonomy: this user lets the loop try it
        "autonomy": {
            "signals.rvr_threshold": {"min": 1.0, "max": 10.0, "max_step": 1.5},
            "signals.hype_threshold": {"min": 0.0, "max": 100.0, "max_step": 70.0},
        },
    },
    # 5% of 50 markets is one to four (the canary is widened to rollouts.min_units_per_step): this user
    # accepts a canary of three markets (the default 5 would make it 10% of this small book)
    "rollouts": {"min_units_per_step": 3},
    "kaizen": {
        "catalogue": [
            {"key": "volume_confirms", "title": "Signal only when volume triples", "target_metric": "backtest_sharpe",
             "predicted_effect": 10.0, "cost_hours": 0.5, "parameter": "signals.rvr_threshold", "proposed_value": "3.0"},
            {"key": "drop_hype_filter", "title": "Signal without waiting for hype", "target_metric": "signals_per_day",
             "predicted_effect": 60.0, "cost_hours": 0.5, "parameter": "signals.hype_threshold", "proposed_value": "0"},
        ]
    },
}  # fmt: skip
LOOP_START = datetime(2026, 11, 20, 0, 5)


@dataclass
class LoopReplay:
    """The loop on replayed demo days: :meth:`begin` drafts and starts the experiments, each :meth:`day`
    moves the clock a day and runs ingest, signals, the experiments' and the rollouts' looks."""

    settings: Settings
    instance: dg.DagsterInstance
    now: datetime = LOOP_START
    log_level: str = "DEBUG"
    experiment_ids: dict[str, str] = field(default_factory=dict)  # catalogue key -> experiment id

    def begin(self) -> dict[str, str]:
        """A week of posts and 8 days of prices, the kaizen metrics and recommendations, the experiments."""
        run_at(self.settings, self.now, [*INGEST, *SIGNALS], self.instance, log_level=self.log_level)
        run_at(
            self.settings,
            self.now,
            [kaizen_metrics, recommendations],
            self.instance,
            log_level=self.log_level,
        )
        run_at(self.settings, self.now, [experiments], self.instance, log_level=self.log_level)
        frame = ExperimentStore(self.warehouse).frame()
        self.experiment_ids = dict(zip(frame["catalogue_key"], frame["experiment_id"], strict=True))
        return self.experiment_ids

    @property
    def warehouse(self) -> Any:
        return warehouse_for(self.settings.database.sqlalchemy_url())

    def day(self) -> dg.ExecuteInProcessResult:
        """The next day: ingest and signals, then experiment_results, deployments and rollout_history."""
        self.now += timedelta(days=1)
        run_at(self.settings, self.now, [*INGEST, *SIGNALS], self.instance, log_level=self.log_level)
        return run_at(
            self.settings, self.now, [experiment_results, deployments, rollout_history], self.instance
        )

    def rollout_of(self, catalogue_key: str) -> dict[str, Any] | None:
        """The rollout the experiment of ``catalogue_key`` was handed to, if it shipped."""
        exp_id = self.experiment_ids.get(catalogue_key)
        return DeploymentStore(self.warehouse).for_source(exp_id) if exp_id else None

    def settled(self, catalogue_key: str) -> bool:
        """No experiment runs and the rollout of ``catalogue_key`` (if any) has finished."""
        if not ExperimentStore(self.warehouse).frame("running").empty:
            return False
        rollout = self.rollout_of(catalogue_key)
        return rollout is None or rollout["state"] in ("complete", "rolled_back")

"""Backtest: vectorized engine, metrics, Monte Carlo, scenarios, sensitivity, walk-forward."""

from kaizen_pipeline.backtest.engine import BacktestResult, CostModel, simulate_signals

__all__ = ["BacktestResult", "CostModel", "simulate_signals"]

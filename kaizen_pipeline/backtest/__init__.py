"""Backtest: vectorized engine, metrics, Monte Carlo, scenarios, sensitivity, walk-forward."""

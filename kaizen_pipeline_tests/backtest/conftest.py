"""Backtest fixtures: synthetic market features and one shared vectorbt warm-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest


def synthetic_features(n_markets: int = 6, n_bars: int = 960, seed: int = 3) -> pd.DataFrame:
    """market_features-like rows: logistic random-walk yes_price, ROC over 4 bars, noisy RVR and hype."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01", periods=n_bars, freq="15min")
    logit = rng.normal(0, 1, (n_markets, 1)) + np.cumsum(rng.normal(0, 0.05, (n_markets, n_bars)), axis=1)
    price = 1 / (1 + np.exp(-logit))
    roc = np.full_like(price, np.nan)
    roc[:, 4:] = price[:, 4:] / price[:, :-4] - 1
    return pd.DataFrame(
        {
            "market_id": np.repeat([f"m{i}" for i in range(n_markets)], n_bars),
            "bucket_ts": np.tile(index, n_markets),
            "yes_price": price.ravel(),
            "rvr": rng.lognormal(0.3, 0.6, n_markets * n_bars),
            "roc": roc.ravel(),
            "hype_index": rng.uniform(0, 100, n_markets * n_bars),
        }
    )


@pytest.fixture
def make_features() -> Callable[..., pd.DataFrame]:
    return synthetic_features


@pytest.fixture(scope="session")
def vbt() -> Any:
    """vectorbt, imported and compiled once per session (its first call JIT-compiles with numba)."""
    vectorbt = pytest.importorskip(
        "vectorbt", reason='vectorbt is not installed: the parity test needs pip install -e ".[parity]"'
    )
    close = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    vectorbt.Portfolio.from_signals(
        close, close > 1.5, close > 2.5, fees=0.01, slippage=0.01, init_cash=100.0
    ).value()
    return vectorbt

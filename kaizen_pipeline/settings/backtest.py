"""The backtest section and its studies: Monte Carlo, stress, sensitivity, walk-forward and tuning."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kaizen_pipeline.settings._base import _reject_moved, _Section


class MonteCarloSettings(_Section):
    """Monte Carlo study of the backtest: randomized entry timing and a bootstrap of trade returns."""

    runs: int = Field(1000, ge=1, le=100_000, description="Randomized runs per study.")
    shift_bars: int = Field(
        4, ge=0, le=2880, description="Each entry moves by a uniform random number of bars."
    )
    shift_mode: Literal["delay", "symmetric"] = Field(
        "delay", description="delay: 0..N bars late (never before its signal); symmetric: -N..N."
    )
    seed: int = Field(42, description="Seed of both studies (run r uses the stream (seed, r)).")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of VaR and CVaR.")


class StressSettings(_Section):
    """Named stress scenarios of the backtest."""

    liquidity_slippage_multiplier: float = Field(
        5, ge=1, le=1000, description="Liquidity crunch: slippage x N."
    )
    volatility_multiplier: float = Field(3, gt=0, le=100, description="Every bar's log-odds move x N.")
    resolution_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Sudden resolution: share of traded columns resolving against the position.",
    )
    volume_collapse_delay_bars: int = Field(
        4, ge=0, le=2880, description="Volume collapse: fills wait N bars."
    )
    volume_collapse_slippage_multiplier: float = Field(
        3, ge=1, le=1000, description="Volume collapse: slippage x N."
    )


class SensitivitySettings(_Section):
    """One-at-a-time sensitivity of the backtest metrics to costs and signal thresholds."""

    cost_multipliers: list[float] = Field(
        default_factory=lambda: [0.5, 2.0, 4.0], description="fees / slippage x N."
    )
    threshold_changes: list[float] = Field(
        default_factory=lambda: [-0.2, 0.2], description="Relative change of each signal threshold."
    )

    @model_validator(mode="after")
    def _sane(self) -> SensitivitySettings:
        if any(m < 0 for m in self.cost_multipliers):
            raise ValueError("cost_multipliers must be >= 0")
        if any(not -1 < c < 10 for c in self.threshold_changes):
            raise ValueError("threshold_changes must be in (-1, 10)")
        return self


class WalkForwardSettings(_Section):
    """Rolling walk-forward: pick thresholds by grid search on each train window, test out of sample."""

    train_bars: int = Field(
        672, ge=16, le=100_000, description="Train window (672 = 7 days of 15-minute bars)."
    )
    test_bars: int = Field(192, ge=4, le=100_000, description="Test window; windows step by this much.")
    objective: Literal["sharpe", "total_return", "calmar"] = Field(
        "sharpe", description="Metric maximized in train."
    )
    rvr_grid: list[float] = Field(
        default_factory=lambda: [1.5, 2.0, 3.0], description="RVR thresholds searched."
    )
    roc_grid: list[float] = Field(
        default_factory=lambda: [0.05, 0.10, 0.15], description="ROC thresholds searched."
    )
    hype_grid: list[float] = Field(
        default_factory=lambda: [50.0, 70.0], description="Hype thresholds searched."
    )

    @model_validator(mode="after")
    def _grids(self) -> WalkForwardSettings:
        for name in ("rvr_grid", "roc_grid", "hype_grid"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
        if any(v <= 0 for v in self.rvr_grid + self.roc_grid):
            raise ValueError("rvr_grid and roc_grid values must be > 0")
        if any(not 0 <= v <= 100 for v in self.hype_grid):
            raise ValueError("hype_grid values must be in [0, 100]")
        return self


class TuningSettings(_Section):
    """Optuna tuning of the signal parameters per category and market on the walk-forward windows."""

    n_trials: int = Field(30, ge=1, le=10_000, description="Optuna trials per study (scope x window).")
    seed: int = Field(42, description="TPE sampler seed (mixed with each study's scope and window).")
    max_windows: int = Field(
        4, ge=1, le=1000, description="Newest walk-forward windows tuned (train/test bars: walk_forward)."
    )
    min_trades: int = Field(
        5,
        ge=0,
        le=100_000,
        description="A book with fewer trades in a window scores 0 (its Sharpe is noise).",
    )
    per_market_min_trades: int = Field(
        40,
        ge=1,
        le=1_000_000,
        description="Markets with at least this many trades at the config values get their own studies.",
    )
    min_windows: int = Field(
        2,
        ge=1,
        le=1000,
        description="Decided windows (tuned and config scored differently out of sample) a scope needs "
        "before its tuned values may be proposed.",
    )
    hour_of_day: bool = Field(
        True,
        description="Offer the time-of-day option: the ROC threshold scaled by the UTC hour's relative volatility.",
    )


class BacktestSettings(_Section):
    """The backtest engine's costs and exit rule, and its studies (Monte Carlo, stress, sensitivity, walk-forward)."""

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        return _reject_moved(data, "backtest")

    init_cash: float = Field(100.0, gt=0, description="Starting cash of every backtested column.")
    fees: float = Field(0.002, ge=0, lt=1, description="Fee per fill, as a fraction of traded value.")
    slippage: float = Field(0.005, ge=0, lt=1, description="Fill price = close x (1 +/- slippage).")
    exit_on_opposite_signal: bool = Field(
        True, description="A NO signal closes a YES position of the market and back."
    )
    bars_per_year: float | None = Field(
        None,
        gt=0,
        description="Annualization (null: 365 days of data_collection.frequency_minutes bars = 35040).",
    )
    price_floor: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="Prices are clipped into [floor, 1 - floor] (a resolved token is worth floor).",
    )
    chunk_cells: int = Field(
        4_000_000, ge=10_000, description="Bars x columns simulated at once (memory bound)."
    )
    monte_carlo: MonteCarloSettings = Field(default_factory=MonteCarloSettings)
    stress: StressSettings = Field(default_factory=StressSettings)
    sensitivity: SensitivitySettings = Field(default_factory=SensitivitySettings)
    walk_forward: WalkForwardSettings = Field(default_factory=WalkForwardSettings)
    tuning: TuningSettings = Field(default_factory=TuningSettings)

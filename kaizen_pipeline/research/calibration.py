"""Win probabilities of signals learned from earlier signals' outcomes, walk-forward (pure).

Outcome of a signal: the bought token's price ``hold_buckets`` after its fill (the paper book's
time exit), on the price grid; a token that resolves pays 0 or 1 and its price says so. It is
known from that exit bucket on, and not before. The market's own probability of the token paying
out is the price at the signal's bucket (``signal_price``); a forecast beats the market when its
Brier score, mean (p - outcome)^2, is lower.

Model (per rule), a logistic regression with the market's log-odds as offset (Platt scaling
around the market price, statsmodels GLM, binomial family, fractional outcomes):
    logit(p) = logit(q) + a + b x strength
fitted at each refit time tau (every ``refit_hours``) on the rule's signals whose outcome was
known by tau, and applied to the signals decided in [tau, next tau). With n such signals the
fitted shift is shrunk toward the market, w = n / (n + ``prior_signals``):
    p = sigmoid(logit(q) + w x (a + b x strength))
so thin history trusts the price, and fewer than ``min_signals`` outcomes use the price itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, buckets

_CLIP = 1e-3


@dataclass(frozen=True)
class CalibrationConfig:
    """Refit cadence, shrinkage prior and the history floor of the calibration."""

    refit_hours: float = 24.0
    prior_signals: float = 30.0
    min_signals: int = 10
    hold_buckets: int = 16
    bucket_minutes: int = DEFAULT_BUCKET_MINUTES


def _logit(p: np.ndarray | pd.Series) -> np.ndarray:
    x = np.clip(np.asarray(p, dtype=float), _CLIP, 1 - _CLIP)
    return np.log(x / (1 - x))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def signal_outcomes(signals: pd.DataFrame, grid: pd.DataFrame, config: CalibrationConfig) -> pd.DataFrame:
    """``signals`` with ``outcome`` (token price at the exit bucket) and ``outcome_at`` (NaN/NaT if not yet).

    ``grid``: YES price per bucket (rows) and market (columns), as backtest.book.price_grid builds it.
    """
    out = signals.copy()
    out["outcome"] = np.nan
    out["outcome_at"] = pd.NaT
    if out.empty or grid.empty:
        return out
    index = pd.DatetimeIndex(grid.index)
    exit_ts = pd.to_datetime(out["fill_ts"]) + buckets(config.hold_buckets, config.bucket_minutes)
    pos = index.searchsorted(exit_ts.to_numpy(), side="left")
    inside = (pos < len(index)) & out["market_id"].isin(grid.columns).to_numpy()
    if not inside.any():
        return out
    cols = grid.columns.get_indexer(out.loc[inside, "market_id"])
    yes = grid.to_numpy(dtype=float)[pos[inside], cols]
    token = np.where(out.loc[inside, "direction"].to_numpy() == "YES", yes, 1.0 - yes)
    out.loc[inside, "outcome"] = token
    out.loc[inside, "outcome_at"] = index[pos[inside]]
    return out


@dataclass(frozen=True)
class Calibrator:
    """One rule's fitted shift (a, b) and the signals it learned from."""

    a: float = 0.0
    b: float = 0.0
    n: int = 0
    prior_signals: float = 30.0

    def predict(self, price: np.ndarray | pd.Series, strength: np.ndarray | pd.Series) -> np.ndarray:
        w = self.n / (self.n + self.prior_signals) if self.n else 0.0
        shift = w * (self.a + self.b * np.asarray(strength, dtype=float))
        return _sigmoid(_logit(price) + shift)


def fit_calibrator(history: pd.DataFrame, config: CalibrationConfig) -> Calibrator:
    """Fit the offset logistic model on rows with signal_price, strength and a known outcome."""
    rows = history.dropna(subset=["outcome", "signal_price", "strength"])
    n = len(rows)
    if n < config.min_signals:
        return Calibrator(n=0, prior_signals=config.prior_signals)
    import statsmodels.api as sm

    y = np.clip(rows["outcome"].to_numpy(dtype=float), 0.0, 1.0)
    strength = rows["strength"].to_numpy(dtype=float)
    exog = np.column_stack([np.ones(n), strength]) if np.ptp(strength) > 1e-9 else np.ones((n, 1))
    offset = _logit(rows["signal_price"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fractional outcomes: the binomial family warns, the fit is fine
        try:
            fit = sm.GLM(y, exog, family=sm.families.Binomial(), offset=offset).fit()
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            return Calibrator(n=0, prior_signals=config.prior_signals)
    params = np.asarray(fit.params, dtype=float)
    if not np.all(np.isfinite(params)):
        return Calibrator(n=0, prior_signals=config.prior_signals)
    # a separated sample (every outcome 1) drives the fit to infinity: bound the log-odds shift
    params = np.clip(params, -5.0, 5.0)
    return Calibrator(
        a=float(params[0]),
        b=float(params[1]) if len(params) > 1 else 0.0,
        n=n,
        prior_signals=config.prior_signals,
    )


def calibrate_walk_forward(signals: pd.DataFrame, config: CalibrationConfig) -> pd.DataFrame:
    """``signals`` (with outcomes) plus ``win_prob`` and ``calibration_n``, each from earlier outcomes only.

    Per rule (column ``rule``; missing = momentum) and refit time tau = the signal's bucket floored
    to ``refit_hours``: fitted on that rule's signals whose ``outcome_at`` <= tau.
    """
    out = signals.copy()
    out["win_prob"] = np.nan
    out["calibration_n"] = 0
    if out.empty:
        return out
    rules = out["rule"].fillna("momentum") if "rule" in out else pd.Series("momentum", index=out.index)
    step = pd.Timedelta(hours=config.refit_hours)
    tau = pd.to_datetime(out["bucket_ts"]).dt.floor(step)
    outcome_at = pd.to_datetime(out["outcome_at"])
    for rule in rules.unique():
        in_rule = rules == rule
        for t in sorted(tau[in_rule].unique()):
            target = in_rule & (tau == t)
            known = in_rule & outcome_at.notna() & (outcome_at <= t)
            model = fit_calibrator(out.loc[known], config)
            out.loc[target, "win_prob"] = model.predict(
                out.loc[target, "signal_price"], out.loc[target, "strength"]
            )
            out.loc[target, "calibration_n"] = model.n
    return out


def brier(prob: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray) -> float:
    """Mean squared error of probabilities against outcomes in [0, 1] (NaN pairs left out)."""
    p = np.asarray(prob, dtype=float)
    y = np.asarray(outcome, dtype=float)
    ok = np.isfinite(p) & np.isfinite(y)
    return float(np.mean((p[ok] - y[ok]) ** 2)) if ok.any() else float("nan")


RELIABILITY_COLUMNS = [
    "rule", "bin", "n", "mean_predicted", "mean_market", "mean_outcome", "brier", "brier_market",
]  # fmt: skip


def reliability_table(scored: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Per rule (and ``*`` for all): a totals row (bin -1) and one row per predicted-probability bin.

    ``scored``: rule, win_prob, signal_price, outcome (rows without an outcome are left out).
    """
    rows = scored.dropna(subset=["win_prob", "signal_price", "outcome"]).copy()
    if rows.empty:
        return pd.DataFrame(columns=RELIABILITY_COLUMNS)
    rows["rule"] = rows["rule"].fillna("momentum") if "rule" in rows else "momentum"
    rows["bin"] = np.minimum((rows["win_prob"].astype(float) * bins).astype(int), bins - 1)
    out = []
    groups = [("*", rows), *((str(r), g) for r, g in rows.groupby("rule", sort=True))]
    for rule, group in groups:
        for b, part in [(-1, group), *group.groupby("bin", sort=True)]:
            out.append(
                {
                    "rule": rule,
                    "bin": int(b),
                    "n": len(part),
                    "mean_predicted": float(part["win_prob"].mean()),
                    "mean_market": float(part["signal_price"].mean()),
                    "mean_outcome": float(part["outcome"].mean()),
                    "brier": brier(part["win_prob"], part["outcome"]),
                    "brier_market": brier(part["signal_price"], part["outcome"]),
                }
            )
    return pd.DataFrame(out, columns=RELIABILITY_COLUMNS)

"""Performance metrics of equity curves and trades, vectorized over columns (pure numpy/pandas).

Definitions (per column; r_t = E_t / E_{t-1} - 1 with E_{-1} = initial cash; N = number of bars;
A = bars per year; risk-free rate 0):

- total_return = E_{N-1} / E_{-1} - 1
- annualized_return = (1 + total_return) ** (A / N) - 1
- annualized_volatility = std(r, ddof=1) * sqrt(A)
- sharpe = mean(r) / std(r, ddof=1) * sqrt(A)
- sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(A)
- max_drawdown = max_t (1 - E_t / peak_t), peak_t = max(E_{-1}, E_0, ..., E_t) (a positive fraction)
- max_drawdown_duration = longest run of consecutive bars with E_t < peak_t, in bars
- calmar = annualized_return / max_drawdown
- win_rate = share of closed trades with P&L > 0
- profit_factor = gross profit / gross loss of closed trades (inf without a losing trade)
- expectancy = mean P&L per closed trade, in cash units (each column trades its own initial cash)
- avg_trade_return = mean return per closed trade (P&L over the entry's traded value)
- exposure_time = share of bars with an open position
- num_trades = closed + open trades; num_closed_trades = closed trades

A ratio whose denominator is 0 (a flat equity curve, no trade) is NaN: undefined, not zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EQUITY_METRICS = [
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
]
TRADE_METRICS = [
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_trade_return",
    "exposure_time",
    "num_trades",
    "num_closed_trades",
]
METRIC_COLUMNS = [*EQUITY_METRICS, *TRADE_METRICS, "final_equity"]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def drawdown_stats(equity: np.ndarray, init_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """Max drawdown (positive fraction) and its longest duration in bars, per row of (rows x bars)."""
    n_rows, n_bars = equity.shape
    if n_bars == 0:
        return np.zeros(n_rows), np.zeros(n_rows, dtype=np.int64)
    peak = np.maximum.accumulate(equity, axis=1)
    np.maximum(peak, init_cash, out=peak)
    underwater = equity < peak
    drawdown = 1.0 - equity / peak
    max_dd = drawdown.max(axis=1)
    idx = np.arange(n_bars)
    last_peak = np.where(underwater, -1, idx)
    np.maximum.accumulate(last_peak, axis=1, out=last_peak)
    duration = np.where(underwater, idx - last_peak, 0).max(axis=1)
    return max_dd, duration


def equity_metrics(equity: np.ndarray, init_cash: float, bars_per_year: float) -> dict[str, np.ndarray]:
    """The equity-curve metrics of the module docstring for each row of (rows x bars)."""
    n_rows, n_bars = equity.shape
    if n_bars == 0:
        nan = np.full(n_rows, np.nan)
        return {m: nan.copy() for m in EQUITY_METRICS} | {"final_equity": np.full(n_rows, init_cash)}
    prev = np.empty_like(equity)
    prev[:, 0] = init_cash
    prev[:, 1:] = equity[:, :-1]
    rets = equity / prev - 1.0
    mean = rets.mean(axis=1)
    std = rets.std(axis=1, ddof=1) if n_bars > 1 else np.full(n_rows, np.nan)
    downside = np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2, axis=1))
    final = equity[:, -1]
    total = final / init_cash - 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        ann_ret = np.where(final > 0, (final / init_cash) ** (bars_per_year / n_bars) - 1.0, -1.0)
    root = np.sqrt(bars_per_year)
    max_dd, dd_dur = drawdown_stats(equity, init_cash)
    return {
        "total_return": total,
        "annualized_return": ann_ret,
        "annualized_volatility": std * root,
        "sharpe": _safe_div(mean, std) * root,
        "sortino": _safe_div(mean, downside) * root,
        "max_drawdown": max_dd,
        "max_drawdown_duration": dd_dur,
        "calmar": _safe_div(ann_ret, max_dd),
        "final_equity": final,
    }


def trade_metrics(
    trade_col: np.ndarray,
    pnl: np.ndarray,
    ret: np.ndarray,
    closed: np.ndarray,
    bars_held: np.ndarray,
    n_cols: int,
    n_bars: int,
) -> dict[str, np.ndarray]:
    """Trade statistics per column from aligned trade arrays (``trade_col`` in 0..n_cols-1)."""
    c = trade_col[closed]
    p = pnl[closed]
    n_closed = np.bincount(c, minlength=n_cols).astype(float)
    wins = np.bincount(c, weights=(p > 0).astype(float), minlength=n_cols)
    gross_win = np.bincount(c, weights=np.where(p > 0, p, 0.0), minlength=n_cols)
    gross_loss = -np.bincount(c, weights=np.where(p < 0, p, 0.0), minlength=n_cols)
    profit_factor = _safe_div(gross_win, gross_loss)
    profit_factor[(gross_loss == 0) & (gross_win > 0)] = np.inf
    held = np.bincount(trade_col, weights=bars_held.astype(float), minlength=n_cols)
    return {
        "win_rate": _safe_div(wins, n_closed),
        "profit_factor": profit_factor,
        "expectancy": _safe_div(np.bincount(c, weights=p, minlength=n_cols), n_closed),
        "avg_trade_return": _safe_div(np.bincount(c, weights=ret[closed], minlength=n_cols), n_closed),
        "exposure_time": held / n_bars if n_bars else np.full(n_cols, np.nan),
        "num_trades": np.bincount(trade_col, minlength=n_cols).astype(np.int64),
        "num_closed_trades": n_closed.astype(np.int64),
    }


def metrics_table(
    equity: np.ndarray,
    trade_col: np.ndarray,
    pnl: np.ndarray,
    ret: np.ndarray,
    closed: np.ndarray,
    bars_held: np.ndarray,
    init_cash: float,
    bars_per_year: float,
) -> pd.DataFrame:
    """All METRIC_COLUMNS for each row of ``equity`` (rows x bars)."""
    n_cols, n_bars = equity.shape
    data = equity_metrics(equity, init_cash, bars_per_year)
    data |= trade_metrics(trade_col, pnl, ret, closed, bars_held, n_cols, n_bars)
    return pd.DataFrame({m: data[m] for m in METRIC_COLUMNS})


def book_metrics(
    book_equity: np.ndarray,
    pnl: np.ndarray,
    ret: np.ndarray,
    closed: np.ndarray,
    exposure_time: float,
    init_cash: float,
    bars_per_year: float,
) -> dict[str, float]:
    """Metrics of one book: its equity curve plus all of its trades pooled.

    ``exposure_time`` is passed in (for an equal-weight book: the mean of its columns' exposure,
    the average share of capital-time in a position).
    """
    eq = equity_metrics(book_equity.reshape(1, -1), init_cash, bars_per_year)
    tr = trade_metrics(
        np.zeros(len(pnl), dtype=np.int64), pnl, ret, closed, np.zeros(len(pnl)), 1, max(book_equity.size, 1)
    )
    out = {k: float(v[0]) for k, v in eq.items()}
    out |= {k: float(v[0]) for k, v in tr.items()}
    out["exposure_time"] = float(exposure_time)
    out["num_trades"] = int(len(pnl))
    out["num_closed_trades"] = int(closed.sum())
    return {m: out[m] for m in METRIC_COLUMNS}

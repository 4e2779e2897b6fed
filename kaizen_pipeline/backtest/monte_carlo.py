"""Monte Carlo studies of a backtest: randomized entry timing and a bootstrap of trade returns (pure).

Entry timing: in run r every entry moves by its own uniform random offset, drawn from the
stream ``(seed, r)`` so a run's inputs do not depend on how runs are chunked: 0..shift_bars bars
late with ``shift_mode="delay"`` (the default: a fill never precedes its signal, so the study
measures late execution without look-ahead), -shift_bars..shift_bars with ``"symmetric"``;
shifted bars are clipped to the data. Time exits follow their shifted entries
(``holding_bars`` later); opposite-signal exits, being market events, stay where they are.
Every run is simulated by the vectorized engine as columns of one array (chunked to bound
memory); the result per run is the book's total return and max drawdown. With
``shift_bars = 0`` every run reproduces the backtest.

Trade bootstrap: each run draws as many trades as the backtest made, with replacement, from its
trade returns and compounds them in sequence, each trade staking an equal 1/columns share of the
book: equity_k = prod_{j<=k} (1 + r_j / columns).

Summary per study: percentiles (5, 25, 50, 75, 95) of total return and of max drawdown, the
probability of a loss (total return < 0), VaR = -q_{1-c}(return) and CVaR = -mean(return |
return <= q_{1-c}) at confidence c (positive numbers are losses), and where the actual result
ranks among the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.backtest.engine import CostModel, events_from_lists, trades_from_events
from kaizen_pipeline.backtest.metrics import drawdown_stats
from kaizen_pipeline.backtest.run import BookRun

PERCENTILES = (5, 25, 50, 75, 95)
BOOTSTRAP_STREAM = 0xB007  # seed-sequence tag separating the bootstrap from the timing runs


def jittered_events(
    entry_col: np.ndarray,
    entry_bar: np.ndarray,
    fixed_exit_col: np.ndarray,
    fixed_exit_bar: np.ndarray,
    runs: np.ndarray,
    *,
    n_cols: int,
    n_bars: int,
    shift_bars: int,
    holding_bars: int,
    seed: int,
    shift_mode: str = "delay",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal events of ``runs`` (run k of the list owns columns k*n_cols .. k*n_cols+n_cols-1).

    Returns unsorted ``(col, bar, is_entry)``; feed them to ``events_from_lists``.
    """
    n_runs = len(runs)
    if shift_mode not in ("delay", "symmetric"):
        raise ValueError(f"shift_mode must be 'delay' or 'symmetric' (got {shift_mode!r})")
    low = 0 if shift_mode == "delay" else -shift_bars
    if shift_bars > 0 and len(entry_bar):
        offsets = np.stack(
            [
                np.random.default_rng([seed, int(r)]).integers(low, shift_bars + 1, len(entry_bar))
                for r in runs
            ]
        )
    else:
        offsets = np.zeros((n_runs, len(entry_bar)), dtype=np.int64)
    bars = np.clip(entry_bar[None, :] + offsets, 0, n_bars - 1)
    base = (np.arange(n_runs, dtype=np.int64) * n_cols)[:, None]
    cols = base + entry_col[None, :]
    parts_col = [cols.ravel()]
    parts_bar = [bars.ravel()]
    parts_entry = [np.ones(cols.size, dtype=bool)]
    if holding_bars > 0:
        exit_bars = bars + holding_bars
        keep = exit_bars < n_bars
        parts_col.append(cols[keep])
        parts_bar.append(exit_bars[keep])
        parts_entry.append(np.zeros(int(keep.sum()), dtype=bool))
    if len(fixed_exit_bar):
        fcols = base + fixed_exit_col[None, :]
        parts_col.append(fcols.ravel())
        parts_bar.append(np.broadcast_to(fixed_exit_bar, fcols.shape).ravel())
        parts_entry.append(np.zeros(fcols.size, dtype=bool))
    return np.concatenate(parts_col), np.concatenate(parts_bar), np.concatenate(parts_entry)


def events_to_dense(
    col: np.ndarray, bar: np.ndarray, is_entry: np.ndarray, n_cols: int, n_bars: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (columns x bars) entries and exits holding the events (for a peer engine)."""
    entries = np.zeros((n_cols, n_bars), dtype=bool)
    exits = np.zeros((n_cols, n_bars), dtype=bool)
    entries[col[is_entry], bar[is_entry]] = True
    exits[col[~is_entry], bar[~is_entry]] = True
    return entries, exits


def book_equity_of_runs(
    col: np.ndarray,
    bar: np.ndarray,
    is_entry: np.ndarray,
    close: np.ndarray,
    n_runs: int,
    *,
    costs: CostModel,
    init_cash: float,
) -> np.ndarray:
    """Equal-weight book equity (runs x bars) of runs whose columns share ``close`` (columns x bars)."""
    n_cols, n_bars = close.shape
    col, bar, is_entry = events_from_lists(col, bar, is_entry, n_bars)
    trades = trades_from_events(
        col, bar, is_entry, close, costs=costs, init_cash=init_cash, close_row=col_row(n_runs, n_cols)
    )
    units = np.zeros((n_runs * n_cols, n_bars))
    units[trades.col, trades.entry_idx] = trades.size
    c = trades.closed
    units[trades.col[c], trades.exit_idx[c]] = -trades.size[c]
    np.cumsum(units, axis=1, out=units)
    value = np.einsum("rct,ct->rt", units.reshape(n_runs, n_cols, n_bars), close)
    del units
    run = trades.col // n_cols
    flows = np.bincount(
        run * n_bars + trades.entry_idx, weights=-trades.cash_before, minlength=n_runs * n_bars
    )
    flows += np.bincount(
        run[c] * n_bars + trades.exit_idx[c], weights=trades.cash_after[c], minlength=n_runs * n_bars
    )
    cash = flows.reshape(n_runs, n_bars)
    cash[:, 0] += init_cash * n_cols
    np.cumsum(cash, axis=1, out=cash)
    value += cash
    value /= n_cols
    return value


def col_row(n_runs: int, n_cols: int) -> np.ndarray:
    return np.tile(np.arange(n_cols), n_runs)


@dataclass
class TimingInputs:
    """The backtest a timing study perturbs: (columns x bars) close, entries and fixed exits."""

    close: np.ndarray
    entries: np.ndarray
    fixed_exits: np.ndarray
    holding_bars: int

    def trimmed(self, shift_bars: int) -> TimingInputs:
        """Drop leading bars no shifted entry can reach: the book is flat at its initial cash there."""
        bars_with_entry = np.flatnonzero(self.entries.any(axis=0))
        if len(bars_with_entry) == 0:
            return self
        lo = max(0, int(bars_with_entry[0]) - shift_bars)
        if lo == 0:
            return self
        return TimingInputs(
            self.close[:, lo:], self.entries[:, lo:], self.fixed_exits[:, lo:], self.holding_bars
        )


def entry_timing_runs(
    inputs: TimingInputs,
    *,
    runs: int,
    shift_bars: int,
    seed: int,
    costs: CostModel,
    init_cash: float,
    shift_mode: str = "delay",
    chunk_cells: int = 8_000_000,
) -> pd.DataFrame:
    """One row per run: total_return and max_drawdown of the book with randomized entry timing."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1 (got {runs})")
    n_cols = inputs.close.shape[0]
    if n_cols == 0 or not inputs.entries.any():
        return pd.DataFrame({"run": np.arange(runs), "total_return": 0.0, "max_drawdown": 0.0})
    inputs = inputs.trimmed(shift_bars if shift_mode == "symmetric" else 0)
    n_bars = inputs.close.shape[1]
    entry_col, entry_bar = np.nonzero(inputs.entries)
    fixed_col, fixed_bar = np.nonzero(inputs.fixed_exits)
    per_chunk = max(1, chunk_cells // (n_cols * n_bars))
    total = np.empty(runs)
    drawdown = np.empty(runs)
    for lo in range(0, runs, per_chunk):
        run_ids = np.arange(lo, min(lo + per_chunk, runs))
        col, bar, is_entry = jittered_events(
            entry_col, entry_bar, fixed_col, fixed_bar, run_ids,
            n_cols=n_cols, n_bars=n_bars, shift_bars=shift_bars, holding_bars=inputs.holding_bars, seed=seed,
            shift_mode=shift_mode,
        )  # fmt: skip
        equity = book_equity_of_runs(
            col, bar, is_entry, inputs.close, len(run_ids), costs=costs, init_cash=init_cash
        )
        total[run_ids] = equity[:, -1] / init_cash - 1.0
        drawdown[run_ids] = drawdown_stats(equity, init_cash)[0]
    return pd.DataFrame({"run": np.arange(runs), "total_return": total, "max_drawdown": drawdown})


def trade_bootstrap_runs(
    trade_returns: np.ndarray, n_columns: int, *, runs: int, seed: int, chunk_cells: int = 8_000_000
) -> pd.DataFrame:
    """One row per run: total_return and max_drawdown of a resampled sequence of trade returns."""
    n = len(trade_returns)
    if n == 0 or n_columns == 0:
        return pd.DataFrame({"run": np.arange(runs), "total_return": 0.0, "max_drawdown": 0.0})
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    stake = np.asarray(trade_returns, dtype=float) / n_columns
    total = np.empty(runs)
    drawdown = np.empty(runs)
    per_chunk = max(1, chunk_cells // n)
    for lo in range(0, runs, per_chunk):
        hi = min(lo + per_chunk, runs)
        path = np.cumprod(1.0 + stake[rng.integers(0, n, size=(hi - lo, n))], axis=1)
        total[lo:hi] = path[:, -1] - 1.0
        drawdown[lo:hi] = drawdown_stats(path, 1.0)[0]
    return pd.DataFrame({"run": np.arange(runs), "total_return": total, "max_drawdown": drawdown})


def summarize_runs(
    runs: pd.DataFrame, actual_return: float, actual_drawdown: float, confidence: float
) -> dict[str, float]:
    """Distribution summary of a study (module docstring)."""
    ret = runs["total_return"].to_numpy(dtype=float)
    dd = runs["max_drawdown"].to_numpy(dtype=float)
    q = float(np.quantile(ret, 1 - confidence))
    out: dict[str, float] = {
        "runs": int(len(ret)),
        "actual_return": actual_return,
        "actual_max_drawdown": actual_drawdown,
    }
    for p in PERCENTILES:
        out[f"return_p{p:02d}"] = float(np.percentile(ret, p))
    for p in PERCENTILES:
        out[f"drawdown_p{p:02d}"] = float(np.percentile(dd, p))
    out["mean_return"] = float(ret.mean())
    out["prob_loss"] = float((ret < 0).mean())
    out["var"] = -q
    out["cvar"] = -float(ret[ret <= q].mean())
    # runs equal to the actual result up to float noise count as at-or-below it
    tolerance = 1e-12 * max(1.0, abs(actual_return))
    out["actual_percentile"] = float((ret <= actual_return + tolerance).mean() * 100)
    return out


@dataclass(frozen=True)
class MonteCarloConfig:
    runs: int = 1000
    shift_bars: int = 4
    shift_mode: str = "delay"
    seed: int = 42
    confidence: float = 0.95

    @classmethod
    def from_settings(cls, settings: object) -> MonteCarloConfig:
        return cls(**settings.backtest.monte_carlo.model_dump())  # type: ignore[attr-defined]


@dataclass
class MonteCarloResult:
    summary: pd.DataFrame  # one row per study
    timing: pd.DataFrame  # one row per entry-timing run
    bootstrap: pd.DataFrame  # one row per bootstrap run


def monte_carlo_study(base: BookRun, config: BookConfig, mc: MonteCarloConfig) -> MonteCarloResult:
    """Both studies around the backtest ``base`` (its book, costs and exit rule)."""
    book = base.book
    opposite = book.opposite_exits if config.exit_on_opposite_signal else np.zeros_like(book.entries)
    timing = entry_timing_runs(
        TimingInputs(book.close, book.entries, opposite, config.holding_bars),
        runs=mc.runs,
        shift_bars=mc.shift_bars,
        shift_mode=mc.shift_mode,
        seed=mc.seed,
        costs=config.costs,
        init_cash=config.init_cash,
        chunk_cells=config.chunk_cells,
    )
    boot = trade_bootstrap_runs(
        base.trades.ret, book.n_cols, runs=mc.runs, seed=mc.seed, chunk_cells=config.chunk_cells
    )
    actual_ret = float(base.book_metrics["total_return"]) if book.n_bars else 0.0
    actual_dd = float(base.book_metrics["max_drawdown"]) if book.n_bars else 0.0
    rows = []
    for study, runs in (("entry_timing", timing), ("trade_bootstrap", boot)):
        rows.append({"study": study} | summarize_runs(runs, actual_ret, actual_dd, mc.confidence))
    return MonteCarloResult(pd.DataFrame(rows), timing, boot)

"""Backtest assets: thin wiring of the engine and its studies into Dagster (group ``backtest``).

Each asset reads market_features / trading_signals from the warehouse, runs a pure module,
replaces its table's ``as_of`` slice (idempotent) and attaches markdown tables and PNG charts.
The base backtest is simulated once per ``as_of`` by ``backtest_results``, whose output (a
:class:`BaseBacktest`, stored by the IO manager) the Monte Carlo and stress studies take as input.
"""

import math
from dataclasses import dataclass, field

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.charts import (
    equity_drawdown_figure,
    monte_carlo_figure,
    sensitivity_figure,
    walk_forward_figure,
)
from kaizen_pipeline.backtest.load import BacktestInputs, load_inputs, write_slice
from kaizen_pipeline.backtest.metrics import METRIC_COLUMNS
from kaizen_pipeline.backtest.monte_carlo import MonteCarloConfig, monte_carlo_study
from kaizen_pipeline.backtest.run import BookRun, run_book
from kaizen_pipeline.backtest.sensitivity import SensitivityConfig, sensitivity_table
from kaizen_pipeline.backtest.stress import StressConfig, stress_scenarios
from kaizen_pipeline.backtest.walk_forward import WalkForwardConfig
from kaizen_pipeline.backtest.walk_forward import walk_forward as run_walk_forward
from kaizen_pipeline.clock import bucket_minutes
from kaizen_pipeline.reporting import figure_markdown, markdown_table
from kaizen_pipeline.research.signals import SignalThresholds
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings

GROUP = "backtest"


def _num(value: float | int) -> dg.MetadataValue:
    if isinstance(value, (int, np.integer)):
        return dg.MetadataValue.int(int(value))
    if value is None or not math.isfinite(float(value)):
        return dg.MetadataValue.text("n/a" if value is None or math.isnan(float(value)) else str(value))
    return dg.MetadataValue.float(float(value))


@dataclass
class BaseBacktest:
    """The base backtest of one ``as_of`` (``run`` is None when there was no market data)."""

    as_of: pd.Timestamp | None
    config: BookConfig
    run: BookRun | None
    notes: list[str] = field(default_factory=list)


def _nothing_meta(notes: list[str], what: str) -> dict[str, dg.MetadataValue]:
    text = "; ".join(notes) or "no market data"
    return {
        "status": dg.MetadataValue.text(f"{what}: nothing to do ({text})"),
        "rows_written": _num(0),
    }


def _nothing(inputs: BacktestInputs, what: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_nothing_meta(inputs.notes, what))


def base_backtest(settings: Settings, inputs: BacktestInputs) -> BaseBacktest:
    """Simulate the signals once: the run every study of this ``as_of`` starts from."""
    config = BookConfig.from_settings(settings)
    if inputs.as_of is None:
        return BaseBacktest(None, config, None, list(inputs.notes))
    book = build_book(inputs.features, inputs.signals, config)
    return BaseBacktest(inputs.as_of, config, run_book(book, config), list(inputs.notes))


def _common(
    inputs: BacktestInputs | BaseBacktest, as_of: pd.Timestamp, rows: int
) -> dict[str, dg.MetadataValue]:
    meta = {"as_of": dg.MetadataValue.text(str(as_of)), "rows_written": _num(rows)}
    if inputs.notes:
        meta["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in inputs.notes))
    return meta


@dg.asset(group_name=GROUP, deps=["trading_signals", "market_features"], kinds={"numpy"})
def backtest_results(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.Output[BaseBacktest]:
    """Vectorized backtest of trading_signals on market prices (backtest.* knobs); its run feeds the studies."""
    wh = warehouse.get()
    inputs = load_inputs(wh)
    # holding and costs are per-run parameters: the paper book and the kaizen hit rate use the same
    base = base_backtest(settings.for_unit("run", context.run_id), inputs)
    as_of, config, run = base.as_of, base.config, base.run
    if as_of is None or run is None:
        return dg.Output(base, metadata=_nothing_meta(inputs.notes, "backtest_results"))
    book = run.book
    per_col = run.metrics.reset_index()
    book_row = pd.DataFrame([{"market_id": "*", "direction": "*"} | run.book_metrics])
    table = pd.concat([book_row, per_col], ignore_index=True)
    table["start_ts"] = book.index[0].to_pydatetime()
    table["bars"] = book.n_bars
    table["fees"] = config.fees
    table["slippage"] = config.slippage
    table["holding_bars"] = config.holding_bars
    rows = write_slice(wh, "backtest_results", table, as_of)
    trades = run.trades_table()
    write_slice(wh, "backtest_trades", trades, as_of)
    m = run.book_metrics
    context.log.info(
        f"backtest as of {as_of}: {book.n_cols} market side(s), {int(m['num_trades'])} trades, "
        f"total return {m['total_return']:.4f}"
    )
    curve = equity_drawdown_figure(
        {"book": run.book_equity_series()}, config.init_cash, f"Book of {book.n_cols} market side(s)"
    )
    metadata = _common(inputs, as_of, rows) | {
        "market_sides": _num(book.n_cols),
        "num_trades": _num(int(m["num_trades"])),
        "total_return": _num(m["total_return"]),
        "sharpe": _num(m["sharpe"]),
        "max_drawdown": _num(m["max_drawdown"]),
        "win_rate": _num(m["win_rate"]),
        "book_metrics": dg.MetadataValue.md(markdown_table(book_row[["market_id", *METRIC_COLUMNS]])),
        "best_market_sides": dg.MetadataValue.md(
            markdown_table(
                per_col.sort_values("total_return", ascending=False)[
                    [
                        "market_id",
                        "direction",
                        "total_return",
                        "sharpe",
                        "max_drawdown",
                        "win_rate",
                        "num_trades",
                    ]
                ],
                max_rows=10,
            )
        ),
        "trades": dg.MetadataValue.md(markdown_table(trades, max_rows=15)),
        "equity_curve": dg.MetadataValue.md(figure_markdown(curve, "book equity and drawdown")),
    }
    if book.n_cols == 0:
        metadata["status"] = dg.MetadataValue.text("no signals to trade: zero-trade backtest")
    return dg.Output(base, metadata=metadata)


@dg.asset(group_name=GROUP, kinds={"numpy"})
def monte_carlo(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    backtest_results: BaseBacktest,
) -> dg.MaterializeResult:
    """Monte Carlo of the base backtest (backtest.monte_carlo): entry timing and a trade bootstrap; VaR, CVaR, P(loss)."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    inputs = backtest_results
    as_of, config, base = inputs.as_of, inputs.config, inputs.run
    if as_of is None or base is None:
        return dg.MaterializeResult(metadata=_nothing_meta(inputs.notes, "monte_carlo"))
    mc_config = MonteCarloConfig.from_settings(run_settings)
    result = monte_carlo_study(base, config, mc_config)
    table = result.summary.copy()
    table["confidence"] = mc_config.confidence
    table["seed"] = mc_config.seed
    table["shift_bars"] = np.where(table["study"] == "entry_timing", mc_config.shift_bars, None)
    rows = write_slice(wh, "monte_carlo", table, as_of)
    timing = table.iloc[0]
    context.log.info(f"monte carlo: {mc_config.runs} runs, P(loss) {timing['prob_loss']:.3f}")
    fig = monte_carlo_figure(result.timing, result.bootstrap, float(timing["actual_return"]))
    return dg.MaterializeResult(
        metadata=_common(inputs, as_of, rows)
        | {
            "runs": _num(mc_config.runs),
            "prob_loss": _num(float(timing["prob_loss"])),
            "var": _num(float(timing["var"])),
            "cvar": _num(float(timing["cvar"])),
            "summary": dg.MetadataValue.md(markdown_table(table.drop(columns=["seed"]).T.reset_index())),
            "histogram": dg.MetadataValue.md(figure_markdown(fig, "Monte Carlo total returns")),
        }
    )


@dg.asset(group_name=GROUP, kinds={"numpy"})
def stress_tests(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    backtest_results: BaseBacktest,
) -> dg.MaterializeResult:
    """The base backtest under named stress scenarios (backtest.stress): liquidity, volatility, resolution, volume."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    inputs = backtest_results
    as_of, config, base = inputs.as_of, inputs.config, inputs.run
    if as_of is None or base is None:
        return dg.MaterializeResult(metadata=_nothing_meta(inputs.notes, "stress_tests"))
    table, runs = stress_scenarios(base.book, config, StressConfig.from_settings(run_settings), base)
    rows = write_slice(wh, "stress_tests", table, as_of)
    worst = table.loc[table["total_return"].idxmin()]
    context.log.info(f"stress tests: worst scenario {worst['scenario']} ({worst['total_return']:.4f})")
    fig = equity_drawdown_figure(
        {name: run.book_equity_series() for name, run in runs.items()},
        config.init_cash,
        "Book equity per scenario",
    )
    return dg.MaterializeResult(
        metadata=_common(inputs, as_of, rows)
        | {
            "worst_scenario": dg.MetadataValue.text(str(worst["scenario"])),
            "worst_return": _num(float(worst["total_return"])),
            "scenarios": dg.MetadataValue.md(markdown_table(table)),
            "equity_curves": dg.MetadataValue.md(figure_markdown(fig, "equity per stress scenario")),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_features"], kinds={"numpy"})
def sensitivity_analysis(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """How backtest metrics move with costs (backtest.sensitivity.cost_multipliers) and thresholds (.threshold_changes)."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    inputs = load_inputs(wh, with_signals=False)
    as_of = inputs.as_of
    if as_of is None:
        return _nothing(inputs, "sensitivity_analysis")
    table = sensitivity_table(
        inputs.features,
        BookConfig.from_settings(run_settings),
        SignalThresholds.from_settings(run_settings),
        SensitivityConfig.from_settings(run_settings),
        bucket_minutes(run_settings),
    )
    rows = write_slice(wh, "sensitivity_analysis", table, as_of)
    context.log.info(f"sensitivity: {len(table)} rows")
    return dg.MaterializeResult(
        metadata=_common(inputs, as_of, rows)
        | {
            "table": dg.MetadataValue.md(markdown_table(table, max_rows=30)),
            "changes": dg.MetadataValue.md(figure_markdown(sensitivity_figure(table), "metric changes")),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_features"], kinds={"numpy"})
def walk_forward(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Rolling walk-forward: thresholds grid-searched on each train window, tested out of sample; degradation."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    inputs = load_inputs(wh, with_signals=False)
    as_of = inputs.as_of
    if as_of is None:
        return _nothing(inputs, "walk_forward")
    config = BookConfig.from_settings(run_settings)
    wf_config = WalkForwardConfig.from_settings(run_settings)
    result = run_walk_forward(
        inputs.features,
        config,
        wf_config,
        SignalThresholds.from_settings(run_settings),
        bucket_minutes(run_settings),
    )
    rows = write_slice(wh, "walk_forward", result.windows, as_of)
    meta = _common(inputs, as_of, rows) | {k: _num(v) for k, v in result.summary.items()}
    if result.windows.empty:
        meta["status"] = dg.MetadataValue.text(
            f"fewer bars than one train + test window ({wf_config.train_bars} + {wf_config.test_bars})"
        )
        return dg.MaterializeResult(metadata=meta)
    context.log.info(
        f"walk-forward: {len(result.windows)} windows, degradation {result.summary['degradation']}"
    )
    fig = walk_forward_figure(result.windows, result.oos_equity, config.init_cash)
    meta["windows_table"] = dg.MetadataValue.md(markdown_table(result.windows, max_rows=30))
    meta["chart"] = dg.MetadataValue.md(figure_markdown(fig, "in-sample vs out-of-sample"))
    return dg.MaterializeResult(metadata=meta)


BACKTEST_ASSETS = [backtest_results, monte_carlo, stress_tests, sensitivity_analysis, walk_forward]

backtest_job = dg.define_asset_job(
    "backtest_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Backtest the current signals and run every study (Monte Carlo, stress, sensitivity, walk-forward).",
)

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
import sqlalchemy as sa
from dagster import AssetExecutionContext

from kaizen_pipeline.backtest.attribution import performance_attribution as attribute_journal
from kaizen_pipeline.backtest.attribution import pnl_by
from kaizen_pipeline.backtest.book import BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.charts import (
    attribution_figure,
    equity_drawdown_figure,
    monte_carlo_figure,
    sensitivity_figure,
    tuning_figure,
    walk_forward_figure,
)
from kaizen_pipeline.backtest.journal import (
    JOURNAL_COLUMNS,
    SOURCE_BACKTEST,
    SOURCE_PAPER,
    journal_from_run,
    paper_journal,
    read_entry_features,
    read_signals,
)
from kaizen_pipeline.backtest.load import BacktestInputs, load_inputs, write_slice
from kaizen_pipeline.backtest.metrics import METRIC_COLUMNS
from kaizen_pipeline.backtest.monte_carlo import MonteCarloConfig, monte_carlo_study
from kaizen_pipeline.backtest.run import BookRun, run_book
from kaizen_pipeline.backtest.sensitivity import SensitivityConfig, sensitivity_table
from kaizen_pipeline.backtest.stress import StressConfig, stress_scenarios
from kaizen_pipeline.backtest.tuning import (
    LIVE_WINDOW,
    RuleSpace,
    TuningConfig,
    hype_lead_space,
    momentum_space,
    tune,
)
from kaizen_pipeline.backtest.walk_forward import WalkForwardConfig
from kaizen_pipeline.backtest.walk_forward import walk_forward as run_walk_forward
from kaizen_pipeline.clock import bucket_minutes
from kaizen_pipeline.reporting import figure_markdown, markdown_table
from kaizen_pipeline.research.lead import RULE_HYPE_LEAD, LeadParams
from kaizen_pipeline.research.pipeline import research_config
from kaizen_pipeline.research.signals import SignalThresholds
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse

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
    # numbers the Plots tab draws over time: the baseline and the worst change any tested setting causes
    series: dict[str, dg.MetadataValue] = {}
    baseline = table[table["parameter"] == "baseline"] if "parameter" in table else table.iloc[0:0]
    for metric in ("total_return", "sharpe"):
        if metric in table and f"{metric}_change" in table and len(baseline):
            series[f"baseline_{metric}"] = dg.MetadataValue.float(float(baseline[metric].iloc[0]))
            series[f"worst_{metric}_change"] = dg.MetadataValue.float(float(table[f"{metric}_change"].min()))
    return dg.MaterializeResult(
        metadata=_common(inputs, as_of, rows)
        | series
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


# the rules the attribution reports P&L of even when one has no trade yet (a steady metadata series)
KNOWN_RULES = ("momentum", "hype_lead")
JOURNAL_SHOWN = ["source", "market_id", "direction", "entry_ts", "rule", "reason", "total_costs", "pnl"]


@dg.asset(group_name=GROUP, deps=["trading_signals", "market_features"], kinds={"pandas"})
def trade_journal(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    backtest_results: BaseBacktest,
) -> dg.MaterializeResult:
    """Every backtest and paper trade: its rule, the features at entry, a one-line reason, costs and outcome."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    base = backtest_results
    as_of, config, run = base.as_of, base.config, base.run
    if as_of is None or run is None:
        return dg.MaterializeResult(metadata=_nothing_meta(base.notes, "trade_journal"))
    signals = read_signals(wh)
    features = read_entry_features(wh)
    thresholds = SignalThresholds.from_settings(run_settings)
    backtest = journal_from_run(run, config, signals, features, SOURCE_BACKTEST, thresholds)
    paper_book = research_config(run_settings).book
    grid = price_grid(load_inputs(wh, with_signals=False).features, paper_book.price_floor)
    paper = paper_journal(grid, signals, features, paper_book, run_settings.research.bankroll_usd, thresholds)
    parts = [j for j in (backtest, paper) if not j.empty]
    journal = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=JOURNAL_COLUMNS)
    rows = write_slice(wh, "trade_journal", journal, as_of)
    context.log.info(f"trade journal as of {as_of}: {len(backtest)} backtest and {len(paper)} paper trades")
    shown = journal.sort_values("entry_ts", ascending=False)[JOURNAL_SHOWN]
    metadata = _common(base, as_of, rows) | {
        "backtest_trades": _num(len(backtest)),
        "paper_trades": _num(len(paper)),
        "backtest_pnl": _num(float(backtest["pnl"].sum()) if len(backtest) else 0.0),
        "paper_pnl_usd": _num(float(paper["pnl"].sum()) if len(paper) else 0.0),
        "backtest_costs": _num(float(backtest["total_costs"].sum()) if len(backtest) else 0.0),
        "latest_entries": dg.MetadataValue.md(markdown_table(shown, max_rows=15)),
    }
    if journal.empty:
        metadata["status"] = dg.MetadataValue.text("no trades to journal")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name=GROUP, deps=["trade_journal"], kinds={"pandas"})
def performance_attribution(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Realised P&L, hit rate and Sharpe of the trade journal by rule, feature bucket, category and entry hour."""
    wh = warehouse.get()
    # the journal's as_of: the last bar of market_features, as every backtest asset keys it
    features = wh.table("market_features")
    latest = wh.scalar(sa.select(sa.func.max(features.c.bucket_ts)))
    if latest is None:
        return dg.MaterializeResult(metadata=_nothing_meta([], "performance_attribution"))
    as_of = pd.Timestamp(latest)
    journal_table = wh.table("trade_journal")
    journal = wh.read_frame(
        sa.select(journal_table).where(journal_table.c.as_of == as_of.to_pydatetime()),
        parse_dates=["entry_ts", "exit_ts", "signal_ts"],
    )
    table = attribute_journal(journal)
    rows = write_slice(wh, "performance_attribution", table, as_of)
    source = SOURCE_BACKTEST if (table["source"] == SOURCE_BACKTEST).any() else SOURCE_PAPER
    by_rule = pnl_by(table, source, "rule")
    metadata: dict[str, dg.MetadataValue] = {
        "as_of": dg.MetadataValue.text(str(as_of)),
        "rows_written": _num(rows),
        "source_shown": dg.MetadataValue.text(source),
        **{f"pnl_{rule}": _num(by_rule.get(rule, 0.0)) for rule in sorted({*KNOWN_RULES, *by_rule})},
    }
    if table.empty:
        metadata["status"] = dg.MetadataValue.text("no trades in the journal: nothing to attribute")
        return dg.MaterializeResult(metadata=metadata)
    mine = table[table["source"] == source]
    total = mine[mine["dimension"] == "all"].iloc[0]
    metadata["total_pnl"] = _num(float(total["pnl"]))
    metadata["hit_rate"] = _num(float(total["hit_rate"]))
    columns = ["bucket", "trades", "closed_trades", "pnl", "mean_return", "hit_rate", "sharpe"]
    for dimension in ("rule", "strength", "category", "hour"):
        part = mine[mine["dimension"] == dimension].sort_values("bucket_order")[columns]
        metadata[f"by_{dimension}"] = dg.MetadataValue.md(markdown_table(part, max_rows=24))
    other = mine[~mine["dimension"].isin(["all", "rule", "strength", "category", "hour"])]
    metadata["by_feature_bucket"] = dg.MetadataValue.md(
        markdown_table(other[["dimension", *columns]], max_rows=40)
    )
    context.log.info(f"performance attribution as of {as_of}: {len(table)} rows")
    fig = attribution_figure(table, source)
    metadata["chart"] = dg.MetadataValue.md(figure_markdown(fig, f"{source} attribution"))
    return dg.MaterializeResult(metadata=metadata)


BACKTEST_ASSETS = [
    backtest_results,
    monte_carlo,
    stress_tests,
    sensitivity_analysis,
    walk_forward,
    trade_journal,
    performance_attribution,
]

backtest_job = dg.define_asset_job(
    "backtest_job",
    selection=dg.AssetSelection.groups(GROUP)
    - dg.AssetSelection.assets("parameter_tuning"),  # its own weekly job
    description="Backtest the current signals and run every study (Monte Carlo, stress, sensitivity, walk-forward).",
)


# parameter_tuning: kept out of main_job and backtest_job (it backtests n_trials x windows x scopes
# books, minutes on the demo world; the weekly parameter_tuning_job in schedules.py runs it).
TUNING_TABLES = ("parameter_tuning", "tuning_trials", "tuning_proposals")
FEATURE_COLUMNS = "market_id, bucket_ts, yes_price, rvr, roc, hype_index, category"


def _metric(value: float) -> dg.MetadataValue:
    """A float Dagster plots, or text when undefined (no tested window yet)."""
    if value is None or not math.isfinite(float(value)):
        return dg.MetadataValue.text("n/a")
    return dg.MetadataValue.float(float(value))


def tuning_spaces(
    wh: Warehouse, features: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, list[RuleSpace], list[str]]:
    """The rules to tune (hype_lead first: it wins ties, as in trading_signals), features with post counts, notes."""
    minutes = bucket_minutes(settings)
    spaces = [momentum_space(SignalThresholds.from_settings(settings), minutes)]
    notes: list[str] = []
    if RULE_HYPE_LEAD not in settings.signals.rules:
        return features, spaces, notes
    leads = wh.read_frame("SELECT * FROM hype_lead_estimates", parse_dates=["estimated_at", "window_start"])
    posts = wh.read_frame(
        "SELECT market_id, bucket_ts, post_count FROM hype_scores", parse_dates=["bucket_ts"]
    )
    if leads.empty or posts.empty:
        notes.append("hype_lead not tuned: no hype_lead_estimates or hype_scores yet (run trading_signals)")
        return features, spaces, notes
    frame = features.merge(posts, on=["market_id", "bucket_ts"], how="left")
    frame["post_count"] = frame["post_count"].fillna(0.0)  # a bucket without posts had none
    return frame, [hype_lead_space(leads, LeadParams.from_settings(settings), minutes), *spaces], notes


@dg.asset(group_name=GROUP, deps=["market_features", "trading_signals"], kinds={"optuna"})
def parameter_tuning(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Signal parameters tuned with Optuna per category and market on walk-forward train windows, tuned vs config
    out of sample; proposals for the kaizen recommendations."""
    run_settings = settings.for_unit("run", context.run_id)
    wh = warehouse.get()
    features = wh.read_frame(f"SELECT {FEATURE_COLUMNS} FROM market_features", parse_dates=["bucket_ts"])
    if features.empty:
        return dg.MaterializeResult(
            metadata={
                "status": dg.MetadataValue.text(
                    "parameter_tuning: nothing to do (market_features has no rows)"
                ),
                "rows_written": dg.MetadataValue.int(0),
            }
        )
    as_of = pd.Timestamp(features["bucket_ts"].max())
    features, spaces, notes = tuning_spaces(wh, features, run_settings)
    config = TuningConfig.from_settings(run_settings)
    result = tune(features, spaces, BookConfig.from_settings(run_settings), config, as_of)
    written = {
        name: write_slice(wh, name, frame, as_of)
        for name, frame in zip(TUNING_TABLES, (result.windows, result.trials, result.proposals), strict=True)
    }
    s = result.summary
    meta: dict[str, dg.MetadataValue] = {
        "as_of": dg.MetadataValue.text(str(as_of)),
        "rows_written": dg.MetadataValue.int(written["parameter_tuning"]),
        "trials_written": dg.MetadataValue.int(written["tuning_trials"]),
        "rules": dg.MetadataValue.text(", ".join(sp.rule for sp in spaces)),
        "studies": dg.MetadataValue.int(int(s.get("studies", 0))),
        "mean_oos_sharpe_tuned": _metric(s.get("mean_oos_sharpe_tuned", math.nan)),
        "mean_oos_sharpe_default": _metric(s.get("mean_oos_sharpe_default", math.nan)),
        "tuned_win_share": _metric(s.get("tuned_win_share", math.nan)),
        "hour_vol_chosen_share": _metric(s.get("hour_vol_chosen_share", math.nan)),
        "hour_vol_won_share": _metric(s.get("hour_vol_won_share", math.nan)),
        "proposed": dg.MetadataValue.int(int(s.get("proposed", 0))),
    }
    if notes:
        meta["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))
    if result.windows.empty:
        meta["status"] = dg.MetadataValue.text(
            f"fewer bars than one train + test window ({config.train_bars} + {config.test_bars})"
        )
        return dg.MaterializeResult(metadata=meta)
    tested = result.windows[result.windows["window_index"] != LIVE_WINDOW]
    shown = [
        "scope",
        "window_index",
        "params",
        "train_score",
        "train_default_score",
        "oos_score_tuned",
        "oos_score_default",
        "tuned_beats_default",
    ]
    meta["windows_table"] = dg.MetadataValue.md(markdown_table(tested[shown], max_rows=40))
    proposal_cols = [
        "catalogue_key",
        "parameter",
        "default_value",
        "proposed_value",
        "windows_won",
        "windows",
    ]
    meta["proposals"] = dg.MetadataValue.md(
        markdown_table(
            result.proposals[[*proposal_cols, "predicted_effect", "proposed", "reason"]], max_rows=40
        )
    )
    meta["chart"] = dg.MetadataValue.md(
        figure_markdown(tuning_figure(result.windows), "tuned vs config out of sample")
    )
    context.log.info(
        f"parameter tuning as of {as_of}: {s.get('studies')} studies, {s.get('proposed')} proposal(s)"
    )
    return dg.MaterializeResult(metadata=meta)


TUNING_ASSETS = [parameter_tuning]

"""End to end: the backtest group materialized on a real SQLite warehouse with a Dagster instance.

The research tables are written here with the contract's columns (CONTRACTS.md). When research's
schema defines them, rows go through Warehouse.upsert; until then the test creates them with
pandas (only the columns the backtest reads plus a few contract columns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen_pipeline.backtest.assets import BACKTEST_ASSETS
from kaizen_pipeline.backtest.book import BookConfig, build_book
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.research.signals import SignalThresholds
from kaizen_pipeline.resources import SettingsResource, WarehouseResource, build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.schema import metadata

TABLES = [
    "backtest_results",
    "backtest_trades",
    "monte_carlo",
    "stress_tests",
    "sensitivity_analysis",
    "walk_forward",
]


def write_research_table(wh: Warehouse, name: str, frame: pd.DataFrame) -> None:
    """Write a research table with only the columns a test cares about; required others get fillers."""
    table = metadata.tables[name]
    frame = frame.copy()
    for col in table.columns:
        if col.name not in frame and not col.nullable:
            frame[col.name] = _filler(col)
    wh.upsert(table, frame[[c for c in frame.columns if c in table.columns]])


def _filler(col: sa.Column) -> object:
    if isinstance(col.type, sa.DateTime):
        return pd.Timestamp("2026-01-01")
    if isinstance(col.type, (sa.Float, sa.Integer, sa.Numeric)):
        return 0
    if isinstance(col.type, sa.Boolean):
        return False
    return ""


@pytest.fixture
def small_studies() -> Settings:
    """Fewer Monte Carlo runs and a small walk-forward grid: the same code, quicker."""
    return load_settings(
        backtest={
            "monte_carlo": {"runs": 60},
            "walk_forward": {"train_bars": 384, "test_bars": 192, "rvr_grid": [1.5, 2.5]},
        },
        signals={"roc_threshold": 0.05, "hype_threshold": 50},
    )


def seed_research(
    wh: Warehouse, features: pd.DataFrame, settings: Settings, with_signals: bool = True
) -> pd.DataFrame:
    write_research_table(wh, "market_features", features.assign(category="politics"))
    signals = rule_signals(features, SignalThresholds.from_settings(settings), 15)
    signals = signals[["market_id", "bucket_ts", "direction"]].assign(strength=0.5, category="politics")
    if not with_signals:
        signals = signals.iloc[:0]
    write_research_table(wh, "trading_signals", signals)
    return signals


def materialize(url: str, settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        BACKTEST_ASSETS,
        resources={"warehouse": WarehouseResource(url=url), "settings": SettingsResource.of(settings)},
        instance=dg.DagsterInstance.ephemeral(),
    )


@pytest.fixture
def research_warehouse(any_warehouse: Warehouse) -> Iterator[Warehouse]:
    """SQLite, and PostgreSQL when configured; drops the research tables this module had to create."""
    yield any_warehouse
    with any_warehouse.engine.begin() as conn:
        for name in ("market_features", "trading_signals"):
            if name not in metadata.tables:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def snapshot(wh: Warehouse) -> dict[str, pd.DataFrame]:
    frames = {t: wh.read_frame(f"SELECT * FROM {t}") for t in TABLES}
    return {t: f.sort_values(list(f.columns[:4])).reset_index(drop=True) for t, f in frames.items()}


def test_backtest_group_materializes_writes_tables_and_is_idempotent(
    research_warehouse: Warehouse, small_studies: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    warehouse = research_warehouse
    features = make_features(n_markets=6, n_bars=960)
    signals = seed_research(warehouse, features, small_studies)
    assert len(signals) > 20

    result = materialize(warehouse.url, small_studies)
    assert result.success

    config = BookConfig.from_settings(small_studies)
    expected = run_book(build_book(features, signals, config), config)
    results = warehouse.read_frame("SELECT * FROM backtest_results")
    book_row = results[results["market_id"] == "*"].iloc[0]
    assert book_row["total_return"] == pytest.approx(expected.book_metrics["total_return"], rel=1e-9)
    assert book_row["num_trades"] == expected.book_metrics["num_trades"] == warehouse.count("backtest_trades")
    assert len(results) == 1 + expected.book.n_cols
    assert warehouse.count("monte_carlo") == 2
    assert warehouse.scalar("SELECT runs FROM monte_carlo WHERE study = 'entry_timing'") == 60
    assert warehouse.count("stress_tests") == 5
    assert warehouse.count("sensitivity_analysis") == 13
    assert warehouse.count("walk_forward") == 3

    mats = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert set(mats) == {a.key.to_user_string() for a in BACKTEST_ASSETS}
    assert "data:image/png;base64" in mats["backtest_results"]["equity_curve"].value
    assert "data:image/png;base64" in mats["monte_carlo"]["histogram"].value
    assert "| scenario |" in mats["stress_tests"]["scenarios"].value
    # every asset with a chart also gives the Plots tab numbers beyond its row count
    for key, meta in mats.items():
        charts = [k for k, v in meta.items() if "data:image/png" in str(getattr(v, "value", ""))]
        numbers = [k for k, v in meta.items() if isinstance(v, (dg.FloatMetadataValue, dg.IntMetadataValue))]
        if charts:
            assert set(numbers) - {"rows_written"}, f"{key}: a chart but no numeric series"
    sens = mats["sensitivity_analysis"]
    assert sens["worst_sharpe_change"].value <= 0.0 <= sens["worst_sharpe_change"].value + 100

    before = snapshot(warehouse)
    assert materialize(warehouse.url, small_studies).success
    after = snapshot(warehouse)
    for table in TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_no_signals_gives_a_zero_trade_backtest(
    warehouse: Warehouse, small_studies: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    seed_research(warehouse, make_features(n_markets=3, n_bars=200), small_studies, with_signals=False)
    result = dg.materialize(
        BACKTEST_ASSETS[:3],
        resources=build_resources(small_studies),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    rows = warehouse.read_frame("SELECT market_id, num_trades, total_return FROM backtest_results")
    assert rows.to_dict("records") == [{"market_id": "*", "num_trades": 0, "total_return": 0.0}]
    assert warehouse.scalar("SELECT prob_loss FROM monte_carlo WHERE study = 'entry_timing'") == 0.0
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert "zero-trade" in meta["status"].value


def test_empty_research_tables_do_not_fail_the_group(warehouse: Warehouse, small_studies: Settings) -> None:
    result = materialize(warehouse.url, small_studies)
    assert result.success
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert "market_features has no rows (materialize the research group)" in meta["status"].value
    assert warehouse.count("backtest_results") == 0


def test_the_base_backtest_is_simulated_once_and_shared(
    warehouse: Warehouse,
    small_studies: Settings,
    make_features: Callable[..., pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """backtest_results simulates the signals; Monte Carlo and stress start from its run, not their own."""
    from kaizen_pipeline.backtest import assets

    seed_research(warehouse, make_features(n_markets=3, n_bars=300), small_studies)
    built: list[int] = []
    real = assets.build_book

    def counting(*args: object, **kwargs: object) -> object:
        built.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(assets, "build_book", counting)
    result = dg.materialize(
        BACKTEST_ASSETS[:3],
        resources=build_resources(small_studies),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success and len(built) == 1
    base = result.output_for_node("backtest_results")
    as_of = warehouse.scalar("SELECT MAX(as_of) FROM monte_carlo")
    assert (
        pd.Timestamp(as_of)
        == base.as_of
        == pd.Timestamp(warehouse.scalar("SELECT MAX(as_of) FROM stress_tests"))
    )
    actual = warehouse.scalar("SELECT actual_return FROM monte_carlo WHERE study = 'entry_timing'")
    assert actual == pytest.approx(base.run.book_metrics["total_return"])

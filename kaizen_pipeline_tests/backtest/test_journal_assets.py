"""trade_journal and performance_attribution materialized on a small SQLite warehouse."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pandas as pd
import pytest

from kaizen_pipeline.backtest.assets import backtest_results, performance_attribution, trade_journal
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.backtest.test_assets import seed_research

ASSETS = [backtest_results, trade_journal, performance_attribution]


@pytest.fixture
def journal_settings() -> Settings:
    return load_settings(signals={"roc_threshold": 0.05, "hype_threshold": 50})


def materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS, resources=build_resources(settings), instance=dg.DagsterInstance.ephemeral()
    )


def metadata_of(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, dg.MetadataValue]]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_journal_and_attribution_materialize_match_the_backtest_and_are_idempotent(
    warehouse: Warehouse, journal_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    seed_research(warehouse, make_features(n_markets=3, n_bars=300), journal_settings)
    result = materialize(journal_settings)
    assert result.success

    trades = warehouse.read_frame("SELECT * FROM backtest_trades")
    journal = warehouse.read_frame("SELECT * FROM trade_journal")
    assert len(trades) > 5
    backtest = journal[journal["source"] == "backtest"]
    paper = journal[journal["source"] == "paper"]
    assert len(backtest) == len(paper) == len(trades)
    assert backtest["pnl"].sum() == pytest.approx(trades["pnl"].sum())
    assert (backtest["rule"] == "momentum").all()  # seeded signals have no rule column
    assert backtest["reason"].str.startswith("momentum: ").all()
    assert set(backtest["exit_reason"]) <= {"time_exit", "opposite_signal", "open_at_end"}
    usd = journal_settings.signals.max_position_pct / 100 * journal_settings.research.bankroll_usd
    assert (paper["starting_cash"] == usd).all()

    attribution = warehouse.read_frame("SELECT * FROM performance_attribution")
    total = attribution[(attribution["source"] == "backtest") & (attribution["dimension"] == "all")]
    closed = backtest[backtest["status"] == "closed"]
    assert total["pnl"].iloc[0] == pytest.approx(closed["pnl"].sum())
    assert {"rule", "category", "hour", "strength", "rvr", "hype_index"} <= set(attribution["dimension"])

    meta = metadata_of(result)
    assert meta["performance_attribution"]["pnl_momentum"].value == pytest.approx(closed["pnl"].sum())
    assert meta["performance_attribution"]["pnl_hype_lead"].value == 0.0
    assert "data:image/png;base64" in meta["performance_attribution"]["chart"].value
    assert "| source |" in meta["trade_journal"]["latest_entries"].value

    before = {
        t: warehouse.read_frame(f"SELECT * FROM {t}") for t in ("trade_journal", "performance_attribution")
    }
    assert materialize(journal_settings).success
    for table, frame in before.items():
        after = warehouse.read_frame(f"SELECT * FROM {table}")
        pd.testing.assert_frame_equal(frame, after, obj=table)


def test_no_signals_journal_nothing_and_attribution_says_so(
    warehouse: Warehouse, journal_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    seed_research(warehouse, make_features(n_markets=2, n_bars=120), journal_settings, with_signals=False)
    result = materialize(journal_settings)
    assert result.success
    assert warehouse.count("trade_journal") == 0 and warehouse.count("performance_attribution") == 0
    meta = metadata_of(result)
    assert meta["trade_journal"]["status"].value == "no trades to journal"
    assert "nothing to attribute" in meta["performance_attribution"]["status"].value


def test_empty_research_tables_do_not_fail(warehouse: Warehouse, journal_settings: Settings) -> None:
    result = materialize(journal_settings)
    assert result.success
    assert "nothing to do" in metadata_of(result)["trade_journal"]["status"].value

"""The trade journal: hand-computed costs and outcomes, exit reasons, reasons and the signal join."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.book import BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.journal import (
    EXIT_OPEN,
    EXIT_OPPOSITE,
    EXIT_TIME,
    JOURNAL_COLUMNS,
    journal_from_run,
    paper_journal,
    signal_reason,
)
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.research.risk import PaperBookConfig
from kaizen_pipeline.research.signals import SignalThresholds

T0 = pd.Timestamp("2026-03-02 09:00")
PRICES = [0.5, 0.5, 0.5, 0.55, 0.6, 0.6, 0.4, 0.45, 0.3, 0.3]
CONFIG = BookConfig(fees=0.01, slippage=0.02, init_cash=100.0, holding_bars=3, exit_on_opposite_signal=True)
THRESHOLDS = SignalThresholds(rvr=2.0, roc=0.1, hype=70)


def ts(bar: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=15 * bar)


def features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "market_id": "m1",
            "bucket_ts": [ts(i) for i in range(len(PRICES))],
            "category": "sports",
            "yes_price": PRICES,
            "rvr": np.linspace(1.0, 4.0, len(PRICES)),
            "roc": 0.12,
            "hype_index": 81.0,
            "spread": 0.03,
            "book_imbalance": 0.25,
            "computed_at": T0,
        }
    )


def signals(**extra: list[object]) -> pd.DataFrame:
    """YES at bar 0 (fills 1, time exit at 4), NO at 5 (fills 6), YES at 7 (fills 8: closes the NO, stays open)."""
    frame = pd.DataFrame(
        {
            "market_id": "m1",
            "bucket_ts": [ts(0), ts(5), ts(7)],
            "fill_ts": [ts(1), ts(6), ts(8)],
            "direction": ["YES", "NO", "YES"],
            "strength": [0.4, 0.3, 0.2],
            "rvr": [3.1, 2.5, 2.2],
            "roc": [0.12, -0.15, 0.11],
            "hype_index": [81.0, 75.0, 90.0],
            "category": "sports",
        }
    )
    return frame.assign(**extra)


def journal(sig: pd.DataFrame) -> pd.DataFrame:
    feats = features()
    run = run_book(build_book(feats, sig, CONFIG), CONFIG)
    return journal_from_run(run, CONFIG, sig, feats, "backtest", THRESHOLDS)


def test_a_round_trip_has_the_hand_computed_costs_and_outcome() -> None:
    j = journal(signals())
    assert list(j.columns) == JOURNAL_COLUMNS
    assert len(j) == 3
    first = j.iloc[0]
    size = 100.0 / 1.01 / (0.5 * 1.02)
    entry_value, exit_value = size * 0.5 * 1.02, size * 0.6 * 0.98
    assert first["entry_ts"] == ts(1) and first["exit_ts"] == ts(4) and first["signal_ts"] == ts(0)
    assert first["size"] == pytest.approx(size)
    assert first["entry_fees"] == pytest.approx(0.01 * entry_value)
    assert first["exit_fees"] == pytest.approx(0.01 * exit_value)
    # slippage is paid on the value at the close, once per fill
    assert first["slippage_cost"] == pytest.approx(0.02 * size * 0.5 + 0.02 * size * 0.6)
    assert first["total_costs"] == pytest.approx(0.01 * (entry_value + exit_value) + 0.02 * size * 1.1)
    pnl = exit_value - entry_value - 0.01 * (entry_value + exit_value)
    assert first["pnl"] == pytest.approx(pnl)
    assert first["trade_return"] == pytest.approx(pnl / entry_value)
    assert first["win"] is True
    assert first["bars_held"] == 3 and first["starting_cash"] == 100.0
    assert first["exit_reason"] == EXIT_TIME and first["status"] == "closed"


def test_exit_reasons_time_opposite_and_open() -> None:
    j = journal(signals())
    assert j["exit_reason"].tolist() == [EXIT_TIME, EXIT_OPPOSITE, EXIT_OPEN]
    assert j["direction"].tolist() == ["YES", "NO", "YES"]
    no_trade, open_trade = j.iloc[1], j.iloc[2]
    assert no_trade["entry_ts"] == ts(6) and no_trade["exit_ts"] == ts(8)
    assert no_trade["win"] == (no_trade["pnl"] > 0)
    assert open_trade["status"] == "open" and open_trade["win"] is None
    assert open_trade["exit_fees"] == 0.0
    # an open trade has paid the entry fill's slippage only
    assert open_trade["slippage_cost"] == pytest.approx(0.02 * open_trade["size"] * 0.3)


def test_a_signal_without_a_rule_column_is_momentum_and_reads_as_one_line() -> None:
    j = journal(signals())
    assert j["rule"].tolist() == ["momentum"] * 3
    assert j.iloc[0]["reason"] == "momentum: RVR 3.1 >= 2.0, ROC +12% >= 10%, hype 81 >= 70 -> YES"
    assert j.iloc[1]["reason"] == "momentum: RVR 2.5 >= 2.0, ROC -15% <= -10%, hype 75 >= 70 -> NO"
    assert j["signals_at_entry"].tolist() == [1, 1, 1]
    assert j["category"].tolist() == ["sports"] * 3


def test_features_at_entry_are_the_feature_row_at_the_signal_bucket_with_every_column() -> None:
    j = journal(signals())
    feats = json.loads(j.iloc[1]["features"])
    assert feats["yes_price"] == PRICES[5]  # the signal's bucket, not the fill's
    assert feats["rvr"] == pytest.approx(np.linspace(1.0, 4.0, len(PRICES))[5])
    assert feats["book_imbalance"] == 0.25 and feats["spread"] == 0.03
    assert not {"market_id", "bucket_ts", "computed_at"} & set(feats)


def test_hype_lead_rule_columns_make_its_reason_and_detail() -> None:
    sig = signals(
        rule=["hype_lead", "momentum", None],
        win_prob=[0.58, np.nan, np.nan],
        lead_lag=[4, np.nan, np.nan],
        hype_z=[3.2, np.nan, np.nan],
        lead_corr=[0.31, np.nan, np.nan],
    )
    j = journal(sig)
    assert j["rule"].tolist() == ["hype_lead", "momentum", "momentum"]
    assert j.iloc[0]["reason"] == (
        "hype_lead: hype burst z 3.2 in a market whose hype leads price by 4 buckets (corr +0.31), "
        "P(win) 0.58 -> YES"
    )
    assert j.iloc[0]["win_prob"] == 0.58
    assert json.loads(j.iloc[0]["signal_detail"]) == {"lead_lag": 4.0, "hype_z": 3.2, "lead_corr": 0.31}


def test_two_rules_on_one_fill_name_the_trade_after_the_strongest() -> None:
    sig = signals(rule="momentum")
    twin = sig.iloc[[0]].assign(rule="hype_lead", strength=0.9)
    j = journal(pd.concat([sig, twin], ignore_index=True))
    assert len(j) == 3
    assert j.iloc[0]["rule"] == "hype_lead" and j.iloc[0]["signals_at_entry"] == 2


def test_signal_reason_tolerates_missing_columns() -> None:
    assert signal_reason({"direction": "no"}) == "momentum: no detail -> NO"
    assert signal_reason({"rule": "hype_lead", "direction": "YES"}) == "hype_lead: hype burst -> YES"
    assert (
        signal_reason({"rule": "other", "strength": 0.5, "direction": "YES"}) == "other: strength 0.50 -> YES"
    )
    assert signal_reason({"rvr": 3.0, "roc": 0.2, "direction": "YES"}) == "momentum: RVR 3.0, ROC +20% -> YES"


def test_the_paper_journal_is_the_risk_gates_book_in_usd() -> None:
    """Same simulator, same signals: the paper trades are the backtest's at the paper stake."""
    book = PaperBookConfig(stake=0.05, hold_buckets=3, fees=0.01, slippage=0.02, exit_on_opposite_signal=True)
    feats = features()
    paper = paper_journal(price_grid(feats, book.price_floor), signals(), feats, book, 10_000.0, THRESHOLDS)
    backtest = journal(signals())
    scale = 0.05 * 10_000.0 / CONFIG.init_cash
    assert (paper["source"] == "paper").all() and (paper["starting_cash"] == 500.0).all()
    for col in ("size", "entry_fees", "exit_fees", "slippage_cost", "pnl"):
        np.testing.assert_allclose(paper[col], backtest[col] * scale, rtol=1e-12)
    np.testing.assert_allclose(paper["trade_return"], backtest["trade_return"], rtol=1e-12)
    for col in ("exit_reason", "reason", "entry_ts"):
        assert paper[col].tolist() == backtest[col].tolist()
    empty = paper_journal(pd.DataFrame(), signals(), feats, replace(book), 10_000.0)
    assert empty.empty and list(empty.columns) == JOURNAL_COLUMNS


def test_no_trades_give_an_empty_journal_with_its_columns() -> None:
    j = journal(signals().iloc[0:0])
    assert j.empty and list(j.columns) == JOURNAL_COLUMNS

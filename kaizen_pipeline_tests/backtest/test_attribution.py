"""Performance attribution on a hand-built journal: every number is known in advance."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.attribution import (
    ATTRIBUTION_COLUMNS,
    performance_attribution,
    pnl_by,
    quantile_buckets,
)
from kaizen_pipeline.backtest.charts import attribution_figure
from kaizen_pipeline.clock import MINUTES_PER_YEAR

START = pd.Timestamp("2026-03-02 09:00")


def hand_journal() -> pd.DataFrame:
    """Five backtest trades (one still open) and one paper trade; the book spans exactly one day."""
    rows = [
        # rule, hour, category, strength, rvr, pnl, return, status
        ("momentum", 9, "sports", 0.1, 2.0, 10.0, 0.10, "closed"),
        ("momentum", 9, "sports", 0.2, 3.0, -4.0, -0.04, "closed"),
        ("momentum", 14, None, 0.8, 5.0, 6.0, 0.06, "closed"),
        ("hype_lead", 14, "politics", 0.9, None, -2.0, -0.02, "closed"),
        ("hype_lead", 14, "politics", 0.5, 4.0, 99.0, 0.99, "open"),
    ]
    frame = pd.DataFrame(
        [
            {
                "source": "backtest",
                "market_id": f"m{i}",
                "direction": "YES",
                "entry_ts": START.normalize() + pd.Timedelta(hours=hour, minutes=i),
                "exit_ts": START.normalize() + pd.Timedelta(days=1),
                "rule": rule,
                "category": category,
                "strength": strength,
                "features": json.dumps({"rvr": rvr, "spread": 0.02, "category": "x"} if rvr else {}),
                "pnl": pnl,
                "trade_return": ret,
                "status": status,
                "bars_held": 4,
            }
            for i, (rule, hour, category, strength, rvr, pnl, ret, status) in enumerate(rows)
        ]
    )
    frame.loc[0, "entry_ts"] = START.normalize()  # the source spans exactly one day
    paper = frame.iloc[[0]].assign(source="paper", pnl=50.0)
    return pd.concat([frame, paper], ignore_index=True)


def rows(table: pd.DataFrame, dimension: str, source: str = "backtest") -> pd.DataFrame:
    part = table[(table["source"] == source) & (table["dimension"] == dimension)]
    return part.set_index("bucket")


def test_totals_and_rules_over_closed_trades() -> None:
    table = performance_attribution(hand_journal())
    assert list(table.columns) == ATTRIBUTION_COLUMNS
    total = rows(table, "all").loc["all"]
    assert total["trades"] == 5 and total["closed_trades"] == 4
    assert total["pnl"] == pytest.approx(10.0)  # the open trade's 99 is not realised
    assert total["hit_rate"] == pytest.approx(0.5)
    assert total["mean_return"] == pytest.approx(0.025)
    assert total["profit_factor"] == pytest.approx(16.0 / 6.0)
    rets = np.array([0.10, -0.04, 0.06, -0.02])
    per_year = 4 / (24 * 60 / MINUTES_PER_YEAR)
    assert total["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(per_year))

    rule = rows(table, "rule")
    assert rule.loc["momentum", "pnl"] == pytest.approx(12.0)
    assert rule.loc["momentum", "hit_rate"] == pytest.approx(2 / 3)
    assert rule.loc["hype_lead", "pnl"] == pytest.approx(-2.0)
    assert rule.loc["hype_lead", "trades"] == 2 and rule.loc["hype_lead", "closed_trades"] == 1
    assert math.isnan(rule.loc["hype_lead", "sharpe"])  # one closed trade: undefined
    assert pnl_by(table, "backtest", "rule") == {"hype_lead": -2.0, "momentum": 12.0}
    assert pnl_by(table, "paper", "rule") == {"momentum": 50.0}


def test_category_and_hour() -> None:
    table = performance_attribution(hand_journal())
    category = rows(table, "category")
    assert category.loc["sports", "pnl"] == pytest.approx(6.0)
    assert category.loc["n/a", "pnl"] == pytest.approx(6.0)
    assert category.loc["politics", "pnl"] == pytest.approx(-2.0)
    hour = rows(table, "hour")
    assert list(hour.index) == ["00:00", "09:00", "14:00"]
    assert hour.loc["00:00", "pnl"] == pytest.approx(10.0)
    assert hour.loc["09:00", "pnl"] == pytest.approx(-4.0)
    assert hour.loc["14:00", "pnl"] == pytest.approx(4.0)
    assert hour["bucket_order"].tolist() == [0, 1, 2]


def test_feature_buckets_are_quantiles_named_by_their_range() -> None:
    table = performance_attribution(hand_journal(), n_buckets=2)
    strength = rows(table, "strength")
    # median of 0.1, 0.2, 0.8, 0.9, 0.5 is 0.5: (0.1, 0.2, 0.5) and (0.8, 0.9)
    assert list(strength.index) == ["0.1 to 0.5", "0.5 to 0.9"]
    low, high = strength.loc["0.1 to 0.5"], strength.loc["0.5 to 0.9"]
    assert (low["lower"], low["upper"]) == (0.1, 0.5)
    assert low["trades"] == 3 and low["pnl"] == pytest.approx(6.0)
    assert high["trades"] == 2 and high["pnl"] == pytest.approx(4.0) and high["hit_rate"] == 0.5

    rvr = rows(table, "rvr")
    assert list(rvr.index) == ["2 to 3.5", "3.5 to 5", "n/a"]  # the hype_lead trade has no rvr
    assert rvr.loc["n/a", "pnl"] == pytest.approx(-2.0)
    spread = rows(table, "spread")
    assert list(spread.index) == ["0.02", "n/a"]  # one distinct value: one bucket
    assert set(table["dimension"]) == {"all", "rule", "category", "hour", "strength", "rvr", "spread"}


def test_book_features_present_in_the_journal_are_bucketed() -> None:
    journal = hand_journal()
    journal["features"] = [json.dumps({"book_imbalance": v}) for v in np.linspace(-1, 1, len(journal))]
    table = performance_attribution(journal)
    assert "book_imbalance" in set(table["dimension"])
    assert "rvr" not in set(table["dimension"])


def test_quantile_buckets_cover_every_value_once() -> None:
    values = pd.Series([5.0, 1.0, np.nan, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0])
    labels, buckets = quantile_buckets(values, 4)
    assert labels.isna().sum() == 0 and labels.iloc[2] == "n/a"
    assert buckets["bucket"].tolist()[-1] == "n/a" and len(buckets) == 5
    assert labels.value_counts().drop("n/a").tolist() == [2, 2, 2, 2]


def test_an_empty_journal_gives_no_rows_and_bad_buckets_are_refused() -> None:
    empty = performance_attribution(hand_journal().iloc[0:0])
    assert empty.empty and list(empty.columns) == ATTRIBUTION_COLUMNS
    with pytest.raises(ValueError, match="n_buckets"):
        performance_attribution(hand_journal(), n_buckets=0)


def test_the_chart_draws_rule_hour_and_strength() -> None:
    fig = attribution_figure(performance_attribution(hand_journal()), "backtest")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "backtest: P&L by rule",
        "backtest: P&L by entry hour (UTC)",
        "backtest: hit rate by strength bucket",
    ]

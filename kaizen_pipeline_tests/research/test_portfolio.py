"""Portfolio sizing: Kelly, the correlation shrink, the three caps (hand-computed and as a property), trades."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaizen_pipeline.research.portfolio import (
    SizingConfig,
    apply_caps,
    correlation_shrink,
    estimated_probability,
    kelly_binary,
    size_portfolio,
)


def test_kelly_for_a_binary_contract() -> None:
    # bought at 0.5, pays 1 with probability 0.6: f* = (0.6 - 0.5) / (1 - 0.5) = 0.2
    assert kelly_binary(0.6, 0.5) == pytest.approx(0.2)
    assert kelly_binary(0.3, 0.2) == pytest.approx(0.125)
    assert kelly_binary(0.4, 0.5) == 0.0  # no edge, no bet
    assert estimated_probability(0.5, 0.5, 0.10) == pytest.approx(0.55)
    assert estimated_probability(0.97, 1.0, 0.10) == pytest.approx(0.99)  # clipped


def test_correlation_shrink_hand_computed() -> None:
    corr = pd.DataFrame(
        [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], index=list("abc"), columns=list("abc")
    )
    same_way = correlation_shrink(corr, pd.Series({"a": "YES", "b": "YES", "c": "YES"}))
    assert same_way.tolist() == pytest.approx([0.5, 0.5, 1.0])  # two identical bets share one bet's size
    hedged = correlation_shrink(corr, pd.Series({"a": "YES", "b": "NO", "c": "YES"}))
    assert hedged.tolist() == pytest.approx([1.0, 1.0, 1.0])  # YES on a and NO on b offset each other


def test_caps_hand_computed() -> None:
    w = pd.Series({"x1": 0.08, "x2": 0.04, "x3": 0.03, "y1": 0.05, "z1": 0.04})
    cats = pd.Series({"x1": "X", "x2": "X", "x3": "X", "y1": "Y", "z1": "Z"})
    capped, labels = apply_caps(w, cats, max_position=0.05, max_category=0.10, max_total=0.12)
    # x1 -> 0.05; X = 0.12 > 0.10 -> x 10/12; total 0.19 > 0.12 -> x 12/19
    k = 0.12 / 0.19
    expected = {
        "x1": 0.05 * 10 / 12 * k,
        "x2": 0.04 * 10 / 12 * k,
        "x3": 0.03 * 10 / 12 * k,
        "y1": 0.05 * k,
        "z1": 0.04 * k,
    }
    assert capped.to_dict() == pytest.approx(expected)
    assert capped.sum() == pytest.approx(0.12)
    assert labels["x1"] == "position,category,total" and labels["y1"] == "total"


def test_a_cap_per_market_binds_only_where_it_is_lower() -> None:
    w = pd.Series({"a": 0.08, "b": 0.08, "c": 0.02})
    cats = pd.Series({"a": "A", "b": "B", "c": "C"})
    caps = pd.Series({"a": 0.04, "b": 0.06, "c": 0.01})
    capped, labels = apply_caps(w, cats, max_position=caps, max_category=1.0, max_total=1.0)
    assert capped.to_dict() == pytest.approx({"a": 0.04, "b": 0.06, "c": 0.01})
    assert labels.to_dict() == {"a": "position", "b": "position", "c": "position"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1, allow_nan=False), st.sampled_from(["A", "B", "C"])), min_size=1, max_size=30
    )
)
def test_caps_always_hold_and_never_raise_a_weight(rows: list[tuple[float, str]]) -> None:
    w = pd.Series({f"m{i}": v for i, (v, _) in enumerate(rows)})
    cats = pd.Series({f"m{i}": c for i, (_, c) in enumerate(rows)})
    capped, _ = apply_caps(w, cats, max_position=0.05, max_category=0.20, max_total=0.25)
    assert (capped <= 0.05 + 1e-12).all()
    assert (capped.groupby(cats).sum() <= 0.20 + 1e-12).all()
    assert capped.sum() <= 0.25 + 1e-12
    assert (capped <= w + 1e-12).all()


def test_size_portfolio_weights_and_rebalancing_trades() -> None:
    now = pd.Timestamp("2026-03-02 12:00")
    signals = pd.DataFrame(
        {
            "market_id": ["a", "b", "c"],
            "bucket_ts": [now] * 3,
            "direction": ["YES", "NO", "YES"],
            "token_id": ["ya", "nb", "yc"],
            "strength": [1.0, 0.5, 0.2],
            "category": ["Crypto", "Politics", "Crypto"],
            "yes_price": [0.5, 0.8, 0.4],
        }
    )
    prices = pd.Series({"a": 0.5, "b": 0.8, "c": 0.4})
    corr = pd.DataFrame(0.0, index=list("abc"), columns=list("abc"))
    current = pd.DataFrame(
        {"market_id": ["a", "b", "d"], "direction": ["YES", "YES", "NO"], "weight": [0.01, 0.02, 0.03]}
    )
    cfg = SizingConfig(kelly_fraction=0.25, edge_per_strength=0.10)
    alloc = size_portfolio(signals, prices, corr, current, cfg, as_of=now).set_index("market_id")
    # a: q = 0.5, p = 0.6, f* = 0.2, quarter Kelly 0.05; b: NO at q = 0.2, p = 0.25, f* = 0.0625
    assert alloc.loc["a", "kelly_fraction"] == pytest.approx(0.05)
    assert alloc.loc["b", "price"] == pytest.approx(0.2) and alloc.loc["b", "kelly_full"] == pytest.approx(
        0.0625
    )
    assert alloc.loc["a", "target_weight"] == pytest.approx(0.05)
    assert alloc.loc["a", "trade"] == "buy 4.00% YES" and alloc.loc["a", "buy_weight"] == pytest.approx(0.04)
    assert alloc.loc["b", "trade"].startswith("sell 2.00% YES; buy") and alloc.loc["b", "sell_weight"] == 0.02
    assert alloc.loc["d", "target_weight"] == 0 and alloc.loc["d", "trade"] == "sell 3.00% NO"
    assert alloc.loc["a", "target_usd"] == pytest.approx(0.05 * cfg.bankroll_usd)


def test_no_open_signals_closes_every_position() -> None:
    now = pd.Timestamp("2026-03-02 12:00")
    empty = pd.DataFrame(columns=["market_id", "bucket_ts", "direction", "token_id", "strength", "category"])
    current = pd.DataFrame({"market_id": ["a"], "direction": ["YES"], "weight": [0.04]})
    alloc = size_portfolio(empty, pd.Series(dtype=float), pd.DataFrame(), current, SizingConfig(), as_of=now)
    assert alloc["market_id"].tolist() == ["a"] and alloc.loc[0, "trade"] == "sell 4.00% YES"
    assert size_portfolio(
        empty, pd.Series(dtype=float), pd.DataFrame(), None, SizingConfig(), as_of=now
    ).empty

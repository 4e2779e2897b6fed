"""The signal rule: thresholds, direction, token, strength, next-bar fill."""

from __future__ import annotations

import pandas as pd
import pytest

from kaizen_pipeline.research.signals import SIGNAL_COLUMNS, signal_rule

T0 = pd.Timestamp("2026-03-02 12:00")


def _features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "market_id": ["up", "down", "quiet", "nohype", "edge", "nan"],
            "bucket_ts": [T0] * 6,
            "category": ["Crypto", "Politics", "Crypto", "Crypto", "Sports", "Sports"],
            "yes_token_id": ["y-up", "y-down", "y-q", "y-n", "y-e", "y-nan"],
            "no_token_id": ["n-up", "n-down", "n-q", "n-n", "n-e", "n-nan"],
            "yes_price": [0.40, 0.70, 0.50, 0.50, 0.30, 0.50],
            "rvr": [3.0, 5.0, 1.5, 4.0, 2.0, None],
            "roc": [0.15, -0.30, 0.50, 0.50, 0.10, 0.50],
            "hype_index": [85.0, 100.0, 90.0, 60.0, 70.0, 90.0],
        }
    )


def test_rule_fires_only_when_all_three_thresholds_hold() -> None:
    signals = signal_rule(_features(), rvr_threshold=2.0, roc_threshold=0.10, hype_threshold=70).set_index(
        "market_id"
    )
    assert list(signals.columns) == [c for c in SIGNAL_COLUMNS if c != "market_id"]
    assert sorted(signals.index) == ["down", "edge", "up"]  # quiet: RVR; nohype: hype; nan: missing RVR


def test_direction_token_strength_and_fill() -> None:
    signals = signal_rule(_features(), 2.0, 0.10, 70).set_index("market_id")
    up, down, edge = signals.loc["up"], signals.loc["down"], signals.loc["edge"]
    assert (up["direction"], up["token_id"], up["signal_price"]) == ("YES", "y-up", 0.40)
    assert (down["direction"], down["token_id"]) == ("NO", "n-down")
    assert down["signal_price"] == pytest.approx(0.30)  # NO trades the complement
    # up: (3-2)/2 = 0.5, (0.15-0.10)/0.10 = 0.5, (85-70)/30 = 0.5
    assert up["strength"] == pytest.approx(0.5)
    assert down["strength"] == pytest.approx(1.0)  # all three saturate
    assert edge["strength"] == pytest.approx(0.0)  # exactly at the thresholds
    assert (signals["fill_ts"] == T0 + pd.Timedelta(minutes=15)).all()


def test_other_thresholds_change_the_set() -> None:
    strict = signal_rule(_features(), rvr_threshold=4.0, roc_threshold=0.2, hype_threshold=95)
    assert strict["market_id"].tolist() == ["down"]
    loose = signal_rule(_features(), rvr_threshold=1.0, roc_threshold=0.05, hype_threshold=50)
    assert sorted(loose["market_id"]) == ["down", "edge", "nohype", "quiet", "up"]


def test_bad_threshold_and_missing_column_are_named() -> None:
    with pytest.raises(ValueError, match="rvr_threshold"):
        signal_rule(_features(), 0.0, 0.1, 70)
    with pytest.raises(ValueError, match="hype_threshold"):
        signal_rule(_features(), 2.0, 0.1, 170)
    with pytest.raises(ValueError, match="hype_index"):
        signal_rule(_features().drop(columns=["hype_index"]), 2.0, 0.1, 70)


def test_no_hits_gives_an_empty_frame_with_the_columns() -> None:
    empty = signal_rule(_features(), 50.0, 5.0, 99)
    assert empty.empty and list(empty.columns) == SIGNAL_COLUMNS


def test_thresholds_per_market_fire_each_market_on_its_own_thresholds() -> None:
    from kaizen_pipeline.research.pipeline import signal_candidates
    from kaizen_pipeline.research.signals import SignalThresholds

    strict, loose = SignalThresholds(4.0, 0.2, 95), SignalThresholds(1.0, 0.05, 50)
    per_market = {"quiet": loose, "nohype": loose}
    mixed = signal_candidates(_features(), lambda m: per_market.get(m, strict), 15)
    # "down" passes the strict set; "quiet" and "nohype" only fire because their market runs the loose one
    assert mixed["market_id"].tolist() == ["down", "nohype", "quiet"]
    one = signal_candidates(_features(), strict, 15)
    assert one.equals(signal_candidates(_features(), lambda m: strict, 15))
    assert signal_candidates(_features().iloc[:0], lambda m: strict, 15).columns.tolist() == SIGNAL_COLUMNS

"""Bucketing: the published hash, stable variants under ramps, and splits that match their weights."""

from __future__ import annotations

import mmh3
import pytest
from scipy import stats

from kaizen_pipeline.flags.bucketing import BUCKETS, Split, bucket

MARKETS = [f"0x{i:06x}" for i in range(20_000)]


def test_hash_matches_unleash_reference_values() -> None:
    # Unleash client specification, normalizedValue(id, group) = murmur3("group:id") % 100 + 1
    assert mmh3.hash("gr1:123", 0, signed=False) % 100 + 1 == 73
    assert mmh3.hash("groupX:999", 0, signed=False) % 100 + 1 == 25
    assert bucket("gr1", "123") == mmh3.hash("gr1:123", 0, signed=False) % BUCKETS


def test_buckets_are_uniform() -> None:
    counts = [0] * 10
    for market in MARKETS:
        counts[bucket("signals.rvr_threshold", market) * 10 // BUCKETS] += 1
    assert stats.chisquare(counts).pvalue > 0.001


def test_ramping_up_keeps_every_unit_and_its_variant() -> None:
    weights = {"control": 0.5, "treatment": 0.5}
    assigned: dict[str, str] = {}
    for allocation in (0.05, 0.25, 1.0):
        split = Split("rvr-exp-1", allocation, weights)
        now = {m: v for m in MARKETS if (v := split.variant(m)) is not None}
        assert all(now.get(m) == v for m, v in assigned.items()), "a unit left or changed variant on a ramp"
        assert len(now) / len(MARKETS) == pytest.approx(allocation, abs=0.01)
        assigned = now
    shares = [sum(v == name for v in assigned.values()) / len(assigned) for name in weights]
    assert shares == pytest.approx([0.5, 0.5], abs=0.015)


def test_independent_salts_give_independent_assignments() -> None:
    first = Split("signals.rvr_threshold", 1.0, {"a": 0.5, "b": 0.5})
    second = Split("signals.hype_threshold", 1.0, {"a": 0.5, "b": 0.5})
    table = [[0, 0], [0, 0]]
    for market in MARKETS:
        table[first.variant(market) == "b"][second.variant(market) == "b"] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


@pytest.mark.parametrize(
    ("allocation", "weights", "message"),
    [
        (1.2, {"a": 1.0}, "allocation: must be within"),
        (0.5, {"a": 0.6, "b": 0.6}, "weights: must sum to 1"),
        (0.5, {"a": 1.2, "b": -0.2}, "weights: negative weight for"),
        (0.5, {}, "weights: at least one variant"),
    ],
)
def test_bad_splits_name_the_field(allocation: float, weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Split("salt", allocation, weights)

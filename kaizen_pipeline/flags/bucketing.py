"""Deterministic bucketing of units (markets, runs) into flag variants.

Pure module (no Dagster). A unit's bucket is MurmurHash3 (x86, 32 bit, seed 0) of
``"{salt}:{unit_id}"`` modulo 10,000, as Unleash's ``normalizedValue`` does (modulo 100 there)
and GrowthBook's hashing does in spirit: the same salt and unit always land in the same bucket.

Two independent hashes keep ramps stable:
- inclusion: a unit takes part when its bucket (salt ``"{salt}"``) is below
  ``allocation x 10,000``, so raising the allocation keeps every unit already in;
- variant: among included units the variant comes from a second bucket (salt
  ``"{salt}:variant"``) laid over the variants' cumulative weights, so changing the allocation
  never moves a unit between variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import mmh3

BUCKETS = 10_000


def bucket(salt: str, unit_id: str) -> int:
    """The unit's bucket in [0, BUCKETS): murmur3_32("{salt}:{unit_id}", seed 0) mod BUCKETS."""
    return mmh3.hash(f"{salt}:{unit_id}", 0, signed=False) % BUCKETS


@dataclass(frozen=True)
class Split:
    """A flag's traffic plan: the share of units included and the variants' weights among them."""

    salt: str
    allocation: float
    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.salt:
            raise ValueError("salt: must not be empty")
        if not 0.0 <= self.allocation <= 1.0:
            raise ValueError(f"allocation: must be within [0, 1], got {self.allocation}")
        if not self.weights:
            raise ValueError("weights: at least one variant is required")
        negative = sorted(v for v, w in self.weights.items() if w < 0)
        if negative:
            raise ValueError(f"weights: negative weight for {negative}")
        total = sum(self.weights.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights: must sum to 1 (100%), got {total:g}")

    def included(self, unit_id: str) -> bool:
        """The unit takes part (its inclusion bucket is below allocation x BUCKETS)."""
        return bucket(self.salt, unit_id) < round(self.allocation * BUCKETS)

    def variant(self, unit_id: str) -> str | None:
        """The unit's variant, or None when it is not included (it then gets the default)."""
        if not self.included(unit_id):
            return None
        position = bucket(f"{self.salt}:variant", unit_id)
        edge = 0.0
        names = list(self.weights)
        for name in names:
            edge += self.weights[name] * BUCKETS
            if position < round(edge):
                return name
        return names[-1]

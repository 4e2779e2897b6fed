"""Benchmark: the experiment statistics under repeated looks, by simulation.

Units are market-level outcomes drawn like the demo's P&L per market: heavy-tailed (Student t,
3 df) plus a market effect (normal, sd 0.5); randomization and analysis are both per market.
Every experiment is looked at ``--looks`` times (equal slices of its units, in arrival order).

- A/A (no effect): how often the always-valid sequence declares a winner at any look, beside
  Welch's fixed-horizon test peeked at the same looks (target: sequential <= 5%).
- Power: an effect equal to the MDE, the sample planned by ``sequential_sample_size_per_arm``;
  how often it is found, and the mean sample at decision relative to the fixed-horizon sample
  (target >= 80%).
- SRM: a 55/45 assignment bug at ``--srm-units`` units, flagged at p < 0.001 (target >= 99%),
  and the false alarm rate of a fair 50/50 split.

    python bench/experiments.py                  # 2000 A/A, 1000 power, 1000 SRM experiments
    python bench/experiments.py --aa 500 --power 300 --srm 300   # quicker
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from kaizen_pipeline.kaizen.experiment_stats import (
    SEQUENTIAL_SAMPLE_FACTOR,
    analyse_looks,
    sample_size_per_arm,
    sequential_sample_size_per_arm,
    srm_p_value,
)

ALPHA = 0.05
POWER = 0.8
MARKET_SD = 0.5
UNIT_SD = math.sqrt(3.0 + MARKET_SD**2)  # t(3) has variance 3


def units(rng: np.random.Generator, n: int) -> np.ndarray:
    """Market-level outcomes: Student t (3 df) plus a market effect."""
    return rng.standard_t(3, size=n) + rng.normal(0.0, MARKET_SD, size=n)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aa", type=int, default=2000, help="A/A experiments")
    parser.add_argument("--power", type=int, default=1000, help="experiments with a planted MDE effect")
    parser.add_argument("--srm", type=int, default=1000, help="experiments with a 55/45 assignment bug")
    parser.add_argument("--looks", type=int, default=10)
    parser.add_argument("--aa-units", type=int, default=400, help="units per A/A experiment")
    parser.add_argument("--mde", type=float, default=0.3, help="planted effect, outcome units")
    parser.add_argument("--srm-units", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    aa = [
        analyse_looks(units(rng, args.aa_units), rng.integers(0, 2, args.aa_units), looks=args.looks,
                      alpha=ALPHA, n_star=args.aa_units)
        for _ in range(args.aa)
    ]  # fmt: skip
    aa_sequential = float(np.mean([o.sequential_decided for o in aa]))
    aa_naive = float(np.mean([o.naive_decided for o in aa]))

    fixed = sample_size_per_arm(args.mde, UNIT_SD, alpha=ALPHA, power=POWER)
    planned = sequential_sample_size_per_arm(args.mde, UNIT_SD, alpha=ALPHA, power=POWER)
    found, sample_at_decision = 0, []
    for _ in range(args.power):
        arm = rng.integers(0, 2, 2 * planned)
        outcome = analyse_looks(units(rng, 2 * planned) + args.mde * arm, arm, looks=args.looks, alpha=ALPHA,
                                n_star=2 * fixed)  # fmt: skip
        if outcome.sequential_decided and outcome.sequential_positive:
            found += 1
            sample_at_decision.append(outcome.decided_at)
    power = found / args.power
    relative_sample = float(np.mean(sample_at_decision)) / (2 * fixed) if sample_at_decision else float("nan")

    def srm_rate(share: float) -> float:
        flagged = 0
        for _ in range(args.srm):
            treated = int((rng.random(args.srm_units) < share).sum())
            flagged += srm_p_value(args.srm_units - treated, treated) < 0.001
        return flagged / args.srm

    srm_caught, srm_false = srm_rate(0.45), srm_rate(0.5)
    elapsed = time.perf_counter() - started

    print(
        f"units: market-level, Student t (3 df) + market effect (sd {MARKET_SD}); {args.looks} looks; alpha {ALPHA}"
    )
    print(f"{'study':44} {'result':>10}  target")
    print(f"{'A/A false winners, sequential (' + str(args.aa) + ' runs)':44} {aa_sequential:>10.1%}  <= 5%")
    print(f"{'A/A false winners, naive Welch peeked':44} {aa_naive:>10.1%}  (for contrast)")
    print(f"{'power at MDE ' + str(args.mde) + ' (' + str(args.power) + ' runs)':44} {power:>10.1%}  >= 80%")
    print(f"{'  fixed-horizon sample per arm':44} {fixed:>10d}")
    print(f"{'  planned sequential sample per arm':44} {planned:>10d}  ({SEQUENTIAL_SAMPLE_FACTOR:g}x fixed)")
    print(f"{'  mean sample at decision / fixed sample':44} {relative_sample:>10.2f}")
    print(
        f"{'SRM 55/45 caught at p<0.001 (' + str(args.srm_units) + ' units)':44} {srm_caught:>10.1%}  >= 99%"
    )
    print(f"{'SRM false alarms on a fair 50/50 split':44} {srm_false:>10.1%}  (about 0.1%)")
    met = aa_sequential <= 0.05 and power >= 0.80 and srm_caught >= 0.99
    print(
        f"experiments: A/A false winners {aa_sequential:.1%} (naive peeking {aa_naive:.1%}), power {power:.0%} "
        f"stopping at {relative_sample:.2f}x the fixed sample, SRM caught {srm_caught:.1%}: "
        f"{'targets met' if met else 'TARGETS MISSED'} ({elapsed:.0f} s)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

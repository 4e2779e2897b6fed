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
- Market-days, as the experiments assets analyse them (``experiments.analysis.analyse_metric``):
  50 markets split 25/25, daily values t(3) plus a lasting market effect, a 14-day pre-period for
  CUPED, cluster-robust standard errors by market, ``--looks`` looks over the experiment. A/A false
  winners beside the naive fixed-horizon p < alpha peeked at the same looks; power with an effect
  equal to the MDE over the duration ``experiments.design.plan_markets`` plans, and the mean
  market-days at decision over the fixed-horizon market-days.

The last line is the summary the issue asks for (the market-day figures, the SRM study):
``aa_false_winner_rate=<x> naive_false_winner_rate=<x> power=<x> srm_detection=<x> mean_sample_ratio=<x>``.

    python bench/experiments.py                  # 2000 A/A, 1000 power, 1000 SRM experiments
    python bench/experiments.py --aa 500 --power 300 --srm 300   # quicker
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from kaizen_pipeline.experiments.analysis import analyse_metric
from kaizen_pipeline.experiments.design import plan_markets
from kaizen_pipeline.kaizen.experiment_stats import (
    SEQUENTIAL_SAMPLE_FACTOR,
    analyse_looks,
    sample_size_per_arm,
    sequential_sample_size_per_arm,
    srm_p_value,
)
from kaizen_pipeline.ops.progress import terminal_progress

ALPHA = 0.05
POWER = 0.8
MARKET_SD = 0.5
UNIT_SD = math.sqrt(3.0 + MARKET_SD**2)  # t(3) has variance 3


def units(rng: np.random.Generator, n: int) -> np.ndarray:
    """Market-level outcomes: Student t (3 df) plus a market effect."""
    return rng.standard_t(3, size=n) + rng.normal(0.0, MARKET_SD, size=n)


MARKETS, PRE_DAYS, MAX_DAYS = 50, 14, 28


def market_days(
    rng: np.random.Generator, days: int, effect: float
) -> tuple[pd.DataFrame, dict[int, float], pd.DataFrame]:
    """Post-period market-days (unit, day, arm, value), pre-period means, and the pre-period rows."""
    market = rng.normal(0.0, MARKET_SD, MARKETS)
    arm = np.array(["control", "treatment"] * (MARKETS // 2))
    rng.shuffle(arm)
    post = rng.standard_t(3, size=(MARKETS, days)) + market[:, None] + (arm == "treatment")[:, None] * effect
    pre = rng.standard_t(3, size=(MARKETS, PRE_DAYS)) + market[:, None]
    frame = pd.DataFrame({"unit": np.repeat(np.arange(MARKETS), days), "day": np.tile(np.arange(days), MARKETS),
                          "arm": np.repeat(arm, days), "value": post.reshape(-1)})  # fmt: skip
    pre_rows = pd.DataFrame({"unit": np.repeat(np.arange(MARKETS), PRE_DAYS),
                             "day": np.tile(np.arange(PRE_DAYS), MARKETS), "value": pre.reshape(-1)})  # fmt: skip
    return frame, dict(enumerate(pre.mean(axis=1))), pre_rows


def naive_p(frame: pd.DataFrame) -> float:
    """Fixed-horizon two-sided p of the arm coefficient (cluster-robust OLS): valid once, not peeked."""
    y = frame["value"].to_numpy(float)
    x = sm.add_constant((frame["arm"] == "treatment").to_numpy(float))
    fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": frame["unit"].to_numpy()})
    return float(2 * stats.norm.sf(abs(fit.params[1] / fit.bse[1])))


def market_day_study(
    rng: np.random.Generator, experiments: int, effect: float, days: int, looks: int, n_star: float
) -> tuple[float, float, list[int]]:
    """(share decided by the sequential analysis, share the naive peeker calls, market-days at decision)."""
    decided = naive = 0
    at_decision: list[int] = []
    for _ in range(experiments):
        frame, pre, _ = market_days(rng, days, effect)
        seq_done = naive_done = False
        for day in np.unique(np.linspace(days / looks, days, looks).round().astype(int)):
            seen = frame[frame["day"] < day]
            if not seq_done:
                look = analyse_metric(seen, metric="pnl", role="primary", direction="higher", alpha=ALPHA,
                                      n_star=n_star, clustered=True, pre_period=pre)  # fmt: skip
                if look.outcome != "neutral":
                    seq_done = True
                    at_decision.append(len(seen))
            naive_done = naive_done or naive_p(seen) < ALPHA
        decided += seq_done
        naive += naive_done
    return decided / experiments, naive / experiments, at_decision


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
    parser.add_argument("--market-aa", type=int, default=2000, help="A/A experiments on market-days")
    parser.add_argument("--market-power", type=int, default=500, help="market-day experiments with the MDE")
    parser.add_argument("--market-mde", type=float, default=0.8, help="planted market-day effect")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    with terminal_progress("experiments bench", unit="experiments") as report:
        aa = []
        for i in range(args.aa):
            report("A/A experiments (false positives)", i, args.aa)
            aa.append(analyse_looks(units(rng, args.aa_units), rng.integers(0, 2, args.aa_units), looks=args.looks,
                                    alpha=ALPHA, n_star=args.aa_units))  # fmt: skip
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

    _, _, pre_rows = market_days(rng, 1, 0.0)
    plan = plan_markets(pre_rows, mde=args.market_mde, alpha=ALPHA, power=POWER, markets=MARKETS, share=0.5,
                        max_days=MAX_DAYS)  # fmt: skip
    plan_days = int(plan.expected_days or MAX_DAYS)
    md_aa, md_naive, _ = market_day_study(rng, args.market_aa, 0.0, MAX_DAYS, args.looks, MARKETS * MAX_DAYS)
    md_power, _, md_at = market_day_study(rng, args.market_power, args.market_mde, plan_days, args.looks,
                                          MARKETS * plan_days)  # fmt: skip
    fixed_days = next(
        (d for d in range(1, MAX_DAYS + 1)
         if sample_size_per_arm(args.market_mde, float(np.sqrt(plan_components(pre_rows, d))), alpha=ALPHA,
                                power=POWER) <= MARKETS // 2),
        MAX_DAYS,
    )  # fmt: skip
    md_ratio = float(np.mean(md_at)) / (MARKETS * fixed_days) if md_at else float("nan")
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
    print()
    print(
        f"market-days: {MARKETS} markets 25/25, t(3) + market effect, CUPED on {PRE_DAYS} pre-days, clustered by market"
    )
    print(f"{'A/A false winners, sequential (' + str(args.market_aa) + ' runs)':44} {md_aa:>10.1%}  <= 5%")
    print(f"{'A/A false winners, naive fixed-horizon peeked':44} {md_naive:>10.1%}  (for contrast)")
    print(
        f"{'power at MDE ' + str(args.market_mde) + f' over {plan_days} planned days':44} {md_power:>10.1%}  >= 80%"
    )
    print(f"{'  fixed-horizon days (no CUPED)':44} {fixed_days:>10d}")
    print(f"{'  mean market-days at decision / fixed':44} {md_ratio:>10.2f}")
    met = (
        aa_sequential <= 0.05 and power >= 0.80 and srm_caught >= 0.99 and md_aa <= 0.05 and md_power >= 0.80
    )
    print(
        f"experiments: {'targets met' if met else 'TARGETS MISSED'} ({elapsed:.0f} s); unit-level A/A {aa_sequential:.1%}, "
        f"power {power:.0%} at {relative_sample:.2f}x the fixed sample"
    )
    print(
        f"aa_false_winner_rate={md_aa:.4f} naive_false_winner_rate={md_naive:.4f} power={md_power:.4f} "
        f"srm_detection={srm_caught:.4f} mean_sample_ratio={md_ratio:.3f}"
    )
    return 0 if met else 1


def plan_components(pre_rows: pd.DataFrame, days: int) -> float:
    """Variance of a market's mean over ``days`` days (between + within / days), without CUPED."""
    from kaizen_pipeline.experiments.design import variance_components

    between, within, _ = variance_components(pre_rows)
    return between + within / days


if __name__ == "__main__":
    sys.exit(main())

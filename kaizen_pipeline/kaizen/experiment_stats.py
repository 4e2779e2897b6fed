"""Statistics of controlled experiments: always-valid intervals, CUPED, sample-ratio mismatch, Holm.

Pure module (numpy, scipy, statsmodels; no Dagster). The experiments issue builds on it: every
look at a running experiment is analysed with an asymptotic confidence sequence, so looking daily
does not inflate false winners.

Asymptotic confidence sequence (Waudby-Smith, Arnold, Wu, Ramdas 2021, "Time-uniform central
limit theory and asymptotic confidence sequences"; the form GrowthBook's sequential testing uses):
with ``N`` units in both arms, the difference ``d`` and its fixed-sample standard error ``se``,

    d +- se * sqrt(N) * sqrt( 2 (N rho2 + 1) / (N^2 rho2) * log( sqrt(N rho2 + 1) / alpha ) )

holds for every ``N`` at once with probability >= 1 - alpha (asymptotically). ``rho2`` tunes at
which ``N`` the sequence is tightest: ``rho2 = (-2 log alpha + log(-2 log alpha + 1)) / N*``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower


def tuned_rho2(n_star: float, alpha: float) -> float:
    """The mixture parameter that makes the sequence tightest near ``n_star`` units (GrowthBook's closed form)."""
    if n_star <= 0 or not 0 < alpha < 1:
        raise ValueError(f"n_star must be > 0 and alpha in (0, 1), got n_star={n_star}, alpha={alpha}")
    log_term = -2.0 * math.log(alpha)
    return (log_term + math.log(log_term + 1.0)) / n_star


def cs_margin(n: float | np.ndarray, rho2: float, alpha: float) -> float | np.ndarray:
    """Unit-variance margin of the asymptotic confidence sequence after ``n`` units (multiply by the sd).

    sqrt( 2 (n rho2 + 1) / (n^2 rho2) * log( sqrt(n rho2 + 1) / alpha ) ): the fixed-sample
    margin is z_{1-alpha/2} / sqrt(n); this one is wider at every n and valid at all of them.
    """
    n = np.asarray(n, dtype=float)
    if np.any(n < 1) or rho2 <= 0 or not 0 < alpha < 1:
        raise ValueError("n must be >= 1, rho2 > 0 and alpha in (0, 1)")
    margin = np.sqrt(2.0 * (n * rho2 + 1.0) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1.0) / alpha))
    return float(margin) if margin.ndim == 0 else margin


@dataclass(frozen=True)
class SequentialResult:
    """One look: the difference treatment - control, its always-valid interval and p-value."""

    n_control: int
    n_treatment: int
    difference: float
    std_error: float
    lower: float
    upper: float
    p_value: float

    @property
    def decided(self) -> bool:
        """The interval excludes zero: the arms differ at the sequence's level."""
        return self.lower > 0 or self.upper < 0


def sequential_difference(
    control: Sequence[float] | np.ndarray,
    treatment: Sequence[float] | np.ndarray,
    *,
    alpha: float,
    n_star: float,
) -> SequentialResult:
    """Difference in means with the always-valid interval of the asymptotic confidence sequence.

    ``n_star`` is the total unit count (both arms) where the sequence should be tightest, e.g. the
    planned sample. The p-value is the smallest alpha whose interval excludes zero.
    """
    c = np.asarray(control, dtype=float)
    t = np.asarray(treatment, dtype=float)
    if c.size < 2 or t.size < 2:
        raise ValueError(f"each arm needs at least 2 units, got control={c.size}, treatment={t.size}")
    diff = float(t.mean() - c.mean())
    se = math.sqrt(c.var(ddof=1) / c.size + t.var(ddof=1) / t.size)
    return sequential_interval(diff, se, int(c.size), int(t.size), alpha=alpha, n_star=n_star)


def sequential_interval(
    diff: float, se: float, n_control: int, n_treatment: int, *, alpha: float, n_star: float
) -> SequentialResult:
    """The always-valid interval around an estimated difference with any standard error.

    ``se`` may come from a regression (CUPED as a covariate, cluster-robust by market): the
    sequence's margin scales the per-observation deviation ``se * sqrt(n)``, n = both arms.
    """
    n = n_control + n_treatment
    rho2 = tuned_rho2(n_star, alpha)
    half = se * math.sqrt(n) * cs_margin(n, rho2, alpha)
    return SequentialResult(
        n_control, n_treatment, diff, se, diff - half, diff + half, _always_valid_p(diff, se, n, rho2)
    )


def _always_valid_p(diff: float, se: float, n: int, rho2: float) -> float:
    """Smallest alpha whose interval excludes 0 (the margin shrinks monotonically as alpha grows)."""
    if se == 0:
        return 0.0 if diff != 0 else 1.0
    z = abs(diff) / (se * math.sqrt(n))
    # margin^2 = 2 (n rho2 + 1) / (n^2 rho2) * (0.5 log(n rho2 + 1) - log alpha) = z^2, solved for alpha
    log_alpha = 0.5 * math.log(n * rho2 + 1.0) - z**2 * n**2 * rho2 / (2.0 * (n * rho2 + 1.0))
    return float(min(1.0, math.exp(log_alpha)))


@dataclass(frozen=True)
class LooksOutcome:
    """An experiment looked at repeatedly: what the sequential and the naive fixed-horizon test concluded."""

    sequential_decided: bool
    sequential_positive: bool
    decided_at: int | None
    naive_decided: bool


def analyse_looks(
    outcomes: np.ndarray, arm: np.ndarray, *, looks: int, alpha: float, n_star: int
) -> LooksOutcome:
    """Look after each of ``looks`` equal slices of the units (in arrival order; ``arm`` 0 control, 1 treatment).

    The sequential test stops at its first decision; the naive peeker counts as decided when
    Welch's p < alpha at any look, the way a person reading a fixed-horizon dashboard daily would.
    """
    units = np.asarray(outcomes, dtype=float)
    arms = np.asarray(arm)
    decided_at: int | None = None
    positive = naive = False
    for k in range(1, looks + 1):
        m = len(units) * k // looks
        control, treatment = units[:m][arms[:m] == 0], units[:m][arms[:m] == 1]
        if control.size < 2 or treatment.size < 2:
            continue
        if decided_at is None:
            result = sequential_difference(control, treatment, alpha=alpha, n_star=n_star)
            if result.decided:
                decided_at, positive = m, result.difference > 0
        naive = naive or fixed_horizon_p(control, treatment) < alpha
    return LooksOutcome(decided_at is not None, positive, decided_at, naive)


def fixed_horizon_p(control: np.ndarray, treatment: np.ndarray) -> float:
    """Welch's two-sided p-value: valid once, at a sample size fixed in advance (the naive peeker's test)."""
    return float(stats.ttest_ind(treatment, control, equal_var=False).pvalue)


@dataclass(frozen=True)
class CupedResult:
    """CUPED-adjusted outcomes, the coefficient used and the variance it removed."""

    adjusted: np.ndarray
    theta: float
    variance_reduction: float
    applied: bool


def cuped_adjust(outcome: np.ndarray, pre_period: np.ndarray) -> CupedResult:
    """y - theta (x - mean x), theta = cov(y, x) / var(x) over all units of both arms (Deng et al. 2013).

    Applied only when it reduces variance; ``variance_reduction`` = 1 - var(adjusted) / var(y).
    """
    y = np.asarray(outcome, dtype=float)
    x = np.asarray(pre_period, dtype=float)
    if y.shape != x.shape:
        raise ValueError(f"outcome and pre_period must align, got {y.shape} and {x.shape}")
    var_x = float(x.var(ddof=1)) if x.size > 1 else 0.0
    var_y = float(y.var(ddof=1)) if y.size > 1 else 0.0
    if var_x == 0 or var_y == 0:
        return CupedResult(y, 0.0, 0.0, False)
    theta = float(np.cov(y, x, ddof=1)[0, 1] / var_x)
    adjusted = y - theta * (x - x.mean())
    reduction = 1.0 - float(adjusted.var(ddof=1)) / var_y
    if reduction <= 0:
        return CupedResult(y, 0.0, 0.0, False)
    return CupedResult(adjusted, theta, reduction, True)


def srm_p_value(n_control: int, n_treatment: int, treatment_share: float = 0.5) -> float:
    """Chi-square goodness-of-fit p-value of the arm counts against the planned split (sample-ratio mismatch)."""
    total = n_control + n_treatment
    if total == 0:
        return 1.0
    expected = [total * (1.0 - treatment_share), total * treatment_share]
    return float(stats.chisquare([n_control, n_treatment], expected).pvalue)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """Holm-adjusted p-values across secondary metrics: the step-down max of min(1, (m - i) p_(i)).

    Written out rather than statsmodels' ``multipletests`` (which it equals, tested), because that
    runs a full garbage collection on every call: 0.19 s with Dagster loaded, most of a rollout look.
    ``alpha`` does not change adjusted p-values; it is kept for the callers' symmetry.
    """
    p = np.asarray(list(p_values), dtype=float)
    if p.size == 0:
        return np.array([], dtype=float)
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def sample_size_per_arm(mde: float, sd: float, *, alpha: float, power: float) -> int:
    """Units per arm for a two-sided fixed-horizon z-test to detect ``mde`` with ``power`` (statsmodels)."""
    if mde == 0 or sd <= 0:
        raise ValueError(f"mde must be non-zero and sd > 0, got mde={mde}, sd={sd}")
    effect = abs(mde) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the root finder warns before it gives up on very large effects
        n = float(NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0))
    if not math.isfinite(n):
        # statsmodels' bracket starts above the answer when the effect is huge; the same normal model
        # in closed form (one tail; the other adds nothing at this size)
        n = 2.0 * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / effect) ** 2
    return max(2, int(math.ceil(n)))


# The always-valid interval is wider than the fixed one: planning a sequential experiment for
# this many times the fixed-horizon sample keeps power >= 80% at the MDE, and with looks it stops
# on average near the fixed sample (measured by simulation: bench/experiments.py).
SEQUENTIAL_SAMPLE_FACTOR = 2.0


def sequential_sample_size_per_arm(mde: float, sd: float, *, alpha: float, power: float) -> int:
    """Units per arm to plan for the sequential test: the fixed-horizon size times SEQUENTIAL_SAMPLE_FACTOR."""
    return int(math.ceil(SEQUENTIAL_SAMPLE_FACTOR * sample_size_per_arm(mde, sd, alpha=alpha, power=power)))


def rho2_optimum(n_star: float, alpha: float) -> float:
    """The rho2 minimizing the margin at exactly ``n_star`` (numerical; checks the closed form)."""
    result = optimize.minimize_scalar(
        lambda log_r: float(cs_margin(n_star, math.exp(log_r), alpha)), bounds=(-30, 5), method="bounded"
    )
    return float(math.exp(result.x))

"""Experiment statistics: reference values of the confidence sequence, and its claims shown by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from kaizen_pipeline.kaizen.experiment_stats import (
    analyse_looks,
    cs_margin,
    cuped_adjust,
    holm,
    rho2_optimum,
    sample_size_per_arm,
    sequential_difference,
    sequential_sample_size_per_arm,
    srm_p_value,
    tuned_rho2,
)

ALPHA = 0.05
LOOKS = 10


def test_margin_matches_the_published_formula_by_hand() -> None:
    # n=100, rho2=0.1, alpha=0.05: n rho2 + 1 = 11; 2 * 11 / (100^2 * 0.1) = 0.022;
    # log(sqrt(11) / 0.05) = log(66.33250) = 4.194680; 0.022 * 4.194680 = 0.0922830; sqrt = 0.303781
    assert cs_margin(100, 0.1, ALPHA) == pytest.approx(0.303781, abs=2e-6)
    # n=1000, rho2=0.01: n rho2 + 1 = 11 again; 2 * 11 / (1e6 * 0.01) = 0.0022; * 4.194680 = 0.00922830
    assert cs_margin(1000, 0.01, ALPHA) == pytest.approx(math.sqrt(0.00922830), rel=1e-5)


def test_closed_form_rho2_is_near_the_numerical_optimum() -> None:
    for n_star in (100, 1_000, 10_000):
        assert tuned_rho2(n_star, ALPHA) == pytest.approx(rho2_optimum(n_star, ALPHA), rel=0.05)


def test_sequence_is_wider_than_the_fixed_interval_and_shrinks() -> None:
    n = np.arange(2, 20_000)
    margin = cs_margin(n, tuned_rho2(1_000, ALPHA), ALPHA)
    assert np.all(margin > stats.norm.ppf(1 - ALPHA / 2) / np.sqrt(n))
    assert np.all(np.diff(margin) < 0)


def test_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(11)
    for shift in (0.0, 0.1, 0.2, 0.4):
        control = rng.normal(0, 1, 400)
        treatment = rng.normal(shift, 1, 400)
        result = sequential_difference(control, treatment, alpha=ALPHA, n_star=800)
        assert result.decided == (result.p_value < ALPHA)
        assert result.lower < result.difference < result.upper


def _clustered_units(rng: np.random.Generator, n: int) -> np.ndarray:
    """Market-level outcomes like the demo's: heavy-tailed (Student t, 3 df) plus a market effect."""
    return rng.standard_t(3, size=n) + rng.normal(0, 0.5, size=n)


def test_daily_looks_do_not_inflate_false_winners() -> None:
    """A/A with ten looks: the sequence stays under alpha, the peeked Welch test does not."""
    rng = np.random.default_rng(2026)
    sims, n = 300, 400
    outcomes = [
        analyse_looks(_clustered_units(rng, n), rng.integers(0, 2, n), looks=LOOKS, alpha=ALPHA, n_star=n)
        for _ in range(sims)
    ]
    sequential = np.mean([o.sequential_decided for o in outcomes])
    naive = np.mean([o.naive_decided for o in outcomes])
    # binomial sd of a 5% rate over 300 runs is 1.3 points: 0.08 is more than 2 sd above alpha
    assert sequential <= 0.08
    assert naive >= 0.12  # fixed-horizon peeking: about 20% at ten looks


def test_planned_sequential_sample_finds_the_mde() -> None:
    rng = np.random.default_rng(7)
    sd, mde = math.sqrt(3 + 0.25), 0.3
    fixed = sample_size_per_arm(mde, sd, alpha=ALPHA, power=0.8)
    per_arm = sequential_sample_size_per_arm(mde, sd, alpha=ALPHA, power=0.8)
    sims, hits = 200, 0
    for _ in range(sims):
        arm = rng.integers(0, 2, 2 * per_arm)
        units = _clustered_units(rng, 2 * per_arm) + mde * arm
        outcome = analyse_looks(units, arm, looks=LOOKS, alpha=ALPHA, n_star=2 * fixed)
        hits += outcome.sequential_decided and outcome.sequential_positive
    # true power is about 87%; 0.78 is 2.5 binomial sd below it over 200 runs
    assert hits / sims >= 0.78


def test_sample_ratio_mismatch_of_55_45_is_caught() -> None:
    rng = np.random.default_rng(3)
    total = 4_000
    caught = np.mean(
        [srm_p_value(*np.bincount(rng.random(total) < 0.45, minlength=2)) < 0.001 for _ in range(500)]
    )
    assert caught >= 0.99
    fair = np.mean(
        [srm_p_value(*np.bincount(rng.random(total) < 0.5, minlength=2)) < 0.001 for _ in range(500)]
    )
    assert fair <= 0.01


def test_cuped_removes_the_variance_the_pre_period_explains() -> None:
    rng = np.random.default_rng(5)
    pre = rng.normal(0, 1, 2_000)
    outcome = 0.8 * pre + rng.normal(0, 0.6, 2_000)
    result = cuped_adjust(outcome, pre)
    assert result.applied and result.theta == pytest.approx(0.8, abs=0.05)
    assert result.variance_reduction == pytest.approx(0.64 / (0.64 + 0.36), abs=0.05)
    assert cuped_adjust(outcome, rng.normal(0, 1, 2_000)).variance_reduction < 0.01


def test_holm_and_bad_input() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="each arm needs at least 2 units"):
        sequential_difference([1.0], [1.0, 2.0], alpha=ALPHA, n_star=10)
    with pytest.raises(ValueError, match="mde must be non-zero"):
        sample_size_per_arm(0.0, 1.0, alpha=ALPHA, power=0.8)


def test_sample_size_of_a_huge_effect_is_small_not_an_error() -> None:
    # statsmodels' solver gives up above an effect size of about 3; the closed form takes over
    assert sample_size_per_arm(5.0, 1.0, alpha=0.05, power=0.8) == 2
    assert sample_size_per_arm(2.5, 1.0, alpha=0.05, power=0.8) == 3
    assert sample_size_per_arm(2.0, 1.0, alpha=0.05, power=0.8) == 4  # statsmodels: 3.92


@pytest.mark.slow  # each statsmodels call collects garbage: 0.2-0.5 s in a full test process
def test_holm_equals_statsmodels_reference() -> None:
    """The written-out step-down equals statsmodels' reference implementation, ties and ones included."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 5, 8):
        for _ in range(8):
            p = rng.choice([rng.uniform(), 0.02, 0.5, 1.0], size=size) * rng.uniform(0.1, 1.0)
            np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-12)

"""One look at a running experiment: per-metric estimates with always-valid intervals, and the decision.

Pure module (statsmodels; no Dagster). At every look, for every metric:

- the difference treatment - control, from OLS of the metric on the arm indicator; for market
  experiments the observations are market-days and the standard error is cluster-robust by market
  (the randomization unit), for run experiments the observations are runs;
- CUPED: each unit's pre-period mean enters as a centred covariate when every unit has one and it
  shrinks the standard error; the reported reduction is 1 - (se with / se without)^2;
- the always-valid interval and p-value of the asymptotic confidence sequence
  (:func:`kaizen_pipeline.kaizen.experiment_stats.sequential_interval`), tightest near the planned
  sample, so a look every day does not inflate false winners;
- Holm's correction across the guardrails; a sample-ratio mismatch test on the units assigned.

Decision, in this order: SRM p below the threshold: ``invalid``; a guardrail harmed (its Holm
p-value below alpha, estimate in the harmful direction): ``stopped``; the primary metric loses:
``stopped``; the primary wins, after ``min_days_to_ship`` and with every guardrail shown within its
non-inferiority margin: ``shipped``; ``max_days`` reached: ``inconclusive`` (keep control).

Harm stops an experiment at any look, but a win waits: a guardrail that has not crossed its harm
bound is not yet shown harmless. Shipping follows the risk-aware rule of Schultzberg, Ankargren and
Frånberg ("Risk-aware product decisions in A/B tests with multiple metrics", 2024): superiority on
the primary metric and non-inferiority on every guardrail, each guardrail's always-valid interval
ruling out harm beyond its margin. Requiring all of them is an intersection-union test (Berger 1982),
so the non-inferiority tests need no multiplicity correction; Holm applies to the harm tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm

from kaizen_pipeline.experiments.metrics import Direction
from kaizen_pipeline.kaizen.experiment_stats import holm, sequential_interval, srm_p_value

CONTROL, TREATMENT = "control", "treatment"


@dataclass(frozen=True)
class MetricLook:
    """One metric at one look."""

    metric: str
    role: str
    direction: Direction
    units_control: int
    units_treatment: int
    mean_control: float | None = None
    mean_treatment: float | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    cuped_reduction: float = 0.0
    outcome: str = "no_data"

    @property
    def harmful(self) -> bool:
        return self.outcome == "loses"

    def within_margin(self, margin: float) -> bool:
        """The always-valid interval rules out harm larger than ``margin`` (non-inferiority)."""
        if self.lower is None or self.upper is None:
            return False
        return self.lower > -margin if self.direction == "higher" else self.upper < margin


def _fit(
    y: np.ndarray, arm: np.ndarray, groups: np.ndarray | None, covariate: np.ndarray | None
) -> tuple[float, float]:
    columns = [np.ones_like(y), arm]
    if covariate is not None:
        columns.append(covariate - covariate.mean())
    model = sm.OLS(y, np.column_stack(columns))
    if groups is not None:
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]})
    else:
        fit = model.fit(cov_type="HC1")
    return float(fit.params[1]), float(fit.bse[1])


def analyse_metric(
    values: pd.DataFrame,
    *,
    metric: str,
    role: str,
    direction: Direction,
    alpha: float,
    n_star: float,
    clustered: bool,
    pre_period: Mapping[str, float] | None = None,
    min_units_per_arm: int = 2,
) -> MetricLook:
    """``values``: columns unit, arm (control/treatment), value; one row per market-day or run."""
    data = values.dropna(subset=["value"])
    units = data.groupby("arm")["unit"].nunique()
    n_c, n_t = int(units.get(CONTROL, 0)), int(units.get(TREATMENT, 0))
    look = MetricLook(metric, role, direction, n_c, n_t)
    if min(n_c, n_t) < max(2, min_units_per_arm):
        return look
    y = data["value"].to_numpy(float)
    arm = (data["arm"] == TREATMENT).to_numpy(float)
    groups = data["unit"].to_numpy() if clustered else None
    if np.var(y) == 0:
        return replace(look, mean_control=float(y[arm == 0].mean()), mean_treatment=float(y[arm == 1].mean()),
                       estimate=0.0, lower=0.0, upper=0.0, p_value=1.0, outcome="neutral")  # fmt: skip
    diff, se = _fit(y, arm, groups, None)
    reduction = 0.0
    if pre_period is not None:
        covariate = data["unit"].map(pre_period).to_numpy(float)
        if np.isfinite(covariate).all() and np.var(covariate) > 0:
            adj_diff, adj_se = _fit(y, arm, groups, covariate)
            if 0 < adj_se < se:
                reduction = 1.0 - (adj_se / se) ** 2
                diff, se = adj_diff, adj_se
    n_control, n_treatment = int((arm == 0).sum()), int((arm == 1).sum())
    seq = sequential_interval(diff, se, n_control, n_treatment, alpha=alpha, n_star=max(n_star, 2.0))
    better = seq.lower > 0 if direction == "higher" else seq.upper < 0
    worse = seq.upper < 0 if direction == "higher" else seq.lower > 0
    return replace(
        look,
        mean_control=float(y[arm == 0].mean()),
        mean_treatment=float(y[arm == 1].mean()),
        estimate=seq.difference,
        lower=seq.lower,
        upper=seq.upper,
        p_value=seq.p_value,
        cuped_reduction=reduction,
        outcome="wins" if better else "loses" if worse else "neutral",
    )


def with_holm(guardrails: Sequence[MetricLook], alpha: float) -> list[MetricLook]:
    """Guardrails with Holm-adjusted p-values; a harm counts only when it survives the adjustment."""
    measured = [g for g in guardrails if g.p_value is not None]
    adjusted = dict(
        zip([g.metric for g in measured], holm([g.p_value for g in measured], alpha), strict=True)
    )
    out = []
    for g in guardrails:
        p = adjusted.get(g.metric)
        if p is None:
            out.append(g)
            continue
        outcome = g.outcome
        if outcome == "loses" and p >= alpha:
            outcome = "neutral"
        out.append(replace(g, p_holm=float(p), outcome=outcome))
    return out


@dataclass(frozen=True)
class Decision:
    """What a look decided: the experiment's next status, the decision's name and its evidence in words."""

    status: str
    decision: str
    reason: str


def srm_check(assigned: Mapping[str, int], treatment_share: float) -> float:
    """Sample-ratio mismatch p-value of the units assigned to each arm against the planned split."""
    return srm_p_value(int(assigned.get(CONTROL, 0)), int(assigned.get(TREATMENT, 0)), treatment_share)


def decide(
    primary: MetricLook,
    guardrails: Sequence[MetricLook],
    *,
    srm_p: float,
    srm_threshold: float,
    days: float,
    max_days: int,
    min_days_to_ship: float = 0.0,
    margins: Mapping[str, float] | None = None,
) -> Decision | None:
    """The decision at this look (module docstring: the order), or None to keep running.

    ``margins``: non-inferiority margin per guardrail metric; a win ships only once every guardrail
    with a margin is shown within it.
    """
    if srm_p < srm_threshold:
        return Decision(
            "invalid", "invalid_srm", f"sample-ratio mismatch: p = {srm_p:.2g} < {srm_threshold:g}"
        )
    harmed = [g for g in guardrails if g.harmful]
    if harmed:
        detail = ", ".join(f"{g.metric} {_effect(g)}" for g in harmed)
        return Decision("stopped", "stop_guardrail", f"guardrail harmed: {detail}")
    if primary.outcome == "loses":
        return Decision("stopped", "stop_primary_loses", f"{primary.metric} got worse: {_effect(primary)}")
    margins = margins or {}
    unproven = [g for g in guardrails if g.metric in margins and not g.within_margin(margins[g.metric])]
    if primary.outcome == "wins" and days >= min_days_to_ship and not unproven:
        proven = "; ".join(
            f"{g.metric} within -{margins[g.metric]:g}" for g in guardrails if g.metric in margins
        )
        return Decision(
            "shipped",
            "ship",
            f"{primary.metric} improved: {_effect(primary)}; no guardrail harmed"
            + (f" ({proven})" if proven else ""),
        )
    if days >= max_days:
        detail = ""
        if primary.outcome == "wins" and unproven:
            detail = " (the primary won, but " + ", ".join(
                f"{g.metric} {_effect(g) if g.estimate is not None else 'unmeasured'} is not shown within "
                f"-{margins[g.metric]:g}" for g in unproven
            ) + ")"  # fmt: skip
        return Decision(
            "inconclusive",
            "inconclusive",
            f"no decision after {days:.1f} of {max_days} days: keep control{detail}",
        )
    return None


def _effect(look: MetricLook) -> str:
    return f"{look.estimate:+.4g} [{look.lower:+.4g}, {look.upper:+.4g}], always-valid p = {look.p_value:.2g}"

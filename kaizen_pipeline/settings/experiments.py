"""The experiments section: how recommendations become controlled experiments, and how they are decided."""

from __future__ import annotations

from pydantic import Field, model_validator

from kaizen_pipeline.settings._base import _Section

GUARDRAIL_METRICS = ("pnl_per_market_day", "drawdown", "run_success_rate", "api_error_rate")
# Harm a money guardrail must be shown to stay within before a win ships, in its unit metric's units:
# half a percent of a market's stake per day, 5% of it in drawdown. Run guardrails have none by
# default: proving a 96% success rate within a few points takes hundreds of runs per arm, so they
# stop a change on evidence of harm only (add a margin where runs are plentiful).
GUARDRAIL_MARGINS = {"pnl_per_market_day": 0.005, "drawdown": 0.05}


class ParameterBounds(_Section):
    """How far the loop may move one parameter by itself."""

    min: float = Field(description="Smallest value the loop may test or ship.")
    max: float = Field(description="Largest value the loop may test or ship.")
    max_step: float = Field(gt=0, description="Largest change from the config value in one experiment.")

    @model_validator(mode="after")
    def _ordered(self) -> ParameterBounds:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


# What the loop may change alone. Not listed, never by itself (a person starts those experiments):
# signals.max_position_pct sizes positions like a risk limit, and the risk limits are not flaggable.
AUTONOMY_BOUNDS: dict[str, dict[str, float]] = {
    "signals.rvr_threshold": {"min": 1.0, "max": 10.0, "max_step": 1.5},
    "signals.roc_threshold": {"min": 0.01, "max": 1.0, "max_step": 0.1},
    "signals.hype_threshold": {"min": 0.0, "max": 100.0, "max_step": 30.0},
    "research.signal_hold_buckets": {"min": 1, "max": 96, "max_step": 16},
    "transport.timeout_seconds": {"min": 1, "max": 120, "max_step": 20},
    "transport.max_retries": {"min": 0, "max": 10, "max_step": 5},
    "transport.backoff_base_seconds": {"min": 0, "max": 10, "max_step": 2},
    "transport.backoff_max_seconds": {"min": 0, "max": 300, "max_step": 60},
    "transport.request_deadline_seconds": {"min": 1, "max": 900, "max_step": 120},
}


class ExperimentSettings(_Section):
    """Controlled experiments: sample size, looks, decisions and what runs without a person."""

    auto_start: bool = Field(
        True, description="Start drafts that are powered within experiments.max_days without a person."
    )
    max_running: int = Field(3, ge=0, le=20, description="Experiments running at once (0: none start).")
    max_days: int = Field(
        28, ge=1, le=365, description="Longest run; a draft needing longer is underpowered and not started."
    )
    min_days_to_ship: int = Field(
        7,
        ge=0,
        le=365,
        description="Days before a winning primary metric can ship (a full week); harm stops at any look.",
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Significance of the always-valid intervals.")
    power: float = Field(0.8, gt=0.5, lt=1, description="Planned power at the minimum detectable effect.")
    treatment_share: float = Field(
        0.5, gt=0, lt=1, description="Share of units in the treatment arm (the flag's weight)."
    )
    srm_p_threshold: float = Field(
        0.001, gt=0, lt=0.1, description="Sample-ratio mismatch p-value below which an experiment is invalid."
    )
    guardrails: list[str] = Field(
        default_factory=lambda: list(GUARDRAIL_METRICS),
        description="Guardrail metrics (of the experiment's unit kind) that must not get worse to ship.",
    )
    guardrail_margins: dict[str, float] = Field(
        default_factory=lambda: dict(GUARDRAIL_MARGINS),
        description="Non-inferiority margin per guardrail (its unit metric's units): a win ships only when "
        "every guardrail's always-valid interval rules out harm beyond its margin.",
    )
    pre_period_days: int = Field(
        14,
        ge=1,
        le=180,
        description="Days before the start whose per-unit values feed CUPED and the variance.",
    )
    look_interval_hours: float = Field(
        24, gt=0, le=24 * 7, description="Hours between looks the experiment_sensor requests."
    )
    autonomy: dict[str, ParameterBounds] = Field(
        default_factory=lambda: {k: ParameterBounds(**v) for k, v in AUTONOMY_BOUNDS.items()},
        description="Parameters the loop may start experiments on by itself, with their allowed range and "
        "largest step; any other parameter waits for a person (kaizen experiments start).",
    )
    refine_winners: bool = Field(
        True, description="A shipped change proposes its next step in the same direction (recommendations)."
    )
    cooldown_days: int = Field(
        28,
        ge=0,
        le=365,
        description="Days a change stopped for harm blocks proposals moving its parameter that way.",
    )
    min_units_per_arm: int = Field(
        5, ge=2, le=10_000, description="Units with data per arm before a look can decide."
    )

    @model_validator(mode="after")
    def _ship_within_max_days(self) -> ExperimentSettings:
        if self.min_days_to_ship > self.max_days:
            raise ValueError(
                f"min_days_to_ship ({self.min_days_to_ship}) is longer than max_days ({self.max_days}): "
                "no experiment could ship"
            )
        return self

    @model_validator(mode="after")
    def _known_guardrails(self) -> ExperimentSettings:
        unknown = sorted(set(self.guardrails) - set(GUARDRAIL_METRICS))
        if unknown:
            raise ValueError(f"guardrails: unknown metric(s) {unknown}; known: {list(GUARDRAIL_METRICS)}")
        unknown = sorted(set(self.guardrail_margins) - set(GUARDRAIL_METRICS))
        if unknown:
            raise ValueError(
                f"guardrail_margins: unknown metric(s) {unknown}; known: {list(GUARDRAIL_METRICS)}"
            )
        risky = sorted(k for k in self.autonomy if k.startswith("risk."))
        if risky:
            raise ValueError(f"autonomy: {risky}: the risk limits are never changed automatically")
        negative = sorted(k for k, v in self.guardrail_margins.items() if not v >= 0)
        if negative:
            raise ValueError(f"guardrail_margins: {negative} must be >= 0 (a margin is a size of harm)")
        return self


class RolloutSettings(_Section):
    """Guarded rollouts: the ramp of a change to every unit, its gates and who must approve."""

    steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 1.0],
        description="Shares of units on the change, step by step; increasing, ending at 1.",
    )
    min_hours_per_step: float = Field(
        24, ge=0, le=24 * 28, description="Hours on a step before the next one."
    )
    # 5, not 3: a market canary's guardrails with three markets a side rolled back 9.5% of harmless
    # changes in bench/closed_loop.py (few clusters make robust errors too small); five keep it under 5%
    min_units_per_step: int = Field(
        5,
        ge=2,
        le=10_000,
        description="Units on the change with data before the next step; also the units a side that measure a guardrail.",
    )
    max_running: int = Field(
        2, ge=0, le=20,
        description="Rollouts ramping, held or awaiting approval at once; a winner beyond it waits to ship.",
    )  # fmt: skip
    approval_steps: list[float] = Field(
        default_factory=list,
        description="Steps (shares) that wait for kaizen rollout approve before they start.",
    )
    approval_parameters: list[str] = Field(
        default_factory=lambda: ["signals.max_position_pct"],
        description="Parameters whose every step waits for an approval (position sizing acts like a risk limit).",
    )

    @model_validator(mode="after")
    def _ramp(self) -> RolloutSettings:
        s = self.steps
        if not s or any(not 0 < x <= 1 for x in s) or any(b <= a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError(f"steps: shares in (0, 1], strictly increasing (got {s})")
        if s[-1] != 1.0:
            raise ValueError(f"steps: the last step must be 1 (every unit), got {s[-1]}")
        unknown = [a for a in self.approval_steps if not any(abs(a - x) < 1e-9 for x in s)]
        if unknown:
            raise ValueError(f"approval_steps: {unknown} are not among steps {s}")
        return self

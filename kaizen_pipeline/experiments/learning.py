"""What finished experiments teach the loop (pure: pandas, no Dagster).

- **Measured effects**: every shipped, stopped or inconclusive experiment with a primary estimate is
  an impact row like the before/after ones of ``improvement_impact``: the prediction (the MDE, the
  bias-corrected predicted effect in the unit metric's units) against the measurement (the primary
  estimate at the last look, signed so that better is positive), so the bias factors, prediction
  accuracy and learning velocity learn from concurrent controls instead of before/after means.
  ``kaizen.improvements.bias_factor`` prefers the same parameter and metric, then the metric.
- **Refinement**: a shipped change proposes the next step in the same direction (2.0 -> 2.5 shipped:
  propose 3.0), once config.yaml holds the shipped value, within ``experiments.autonomy``; its
  predicted effect is what the shipped step measured, in the target metric's units.
- **Cool-down**: a change stopped for harm, or a rollout the loop rolled back, blocks every proposal
  that moves its parameter the same way for ``experiments.cooldown_days``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

IMPACT_COLUMNS = [
    "source", "experiment_id", "catalogue_key", "parameter", "target_metric", "predicted", "measured",
    "verdict", "relative_bias", "abs_pct_error", "validated_at",
]  # fmt: skip
ENDED = ("shipped", "stopped", "inconclusive")
VERDICTS = {"wins": "improved", "loses": "worsened"}


def experiment_impacts(experiments: pd.DataFrame, looks: pd.DataFrame) -> pd.DataFrame:
    """One impact row per ended experiment whose last look measured its primary metric."""
    if experiments.empty or looks.empty or "target_metric" not in experiments:
        return pd.DataFrame(columns=IMPACT_COLUMNS)
    ended = experiments[experiments["status"].isin(ENDED) & experiments["target_metric"].notna()]
    primary = looks[(looks["role"] == "primary") & looks["estimate"].notna()]
    last = primary.sort_values("look_at").groupby("experiment_id").tail(1).set_index("experiment_id")
    rows = []
    for exp in ended.to_dict("records"):
        if exp["experiment_id"] not in last.index:
            continue
        look = last.loc[exp["experiment_id"]]
        predicted = float(exp["mde"])
        sign = 1.0 if exp["direction"] == "higher" else -1.0
        measured = sign * float(look["estimate"])
        if not predicted > 0:
            continue
        rows.append(
            {
                "source": "experiment",
                "experiment_id": exp["experiment_id"],
                "catalogue_key": exp["catalogue_key"],
                "parameter": exp["parameter"],
                "target_metric": exp["target_metric"],
                "predicted": predicted,
                "measured": measured,
                "verdict": VERDICTS.get(look["outcome"], "no_effect"),
                "relative_bias": (predicted - measured) / predicted,
                "abs_pct_error": abs(predicted - measured) / predicted,
                "validated_at": exp["ended_at"],
            }
        )
    return pd.DataFrame(rows, columns=IMPACT_COLUMNS)


def combined_impacts(before_after: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """Experiment impacts first, then the before/after ones (improvements people log and ship by hand)."""
    frames = [f for f in (experiments, before_after.assign(source="before_after")) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=IMPACT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Cooldown:
    """A direction of a parameter that no proposal may take until ``until``."""

    parameter: str
    direction: int
    until: datetime
    experiment_id: str


def cooldowns(experiments: pd.DataFrame, *, days: int, now: datetime) -> list[Cooldown]:
    """Directions blocked by experiments stopped for harm in the last ``days`` days."""
    if experiments.empty or days <= 0:
        return []
    harmed = experiments[
        (experiments["status"] == "stopped")
        & experiments["decision"].fillna("").str.startswith("stop_")
        & experiments["ended_at"].notna()
    ]
    out = []
    for exp in harmed.to_dict("records"):
        until = pd.Timestamp(exp["ended_at"]).to_pydatetime() + timedelta(days=days)
        step = _step(exp)
        if until > now and step is not None and step != 0:
            out.append(Cooldown(exp["parameter"], int(np.sign(step)), until, exp["experiment_id"]))
    return out


def rollout_cooldowns(deployments: pd.DataFrame, *, days: int, now: datetime) -> list[Cooldown]:
    """Directions blocked by rollouts the loop rolled back (a guardrail harmed, or a broken split) lately."""
    if deployments.empty or days <= 0:
        return []
    rolled = deployments[
        (deployments["state"] == "rolled_back")
        & deployments["ended_at"].notna()
        & deployments["reason"].fillna("").str.match(r"(guardrail harmed|sample-ratio mismatch)")
    ]
    out = []
    for dep in rolled.to_dict("records"):
        until = pd.Timestamp(dep["ended_at"]).to_pydatetime() + timedelta(days=days)
        step = _step({"control_value": dep["before_value"], "treatment_value": dep["after_value"]})
        if until > now and step:
            out.append(Cooldown(dep["parameter"], int(np.sign(step)), until, dep["deployment_id"]))
    return out


def cooled(parameter: str | None, control: Any, proposed: Any, blocks: Iterable[Cooldown]) -> Cooldown | None:
    """The cool-down that blocks moving ``parameter`` from ``control`` to ``proposed``, if any."""
    if parameter is None or not _numeric(control, proposed):
        return None
    direction = int(np.sign(float(proposed) - float(control)))
    return next((b for b in blocks if b.parameter == parameter and b.direction == direction), None)


@dataclass(frozen=True)
class Refinement:
    """The next step after a shipped change: a catalogue-like candidate."""

    key: str
    title: str
    target_metric: str
    predicted_effect: float
    parameter: str
    proposed_value: str
    after: str  # the experiment it continues


def refinements(
    experiments: pd.DataFrame,
    impacts: pd.DataFrame,
    *,
    config_values: Mapping[str, Any],
    bounds: Mapping[str, Any],
) -> tuple[list[Refinement], dict[str, str]]:
    """Next steps of shipped changes whose value config.yaml now holds; (refinements, why others wait)."""
    if experiments.empty:
        return [], {}
    shipped = experiments[experiments["status"] == "shipped"].sort_values("ended_at")
    latest = shipped.groupby("parameter").tail(1)
    measured = impacts.set_index("experiment_id")["measured"] if not impacts.empty else pd.Series(dtype=float)
    out, waiting = [], {}
    for exp in latest.to_dict("records"):
        parameter, step = exp["parameter"], _step(exp)
        if step is None or step == 0 or pd.isna(exp.get("target_metric")):
            continue
        shipped_value = _value(exp["treatment_value"])
        if config_values.get(parameter) != shipped_value:
            waiting[exp["experiment_id"]] = (
                f"the next step waits until config.yaml sets {parameter}: {shipped_value!r} (now "
                f"{config_values.get(parameter)!r}; the shipped flag serves it meanwhile)"
            )
            continue
        nxt = shipped_value + step
        if isinstance(shipped_value, int) and not isinstance(shipped_value, bool):
            nxt = int(round(nxt))
        limit = bounds.get(parameter)
        if limit is not None and not limit.min <= nxt <= limit.max:
            waiting[exp["experiment_id"]] = f"{parameter} {nxt:g} would leave experiments.autonomy"
            continue
        gained = measured.get(exp["experiment_id"], float("nan"))
        predicted = float(exp.get("predicted_effect") or float("nan"))
        effect = predicted * gained / float(exp["mde"]) if exp["mde"] else float("nan")
        if not math.isfinite(effect) or effect == 0:
            continue
        out.append(
            Refinement(
                key=f"next_{parameter.split('.')[-1]}_{nxt:g}".replace(".", "p").replace("-", "m"),
                title=f"Continue {parameter}: {shipped_value:g} -> {nxt:g} (the step before shipped)",
                target_metric=exp["target_metric"],
                predicted_effect=effect,
                parameter=parameter,
                proposed_value=f"{nxt:g}",
                after=exp["experiment_id"],
            )
        )
    return out, waiting


def _value(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _numeric(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _step(exp: Mapping[str, Any]) -> float | None:
    control, treatment = _value(exp["control_value"]), _value(exp["treatment_value"])
    return float(treatment) - float(control) if _numeric(control, treatment) else None

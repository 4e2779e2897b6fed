"""Kaizen jobs: log an improvement and record feedback from the launchpad (typed run config), and the cadence jobs."""

from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from kaizen_pipeline.kaizen import store
from kaizen_pipeline.kaizen.assets import ANALYSIS_ASSETS, REPORT_ASSETS, kaizen_metrics
from kaizen_pipeline.resources import SettingsResource, WarehouseResource


class ImprovementStatus(Enum):
    proposed = "proposed"
    in_progress = "in_progress"
    shipped = "shipped"
    abandoned = "abandoned"


class ImprovementConfig(dg.Config):
    """An improvement: what changes, which metric it should move, by how much, at what cost."""

    title: str = Field(description="What the change is, e.g. 'Raise the retry budget from 5 to 7'.")
    target_metric: str = Field(description="Registered metric it should move (config kaizen.metrics).")
    predicted_effect: float = Field(
        description="Expected change of the metric's value, signed, in metric units."
    )
    cost_hours: float = Field(0.0, ge=0, description="Engineering hours.")
    cost_money: float = Field(0.0, ge=0, description="Money (USD).")
    status: ImprovementStatus = Field(
        ImprovementStatus.proposed, description="proposed, in_progress, shipped, abandoned."
    )
    shipped_at: str | None = Field(
        None, description="ISO time it went live (UTC); empty with status shipped: now."
    )
    improvement_id: str | None = Field(None, description="Stable id (slug); empty: derived from the title.")
    catalogue_key: str | None = Field(None, description="Catalogue entry it implements, if any.")
    notes: str | None = None


class FeedbackConfig(dg.Config):
    """A user's rating of the system's usefulness, with free text (sentiment is scored with VADER)."""

    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent).")
    text: str = Field("", description="What worked, what did not.")
    author: str | None = Field(None, description="Who gave it (optional).")


@dg.op
def record_improvement(
    context: dg.OpExecutionContext,
    config: ImprovementConfig,
    warehouse: WarehouseResource,
    settings: SettingsResource,
) -> None:
    """Validates the improvement and upserts it into the improvements table."""
    try:
        row = store.log_improvement(
            warehouse.get(),
            settings.get().kaizen,
            title=config.title,
            target_metric=config.target_metric,
            predicted_effect=config.predicted_effect,
            cost_hours=config.cost_hours,
            cost_money=config.cost_money,
            status=config.status.value,
            shipped_at=config.shipped_at,
            improvement_id=config.improvement_id,
            catalogue_key=config.catalogue_key,
            notes=config.notes,
        )
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(
        f"improvement {row['improvement_id']} logged: {row['status']}, {row['target_metric']} "
        f"{row['predicted_effect']:+g}, shipped_at {row['shipped_at']}"
    )


@dg.op
def record_feedback(
    context: dg.OpExecutionContext, config: FeedbackConfig, warehouse: WarehouseResource
) -> None:
    """Scores the text's sentiment with VADER and stores the feedback."""
    try:
        row = store.record_feedback(
            warehouse.get(), rating=config.rating, text=config.text, author=config.author, source="job"
        )
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(
        f"feedback {row['feedback_id'][:8]}: rating {row['rating']}, sentiment {row['sentiment_label']}"
    )


@dg.job(tags={"kaizen": "input"})
def log_improvement() -> None:
    """Log or update an improvement (title, target metric, predicted effect, cost, status, shipped time)."""
    record_improvement()


@dg.job(tags={"kaizen": "input"})
def submit_feedback() -> None:
    """Record a user rating (1-5) and text; its sentiment feeds feedback_summary and the feedback_score metric."""
    record_feedback()


def cadence_job(cadence: str) -> Any:
    """daily: collect metrics and run the whole cycle; other cadences: analysis plus their report."""
    selection = ANALYSIS_ASSETS + [REPORT_ASSETS[cadence]]
    if cadence == "daily":
        selection = [kaizen_metrics, *selection]
    return dg.define_asset_job(
        f"kaizen_{cadence}_job",
        selection=dg.AssetSelection.assets(*selection),
        description=f"Kaizen {cadence} cadence: "
        + ("collect the day's metrics, run the cycle, write the daily report." if cadence == "daily"
           else f"re-run the analysis and write the {cadence} report."),
    )  # fmt: skip

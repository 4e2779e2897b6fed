"""Cadence report periods and rendering."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from kaizen_pipeline.kaizen.registry import registry
from kaizen_pipeline.kaizen.reports import (
    ReportInputs,
    period_bounds,
    render_report,
    targets_review,
    what_moved,
)
from kaizen_pipeline.settings import load_settings


@pytest.mark.parametrize(
    ("cadence", "as_of", "start", "end"),
    [
        (
            "daily",
            datetime(2026, 3, 10),
            datetime(2026, 3, 9),
            datetime(2026, 3, 10),
        ),  # the schedule's midnight tick
        ("daily", datetime(2026, 3, 10, 15), datetime(2026, 3, 10), datetime(2026, 3, 11)),
        (
            "weekly",
            datetime(2026, 3, 9),
            datetime(2026, 3, 2),
            datetime(2026, 3, 9),
        ),  # Monday 00:00: last week
        ("monthly", datetime(2026, 4, 1), datetime(2026, 3, 1), datetime(2026, 4, 1)),
        ("quarterly", datetime(2026, 4, 1), datetime(2026, 1, 1), datetime(2026, 4, 1)),
        ("yearly", datetime(2027, 1, 1), datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ],
)
def test_period_is_the_one_that_just_ended(
    cadence: str, as_of: datetime, start: datetime, end: datetime
) -> None:
    assert period_bounds(cadence, as_of) == (start, end)


def _history() -> pd.DataFrame:
    days = pd.date_range("2026-03-01", periods=14, freq="D")
    return pd.concat(
        [
            pd.DataFrame({"metric": "signal_hit_rate", "ts": days, "value": [0.60] * 7 + [0.40] * 7}),
            pd.DataFrame({"metric": "api_error_rate", "ts": days, "value": [0.05] * 7 + [0.01] * 7}),
        ]
    )


def test_what_moved_says_which_way_is_better() -> None:
    specs = registry(load_settings().kaizen)
    moved = what_moved(_history(), specs, datetime(2026, 3, 1), datetime(2026, 3, 15)).set_index("metric")
    assert moved.loc["api_error_rate", "moved"] == "better"  # lower is better
    assert moved.loc["signal_hit_rate", "moved"] == "worse"


def test_report_shows_deviations_constraint_and_recommendations() -> None:
    ks = load_settings().kaizen
    history = _history()
    latest = history.sort_values("ts").groupby("metric").tail(1)
    bottleneck = pd.DataFrame(
        [{"kind": "metric", "category": "outcome", "rank": 1, "candidate": "signal_hit_rate", "score": 0.8,
          "value": 0.4, "target": 0.55, "is_constraint": True,
          "explanation": "largest gap"}]
    )  # fmt: skip
    recs = pd.DataFrame([{"rank": 1, "title": "Raise the hype threshold", "target_metric": "signal_hit_rate",
                          "addresses_constraint": True, "corrected_effect": 0.03, "expected_roi": 2.0,
                          "expected_return": 400.0}])  # fmt: skip
    markdown, headline = render_report(
        "weekly", datetime(2026, 3, 16), ReportInputs(history=history, latest=latest, bottleneck=bottleneck,
                                                       recommendations=recs), registry(ks), ks.deviation_factor
    )  # fmt: skip
    assert markdown.startswith("# Weekly analysis: 2026-03-09 to 2026-03-15")
    assert "1 deviate (signal_hit_rate)" in markdown
    assert "**signal_hit_rate** (metric, outcome): largest gap" in markdown
    assert "Raise the hype threshold" in markdown
    assert headline["metrics_deviating"] == 1 and headline["constraint"] == "signal_hit_rate"


def test_targets_review_suggests_raising_an_easily_met_target() -> None:
    specs = registry(load_settings().kaizen)
    review = targets_review(_history(), specs, datetime(2026, 3, 8), datetime(2026, 3, 15)).set_index(
        "metric"
    )
    assert review.loc["api_error_rate", "suggestion"] == "tighten target to 0.01"
    assert review.loc["signal_hit_rate", "suggestion"].startswith("re-plan")


def test_a_daily_report_compares_the_day_with_the_day_before() -> None:
    specs = registry(load_settings().kaizen)
    moved = what_moved(_history(), specs, datetime(2026, 3, 8), datetime(2026, 3, 9)).set_index("metric")
    assert moved.loc["api_error_rate", "before"] == 0.05 and moved.loc["api_error_rate", "last"] == 0.01
    assert moved.loc["api_error_rate", "change"] == pytest.approx(-0.04)

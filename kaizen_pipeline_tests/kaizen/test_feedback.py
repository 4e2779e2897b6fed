"""Feedback: VADER sentiment, validation, idempotent ids, weekly summary and trend."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from kaizen_pipeline.kaizen.feedback import (
    feedback_row,
    rating_trend,
    sentiment,
    validate_feedback,
    weekly_summary,
)


def test_sentiment_labels_follow_vader() -> None:
    assert sentiment("The weekly report is great, really useful!")[1] == "positive"
    assert sentiment("The alerts are useless and annoying.")[1] == "negative"
    assert sentiment("")[1] == "neutral"


@pytest.mark.parametrize("rating", [0, 6, 3.5, True, "4"])
def test_rating_must_be_an_integer_from_1_to_5(rating) -> None:
    with pytest.raises(ValueError, match="rating"):
        validate_feedback(rating, "x")


def test_feedback_id_is_stable_for_the_same_submission() -> None:
    when = datetime(2026, 1, 5, 12)
    a = feedback_row(4, "good", when, "cli")
    assert a == feedback_row(4, "good", when, "cli")
    assert a["feedback_id"] != feedback_row(4, "good", datetime(2026, 1, 5, 13), "cli")["feedback_id"]


def test_weekly_summary_and_rising_trend() -> None:
    rows = [
        feedback_row(2, "Bad and slow", datetime(2026, 1, 5), "cli"),
        feedback_row(3, "ok", datetime(2026, 1, 7), "cli"),
        feedback_row(4, "Good, helpful", datetime(2026, 1, 13), "job"),
        feedback_row(5, "Excellent, love it", datetime(2026, 1, 20), "job"),
    ]
    frame = pd.DataFrame(rows)
    weekly = weekly_summary(frame)
    assert weekly["responses"].tolist() == [2, 1, 1]
    assert weekly["mean_rating"].tolist() == [2.5, 4.0, 5.0]
    assert weekly["positive_share"].iloc[2] == 1.0 and weekly["negative_share"].iloc[0] == 0.5
    trend = rating_trend(frame)
    assert trend["slope_per_week"] > 0
    assert rating_trend(frame.iloc[:2]) is None

"""User feedback: validation, VADER sentiment, weekly summary with trend (pure)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

MAX_TEXT_CHARS = 5000
# VADER's own convention for the compound score.
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> tuple[float, str]:
    """VADER compound score in [-1, 1] and its label (positive >= 0.05, negative <= -0.05, else neutral)."""
    compound = float(_analyzer().polarity_scores(text or "")["compound"])
    if compound >= POSITIVE_AT:
        return compound, "positive"
    if compound <= NEGATIVE_AT:
        return compound, "negative"
    return compound, "neutral"


def validate_feedback(rating: int, text: str) -> tuple[int, str]:
    """Clean a rating and text or raise ValueError naming the field."""
    if isinstance(rating, bool) or not isinstance(rating, (int, np.integer)) or not 1 <= int(rating) <= 5:
        raise ValueError(f"rating: must be an integer from 1 to 5, got {rating!r}")
    text = (text or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text: at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    return int(rating), text


def feedback_row(
    rating: int, text: str, submitted_at: datetime, source: str, author: str | None = None
) -> dict:
    """A feedback table row; the id hashes time, rating, text and author so a resubmission is idempotent."""
    rating, text = validate_feedback(rating, text)
    compound, label = sentiment(text)
    key = f"{submitted_at.isoformat()}|{rating}|{author or ''}|{text}"
    return {
        "feedback_id": hashlib.sha1(key.encode()).hexdigest(),
        "submitted_at": submitted_at,
        "rating": rating,
        "text": text,
        "author": author,
        "sentiment": compound,
        "sentiment_label": label,
        "source": source,
    }


SUMMARY_COLUMNS = [
    "week_start", "responses", "mean_rating", "mean_sentiment", "positive_share", "negative_share",
]  # fmt: skip


def weekly_summary(feedback: pd.DataFrame) -> pd.DataFrame:
    """Per ISO week (Monday start): responses, mean rating, mean sentiment, positive and negative shares."""
    if feedback is None or feedback.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    frame = feedback.copy()
    submitted = pd.to_datetime(frame["submitted_at"])
    frame["week_start"] = (submitted - pd.to_timedelta(submitted.dt.weekday, unit="D")).dt.normalize()
    frame["is_pos"] = frame["sentiment_label"] == "positive"
    frame["is_neg"] = frame["sentiment_label"] == "negative"
    weekly = (
        frame.groupby("week_start")
        .agg(
            responses=("rating", "size"),
            mean_rating=("rating", "mean"),
            mean_sentiment=("sentiment", "mean"),
            positive_share=("is_pos", "mean"),
            negative_share=("is_neg", "mean"),
        )
        .reset_index()
        .sort_values("week_start")
    )
    return weekly[SUMMARY_COLUMNS].reset_index(drop=True)


def rating_trend(feedback: pd.DataFrame) -> dict[str, float] | None:
    """OLS slope of ratings against submission time (points per week) and its p-value; None below 3 ratings."""
    if feedback is None or len(feedback) < 3:
        return None
    t = pd.to_datetime(feedback["submitted_at"])
    weeks = (t - t.min()).dt.total_seconds().to_numpy() / (7 * 86400)
    if np.ptp(weeks) == 0:
        return None
    ratings = feedback["rating"].to_numpy(dtype=float)
    if np.ptp(ratings) == 0:
        return {"slope_per_week": 0.0, "p_value": 1.0, "n": float(len(ratings))}
    fit = stats.linregress(weeks, ratings)
    return {"slope_per_week": float(fit.slope), "p_value": float(fit.pvalue), "n": float(len(ratings))}

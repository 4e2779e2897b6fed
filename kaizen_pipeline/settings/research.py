"""Sections of the research domain: signal thresholds, risk limits, and the research layer's windows and weights."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kaizen_pipeline.settings._base import _Section


class SignalSettings(_Section):
    rvr_threshold: float = Field(
        2.0,
        gt=0,
        le=100,
        description="Minimum relative volume ratio (recent vs baseline volume) for a signal.",
    )
    roc_threshold: float = Field(
        0.10, gt=0, le=10, description="Minimum absolute price rate of change; its sign picks YES or NO."
    )
    hype_threshold: float = Field(70, ge=0, le=100, description="Minimum hype index (0-100) for a signal.")
    rules: list[Literal["momentum", "hype_lead"]] = Field(
        default_factory=lambda: ["momentum", "hype_lead"],
        min_length=1,
        description="Signal rules that run; where two fire on one market and bucket, hype_lead's row is kept.",
    )
    hype_lead_burst_z: float = Field(
        3.0,
        gt=0,
        le=50,
        description="hype_lead: post-count z-score against the trailing baseline that is a burst.",
    )
    hype_lead_min_posts: float = Field(
        4, ge=1, le=10_000, description="hype_lead: fewest bot-filtered posts in a bucket that is a burst."
    )
    hype_lead_baseline_buckets: int = Field(
        96, ge=8, le=2880, description="hype_lead: trailing buckets the burst z-score compares with."
    )
    hype_lead_window_days: float = Field(
        5, gt=0, le=60, description="hype_lead: days of data before each refit that estimate a market's lead."
    )
    hype_lead_refit_hours: float = Field(
        24, gt=0, le=24 * 30, description="hype_lead: hours between re-estimates of the leads."
    )
    max_position_pct: float = Field(
        5, gt=0, le=100, description="Largest target weight of one market (% of equity)."
    )
    max_exposure_pct: float = Field(
        25, gt=0, le=100, description="Largest summed target weight (% of equity)."
    )

    @model_validator(mode="after")
    def _position_within_exposure(self) -> SignalSettings:
        if self.max_position_pct > self.max_exposure_pct:
            raise ValueError("max_position_pct must not exceed max_exposure_pct")
        return self


class RiskSettings(_Section):
    daily: float = Field(0.05, gt=0, le=1, description="Daily realised loss limit (fraction of equity).")
    weekly: float = Field(
        0.10, gt=0, le=1, description="Weekly (ISO week) realised loss limit (fraction of equity)."
    )
    monthly: float = Field(0.20, gt=0, le=1, description="Monthly realised loss limit (fraction of equity).")
    circuit_breaker: float = Field(0.15, gt=0, le=1, description="Drawdown that halts new signals.")


# Prediction-market slang that VADER's lexicon lacks or reads in another sense, on VADER's -4..4
# scale and sized against its own words (strong 2.3, weak -1.9, dump -1.6). Left out on purpose:
# bare "moon" (markets on moon landings), "mispriced" and "free money" (either side can be the cheap
# one), and words VADER already rates ("dump" -1.6, "crash" -1.7, "scam" -2.7).
DEFAULT_SENTIMENT_LEXICON: dict[str, float] = {
    "bullish": 2.0,
    "bearish": -2.0,
    "to the moon": 2.5,
    "mooning": 2.3,
    "pumping": 1.5,
    "pump and dump": -2.5,
    "wagmi": 2.0,
    "lfg": 2.0,
    "longing": 1.5,  # VADER: -0.1 (yearning); in a trading post, taking the long side
    "going long": 1.5,
    "undervalued": 1.8,
    "underpriced": 1.8,
    "a steal": 2.0,  # VADER's "steal" is -2.2 (theft); "a steal at 20c" is a bargain
    "lock": 1.2,  # "this is a lock": a sure thing
    "rekt": -2.5,
    "ngmi": -2.0,
    "rug": -2.0,
    "rug pull": -2.8,
    "rugpull": -2.8,
    "bagholder": -1.8,
    "bagholders": -1.8,
    "bagholding": -1.8,
    "shorting": -1.5,
    "shorted": -1.5,
    "going short": -1.5,
    "fade": -1.2,
    "fading": -1.2,
    "overpriced": -1.8,
    "overvalued": -1.8,
    "tanking": -2.0,
    "crashing": -2.0,
    "copium": -1.5,
}
# One word of a lexicon term: VADER strips punctuation from a token's edges, so a term with edge
# punctuation could never match.
_TERM_WORD = re.compile(r"[^\W_](?:[\w'-]*[^\W_])?")


class ResearchSettings(_Section):
    """Windows, weights and limits of the research layer (hype, features, correlations, sizing)."""

    # market features (all windows in buckets of data_collection.frequency_minutes)
    rvr_recent_buckets: int = Field(
        4, ge=1, le=672, description="RVR numerator: mean volume of the last N buckets."
    )
    rvr_baseline_buckets: int = Field(
        96,
        ge=2,
        le=2880,
        description="RVR denominator: mean volume of the N buckets before the recent window.",
    )
    rvr_min_periods: int = Field(
        24, ge=1, description="Baseline buckets with data needed before RVR is defined."
    )
    roc_lookback_buckets: int = Field(
        4, ge=1, le=2880, description="ROC lookback k: (p_t - p_{t-k}) / p_{t-k}."
    )
    volatility_window_buckets: int = Field(96, ge=2, le=2880, description="Realized-volatility window.")
    price_ffill_limit_buckets: int = Field(
        8, ge=0, le=2880, description="Carry a price forward at most N buckets."
    )
    book_max_age_buckets: int = Field(
        2,
        ge=0,
        le=96,
        description="Order-book features use the newest snapshot at most N buckets older than the bucket "
        "(older: NaN).",
    )
    # hype
    hype_window_buckets: int = Field(
        192, ge=4, le=2880, description="Trailing distribution the hype index ranks against."
    )
    hype_min_periods: int = Field(
        24, ge=1, description="Trailing buckets needed before the hype index is defined."
    )
    weight_like: float = Field(1.0, ge=0, description="Engagement weight of a like.")
    weight_repost: float = Field(2.0, ge=0, description="Engagement weight of a repost (retweet).")
    weight_reply: float = Field(3.0, ge=0, description="Engagement weight of a reply.")
    weight_quote: float = Field(3.0, ge=0, description="Engagement weight of a quote.")
    hype_weight_posts: float = Field(1.0, ge=0, description="Raw hype: weight of log(1 + human posts).")
    hype_weight_authors: float = Field(
        1.0, ge=0, description="Raw hype: weight of log(1 + unique human authors)."
    )
    hype_weight_engagement: float = Field(
        0.5, ge=0, description="Raw hype: weight of log(1 + weighted engagement)."
    )
    hype_weight_sentiment: float = Field(0.5, ge=0, description="Raw hype: weight of |mean VADER compound|.")
    bot_min_account_age_days: float = Field(30, ge=0, description="Younger accounts get the age flag.")
    bot_min_follower_ratio: float = Field(
        0.1, ge=0, description="followers/following below this gets the ratio flag."
    )
    bot_max_posts_per_day: float = Field(
        100, gt=0, description="Lifetime posts per day above this gets the rate flag."
    )
    bot_duplicate_min: int = Field(
        3, ge=2, description="An author's N-th post of the same text gets the duplicate flag."
    )
    bot_min_flags: int = Field(2, ge=1, le=4, description="A post is bot-like with at least this many flags.")
    exclude_ambiguous_posts: bool = Field(
        True, description="Leave out posts matched by several markets' queries without a market link."
    )
    sentiment_lexicon: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SENTIMENT_LEXICON),
        description="Terms added to VADER's lexicon (term: valence on VADER's -4..4 scale), replacing "
        "the default set; a multi-word term scores as one token where the words occur in a row; {} is "
        "plain VADER.",
    )

    @field_validator("sentiment_lexicon")
    @classmethod
    def _lexicon_terms(cls, value: dict[str, float]) -> dict[str, float]:
        """Terms lower-cased with single spaces (VADER lowercases tokens); scale and spelling checked."""
        terms: dict[str, float] = {}
        for term, valence in value.items():
            key = " ".join(term.lower().split())
            if not key or not all(_TERM_WORD.fullmatch(word) for word in key.split()):
                raise ValueError(
                    f"term {term!r}: must be words of letters and digits (inner ' - _ allowed); VADER "
                    "strips punctuation from a token's edges, so it would never match"
                )
            if not -4 <= valence <= 4:
                raise ValueError(f"term {term!r}: valence {valence} is outside VADER's -4..4 scale")
            if key in terms:
                raise ValueError(f"term {term!r}: {key!r} is given twice (terms are case-insensitive)")
            terms[key] = valence
        return terms

    # hype-price correlation
    corr_max_lag: int = Field(
        8, ge=1, le=96, description="Lags -L..L of the cross-correlation; Granger max lag L."
    )
    corr_min_samples: int = Field(
        200, ge=20, description="Fewer paired buckets: no estimate is called significant."
    )
    corr_bh_alpha: float = Field(0.05, gt=0, lt=1, description="Benjamini-Hochberg false discovery rate.")
    corr_prewhiten_order: int = Field(
        0, ge=0, le=8, description="AR order of the pre-whitening filter (0: off)."
    )
    corr_winsor_mad: float = Field(
        5.0, ge=0, le=100, description="Clip returns at median +- k x MAD (0: off)."
    )
    corr_hype_column: Literal["post_count", "raw_hype", "hype_index"] = Field(
        "post_count", description="hype_scores column correlated with returns (bot-filtered post count)."
    )
    # signals, risk and sizing
    signal_hold_buckets: int = Field(
        16,
        ge=1,
        le=2880,
        description="The one holding horizon in buckets: time exit of the backtest and the paper book, "
        "and the horizon signal_hit_rate scores at.",
    )
    kelly_fraction: float = Field(0.25, gt=0, le=1, description="Fraction of the full Kelly stake.")
    calibration_refit_hours: float = Field(
        24, gt=0, le=24 * 30, description="Hours between refits of the signals' win-probability calibration."
    )
    calibration_prior_signals: float = Field(
        30,
        ge=0,
        le=100_000,
        description="Calibration shrink toward the market price: weight n / (n + this) on n earlier outcomes.",
    )
    calibration_min_signals: int = Field(
        10,
        ge=2,
        le=100_000,
        description="Fewer earlier outcomes of a rule: its win probability is the price.",
    )
    edge_per_strength: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Edge = strength x this where a signal has no calibrated win probability (docs/research.md).",
    )
    max_category_pct: float = Field(20, gt=0, le=100, description="Cap on the summed weight of one category.")
    correlation_window_buckets: int = Field(672, ge=10, le=2880, description="Returns used for the shrink.")
    bankroll_usd: float = Field(10_000, gt=0, description="Equity that target weights are converted with.")
    risk_reset_at: str | None = Field(
        None, description="ISO time: limits and the circuit breaker tripped before it are reset."
    )

"""The research chain as plain functions: settings -> configs, and signals gated by the risk state.

Pure module (no Dagster): the assets call these, and so do the tests (including the no-look-ahead
property test), so both exercise exactly the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig, price_grid
from kaizen_pipeline.clock import bucket_minutes
from kaizen_pipeline.flags.provider import value_groups
from kaizen_pipeline.research.calibration import CalibrationConfig, calibrate_walk_forward, signal_outcomes
from kaizen_pipeline.research.correlation import CorrelationConfig
from kaizen_pipeline.research.features import FeatureConfig
from kaizen_pipeline.research.hype import BotConfig, HypeConfig, lexicon_items
from kaizen_pipeline.research.lead import (
    RULE_HYPE_LEAD,
    RULE_MOMENTUM,
    LeadParams,
    combine_rules,
    hype_lead_rule,
    per_params,
    with_rule,
)
from kaizen_pipeline.research.portfolio import SizingConfig
from kaizen_pipeline.research.risk import PaperBookConfig, RiskLimits, run_risk_gate
from kaizen_pipeline.research.signals import SIGNAL_COLUMNS, SignalThresholds, signal_rule
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import to_naive_utc


@dataclass(frozen=True)
class ResearchConfig:
    """Every research knob, resolved once from the settings."""

    features: FeatureConfig
    hype: HypeConfig
    bots: BotConfig
    correlation: CorrelationConfig
    thresholds: SignalThresholds
    limits: RiskLimits
    book: PaperBookConfig
    sizing: SizingConfig
    risk_reset_at: datetime | None
    exclude_ambiguous_posts: bool
    correlation_window_buckets: int
    bucket_minutes: int
    rules: tuple[str, ...] = (RULE_MOMENTUM, RULE_HYPE_LEAD)
    lead: LeadParams = LeadParams()
    calibration: CalibrationConfig = CalibrationConfig()


def research_config(settings: Settings) -> ResearchConfig:
    """Build the research configs from ``settings`` (signals, risk, twitter.bot_detection, research)."""
    r, s = settings.research, settings.signals
    minutes = bucket_minutes(settings)
    engine = BookConfig.from_settings(settings)  # the paper book trades like the backtest
    reset = to_naive_utc(r.risk_reset_at) if r.risk_reset_at else None
    return ResearchConfig(
        features=FeatureConfig(
            bucket_minutes=minutes,
            rvr_recent_buckets=r.rvr_recent_buckets,
            rvr_baseline_buckets=r.rvr_baseline_buckets,
            rvr_min_periods=r.rvr_min_periods,
            roc_lookback_buckets=r.roc_lookback_buckets,
            volatility_window_buckets=r.volatility_window_buckets,
            price_ffill_limit_buckets=r.price_ffill_limit_buckets,
        ),
        hype=HypeConfig(
            bucket_minutes=minutes,
            weight_like=r.weight_like,
            weight_repost=r.weight_repost,
            weight_reply=r.weight_reply,
            weight_quote=r.weight_quote,
            weight_posts=r.hype_weight_posts,
            weight_authors=r.hype_weight_authors,
            weight_engagement=r.hype_weight_engagement,
            weight_sentiment=r.hype_weight_sentiment,
            window_buckets=r.hype_window_buckets,
            min_periods=r.hype_min_periods,
            sentiment_lexicon=lexicon_items(r.sentiment_lexicon),
        ),
        bots=BotConfig(
            enabled=settings.twitter.bot_detection,
            min_account_age_days=r.bot_min_account_age_days,
            min_follower_ratio=r.bot_min_follower_ratio,
            max_posts_per_day=r.bot_max_posts_per_day,
            duplicate_min=r.bot_duplicate_min,
            min_flags=r.bot_min_flags,
        ),
        correlation=CorrelationConfig(
            max_lag=r.corr_max_lag,
            min_samples=r.corr_min_samples,
            bh_alpha=r.corr_bh_alpha,
            prewhiten_order=r.corr_prewhiten_order,
            winsor_mad=r.corr_winsor_mad,
        ),
        thresholds=SignalThresholds.from_settings(settings),
        limits=RiskLimits(
            daily=settings.risk.daily,
            weekly=settings.risk.weekly,
            monthly=settings.risk.monthly,
            circuit_breaker=settings.risk.circuit_breaker,
        ),
        book=PaperBookConfig(
            stake=s.max_position_pct / 100.0,
            hold_buckets=engine.holding_bars,
            bucket_minutes=minutes,
            fees=engine.fees,
            slippage=engine.slippage,
            exit_on_opposite_signal=engine.exit_on_opposite_signal,
            price_floor=engine.price_floor,
        ),
        sizing=SizingConfig(
            kelly_fraction=r.kelly_fraction,
            edge_per_strength=r.edge_per_strength,
            max_position=s.max_position_pct / 100.0,
            max_category=r.max_category_pct / 100.0,
            max_total=s.max_exposure_pct / 100.0,
            bankroll_usd=r.bankroll_usd,
            cost_per_fill=engine.fees + engine.slippage,
        ),
        risk_reset_at=reset,
        exclude_ambiguous_posts=r.exclude_ambiguous_posts,
        correlation_window_buckets=r.correlation_window_buckets,
        bucket_minutes=minutes,
        rules=tuple(s.rules),
        lead=LeadParams.from_settings(settings),
        calibration=CalibrationConfig(
            refit_hours=r.calibration_refit_hours,
            prior_signals=r.calibration_prior_signals,
            min_signals=r.calibration_min_signals,
            hold_buckets=engine.holding_bars,
            bucket_minutes=minutes,
        ),
    )


P = TypeVar("P", bound=Hashable)


def units_by_params(units: Iterable[str], params_for: Callable[[str], P]) -> dict[P, list[str]]:
    """Units (markets) grouped by their resolved parameters, so each distinct set runs vectorized once."""
    groups: dict[P, list[str]] = {}
    for unit in units:
        groups.setdefault(params_for(unit), []).append(unit)
    return groups


# market_features columns (of features.FEATURE_COLUMNS) the signal rules, the risk gate and the calibration read
SIGNAL_INPUTS = [
    "market_id",
    "bucket_ts",
    "category",
    "yes_token_id",
    "no_token_id",
    "yes_price",
    "ret",
    "rvr",
    "roc",
    "hype_index",
]


def signal_candidates(
    features: pd.DataFrame,
    thresholds: SignalThresholds | Callable[[str], SignalThresholds] | pd.Series,
    bucket_minutes: int,
) -> pd.DataFrame:
    """signal_rule with one set of thresholds, per market (``thresholds(market_id)``), or per row.

    Per row (a Series of SignalThresholds aligned with ``features``): each bucket runs on the values
    it ran under (``flags.provider.scheduled_values``), so recomputing history never moves a
    market's past onto a variant it got later.
    """
    if isinstance(thresholds, pd.Series):
        groups = value_groups(thresholds)
        if len(groups) == 1:  # every row on the same thresholds (no flag split): no subsetting
            t = groups[0][0]
            return signal_rule(features, t.rvr, t.roc, t.hype, bucket_minutes)
        frames = [
            signal_rule(features.iloc[positions], t.rvr, t.roc, t.hype, bucket_minutes)
            for t, positions in groups
        ]
        return _joined(frames)
    if isinstance(thresholds, SignalThresholds):
        return signal_rule(features, thresholds.rvr, thresholds.roc, thresholds.hype, bucket_minutes)
    by_params = units_by_params(features["market_id"].drop_duplicates(), thresholds)
    return _joined(
        [
            signal_rule(features[features["market_id"].isin(markets)], t.rvr, t.roc, t.hype, bucket_minutes)
            for t, markets in by_params.items()
        ]
    )


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    if len(frames) == 1:
        return frames[0]
    joined = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    return joined.sort_values(["bucket_ts", "market_id"]).reset_index(drop=True)


def hype_lead_candidates(
    features: pd.DataFrame,
    posts: pd.DataFrame,
    leads: pd.DataFrame,
    params: LeadParams | pd.Series,
    bucket_minutes: int,
) -> pd.DataFrame:
    """hype_lead signals: features joined with the bot-filtered post counts, each market's estimates.

    ``params``: one LeadParams, or a Series aligned with ``features`` (each row's flag variant).
    """
    frame = features.merge(
        posts[["market_id", "bucket_ts", "post_count"]], on=["market_id", "bucket_ts"], how="left"
    )
    frame.index = features.index
    return per_params(frame, params, lambda f, p: hype_lead_rule(f, leads, p, bucket_minutes))


def gated_signals(
    features: pd.DataFrame,
    thresholds: SignalThresholds | Callable[[str], SignalThresholds] | pd.Series,
    limits: RiskLimits,
    book: PaperBookConfig,
    reset_at: datetime | None = None,
    *,
    hype_lead: pd.DataFrame | None = None,
    rules: Iterable[str] = (RULE_MOMENTUM,),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rules' signals (momentum: thresholds as in :func:`signal_candidates`), then the risk gate.

    ``hype_lead``: the hype_lead rule's candidates (:func:`hype_lead_candidates`), used when
    ``rules`` names it. Returns (accepted, blocked, risk timeline); every row has its ``rule``.
    """
    rules = tuple(rules)
    frames = []
    if RULE_HYPE_LEAD in rules and hype_lead is not None:
        frames.append(hype_lead)
    if RULE_MOMENTUM in rules:
        frames.append(with_rule(signal_candidates(features, thresholds, book.bucket_minutes), RULE_MOMENTUM))
    candidates = combine_rules(frames)
    prices = features[["market_id", "bucket_ts", "yes_price"]]
    return run_risk_gate(candidates, prices, limits, book, reset_at=reset_at)


def calibrated_signals(
    signals: pd.DataFrame, features: pd.DataFrame, config: CalibrationConfig, price_floor: float
) -> pd.DataFrame:
    """Signals with outcomes (where known) and walk-forward win probabilities (research.calibration)."""
    if signals.empty:
        out = signals.copy()
        for col in ("outcome", "outcome_at", "win_prob", "calibration_n"):
            out[col] = pd.Series(dtype=float)
        return out
    grid = price_grid(features, price_floor)
    return calibrate_walk_forward(signal_outcomes(signals, grid, config), config)

"""No look-ahead of the edge chain: lead estimates, the hype_lead rule and the calibration.

Changing any data after bucket t never changes a decision at or before t: which signals fire
(either rule), their direction, lag and strength, and their calibrated win probability. The chain
is the one the trading_signals asset runs: posts -> hype scores -> market features -> trailing
lead estimates -> hype_lead and momentum rules -> risk gate -> walk-forward calibration. (A
signal's ``outcome`` is not a decision: it is the price after the holding period, so it is known
only later, and is left out of the comparison.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kaizen_pipeline.research.calibration import CalibrationConfig
from kaizen_pipeline.research.correlation import CorrelationConfig
from kaizen_pipeline.research.features import FeatureConfig, build_market_features
from kaizen_pipeline.research.hype import BotConfig, HypeConfig, build_hype_scores
from kaizen_pipeline.research.lead import LeadParams, trailing_leads
from kaizen_pipeline.research.pipeline import calibrated_signals, gated_signals, hype_lead_candidates
from kaizen_pipeline.research.risk import PaperBookConfig, RiskLimits
from kaizen_pipeline.research.signals import SignalThresholds

T0 = pd.Timestamp("2026-03-02")
N = 160
MARKETS = ["m1", "m2", "m3"]
LAG = 2
FEATURES = FeatureConfig(rvr_recent_buckets=2, rvr_baseline_buckets=8, rvr_min_periods=4, roc_lookback_buckets=2,
                         volatility_window_buckets=8)  # fmt: skip
HYPE = HypeConfig(window_buckets=8, min_periods=4)
THRESHOLDS = SignalThresholds(rvr=1.0, roc=0.02, hype=30)
BOOK = PaperBookConfig(stake=0.05, hold_buckets=3)
LIMITS = RiskLimits(daily=0.5, weekly=0.5, monthly=0.5, circuit_breaker=0.5)
# Small windows so that a 40-hour world refits often: 12-hour estimation windows every 4 hours.
CORRELATION = CorrelationConfig(max_lag=3, min_samples=30, bh_alpha=0.2)
LEAD = LeadParams(burst_z=2.0, burst_min_posts=3, baseline_buckets=16, window_days=0.5, refit_hours=4)
CALIBRATION = CalibrationConfig(refit_hours=4, prior_signals=5, min_signals=3, hold_buckets=3)
DECISIONS = ["market_id", "bucket_ts", "rule", "direction", "strength", "lead_lag", "burst_z", "win_prob"]


def _world(
    rng: np.random.Generator, start_bucket: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Prices, volumes and posts for buckets start_bucket..N-1; in m1 and m2 hype leads price by LAG."""
    ks = np.arange(start_bucket, N)
    prices, volumes, posts = [], [], []
    for i, m in enumerate(MARKETS):
        bursts = np.where(rng.random(len(ks)) < 0.07, rng.exponential(10, len(ks)), 0.0)
        lagged = np.concatenate([np.zeros(LAG), bursts])[: len(ks)]
        drift = (0.03 * lagged * (1 if i == 0 else -1)) if i < 2 else 0.0
        logit = np.cumsum(rng.normal(0, 0.05, len(ks)) + drift)
        ts = T0 + pd.to_timedelta(ks * 15, "min")
        prices.append(
            pd.DataFrame({"market_id": m, "ts": ts, "price": np.round(1 / (1 + np.exp(-logit)), 3)})
        )
        volumes.append(
            pd.DataFrame({"market_id": m, "bucket_ts": ts, "volume_usd": rng.exponential(100, len(ks))})
        )
        for k, b in zip(ks, bursts, strict=True):
            for j in range(int(rng.poisson(0.4 + b))):
                posts.append({"tweet_id": f"{m}-{k}-{j}-{rng.integers(1e9)}", "author_id": f"a{rng.integers(50)}",
                              "created_at": T0 + pd.Timedelta(minutes=15 * int(k) + float(rng.uniform(0, 14))),
                              "text": f"post {rng.integers(5)}", "like_count": int(rng.integers(0, 20)),
                              "retweet_count": 0, "reply_count": 0, "quote_count": 0, "market_id": m})  # fmt: skip
    return pd.concat(prices), pd.concat(volumes), pd.DataFrame(posts)


def _signals(prices: pd.DataFrame, volumes: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    mentions = posts[["tweet_id", "market_id"]]
    tweets = posts.drop(columns=["market_id"])
    hype = build_hype_scores(tweets, mentions, None, HYPE, BotConfig(), market_ids=MARKETS, start=T0)
    markets = pd.DataFrame({"market_id": MARKETS, "category": "X", "yes_token_id": "y", "no_token_id": "n"})
    features = build_market_features(prices, volumes, markets, FEATURES, hype=hype)
    panel = hype[["market_id", "bucket_ts", "post_count"]].merge(
        features[["market_id", "bucket_ts", "ret"]], on=["market_id", "bucket_ts"]
    )
    leads = trailing_leads(panel.rename(columns={"post_count": "hype"}), CORRELATION, LEAD)
    lead = hype_lead_candidates(features, hype, leads, LEAD, FEATURES.bucket_minutes)
    accepted, _, _ = gated_signals(
        features, THRESHOLDS, LIMITS, BOOK, hype_lead=lead, rules=("momentum", "hype_lead")
    )
    return calibrated_signals(accepted, features, CALIBRATION, BOOK.price_floor)


def _cut(
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], t: pd.Timestamp
) -> tuple[pd.DataFrame, ...]:
    prices, volumes, posts = frames
    return (
        prices[prices["ts"] <= t],
        volumes[volumes["bucket_ts"] <= t],
        posts[posts["created_at"] < t + pd.Timedelta(minutes=15)],
    )


def _upto(signals: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    return signals.loc[signals["bucket_ts"] <= t, DECISIONS].reset_index(drop=True)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), other=st.integers(0, 2**32 - 1), t_bucket=st.integers(60, N - 2))
def test_changing_data_after_t_never_changes_edge_decisions_up_to_t(
    seed: int, other: int, t_bucket: int
) -> None:
    t = T0 + pd.Timedelta(minutes=15 * t_bucket)
    original = _world(np.random.default_rng(seed))
    replacement = _world(np.random.default_rng(other), start_bucket=t_bucket + 1)
    kept = _cut(original, t)
    changed = tuple(pd.concat([a, b], ignore_index=True) for a, b in zip(kept, replacement, strict=True))
    before = _upto(_signals(*original), t)
    pd.testing.assert_frame_equal(before, _upto(_signals(*changed), t), check_dtype=False)
    pd.testing.assert_frame_equal(before, _upto(_signals(*kept), t), check_dtype=False)


def test_the_edge_chain_fires_calibrates_and_later_data_changes_later_decisions() -> None:
    """Guard against a vacuous property: hype_lead fires in the lead markets, calibration learns, later data matters."""
    original = _world(np.random.default_rng(0))
    signals = _signals(*original)
    lead = signals[signals["rule"] == "hype_lead"]
    assert len(lead) >= 5 and lead["market_id"].isin(["m1", "m2"]).mean() > 0.7
    # m1's hype precedes rises, m2's falls: the rule buys YES in m1 and NO in m2
    assert (lead.loc[lead["market_id"] == "m1", "direction"] == "YES").all()
    assert (lead.loc[lead["market_id"] == "m2", "direction"] == "NO").all()
    assert (signals["calibration_n"] > 0).any()  # later signals learned from earlier outcomes
    learned = signals[signals["calibration_n"] > 0]
    assert not np.allclose(learned["win_prob"], learned["signal_price"])

    t = T0 + pd.Timedelta(minutes=15 * 100)
    replacement = _world(np.random.default_rng(11), start_bucket=101)
    changed = tuple(
        pd.concat([a, b], ignore_index=True) for a, b in zip(_cut(original, t), replacement, strict=True)
    )
    later_before = signals.loc[signals["bucket_ts"] > t, DECISIONS].reset_index(drop=True)
    after = _signals(*changed)
    later_after = after.loc[after["bucket_ts"] > t, DECISIONS].reset_index(drop=True)
    assert len(later_before) > 0 and not later_before.equals(later_after)

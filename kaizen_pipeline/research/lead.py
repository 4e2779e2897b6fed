"""The ``hype_lead`` signal rule: trade the hype-to-price lead the research finds, without look-ahead.

Pure module (no Dagster).

1. Trailing lead estimates. At each refit time tau (every ``refit_hours``, on a grid anchored at
   midnight UTC) the correlation analysis of :mod:`kaizen_pipeline.research.correlation` (lagged
   Pearson, Granger F-test, Benjamini-Hochberg across markets) runs on the buckets in
   [tau - ``window_days``, tau) only. A market's estimate at tau says whether its hype significantly
   leads its returns, at which lag (``best_lag`` > 0) and in which direction (the sign of the
   correlation at that lag). Decisions in [tau, next tau) use the estimate made at tau, so a
   decision at t rests on data before t only.
2. Bursts. A market's bot-filtered post count x_t (hype_scores.post_count) bursts at t when
       z_t = (x_t - mean(x_{t-B..t-1})) / max(std(x_{t-B..t-1}), sqrt(max(mean, 1/B)))
   is at least ``burst_z`` and x_t >= ``burst_min_posts`` (B = ``baseline_buckets``; the floor on
   the deviation is the Poisson standard deviation, so a quiet market's single post is no burst).
   Only the first bucket of a burst fires (z_{t-1} below the threshold): later buckets of the same
   burst would be entries while already holding.
3. Signal: in a market with a significant lead (``best_lag`` >= 1) at t, a burst buys YES when
   the lead is positive (hype precedes YES rises) and NO when it is negative. Filled at the next
   bucket like every signal, and held ``research.signal_hold_buckets`` (the lags of the demo world,
   2-8 buckets plus the burst's decay, fit inside the default 16).
   Strength (0..1) = mean of s_burst = clip((z - burst_z) / burst_z, 0, 1) and
   s_corr = clip(|rho| / 0.3, 0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, fill_time
from kaizen_pipeline.flags.provider import value_groups
from kaizen_pipeline.research.correlation import CorrelationConfig, hype_price_correlations
from kaizen_pipeline.research.signals import SIGNAL_COLUMNS

RULE_MOMENTUM = "momentum"
RULE_HYPE_LEAD = "hype_lead"
RULES = (RULE_MOMENTUM, RULE_HYPE_LEAD)
LEAD_COLUMNS = ["rule", "lead_lag", "lead_corr", "burst_z"]

LEAD_ESTIMATE_COLUMNS = [
    "market_id",
    "estimated_at",
    "window_start",
    "n_samples",
    "best_lag",
    "pearson_at_best",
    "granger_p",
    "granger_p_adj",
    "significant",
]
_FULL_CORR = 0.3  # |rho| at which the correlation part of the strength is full


@dataclass(frozen=True)
class LeadParams:
    """The hype_lead rule's knobs: burst threshold, trailing estimation window and refit cadence."""

    burst_z: float = 3.0
    burst_min_posts: float = 4.0
    baseline_buckets: int = 96
    window_days: float = 5.0
    refit_hours: float = 24.0

    def __post_init__(self) -> None:
        checks = {
            "burst_z": self.burst_z > 0,
            "burst_min_posts": self.burst_min_posts >= 1,
            "baseline_buckets": self.baseline_buckets >= 8,
            "window_days": self.window_days > 0,
            "refit_hours": self.refit_hours > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"hype_lead: {name} out of range (got {getattr(self, name)!r})")

    @classmethod
    def from_settings(cls, settings: Any) -> LeadParams:
        sig = settings.signals
        return cls(
            burst_z=sig.hype_lead_burst_z,
            burst_min_posts=sig.hype_lead_min_posts,
            baseline_buckets=sig.hype_lead_baseline_buckets,
            window_days=sig.hype_lead_window_days,
            refit_hours=sig.hype_lead_refit_hours,
        )


def refit_times(first: pd.Timestamp, last: pd.Timestamp, params: LeadParams) -> pd.DatetimeIndex:
    """Refit times tau on the ``refit_hours`` grid with a full window of data before them, up to ``last``."""
    step = pd.Timedelta(hours=params.refit_hours)
    start = (pd.Timestamp(first) + pd.Timedelta(days=params.window_days)).ceil(step)
    stop = pd.Timestamp(last)
    if start > stop:
        return pd.DatetimeIndex([])
    return pd.date_range(start, stop, freq=step)


def trailing_leads(
    panel: pd.DataFrame,
    config: CorrelationConfig,
    params: LeadParams,
    *,
    until: pd.Timestamp | None = None,
    known: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Lead estimates at every refit time from the window before it (module docstring, step 1).

    ``panel``: market_id, bucket_ts, hype (post count), ret. ``until``: the last decision time to
    cover (default: the panel's last bucket). ``known``: estimates already made (same columns);
    refit times present there are not recomputed, since the data before them does not change.
    """
    missing = [c for c in ("market_id", "bucket_ts", "hype", "ret") if c not in panel.columns]
    if missing:
        raise ValueError(f"trailing_leads: panel lacks column(s) {', '.join(missing)}")
    if panel.empty:
        return pd.DataFrame(columns=LEAD_ESTIMATE_COLUMNS)
    ts = pd.to_datetime(panel["bucket_ts"])
    last = pd.Timestamp(until) if until is not None else ts.max()
    taus = refit_times(ts.min(), last, params)
    done = set(pd.to_datetime(known["estimated_at"])) if known is not None and len(known) else set()
    window = pd.Timedelta(days=params.window_days)
    frames = [known[LEAD_ESTIMATE_COLUMNS]] if known is not None and len(known) else []
    values = ts.to_numpy()
    order = np.argsort(values, kind="stable")
    sorted_ts = values[order]
    for tau in taus:
        if tau in done:
            continue
        lo = np.searchsorted(sorted_ts, np.datetime64(tau - window), side="left")
        hi = np.searchsorted(sorted_ts, np.datetime64(tau), side="left")
        if hi <= lo:
            continue
        res = hype_price_correlations(panel.iloc[order[lo:hi]], config)
        if res.empty:
            continue
        res["estimated_at"] = tau
        res["window_start"] = tau - window
        frames.append(res[LEAD_ESTIMATE_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=LEAD_ESTIMATE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["estimated_at"] = pd.to_datetime(out["estimated_at"])
    return out.sort_values(["estimated_at", "market_id"]).reset_index(drop=True)


def burst_scores(posts: pd.DataFrame, baseline_buckets: int) -> pd.Series:
    """z_t of each row's post count against the market's previous ``baseline_buckets`` rows (NaN early).

    ``posts``: market_id, bucket_ts, post_count on a complete bucket grid per market.
    """
    frame = posts.sort_values(["market_id", "bucket_ts"])
    x = frame["post_count"].astype(float)
    prev = x.groupby(frame["market_id"]).shift(1)
    grouped = prev.groupby(frame["market_id"])
    min_periods = max(4, baseline_buckets // 4)
    mean = grouped.transform(lambda s: s.rolling(baseline_buckets, min_periods=min_periods).mean())
    std = grouped.transform(lambda s: s.rolling(baseline_buckets, min_periods=min_periods).std())
    floor = np.sqrt(np.maximum(mean, 1.0 / baseline_buckets))
    z = (x - mean) / np.maximum(std.fillna(0.0), floor)
    return z.reindex(posts.index)


def _apply_estimates(frame: pd.DataFrame, leads: pd.DataFrame, params: LeadParams) -> pd.DataFrame:
    """Each row's latest estimate made at or before its bucket (stale after two refit periods)."""
    est = leads.copy()
    # merge_asof needs one resolution on both sides (the warehouse reads microseconds)
    est["estimated_at"] = pd.to_datetime(est["estimated_at"]).astype("datetime64[ns]")
    est = est.sort_values("estimated_at")
    left = frame.assign(bucket_ts=pd.to_datetime(frame["bucket_ts"]).astype("datetime64[ns]"))
    left = left.sort_values("bucket_ts")
    merged = pd.merge_asof(
        left,
        est[["market_id", "estimated_at", "best_lag", "pearson_at_best", "significant"]],
        left_on="bucket_ts",
        right_on="estimated_at",
        by="market_id",
        direction="backward",
        tolerance=pd.Timedelta(hours=2 * params.refit_hours),
    )
    merged.index = left.index
    merged["bucket_ts"] = frame["bucket_ts"].reindex(left.index).to_numpy()
    return merged.reindex(frame.index)


def hype_lead_rule(
    features: pd.DataFrame,
    leads: pd.DataFrame,
    params: LeadParams,
    bucket_minutes: int = DEFAULT_BUCKET_MINUTES,
) -> pd.DataFrame:
    """hype_lead signals (SIGNAL_COLUMNS + LEAD_COLUMNS) from features with post_count and the estimates.

    ``features`` needs market_id, bucket_ts, yes_price, rvr, roc, hype_index and post_count on a
    complete bucket grid per market; a row with any of them unknown never signals.
    """
    required = ["market_id", "bucket_ts", "yes_price", "rvr", "roc", "hype_index", "post_count"]
    missing = [c for c in required if c not in features.columns]
    if missing:
        raise ValueError(f"hype_lead_rule: features lack column(s) {', '.join(missing)}")
    if features.empty or leads is None or leads.empty:
        return empty_signals()
    frame = features.copy()
    frame["bucket_ts"] = pd.to_datetime(frame["bucket_ts"])
    frame["burst_z"] = burst_scores(frame, params.baseline_buckets)
    frame = frame.sort_values(["market_id", "bucket_ts"])
    bursting = (frame["burst_z"] >= params.burst_z) & (frame["post_count"] >= params.burst_min_posts)
    onset = bursting & ~bursting.groupby(frame["market_id"]).shift(1, fill_value=False).astype(bool)
    frame = _apply_estimates(frame[onset], leads, params)
    lag = pd.to_numeric(frame["best_lag"], errors="coerce")
    rho = pd.to_numeric(frame["pearson_at_best"], errors="coerce")
    known = frame[["yes_price", "rvr", "roc", "hype_index"]].notna().all(axis=1)
    fire = frame["significant"].fillna(False).astype(bool) & (lag >= 1) & (rho != 0) & known
    hits = frame.loc[fire].copy()
    if hits.empty:
        return empty_signals()
    buy_yes = hits["pearson_at_best"].astype(float) > 0
    hits["fill_ts"] = fill_time(hits["bucket_ts"], bucket_minutes)
    hits["direction"] = np.where(buy_yes, "YES", "NO")
    yes_token = hits["yes_token_id"] if "yes_token_id" in hits else pd.Series(None, index=hits.index)
    no_token = hits["no_token_id"] if "no_token_id" in hits else pd.Series(None, index=hits.index)
    hits["token_id"] = yes_token.where(buy_yes, no_token)
    hits["signal_price"] = hits["yes_price"].where(buy_yes, 1.0 - hits["yes_price"])
    s_burst = np.clip((hits["burst_z"] - params.burst_z) / params.burst_z, 0, 1)
    s_corr = np.clip(hits["pearson_at_best"].abs() / _FULL_CORR, 0, 1)
    hits["strength"] = (s_burst + s_corr) / 2.0
    hits["rule"] = RULE_HYPE_LEAD
    hits["lead_lag"] = lag[fire].astype(float)
    hits["lead_corr"] = hits["pearson_at_best"].astype(float)
    if "category" not in hits:
        hits["category"] = None
    cols = SIGNAL_COLUMNS + LEAD_COLUMNS
    return hits[cols].sort_values(["bucket_ts", "market_id"]).reset_index(drop=True)


def empty_signals() -> pd.DataFrame:
    """A signal frame with no rows and every column (SIGNAL_COLUMNS + LEAD_COLUMNS)."""
    return pd.DataFrame(columns=SIGNAL_COLUMNS + LEAD_COLUMNS)


def with_rule(signals: pd.DataFrame, rule: str) -> pd.DataFrame:
    """``signals`` with the lead columns, ``rule`` set (momentum rows have no lag, correlation or z)."""
    out = signals.copy()
    out["rule"] = rule
    for col in ("lead_lag", "lead_corr", "burst_z"):
        if col not in out:
            out[col] = np.nan
    return out


def combine_rules(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One signal per market and bucket: where rules fire together, the earlier rule in RULES yields.

    hype_lead wins a tie: it is the rule with an estimated edge at that bucket; the momentum
    features stay on the row (they are the bucket's features, whichever rule fired).
    """
    parts = [f for f in frames if f is not None and not f.empty]
    if not parts:
        return empty_signals()
    joined = pd.concat(parts, ignore_index=True)
    joined["_priority"] = joined["rule"].map({r: -i for i, r in enumerate(RULES)}).fillna(1)
    joined = joined.sort_values(["market_id", "bucket_ts", "_priority"])
    joined = joined.drop_duplicates(["market_id", "bucket_ts"], keep="first").drop(columns="_priority")
    return joined.sort_values(["bucket_ts", "market_id"]).reset_index(drop=True)


def per_params(
    features: pd.DataFrame,
    params: LeadParams | pd.Series,
    run: Callable[[pd.DataFrame, LeadParams], pd.DataFrame],
) -> pd.DataFrame:
    """``run`` once per distinct LeadParams (a Series aligned with ``features``: each row's own)."""
    if isinstance(params, LeadParams):
        return run(features, params)
    groups = value_groups(params)
    if len(groups) == 1:
        return run(features, groups[0][0])
    markets = features["market_id"]
    stamps = pd.to_datetime(features["bucket_ts"])
    frames = []
    for value, positions in groups:
        # a burst needs its market's whole series: run on those markets, keep the rows of this value
        mine = markets.iloc[positions]
        out = run(features[markets.isin(mine.unique())], value)
        if not out.empty:
            keep = pd.MultiIndex.from_arrays([mine.to_numpy(), stamps.iloc[positions].to_numpy()])
            found = pd.MultiIndex.from_arrays(
                [out["market_id"].to_numpy(), pd.to_datetime(out["bucket_ts"]).to_numpy()]
            )
            out = out[found.isin(keep)]
        frames.append(out)
    return combine_rules(frames) if frames else empty_signals()

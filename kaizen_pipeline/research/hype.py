"""Hype scores per market and bucket: posts, authors, engagement, sentiment, bot share, hype index.

Pure module (no Dagster).

Bot-like posts (switch: ``twitter.bot_detection``). Each post collects up to four flags:
  1. account age: the author's account was younger than ``bot_min_account_age_days`` when posting;
  2. follower ratio: followers / max(following, 1) < ``bot_min_follower_ratio``;
  3. posting rate: lifetime posts / account age in days (at profile fetch) > ``bot_max_posts_per_day``;
  4. duplicate text: this is at least the ``bot_duplicate_min``-th post of the same normalized text
     (lower case, links, @mentions and punctuation removed) by the same author, counting
     only posts up to this one (so the flag never depends on later posts).
A post is bot-like when it has at least ``bot_min_flags`` flags. A post whose author profile is
unknown can only get the duplicate flag. Bot-like posts count in ``bot_share`` and nowhere else.

Attribution of posts to markets (``research.exclude_ambiguous_posts``). X search links a post to
every market whose query it matched (tweet_mentions). A post that links a tracked market's page
(``polymarket.com/event/<slug or event slug>``) belongs to the linked market(s) only, whichever
query found it. A post without such a link that matched several markets' queries (markets whose
keywords coincide) cannot be told apart: it is left out of every market's hype, because mixing
another market's attention into a market's hype hides who leads whom. Posts of the general keyword
queries (market ``*``) count only through a link.

Per market and bucket, over the human (not bot-like) posts:
  ``post_count``, ``unique_authors``, ``weighted_engagement`` = sum of
  w_like x likes + w_repost x reposts + w_reply x replies + w_quote x quotes,
  ``sentiment`` = mean VADER compound score (-1..1; NaN without posts),
  ``bot_share`` = bot-like posts / all posts (NaN without posts).

Raw hype (attention, bots excluded):
  raw_t = a x ln(1 + post_count) + b x ln(1 + unique_authors) + c x ln(1 + weighted_engagement)
          + d x |sentiment| (0 without posts), weights ``hype_weight_*``.
Hype index (0-100), ranked against the market's own trailing distribution:
  hype_index_t = 100 x #{s in [t-W, t-1] : raw_s < raw_t} / #{s in [t-W, t-1]}
with W = ``hype_window_buckets``; NaN while fewer than ``hype_min_periods`` earlier buckets
exist. A quiet bucket scores 0, a bucket above everything in the last W scores 100, and the
index at t uses only buckets up to t.

Sentiment lexicon (``research.sentiment_lexicon``): terms added to VADER's lexicon (valence on its
-4..4 scale) in an analyzer of their own per lexicon, so configs never see each other's terms.
VADER looks up single whitespace-split tokens, so a multi-word term ("rug pull") is scored by a
pre-pass that joins the words where they occur in a row, in any case ("Rug  Pull" -> "Rug_Pull"),
into one token with the term's valence; its words then no longer score on their own there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from kaizen_pipeline.clock import DEFAULT_BUCKET_MINUTES, bucket_freq

HYPE_COLUMNS = [
    "market_id",
    "bucket_ts",
    "post_count",
    "unique_authors",
    "weighted_engagement",
    "sentiment",
    "bot_posts",
    "bot_share",
    "raw_hype",
    "hype_index",
]

GENERAL_QUERY_MARKET = "*"  # tweet_mentions rows of the general keyword queries (no market)

Lexicon = tuple[tuple[str, float], ...]  # (term, valence) pairs, sorted: hashable for the analyzer cache


def lexicon_items(terms: Mapping[str, float]) -> Lexicon:
    """``terms`` as ``HypeConfig.sentiment_lexicon``: lower-cased, single-spaced, sorted pairs."""
    return tuple(sorted((" ".join(t.lower().split()), float(v)) for t, v in terms.items()))


@dataclass(frozen=True)
class BotConfig:
    """Bot-like post heuristics (see the module docstring)."""

    enabled: bool = True
    min_account_age_days: float = 30.0
    min_follower_ratio: float = 0.1
    max_posts_per_day: float = 100.0
    duplicate_min: int = 3
    min_flags: int = 2


@dataclass(frozen=True)
class HypeConfig:
    """Engagement weights, raw-hype weights and the trailing window of the hype index."""

    bucket_minutes: int = DEFAULT_BUCKET_MINUTES
    weight_like: float = 1.0
    weight_repost: float = 2.0
    weight_reply: float = 3.0
    weight_quote: float = 3.0
    weight_posts: float = 1.0
    weight_authors: float = 1.0
    weight_engagement: float = 0.5
    weight_sentiment: float = 0.5
    window_buckets: int = 192
    min_periods: int = 24
    sentiment_lexicon: Lexicon = ()  # added to VADER's lexicon; () is plain VADER

    @property
    def freq(self) -> str:
        return bucket_freq(self.bucket_minutes)


_URL = re.compile(r"https?://\S+")
_MARKET_LINK = re.compile(r"polymarket\.com/event/([a-z0-9-]+)", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_NON_WORD = re.compile(r"[^a-z0-9#$ ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Text used for duplicate detection: lower case, no links, @mentions or punctuation."""
    text = _MENTION.sub(" ", _URL.sub(" ", str(text).lower()))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


@lru_cache(maxsize=8)
def _vader(lexicon: Lexicon = ()) -> tuple[Any, re.Pattern[str] | None]:
    """A VADER analyzer with ``lexicon`` added, and the pattern of its multi-word terms (None: none)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    # A new analyzer reads its own lexicon dict, so one config's terms never leak into another's.
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update({"_".join(term.split()): valence for term, valence in lexicon})
    # Longest first, so "pump and dump" wins over a shorter phrase inside it.
    phrases = sorted((term for term, _ in lexicon if " " in term), key=len, reverse=True)
    if not phrases:
        return analyzer, None
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in phrases)
    return analyzer, re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])", re.IGNORECASE)


def vader_compound(texts: pd.Series, lexicon: Lexicon = ()) -> pd.Series:
    """VADER compound sentiment (-1..1) per text with ``lexicon`` added; each distinct text is scored once."""
    analyzer, phrases = _vader(lexicon)
    unique = pd.unique(texts.astype(str))
    scores: dict[str, float] = {}
    for text in unique:
        joined = phrases.sub(lambda m: "_".join(m.group(0).split()), text) if phrases else text
        scores[text] = analyzer.polarity_scores(joined)["compound"]
    return texts.astype(str).map(scores).astype(float)


def weighted_engagement(posts: pd.DataFrame, config: HypeConfig) -> pd.Series:
    """w_like x likes + w_repost x reposts + w_reply x replies + w_quote x quotes, per post."""
    return (
        config.weight_like * posts["like_count"].fillna(0)
        + config.weight_repost * posts["retweet_count"].fillna(0)
        + config.weight_reply * posts["reply_count"].fillna(0)
        + config.weight_quote * posts["quote_count"].fillna(0)
    ).astype(float)


def bot_flags(posts: pd.DataFrame, authors: pd.DataFrame | None, config: BotConfig) -> pd.DataFrame:
    """Per post: the four heuristic flags, their count and ``is_bot`` (see the module docstring).

    posts: (tweet_id, author_id, created_at, text); authors: (author_id, created_at,
    followers_count, following_count, tweet_count, updated_at optional).
    """
    out = pd.DataFrame(index=posts.index)
    created = pd.to_datetime(posts["created_at"])
    if authors is not None and not authors.empty:
        prof = authors.drop_duplicates("author_id", keep="last").set_index("author_id")
        acct_created = pd.to_datetime(posts["author_id"].map(prof["created_at"]))
        age_at_post = (created - acct_created).dt.total_seconds() / 86400.0
        followers = posts["author_id"].map(prof["followers_count"]).astype(float)
        following = posts["author_id"].map(prof["following_count"]).astype(float)
        tweet_count = posts["author_id"].map(prof["tweet_count"]).astype(float)
        profile_at = (
            pd.to_datetime(posts["author_id"].map(prof["updated_at"]))
            if "updated_at" in prof
            else pd.Series(created.max(), index=posts.index)
        )
        profile_at = profile_at.fillna(created.max())
        age_at_profile = ((profile_at - acct_created).dt.total_seconds() / 86400.0).clip(lower=1.0)
        out["flag_young"] = (age_at_post < config.min_account_age_days).fillna(False)
        out["flag_ratio"] = (followers / following.clip(lower=1.0) < config.min_follower_ratio).fillna(False)
        out["flag_rate"] = (tweet_count / age_at_profile > config.max_posts_per_day).fillna(False)
    else:
        out["flag_young"] = False
        out["flag_ratio"] = False
        out["flag_rate"] = False
    norm = posts["text"].map(normalize_text)
    order = created.sort_values(kind="stable").index
    dup_rank = (
        pd.DataFrame({"author_id": posts.loc[order, "author_id"], "norm": norm.loc[order]})
        .groupby(["author_id", "norm"])
        .cumcount()
        + 1
    )
    out["flag_duplicate"] = (dup_rank.reindex(posts.index) >= config.duplicate_min).astype(bool)
    flag_cols = ["flag_young", "flag_ratio", "flag_rate", "flag_duplicate"]
    out[flag_cols] = out[flag_cols].astype(bool)
    out["bot_flags"] = out[flag_cols].sum(axis=1).astype(int)
    out["is_bot"] = (out["bot_flags"] >= config.min_flags) if config.enabled else False
    out["is_bot"] = out["is_bot"].astype(bool)
    return out


def raw_hype(frame: pd.DataFrame, config: HypeConfig) -> pd.Series:
    """raw = a ln(1+posts) + b ln(1+authors) + c ln(1+engagement) + d |sentiment| (module docstring)."""
    return (
        config.weight_posts * np.log1p(frame["post_count"].astype(float))
        + config.weight_authors * np.log1p(frame["unique_authors"].astype(float))
        + config.weight_engagement * np.log1p(frame["weighted_engagement"].astype(float))
        + config.weight_sentiment * frame["sentiment"].astype(float).abs().fillna(0.0)
    ).rename("raw_hype")


def trailing_rank_index(raw: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """100 x share of the previous ``window`` values strictly below each value (NaN before ``min_periods``)."""
    raw = np.asarray(raw, dtype=float)
    n = len(raw)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    padded = np.concatenate([np.full(window, np.nan), raw])
    # past[i] holds raw[i-window .. i-1]
    past = np.lib.stride_tricks.sliding_window_view(padded, window)[:n]
    valid = ~np.isnan(past)
    counts = valid.sum(axis=1)
    with np.errstate(invalid="ignore"):
        below = (past < raw[:, None]) & valid
    share = below.sum(axis=1) / np.maximum(counts, 1)
    ok = (counts >= min_periods) & ~np.isnan(raw)
    out[ok] = 100.0 * share[ok]
    return out


def attribute_posts(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    market_links: pd.DataFrame | None = None,
    exclude_ambiguous: bool = True,
) -> tuple[pd.DataFrame, int]:
    """(tweet_id, market_id) pairs after the attribution rule (module docstring), and the ambiguous count.

    market_links: (market_id, slug, event_slug) of the tracked markets; None disables link matching.
    """
    links = mentions[["tweet_id", "market_id"]].drop_duplicates()
    matched = links[links["market_id"] != GENERAL_QUERY_MARKET]
    linked = pd.DataFrame(columns=["tweet_id", "market_id"])
    if market_links is not None and not market_links.empty and not posts.empty:
        by_slug: dict[str, set[str]] = {}
        for col in ("slug", "event_slug"):
            if col in market_links:
                for market_id, slug in zip(market_links["market_id"], market_links[col], strict=True):
                    if isinstance(slug, str) and slug:
                        by_slug.setdefault(slug.lower(), set()).add(str(market_id))
        pairs = [
            (tid, market_id)
            for tid, text in zip(posts["tweet_id"], posts["text"], strict=True)
            for slug in _MARKET_LINK.findall(str(text))
            for market_id in by_slug.get(slug.lower(), ())
        ]
        linked = pd.DataFrame(pairs, columns=["tweet_id", "market_id"]).drop_duplicates()
    has_link = matched["tweet_id"].isin(linked["tweet_id"])
    unlinked = matched[~has_link]
    n_markets = unlinked.groupby("tweet_id")["market_id"].transform("nunique")
    ambiguous = n_markets > 1
    n_ambiguous = int(unlinked.loc[ambiguous, "tweet_id"].nunique())
    kept = unlinked[~ambiguous] if exclude_ambiguous else unlinked
    return pd.concat([linked, kept], ignore_index=True).drop_duplicates(), n_ambiguous


def score_posts(
    tweets: pd.DataFrame,
    mentions: pd.DataFrame,
    authors: pd.DataFrame | None,
    hype_config: HypeConfig,
    bot_config: BotConfig,
    market_links: pd.DataFrame | None = None,
    exclude_ambiguous: bool = True,
) -> pd.DataFrame:
    """One row per attributed (post, market): bucket, engagement, sentiment and bot flags.

    ``attrs["ambiguous_posts"]`` counts the posts left out as ambiguous.
    """
    required = [
        "tweet_id",
        "author_id",
        "created_at",
        "text",
        "like_count",
        "retweet_count",
        "reply_count",
        "quote_count",
    ]
    missing = [c for c in required if c not in tweets.columns]
    if missing:
        raise ValueError(f"tweets: missing column(s) {', '.join(missing)}")
    if not {"tweet_id", "market_id"} <= set(mentions.columns):
        raise ValueError("tweet_mentions: needs columns tweet_id and market_id")
    posts = tweets.drop_duplicates("tweet_id", keep="last").reset_index(drop=True)
    posts["created_at"] = pd.to_datetime(posts["created_at"])
    for col in ("like_count", "retweet_count", "reply_count", "quote_count"):
        if (posts[col].fillna(0) < 0).any():
            raise ValueError(f"tweets.{col}: negative counts")
    flags = bot_flags(posts, authors, bot_config)
    posts = pd.concat([posts, flags], axis=1)
    posts["engagement"] = weighted_engagement(posts, hype_config)
    posts["sentiment"] = (
        vader_compound(posts["text"], hype_config.sentiment_lexicon) if len(posts) else pd.Series(dtype=float)
    )
    posts["bucket_ts"] = posts["created_at"].dt.floor(hype_config.freq)
    links, n_ambiguous = attribute_posts(posts, mentions, market_links, exclude_ambiguous)
    scored = posts.merge(links, on="tweet_id", how="inner")
    scored.attrs["ambiguous_posts"] = n_ambiguous
    return scored


def build_hype_scores(
    tweets: pd.DataFrame,
    mentions: pd.DataFrame,
    authors: pd.DataFrame | None,
    hype_config: HypeConfig,
    bot_config: BotConfig,
    market_ids: list[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    market_links: pd.DataFrame | None = None,
    exclude_ambiguous: bool = True,
) -> pd.DataFrame:
    """Hype scores on a complete bucket grid per market (quiet buckets are rows of zeros).

    The grid runs from ``start`` (default: the first post's bucket) to ``end`` (default: the
    last post's bucket); ``market_ids`` adds markets without any post.
    """
    scored = score_posts(tweets, mentions, authors, hype_config, bot_config, market_links, exclude_ambiguous)
    freq = hype_config.freq
    if start is None:
        start = scored["bucket_ts"].min() if not scored.empty else None
    if end is None:
        end = scored["bucket_ts"].max() if not scored.empty else None
    markets = sorted(set(market_ids or []) | set(scored["market_id"].unique()))
    if start is None or end is None or not markets:
        return pd.DataFrame(columns=HYPE_COLUMNS)
    grid = pd.date_range(pd.Timestamp(start).floor(freq), pd.Timestamp(end).floor(freq), freq=freq)

    human = scored[~scored["is_bot"]]
    agg = human.groupby(["market_id", "bucket_ts"]).agg(
        post_count=("tweet_id", "size"),
        unique_authors=("author_id", "nunique"),
        weighted_engagement=("engagement", "sum"),
        sentiment=("sentiment", "mean"),
    )
    totals = scored.groupby(["market_id", "bucket_ts"]).agg(
        all_posts=("tweet_id", "size"), bot_posts=("is_bot", "sum")
    )
    index = pd.MultiIndex.from_product([markets, grid], names=["market_id", "bucket_ts"])
    frame = agg.reindex(index).join(totals.reindex(index))
    for col in ("post_count", "unique_authors", "all_posts", "bot_posts"):
        frame[col] = frame[col].fillna(0).astype(int)
    frame["weighted_engagement"] = frame["weighted_engagement"].fillna(0.0)
    frame["bot_share"] = (frame["bot_posts"] / frame["all_posts"].where(frame["all_posts"] > 0)).astype(float)
    frame = frame.reset_index()
    frame["raw_hype"] = raw_hype(frame, hype_config)
    frame["hype_index"] = np.nan
    for _, idx in frame.groupby("market_id").groups.items():
        values = frame.loc[idx, "raw_hype"].to_numpy()
        frame.loc[idx, "hype_index"] = trailing_rank_index(
            values, hype_config.window_buckets, hype_config.min_periods
        )
    out = frame[HYPE_COLUMNS]
    out.attrs["ambiguous_posts"] = scored.attrs.get("ambiguous_posts", 0)
    return out

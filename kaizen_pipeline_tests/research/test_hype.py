"""Hype scores: the trailing-rank hype index, bot heuristics, engagement weights, sentiment, bot exclusion."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.research.hype import (
    BotConfig,
    HypeConfig,
    bot_flags,
    build_hype_scores,
    normalize_text,
    trailing_rank_index,
)

T0 = pd.Timestamp("2026-03-02 00:00")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def test_hype_index_ranks_against_the_trailing_window_only() -> None:
    idx = trailing_rank_index(np.array([0.0, 1.0, 2.0, 0.0, 3.0]), window=3, min_periods=2)
    assert math.isnan(idx[0]) and math.isnan(idx[1])  # fewer than 2 earlier buckets
    assert idx[2] == 100.0  # 2 > both of [0, 1]
    assert idx[3] == 0.0  # a quiet bucket beats nothing
    assert idx[4] == 100.0  # window [1, 2, 0]: all below 3


def test_hype_index_counts_strictly_lower_values() -> None:
    idx = trailing_rank_index(np.array([1.0, 3.0, 2.0, 2.0]), window=3, min_periods=1)
    assert idx[1] == 100.0
    assert idx[2] == pytest.approx(50.0)  # [1, 3]: one of two below
    assert idx[3] == pytest.approx(100.0 / 3)  # [1, 3, 2]: only 1 is strictly below 2


def test_normalize_text_ignores_links_mentions_and_case() -> None:
    assert normalize_text("Free signals!! https://x.co/abc @bob JOIN now") == normalize_text(
        "free SIGNALS join NOW @alice https://t.co/zzz"
    )


AUTHORS = pd.DataFrame(
    {
        "author_id": ["human", "bot", "spammer"],
        "created_at": [at(-400 * 1440), at(-5 * 1440), at(-900 * 1440)],
        "followers_count": [500, 3, 800],
        "following_count": [300, 2000, 100],
        "tweet_count": [4000, 2000, 1000],
        "updated_at": [at(60)] * 3,
    }
)


def _post(
    tid: str,
    author: str,
    minute: float,
    text: str,
    likes: int = 0,
    rts: int = 0,
    replies: int = 0,
    quotes: int = 0,
) -> dict:
    return {
        "tweet_id": tid,
        "author_id": author,
        "created_at": at(minute),
        "text": text,
        "like_count": likes,
        "retweet_count": rts,
        "reply_count": replies,
        "quote_count": quotes,
    }


def test_bot_flags_combine_age_ratio_rate_and_duplicates() -> None:
    posts = pd.DataFrame(
        [
            _post("1", "human", 1, "Great news on the Senate race"),
            _post("2", "bot", 2, "Free signals, join now!"),
            _post("3", "spammer", 3, "Buy now"),
            _post("4", "spammer", 4, "buy NOW"),
            _post("5", "spammer", 5, "Buy now!!"),
        ]
    )
    flags = bot_flags(posts, AUTHORS, BotConfig(duplicate_min=3, min_flags=2)).set_index(posts["tweet_id"])
    assert flags.loc["1", "bot_flags"] == 0 and not flags.loc["1", "is_bot"]
    # 5 days old (< 30), 3 / 2000 followers ratio, 2000 posts over ~5 days (> 100 a day)
    assert flags.loc["2", ["flag_young", "flag_ratio", "flag_rate"]].all() and flags.loc["2", "is_bot"]
    # an old, well-followed account repeating itself: the 3rd copy gets the duplicate flag, one flag only
    assert flags.loc[["3", "4"], "flag_duplicate"].tolist() == [False, False]
    assert flags.loc["5", "flag_duplicate"] and not flags.loc["5", "is_bot"]
    assert not bot_flags(posts, AUTHORS, BotConfig(enabled=False))["is_bot"].any()


def _world() -> tuple[pd.DataFrame, pd.DataFrame]:
    posts = pd.DataFrame(
        [
            _post(
                "1",
                "human",
                1,
                "Great news! Confident this resolves YES",
                likes=10,
                rts=2,
                replies=1,
                quotes=1,
            ),
            _post(
                "2", "human", 5, "Terrible news, this is not happening", likes=0, rts=0, replies=2, quotes=0
            ),
            _post("3", "bot", 6, "Free signals join now 1000x guaranteed", likes=50, rts=50),
            _post("4", "human", 20, "Watching this closely", likes=1),
            _post("5", "human", 2, "General polymarket chatter"),
        ]
    )
    mentions = pd.DataFrame(
        {
            "tweet_id": ["1", "2", "3", "4", "5"],
            "market_id": ["m1", "m1", "m1", "m1", "*"],
            "query": ["q"] * 5,
        }
    )
    return posts, mentions


def test_hype_scores_exclude_bots_and_weight_engagement() -> None:
    posts, mentions = _world()
    cfg = HypeConfig(
        weight_like=1, weight_repost=2, weight_reply=3, weight_quote=4, window_buckets=4, min_periods=1
    )
    scores = build_hype_scores(posts, mentions, AUTHORS, cfg, BotConfig(), market_ids=["m1", "m2"])
    first = scores[(scores["market_id"] == "m1") & (scores["bucket_ts"] == T0)].iloc[0]
    assert first["post_count"] == 2 and first["unique_authors"] == 1
    assert first["weighted_engagement"] == pytest.approx((10 + 2 * 2 + 3 * 1 + 4 * 1) + (3 * 2))
    assert first["bot_posts"] == 1 and first["bot_share"] == pytest.approx(1 / 3)
    assert -1 < first["sentiment"] < 1
    second = scores[(scores["market_id"] == "m1") & (scores["bucket_ts"] == at(15))].iloc[0]
    assert second["post_count"] == 1 and second["bot_share"] == 0
    # the general-query post (market '*') counts for no market; m2 has a grid of quiet buckets
    m2 = scores[scores["market_id"] == "m2"]
    assert len(m2) == 2 and (m2["post_count"] == 0).all() and m2["bot_share"].isna().all()


def test_switching_bot_detection_off_counts_bot_posts() -> None:
    posts, mentions = _world()
    on = build_hype_scores(posts, mentions, AUTHORS, HypeConfig(), BotConfig(enabled=True))
    off = build_hype_scores(posts, mentions, AUTHORS, HypeConfig(), BotConfig(enabled=False))
    assert on.loc[0, "post_count"] == 2 and off.loc[0, "post_count"] == 3
    assert off.loc[0, "bot_share"] == 0


def test_sentiment_follows_vader() -> None:
    posts = pd.DataFrame(
        [
            _post("1", "human", 1, "Great news! Love this, confident and happy"),
            _post("2", "human", 16, "Terrible, awful, disappointing news"),
        ]
    )
    mentions = pd.DataFrame({"tweet_id": ["1", "2"], "market_id": ["m1", "m1"]})
    scores = build_hype_scores(posts, mentions, AUTHORS, HypeConfig(), BotConfig())
    assert scores.loc[0, "sentiment"] > 0.5 and scores.loc[1, "sentiment"] < -0.5


def test_hype_index_rises_on_a_burst() -> None:
    # one post per hour for a day, then a burst of 12 posts by 12 authors in one bucket
    rows = [_post(str(i), "human", 60 * i, f"note {i}") for i in range(24)]
    rows += [_post(f"b{i}", f"a{i}", 24 * 60 + 1, f"big news {i}", likes=5) for i in range(12)]
    posts = pd.DataFrame(rows)
    mentions = pd.DataFrame({"tweet_id": posts["tweet_id"], "market_id": "m1"})
    cfg = HypeConfig(window_buckets=96, min_periods=24)
    scores = build_hype_scores(posts, mentions, None, cfg, BotConfig())
    assert scores["hype_index"].iloc[-1] == 100.0
    assert scores["hype_index"].iloc[:24].isna().all()
    quiet = scores[(scores["post_count"] == 0) & scores["hype_index"].notna()]
    assert (quiet["hype_index"] == 0).all()


def test_missing_tweet_column_is_named() -> None:
    posts, mentions = _world()
    with pytest.raises(ValueError, match="like_count"):
        build_hype_scores(posts.drop(columns=["like_count"]), mentions, AUTHORS, HypeConfig(), BotConfig())

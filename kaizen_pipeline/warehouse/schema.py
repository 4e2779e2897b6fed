"""Warehouse tables (SQLAlchemy Core). Users query these directly: the README documents each one.

Conventions: timestamps are naive UTC ``DateTime`` columns; each table's primary key is its
natural key, so writes are idempotent upserts; tables are named like the asset that writes them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def _now_col(name: str = "updated_at") -> sa.Column:
    return sa.Column(name, sa.DateTime, nullable=False)


# --- ingest ---------------------------------------------------------------------------

market_snapshots = sa.Table(
    "market_snapshots",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("snapshot_ts", sa.DateTime, primary_key=True, comment="collection bucket start (UTC)"),
    sa.Column("condition_id", sa.String(80), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("slug", sa.String(255)),
    sa.Column("category", sa.String(64), comment="category, or the event's first tag / series when absent"),
    sa.Column("event_slug", sa.String(255)),
    sa.Column("end_date", sa.DateTime),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("volume_total", sa.Float, comment="lifetime volume, USD"),
    sa.Column("volume_24h", sa.Float, nullable=False),
    sa.Column("volume_1wk", sa.Float),
    sa.Column("liquidity", sa.Float),
    sa.Column("best_bid", sa.Float),
    sa.Column("best_ask", sa.Float),
    sa.Column("spread", sa.Float),
    sa.Column("last_trade_price", sa.Float),
    sa.Column("one_day_price_change", sa.Float),
    sa.Column("yes_token_id", sa.String(96), nullable=False),
    sa.Column("no_token_id", sa.String(96), nullable=False),
    sa.Column("yes_price", sa.Float, nullable=False),
    sa.Column("no_price", sa.Float, nullable=False),
    sa.Column("outcomes", sa.Text, nullable=False, comment="JSON array of outcome names"),
    _now_col("ingested_at"),
)
sa.Index("ix_market_snapshots_ts", market_snapshots.c.snapshot_ts)

price_points = sa.Table(
    "price_points",
    metadata,
    sa.Column("token_id", sa.String(96), primary_key=True, comment="CLOB outcome token id"),
    sa.Column("ts", sa.DateTime, primary_key=True, comment="price time (UTC)"),
    sa.Column("market_id", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False, comment="Yes or No"),
    sa.Column("price", sa.Float, nullable=False),
)
sa.Index("ix_price_points_market_ts", price_points.c.market_id, price_points.c.ts)

trade_volumes = sa.Table(
    "trade_volumes",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True),
    sa.Column("bucket_ts", sa.DateTime, primary_key=True, comment="bucket start (UTC), frequency_minutes wide"),
    sa.Column("volume_usd", sa.Float, nullable=False, comment="sum of size x price over trades in the bucket"),
    sa.Column("buy_volume_usd", sa.Float, nullable=False),
    sa.Column("trade_count", sa.Integer, nullable=False),
)
sa.Index("ix_trade_volumes_ts", trade_volumes.c.bucket_ts)

tweets = sa.Table(
    "tweets",
    metadata,
    sa.Column("tweet_id", sa.String(32), primary_key=True),
    sa.Column("author_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("lang", sa.String(8)),
    sa.Column("like_count", sa.Integer, nullable=False),
    sa.Column("retweet_count", sa.Integer, nullable=False),
    sa.Column("reply_count", sa.Integer, nullable=False),
    sa.Column("quote_count", sa.Integer, nullable=False),
    sa.Column("impression_count", sa.Integer),
    _now_col("ingested_at"),
)
sa.Index("ix_tweets_created_at", tweets.c.created_at)
sa.Index("ix_tweets_author", tweets.c.author_id)

tweet_mentions = sa.Table(
    "tweet_mentions",
    metadata,
    sa.Column("tweet_id", sa.String(32), primary_key=True),
    sa.Column("market_id", sa.String(64), primary_key=True, comment="'*' for the general keyword queries"),
    sa.Column("query", sa.Text, nullable=False),
)
sa.Index("ix_tweet_mentions_market", tweet_mentions.c.market_id)

tweet_authors = sa.Table(
    "tweet_authors",
    metadata,
    sa.Column("author_id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128)),
    sa.Column("created_at", sa.DateTime, comment="account creation time"),
    sa.Column("verified", sa.Boolean),
    sa.Column("followers_count", sa.Integer),
    sa.Column("following_count", sa.Integer),
    sa.Column("tweet_count", sa.Integer),
    sa.Column("listed_count", sa.Integer),
    _now_col("updated_at"),
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("reject_id", sa.String(40), primary_key=True, comment="sha1 of source, key, reason and payload"),
    sa.Column("source", sa.String(64), nullable=False, comment="endpoint or asset that produced the record"),
    sa.Column("record_key", sa.String(255), comment="the record's id when it had one"),
    sa.Column("reason", sa.Text, nullable=False, comment="field and problem"),
    sa.Column("payload", sa.Text, nullable=False, comment="the raw record as JSON"),
    sa.Column("run_id", sa.String(64)),
    sa.Column("rejected_at", sa.DateTime, nullable=False),
)
sa.Index("ix_rejected_records_at", rejected_records.c.rejected_at)

ingestion_runs = sa.Table(
    "ingestion_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True, comment="Dagster run id"),
    sa.Column("asset", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False, comment="demo or live"),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="success, degraded or failed"),
    sa.Column("api_calls", sa.Integer, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False, comment="failed attempts (each retried or final)"),
    sa.Column("rate_limited", sa.Integer, nullable=False, comment="429 answers received"),
    sa.Column("rows_written", sa.Integer, nullable=False),
    sa.Column("new_rows", sa.Integer, nullable=False),
    sa.Column("rejects", sa.Integer, nullable=False),
    sa.Column("degraded", sa.Boolean, nullable=False),
    sa.Column("degraded_reason", sa.Text),
)
sa.Index("ix_ingestion_runs_started", ingestion_runs.c.started_at)

# --- research -------------------------------------------------------------------------

# --- backtest -------------------------------------------------------------------------

# --- kaizen ---------------------------------------------------------------------------

# --- ops ------------------------------------------------------------------------------

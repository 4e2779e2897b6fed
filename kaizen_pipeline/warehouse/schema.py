"""Warehouse tables (SQLAlchemy Core). Users query these directly: docs/warehouse-tables.md lists each.

Conventions: timestamps are naive UTC ``DateTime`` columns; each table's primary key is its
natural key, so writes are idempotent upserts; tables are named like the asset that writes them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


_NOW_COMMENTS = {
    "ingested_at": "when this row was ingested (UTC)",
    "computed_at": "when this row was computed (UTC)",
    "updated_at": "when this row was last written (UTC)",
    "collected_at": "when the value was collected (UTC)",
    "detected_at": "when the anomaly was detected (UTC)",
    "generated_at": "when the report was rendered (UTC)",
}


def _now_col(name: str = "updated_at") -> sa.Column:
    return sa.Column(name, sa.DateTime, nullable=False, comment=_NOW_COMMENTS[name])


# --- ingest ---------------------------------------------------------------------------

market_snapshots = sa.Table(
    "market_snapshots",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("snapshot_ts", sa.DateTime, primary_key=True, comment="collection bucket start (UTC)"),
    sa.Column("condition_id", sa.String(80), nullable=False, comment="CTF condition id"),
    sa.Column("question", sa.Text, nullable=False, comment="the market question"),
    sa.Column("slug", sa.String(255), comment="market URL slug"),
    sa.Column("category", sa.String(64), comment="category, or the event's first tag / series when absent"),
    sa.Column("event_slug", sa.String(255), comment="slug of the market's event"),
    sa.Column("end_date", sa.DateTime, comment="scheduled resolution time (UTC)"),
    sa.Column("active", sa.Boolean, nullable=False, comment="Gamma active flag"),
    sa.Column("closed", sa.Boolean, nullable=False, comment="Gamma closed flag"),
    sa.Column("volume_total", sa.Float, comment="lifetime volume, USD"),
    sa.Column("volume_24h", sa.Float, nullable=False, comment="volume over the last 24 hours, USD"),
    sa.Column("volume_1wk", sa.Float, comment="volume over the last week, USD"),
    sa.Column("liquidity", sa.Float, comment="order book liquidity, USD"),
    sa.Column("best_bid", sa.Float, comment="best YES bid, 0..1"),
    sa.Column("best_ask", sa.Float, comment="best YES ask, 0..1"),
    sa.Column("spread", sa.Float, comment="best_ask - best_bid"),
    sa.Column("last_trade_price", sa.Float, comment="price of the last YES trade, 0..1"),
    sa.Column("one_day_price_change", sa.Float, comment="YES price change over 24 hours"),
    sa.Column("yes_token_id", sa.String(96), nullable=False, comment="CLOB token id of the YES outcome"),
    sa.Column("no_token_id", sa.String(96), nullable=False, comment="CLOB token id of the NO outcome"),
    sa.Column("yes_price", sa.Float, nullable=False, comment="YES outcome price, 0..1"),
    sa.Column("no_price", sa.Float, nullable=False, comment="NO outcome price, 0..1"),
    sa.Column("outcomes", sa.Text, nullable=False, comment="JSON array of outcome names"),
    _now_col("ingested_at"),
)
sa.Index("ix_market_snapshots_ts", market_snapshots.c.snapshot_ts)

market_outcomes = sa.Table(
    "market_outcomes",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("snapshot_ts", sa.DateTime, primary_key=True, comment="collection bucket start (UTC)"),
    sa.Column("outcome_index", sa.Integer, primary_key=True, comment="position in Gamma's outcomes array"),
    sa.Column("outcome", sa.String(128), nullable=False, comment="outcome name (Yes, No, a candidate, ...)"),
    sa.Column("token_id", sa.String(96), nullable=False, comment="CLOB token id of this outcome"),
    sa.Column("price", sa.Float, nullable=False, comment="Gamma outcomePrices entry, 0..1"),
    sa.Column(
        "outcome_count",
        sa.Integer,
        nullable=False,
        comment="outcomes of the market: 2 = binary (also in market_snapshots), 3+ = categorical",
    ),
    sa.Column(
        "question",
        sa.Text,
        nullable=False,
        comment="the market question (categorical markets live only here)",
    ),
)
sa.Index("ix_market_outcomes_ts", market_outcomes.c.snapshot_ts)

price_points = sa.Table(
    "price_points",
    metadata,
    sa.Column("token_id", sa.String(96), primary_key=True, comment="CLOB outcome token id"),
    sa.Column("ts", sa.DateTime, primary_key=True, comment="price time (UTC)"),
    sa.Column("market_id", sa.String(64), nullable=False, comment="Gamma market id"),
    sa.Column("outcome", sa.String(32), nullable=False, comment="Yes or No"),
    sa.Column("price", sa.Float, nullable=False, comment="outcome price, 0..1"),
)
sa.Index("ix_price_points_market_ts", price_points.c.market_id, price_points.c.ts)

trade_volumes = sa.Table(
    "trade_volumes",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column(
        "bucket_ts", sa.DateTime, primary_key=True, comment="bucket start (UTC), frequency_minutes wide"
    ),
    sa.Column(
        "volume_usd", sa.Float, nullable=False, comment="sum of size x price over trades in the bucket"
    ),
    sa.Column("buy_volume_usd", sa.Float, nullable=False, comment="buy-side volume in the bucket, USD"),
    sa.Column("trade_count", sa.Integer, nullable=False, comment="trades in the bucket"),
)
sa.Index("ix_trade_volumes_ts", trade_volumes.c.bucket_ts)

# Levels are JSON text, not a levels table: features read each snapshot whole, and a row per level
# would multiply the table by up to 2 x polymarket.book_levels for no query the pipeline runs.
order_book_snapshots = sa.Table(
    "order_book_snapshots",
    metadata,
    sa.Column(
        "token_id", sa.String(96), primary_key=True, comment="CLOB outcome token id (the book's asset_id)"
    ),
    sa.Column(
        "book_ts", sa.DateTime, primary_key=True, comment="the book's timestamp (UTC, millisecond precision)"
    ),
    sa.Column(
        "book_ts_ms", sa.BigInteger, nullable=False, comment="the book's timestamp as sent: unix milliseconds"
    ),
    sa.Column("market_id", sa.String(64), nullable=False, comment="Gamma market id"),
    sa.Column("outcome", sa.String(32), nullable=False, comment="Yes or No"),
    sa.Column(
        "condition_id", sa.String(80), nullable=False, comment="CTF condition id (the book's market field)"
    ),
    sa.Column("book_hash", sa.String(80), comment="the book's hash as sent by the CLOB"),
    sa.Column("tick_size", sa.Float, nullable=False, comment="minimum price increment (0.01 or 0.001)"),
    sa.Column("min_order_size", sa.Float, comment="minimum order size, shares"),
    sa.Column("neg_risk", sa.Boolean, comment="token of a negative-risk (multi-outcome) event"),
    sa.Column("last_trade_price", sa.Float, comment="price of the token's last trade, 0..1"),
    sa.Column("best_bid", sa.Float, comment="highest bid price; NULL when there is no bid"),
    sa.Column("best_ask", sa.Float, comment="lowest ask price; NULL when there is no ask"),
    sa.Column("mid", sa.Float, comment="(best_bid + best_ask) / 2; NULL when a side is empty"),
    sa.Column("spread", sa.Float, comment="best_ask - best_bid; negative or 0 when the book is crossed"),
    sa.Column(
        "bid_levels", sa.Integer, nullable=False, comment="price levels on the bid side (all, not only kept)"
    ),
    sa.Column(
        "ask_levels", sa.Integer, nullable=False, comment="price levels on the ask side (all, not only kept)"
    ),
    sa.Column("bid_depth_usd", sa.Float, nullable=False, comment="sum of price x size over all bid levels"),
    sa.Column("ask_depth_usd", sa.Float, nullable=False, comment="sum of price x size over all ask levels"),
    sa.Column(
        "bids",
        sa.Text,
        nullable=False,
        comment="JSON [[price, size], ...] of the top polymarket.book_levels bids, best first",
    ),
    sa.Column(
        "asks",
        sa.Text,
        nullable=False,
        comment="JSON [[price, size], ...] of the top polymarket.book_levels asks, best first",
    ),
    _now_col("ingested_at"),
)
sa.Index(
    "ix_order_book_snapshots_market_ts", order_book_snapshots.c.market_id, order_book_snapshots.c.book_ts
)

whale_trades = sa.Table(
    "whale_trades",
    metadata,
    sa.Column(
        "trade_id",
        sa.String(40),
        primary_key=True,
        comment="SHA-1 of the fill's identity (transaction, token, outcome, side, size, price, time, wallet)",
    ),
    sa.Column("transaction_hash", sa.String(80), nullable=False, comment="on-chain transaction hash"),
    sa.Column("market_id", sa.String(64), nullable=False, comment="Gamma market id"),
    sa.Column("condition_id", sa.String(80), nullable=False, comment="CTF condition id"),
    sa.Column("token_id", sa.String(96), nullable=False, comment="CLOB token id traded (the trade's asset)"),
    sa.Column("outcome", sa.String(32), comment="Yes or No (as sent)"),
    sa.Column("side", sa.String(4), nullable=False, comment="BUY or SELL, the taker's side"),
    sa.Column("size", sa.Float, nullable=False, comment="shares traded"),
    sa.Column("price", sa.Float, nullable=False, comment="price of the traded token, 0..1"),
    sa.Column(
        "usd", sa.Float, nullable=False, comment="size x price, at least data_collection.whale_trade_usd"
    ),
    sa.Column("wallet", sa.String(64), nullable=False, comment="the trader's proxy wallet"),
    sa.Column("ts", sa.DateTime, nullable=False, comment="trade time (UTC)"),
    _now_col("ingested_at"),
)
sa.Index("ix_whale_trades_market_ts", whale_trades.c.market_id, whale_trades.c.ts)

tweets = sa.Table(
    "tweets",
    metadata,
    sa.Column("tweet_id", sa.String(32), primary_key=True, comment="X post id"),
    sa.Column("author_id", sa.String(32), nullable=False, comment="X user id of the author (tweet_authors)"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the post was published (UTC)"),
    sa.Column("text", sa.Text, nullable=False, comment="post text"),
    sa.Column("lang", sa.String(8), comment="language detected by X"),
    sa.Column("like_count", sa.Integer, nullable=False, comment="likes"),
    sa.Column("retweet_count", sa.Integer, nullable=False, comment="reposts"),
    sa.Column("reply_count", sa.Integer, nullable=False, comment="replies"),
    sa.Column("quote_count", sa.Integer, nullable=False, comment="quotes"),
    sa.Column("impression_count", sa.Integer, comment="impressions"),
    _now_col("ingested_at"),
)
sa.Index("ix_tweets_created_at", tweets.c.created_at)
sa.Index("ix_tweets_author", tweets.c.author_id)

tweet_mentions = sa.Table(
    "tweet_mentions",
    metadata,
    sa.Column("tweet_id", sa.String(32), primary_key=True, comment="X post id"),
    sa.Column("market_id", sa.String(64), primary_key=True, comment="'*' for the general keyword queries"),
    sa.Column("query", sa.Text, nullable=False, comment="X search query that found the post for this market"),
)
sa.Index("ix_tweet_mentions_market", tweet_mentions.c.market_id)

x_search_state = sa.Table(
    "x_search_state",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="'*' for the general keyword query"),
    sa.Column("query", sa.Text, nullable=False, comment="X search query last run for the market"),
    sa.Column("last_searched_at", sa.DateTime, nullable=False, comment="last run that completed this search"),
)

tweet_authors = sa.Table(
    "tweet_authors",
    metadata,
    sa.Column("author_id", sa.String(32), primary_key=True, comment="X user id"),
    sa.Column("username", sa.String(64), nullable=False, comment="X handle"),
    sa.Column("name", sa.String(128), comment="display name"),
    sa.Column("created_at", sa.DateTime, comment="account creation time"),
    sa.Column("verified", sa.Boolean, comment="X verified flag"),
    sa.Column("followers_count", sa.Integer, comment="followers"),
    sa.Column("following_count", sa.Integer, comment="accounts followed"),
    sa.Column("tweet_count", sa.Integer, comment="posts by the author"),
    sa.Column("listed_count", sa.Integer, comment="lists the author is on"),
    _now_col("updated_at"),
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column(
        "reject_id", sa.String(40), primary_key=True, comment="sha1 of source, key, reason and payload"
    ),
    sa.Column("source", sa.String(64), nullable=False, comment="endpoint or asset that produced the record"),
    sa.Column("record_key", sa.String(255), comment="the record's id when it had one"),
    sa.Column("reason", sa.Text, nullable=False, comment="field and problem"),
    sa.Column("payload", sa.Text, nullable=False, comment="the raw record as JSON"),
    sa.Column("run_id", sa.String(64), comment="Dagster run that quarantined the record"),
    sa.Column("rejected_at", sa.DateTime, nullable=False, comment="when the record was quarantined (UTC)"),
)
sa.Index("ix_rejected_records_at", rejected_records.c.rejected_at)

ingestion_runs = sa.Table(
    "ingestion_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True, comment="Dagster run id"),
    sa.Column("asset", sa.String(64), primary_key=True, comment="ingest asset the run materialized"),
    sa.Column("source", sa.String(16), nullable=False, comment="demo or live"),
    sa.Column("started_at", sa.DateTime, nullable=False, comment="collection start (UTC)"),
    sa.Column("finished_at", sa.DateTime, nullable=False, comment="collection end (UTC)"),
    sa.Column("status", sa.String(16), nullable=False, comment="success, degraded or failed"),
    sa.Column("api_calls", sa.Integer, nullable=False, comment="HTTP requests made"),
    sa.Column("retries", sa.Integer, nullable=False, comment="requests retried"),
    sa.Column("errors", sa.Integer, nullable=False, comment="failed attempts (each retried or final)"),
    sa.Column("rate_limited", sa.Integer, nullable=False, comment="429 answers received"),
    sa.Column("rows_written", sa.Integer, nullable=False, comment="rows upserted"),
    sa.Column("new_rows", sa.Integer, nullable=False, comment="rows not in the warehouse before"),
    sa.Column("rejects", sa.Integer, nullable=False, comment="records quarantined in rejected_records"),
    sa.Column("degraded", sa.Boolean, nullable=False, comment="the run finished with partial data"),
    sa.Column("degraded_reason", sa.Text, comment="why the run was degraded"),
    sa.Column(
        "variants",
        sa.Text,
        comment="JSON object flag key -> variant the row ran under (feature_flags); NULL or {} under config",
    ),
)
sa.Index("ix_ingestion_runs_started", ingestion_runs.c.started_at)

# --- research -------------------------------------------------------------------------

hype_scores = sa.Table(
    "hype_scores",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("bucket_ts", sa.DateTime, primary_key=True, comment="bucket start (UTC)"),
    sa.Column("post_count", sa.Integer, nullable=False, comment="posts not flagged bot-like"),
    sa.Column("unique_authors", sa.Integer, nullable=False, comment="distinct authors of those posts"),
    sa.Column("weighted_engagement", sa.Float, nullable=False, comment="weighted sum of the 4 counts"),
    sa.Column("sentiment", sa.Float, comment="mean VADER compound (-1..1); NULL without posts"),
    sa.Column("bot_posts", sa.Integer, nullable=False, comment="bot-like posts (not in the score)"),
    sa.Column("bot_share", sa.Float, comment="bot_posts / all posts; NULL without posts"),
    sa.Column("raw_hype", sa.Float, nullable=False, comment="weighted log attention the index ranks"),
    sa.Column("hype_index", sa.Float, comment="0-100 rank of raw_hype in the market's trailing window"),
    _now_col("computed_at"),
)
sa.Index("ix_hype_scores_ts", hype_scores.c.bucket_ts)

market_features = sa.Table(
    "market_features",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("bucket_ts", sa.DateTime, primary_key=True, comment="bucket start (UTC)"),
    sa.Column("category", sa.String(64), comment="market category (as in market_snapshots)"),
    sa.Column("yes_token_id", sa.String(96), comment="CLOB token id of the YES outcome"),
    sa.Column("no_token_id", sa.String(96), comment="CLOB token id of the NO outcome"),
    sa.Column("yes_price", sa.Float, comment="YES token's last price in the bucket"),
    sa.Column("ret", sa.Float, comment="yes_price / previous bucket's - 1"),
    sa.Column("volume_usd", sa.Float, comment="traded USD; NULL before trade history"),
    sa.Column("rvr", sa.Float, comment="relative volume ratio: recent mean volume / trailing mean"),
    sa.Column("roc", sa.Float, comment="rate of change (p_t - p_{t-k}) / p_{t-k}"),
    sa.Column(
        "volatility",
        sa.Float,
        comment="std of per-bucket returns over the last research.volatility_window_buckets buckets",
    ),
    sa.Column("spread", sa.Float, comment="best ask - best bid as of the latest market snapshot"),
    sa.Column("liquidity", sa.Float, comment="USD liquidity as of the latest market snapshot"),
    sa.Column("hype_index", sa.Float, comment="hype_scores.hype_index; NULL outside the X window"),
    sa.Column("book_mid", sa.Float, comment="YES book mid as of the newest fresh snapshot; NULL without one"),
    sa.Column("book_spread", sa.Float, comment="YES book best ask - best bid (same snapshot as book_mid)"),
    sa.Column(
        "depth_1c_usd", sa.Float, comment="USD (price x size) of YES bids and asks within 1 cent of book_mid"
    ),
    sa.Column(
        "depth_5c_usd", sa.Float, comment="USD (price x size) of YES bids and asks within 5 cents of book_mid"
    ),
    sa.Column(
        "book_imbalance", sa.Float, comment="(bid - ask) / (bid + ask) USD depth within 5 cents, -1..1"
    ),
    sa.Column(
        "whale_flow_usd",
        sa.Float,
        comment="signed large-trade USD in the bucket: YES buys and NO sells +, YES sells and NO buys -",
    ),
    _now_col("computed_at"),
)
sa.Index("ix_market_features_ts", market_features.c.bucket_ts)

hype_price_correlations = sa.Table(
    "hype_price_correlations",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("window_start", sa.DateTime, comment="first bucket of the analysed window"),
    sa.Column("window_end", sa.DateTime, comment="last bucket of the analysed window"),
    sa.Column("hype_measure", sa.String(32), nullable=False, comment="hype_scores column correlated"),
    sa.Column("n_samples", sa.Integer, nullable=False, comment="paired buckets (longest complete run)"),
    sa.Column("enough_samples", sa.Boolean, nullable=False, comment="n_samples >= research.corr_min_samples"),
    sa.Column("best_lag", sa.Integer, comment="lag (buckets) of peak |Pearson|; > 0: hype leads returns"),
    sa.Column("pearson_at_best", sa.Float, comment="Pearson r at best_lag"),
    sa.Column("spearman_at_best", sa.Float, comment="Spearman rho at best_lag"),
    sa.Column("pearson_lag0", sa.Float, comment="Pearson r at lag 0 (same bucket)"),
    sa.Column("granger_p", sa.Float, comment="F-test p-value: hype lags 1..L Granger-cause returns"),
    sa.Column("granger_p_adj", sa.Float, comment="Benjamini-Hochberg adjusted across markets"),
    sa.Column("significant", sa.Boolean, nullable=False, comment="granger_p_adj <= research.corr_bh_alpha"),
    sa.Column("lead_direction", sa.Integer, nullable=False, comment="+1 hype precedes YES rises, -1 falls"),
    sa.Column("pearson_by_lag", sa.Text, nullable=False, comment="JSON {lag: Pearson} for lags -L..L"),
    sa.Column("spearman_by_lag", sa.Text, nullable=False, comment="JSON {lag: Spearman} for lags -L..L"),
    _now_col("computed_at"),
)

trading_signals = sa.Table(
    "trading_signals",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("bucket_ts", sa.DateTime, primary_key=True, comment="bucket whose data fired the rule"),
    sa.Column("fill_ts", sa.DateTime, nullable=False, comment="next bucket: where the signal is filled"),
    sa.Column("direction", sa.String(3), nullable=False, comment="YES or NO (NO trades 1 - yes_price)"),
    sa.Column("token_id", sa.String(96), comment="the token to buy"),
    sa.Column("strength", sa.Float, nullable=False, comment="0..1, mean of the three threshold excesses"),
    sa.Column("yes_price", sa.Float, nullable=False, comment="YES price at the signal bucket, 0..1"),
    sa.Column("signal_price", sa.Float, nullable=False, comment="price of the bought token at bucket_ts"),
    sa.Column("rvr", sa.Float, nullable=False, comment="relative volume ratio at the signal bucket"),
    sa.Column(
        "roc", sa.Float, nullable=False, comment="rate of change of the YES price at the signal bucket"
    ),
    sa.Column("hype_index", sa.Float, nullable=False, comment="hype index at the signal bucket (0-100)"),
    sa.Column("category", sa.String(64), comment="market category (as in market_snapshots)"),
    sa.Column(
        "variants",
        sa.Text,
        comment="JSON object flag key -> variant the row ran under (feature_flags); NULL or {} under config",
    ),
    sa.Column("rule", sa.String(16), comment="the rule that fired: momentum or hype_lead (NULL: momentum)"),
    sa.Column("lead_lag", sa.Float, comment="hype_lead: buckets by which the market's hype leads its price"),
    sa.Column("lead_corr", sa.Float, comment="hype_lead: correlation of hype and later returns at that lag"),
    sa.Column(
        "burst_z", sa.Float, comment="hype_lead: the post count's z-score against its trailing baseline"
    ),
    sa.Column(
        "win_prob",
        sa.Float,
        comment="calibrated expected payout of the bought token (0..1) from earlier signals' outcomes",
    ),
    sa.Column(
        "calibration_n", sa.Integer, comment="earlier signals of the rule the calibration learned from"
    ),
    sa.Column(
        "outcome",
        sa.Float,
        comment="the bought token's price research.signal_hold_buckets after the fill; NULL until then",
    ),
    _now_col("computed_at"),
)
sa.Index("ix_trading_signals_ts", trading_signals.c.bucket_ts)

hype_lead_estimates = sa.Table(
    "hype_lead_estimates",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column(
        "estimated_at",
        sa.DateTime,
        primary_key=True,
        comment="refit time: decisions from here to the next refit use this estimate",
    ),
    sa.Column(
        "window_start", sa.DateTime, nullable=False, comment="first bucket of the data (up to estimated_at)"
    ),
    sa.Column("n_samples", sa.Integer, comment="paired hype/return buckets in the window"),
    sa.Column("best_lag", sa.Integer, comment="lag (buckets) of the largest |correlation|; > 0: hype leads"),
    sa.Column(
        "pearson_at_best", sa.Float, comment="signed correlation at best_lag (> 0: hype precedes rises)"
    ),
    sa.Column("granger_p", sa.Float, comment="Granger F-test p-value (hype lags 1..L add nothing)"),
    sa.Column("granger_p_adj", sa.Float, comment="Benjamini-Hochberg adjusted across the refit's markets"),
    sa.Column("significant", sa.Boolean, nullable=False, comment="granger_p_adj <= research.corr_bh_alpha"),
    _now_col("computed_at"),
)

signal_calibration = sa.Table(
    "signal_calibration",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="newest market_features bucket at the run"),
    sa.Column("rule", sa.String(16), primary_key=True, comment="momentum, hype_lead or * (all rules)"),
    sa.Column(
        "bin",
        sa.Integer,
        primary_key=True,
        comment="probability bin (0..9 by predicted value); -1: the rule's totals",
    ),
    sa.Column("n", sa.Integer, nullable=False, comment="signals with a known outcome in the bin"),
    sa.Column("mean_predicted", sa.Float, comment="mean calibrated win_prob (out of sample)"),
    sa.Column("mean_market", sa.Float, comment="mean price paid (the market's own probability)"),
    sa.Column(
        "mean_outcome", sa.Float, comment="mean outcome: the token's price at the exit horizon, or its payout"
    ),
    sa.Column("brier", sa.Float, comment="mean (win_prob - outcome)^2"),
    sa.Column("brier_market", sa.Float, comment="mean (price - outcome)^2"),
    _now_col("computed_at"),
)

risk_state = sa.Table(
    "risk_state",
    metadata,
    sa.Column("bucket_ts", sa.DateTime, primary_key=True, comment="state before this bucket's signals"),
    sa.Column("equity", sa.Float, nullable=False, comment="paper-book equity (start = 1) from realised P&L"),
    sa.Column("peak_equity", sa.Float, nullable=False, comment="highest equity so far"),
    sa.Column("drawdown", sa.Float, nullable=False, comment="1 - equity / peak_equity"),
    sa.Column("daily_loss", sa.Float, nullable=False, comment="realised loss since the UTC day started"),
    sa.Column("weekly_loss", sa.Float, nullable=False, comment="since the ISO week started"),
    sa.Column("monthly_loss", sa.Float, nullable=False, comment="since the month started"),
    sa.Column("state", sa.String(32), nullable=False, comment="ok, halted_*_loss or circuit_breaker"),
    sa.Column("reason", sa.Text, comment="why new signals are stopped"),
    sa.Column("signals_accepted", sa.Integer, nullable=False, comment="signals accepted in the bucket"),
    sa.Column(
        "signals_blocked",
        sa.Integer,
        nullable=False,
        comment="signals blocked by the risk limits in the bucket",
    ),
    _now_col("computed_at"),
)

portfolio_allocation = sa.Table(
    "portfolio_allocation",
    metadata,
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column("as_of_ts", sa.DateTime, nullable=False, comment="bucket the sizing is for"),
    sa.Column("signal_ts", sa.DateTime, comment="bucket of the open signal; NULL when closing"),
    sa.Column("direction", sa.String(3), comment="YES or NO; NULL when closing"),
    sa.Column("token_id", sa.String(96), comment="CLOB token id of the traded outcome"),
    sa.Column("category", sa.String(64), comment="market category (as in market_snapshots)"),
    sa.Column("price", sa.Float, comment="current price of the bought token"),
    sa.Column("strength", sa.Float, comment="signal strength"),
    sa.Column(
        "estimated_prob",
        sa.Float,
        comment="the signal's calibrated win_prob; without one, price + edge_per_strength x strength, clipped",
    ),
    sa.Column("edge", sa.Float, comment="estimated_prob - price"),
    sa.Column("kelly_full", sa.Float, comment="(p - q') / (1 - q'), q' = price after round-trip costs"),
    sa.Column("kelly_fraction", sa.Float, comment="research.kelly_fraction x kelly_full"),
    sa.Column("corr_shrink", sa.Float, comment="1 / (1 + sum of positive signed correlations)"),
    sa.Column("target_weight", sa.Float, nullable=False, comment="fraction of equity after shrink and caps"),
    sa.Column("capped_by", sa.String(64), comment="caps that bound: position, category, total"),
    sa.Column("current_direction", sa.String(3), comment="held before this rebalance"),
    sa.Column("current_weight", sa.Float, nullable=False, comment="weight held now"),
    sa.Column("buy_weight", sa.Float, nullable=False, comment="weight to buy to reach target_weight"),
    sa.Column("sell_weight", sa.Float, nullable=False, comment="weight to sell to reach target_weight"),
    sa.Column("trade", sa.Text, nullable=False, comment="e.g. 'sell 2.00% YES; buy 3.00% NO'"),
    sa.Column("target_usd", sa.Float, nullable=False, comment="target_weight x research.bankroll_usd"),
    sa.Column(
        "prob_source", sa.String(16), comment="calibrated or placeholder: where estimated_prob came from"
    ),
    _now_col("computed_at"),
)

# --- backtest -------------------------------------------------------------------------
# Every backtest table is keyed by as_of (the last bar of the market data backtested), so each
# materialization recomputes its as_of slice atomically and earlier results stay for trends.


def _metric_cols() -> list[sa.Column]:
    return [
        sa.Column("total_return", sa.Float, comment="final equity / initial cash - 1"),
        sa.Column("annualized_return", sa.Float, comment="(1 + total_return) ** (bars_per_year / bars) - 1"),
        sa.Column("annualized_volatility", sa.Float, comment="std of bar returns x sqrt(bars_per_year)"),
        sa.Column("sharpe", sa.Float, comment="annualized, risk-free 0; NULL for a flat curve"),
        sa.Column("sortino", sa.Float, comment="annualized, downside deviation below 0"),
        sa.Column("max_drawdown", sa.Float, comment="largest fall from a peak, positive fraction"),
        sa.Column("max_drawdown_duration", sa.Integer, comment="longest run of bars below a peak"),
        sa.Column("calmar", sa.Float, comment="annualized_return / max_drawdown"),
        sa.Column("win_rate", sa.Float, comment="share of closed trades with P&L > 0"),
        sa.Column("profit_factor", sa.Float, comment="gross profit / gross loss (inf: no losing trade)"),
        sa.Column("expectancy", sa.Float, comment="mean P&L per closed trade, cash units"),
        sa.Column("avg_trade_return", sa.Float, comment="mean return per closed trade"),
        sa.Column("exposure_time", sa.Float, comment="share of bars with an open position"),
        sa.Column("num_trades", sa.Integer, comment="closed + open trades"),
        sa.Column("num_closed_trades", sa.Integer, comment="trades closed before the last bar"),
        sa.Column("final_equity", sa.Float, comment="equity at the last bar, cash units"),
    ]


backtest_results = sa.Table(
    "backtest_results",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column("market_id", sa.String(64), primary_key=True, comment="'*' for the whole book"),
    sa.Column("direction", sa.String(8), primary_key=True, comment="YES, NO, or '*' for the book"),
    sa.Column("start_ts", sa.DateTime, nullable=False, comment="first bar of the backtest (UTC)"),
    sa.Column("bars", sa.Integer, nullable=False, comment="bars (buckets) simulated"),
    *_metric_cols(),
    sa.Column("fees", sa.Float, nullable=False, comment="fees paid, USD"),
    sa.Column("slippage", sa.Float, nullable=False, comment="slippage cost, USD"),
    sa.Column("holding_bars", sa.Integer, nullable=False, comment="time exit after entry; 0: none"),
)

backtest_trades = sa.Table(
    "backtest_trades",
    metadata,
    sa.Column(
        "as_of",
        sa.DateTime,
        primary_key=True,
        comment="as_of of the backtest_results slice the trade belongs to",
    ),
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column(
        "direction", sa.String(8), primary_key=True, comment="YES trades yes_price, NO trades 1 - yes_price"
    ),
    sa.Column("entry_ts", sa.DateTime, primary_key=True, comment="fill bar of the entry"),
    sa.Column("exit_ts", sa.DateTime, nullable=False, comment="fill bar of the exit (last bar when open)"),
    sa.Column("status", sa.String(8), nullable=False, comment="closed or open"),
    sa.Column("size", sa.Float, nullable=False, comment="tokens bought"),
    sa.Column("entry_price", sa.Float, nullable=False, comment="close x (1 + slippage)"),
    sa.Column("exit_price", sa.Float, nullable=False, comment="close x (1 - slippage); last close when open"),
    sa.Column("entry_fees", sa.Float, nullable=False, comment="fees paid at entry, USD"),
    sa.Column("exit_fees", sa.Float, nullable=False, comment="fees paid at exit, USD"),
    sa.Column("pnl", sa.Float, nullable=False, comment="after fees, cash units"),
    sa.Column("trade_return", sa.Float, nullable=False, comment="pnl / (size x entry_price)"),
    sa.Column("bars_held", sa.Integer, nullable=False, comment="bars between entry and exit"),
)

monte_carlo = sa.Table(
    "monte_carlo",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column("study", sa.String(32), primary_key=True, comment="entry_timing or trade_bootstrap"),
    sa.Column("runs", sa.Integer, nullable=False, comment="simulated runs"),
    sa.Column("actual_return", sa.Float, comment="the backtest's book total return"),
    sa.Column("actual_max_drawdown", sa.Float, comment="max drawdown of the actual backtest"),
    *[
        sa.Column(f"return_p{p:02d}", sa.Float, comment="total return percentile")
        for p in (5, 25, 50, 75, 95)
    ],
    *[
        sa.Column(f"drawdown_p{p:02d}", sa.Float, comment="max drawdown percentile")
        for p in (5, 25, 50, 75, 95)
    ],
    sa.Column("mean_return", sa.Float, comment="mean total return"),
    sa.Column("prob_loss", sa.Float, comment="share of runs with total return < 0"),
    sa.Column("var", sa.Float, comment="value at risk of total return at `confidence`, positive = loss"),
    sa.Column("cvar", sa.Float, comment="mean loss beyond VaR, positive = loss"),
    sa.Column("confidence", sa.Float, nullable=False, comment="confidence level of var and cvar"),
    sa.Column("actual_percentile", sa.Float, comment="% of runs at or below the actual return"),
    sa.Column("shift_bars", sa.Integer, comment="entry_timing: max shift of an entry"),
    sa.Column("seed", sa.Integer, nullable=False, comment="random seed (reproducible)"),
)

stress_tests = sa.Table(
    "stress_tests",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column("scenario", sa.String(32), primary_key=True, comment="stress scenario name"),
    sa.Column("description", sa.Text, nullable=False, comment="what the scenario changes"),
    sa.Column("total_return", sa.Float, comment="total return under the scenario"),
    sa.Column("annualized_return", sa.Float, comment="annualized return under the scenario"),
    sa.Column("sharpe", sa.Float, comment="Sharpe ratio under the scenario"),
    sa.Column("max_drawdown", sa.Float, comment="max drawdown under the scenario"),
    sa.Column("win_rate", sa.Float, comment="win rate under the scenario"),
    sa.Column("num_trades", sa.Integer, comment="trades under the scenario"),
    sa.Column("return_change", sa.Float, comment="total_return - baseline total_return"),
)

sensitivity_analysis = sa.Table(
    "sensitivity_analysis",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column(
        "parameter", sa.String(32), primary_key=True, comment="baseline, fees, slippage or a threshold"
    ),
    sa.Column("multiplier", sa.Float, primary_key=True, comment="factor applied to the parameter"),
    sa.Column("value", sa.Float, comment="the parameter's value in this row"),
    *[
        sa.Column(name, sa.Integer if name == "num_trades" else sa.Float, comment="with the parameter scaled")
        for name in ("total_return", "sharpe", "max_drawdown", "win_rate", "num_trades")
    ],
    *[
        sa.Column(f"{name}_change", sa.Float, comment="minus the baseline")
        for name in ("total_return", "sharpe", "max_drawdown", "win_rate", "num_trades")
    ],
)

walk_forward = sa.Table(
    "walk_forward",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column("window_index", sa.Integer, primary_key=True, comment="0, 1, ... in time order"),
    sa.Column("train_start", sa.DateTime, nullable=False, comment="start of the in-sample window (UTC)"),
    sa.Column("train_end", sa.DateTime, nullable=False, comment="end of the in-sample window (UTC)"),
    sa.Column("test_start", sa.DateTime, nullable=False, comment="start of the out-of-sample window (UTC)"),
    sa.Column("test_end", sa.DateTime, nullable=False, comment="end of the out-of-sample window (UTC)"),
    sa.Column("rvr_threshold", sa.Float, nullable=False, comment="picked on the train window"),
    sa.Column("roc_threshold", sa.Float, nullable=False, comment="ROC threshold chosen in sample"),
    sa.Column("hype_threshold", sa.Float, nullable=False, comment="hype threshold chosen in sample"),
    sa.Column("is_total_return", sa.Float, comment="in-sample total return"),
    sa.Column("is_daily_return", sa.Float, comment="in sample, (1 + total) ** (bars per day / bars) - 1"),
    sa.Column("is_sharpe", sa.Float, comment="in-sample Sharpe ratio"),
    sa.Column("is_num_trades", sa.Integer, comment="in-sample trades"),
    sa.Column("oos_total_return", sa.Float, comment="out-of-sample total return"),
    sa.Column("oos_daily_return", sa.Float, comment="out of sample, per day"),
    sa.Column("oos_sharpe", sa.Float, comment="out-of-sample Sharpe ratio"),
    sa.Column("oos_num_trades", sa.Integer, comment="out-of-sample trades"),
)

# Optuna tuning (backtest/tuning.py): one study per scope and window; window_index -1 is the
# live study on the newest train window (no test window), whose values a proposal would set.
parameter_tuning = sa.Table(
    "parameter_tuning",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the tuned data (UTC)"),
    sa.Column("scope", sa.String(160), primary_key=True, comment="all, category:<name> or market:<id>"),
    sa.Column("window_index", sa.Integer, primary_key=True, comment="0, 1, ... in time order; -1 = live"),
    sa.Column("scope_kind", sa.String(16), nullable=False, comment="all, category or market"),
    sa.Column("study_name", sa.String(255), nullable=False, comment="Optuna study: scope, window and as_of"),
    sa.Column("markets", sa.Integer, nullable=False, comment="markets in the scope"),
    sa.Column("train_start", sa.DateTime, nullable=False, comment="first bar of the train window (UTC)"),
    sa.Column("train_end", sa.DateTime, nullable=False, comment="last bar of the train window (UTC)"),
    sa.Column("test_start", sa.DateTime, comment="first bar of the test window (UTC); NULL for live"),
    sa.Column("test_end", sa.DateTime, comment="last bar of the test window (UTC); NULL for live"),
    sa.Column(
        "n_trials", sa.Integer, nullable=False, comment="trials the study ran (the config values first)"
    ),
    sa.Column("params", sa.Text, nullable=False, comment="JSON: the best trial's parameters"),
    sa.Column("default_params", sa.Text, nullable=False, comment="JSON: the config values (the control)"),
    sa.Column(
        "hour_vol", sa.Boolean, comment="the time-of-day ROC scaling was picked; NULL when not offered"
    ),
    sa.Column(
        "train_score", sa.Float, nullable=False, comment="best trial's Sharpe in train (0 below min_trades)"
    ),
    sa.Column("train_default_score", sa.Float, nullable=False, comment="the config values' score in train"),
    sa.Column("train_trades", sa.Integer, comment="trades of the best trial in train"),
    sa.Column(
        "oos_score_tuned", sa.Float, comment="tuned values' Sharpe on the test window (0 below min_trades)"
    ),
    sa.Column("oos_score_default", sa.Float, comment="config values' Sharpe on the same test window"),
    sa.Column("oos_trades_tuned", sa.Integer, comment="test-window trades at the tuned values"),
    sa.Column("oos_trades_default", sa.Integer, comment="test-window trades at the config values"),
    sa.Column(
        "tuned_beats_default", sa.Boolean, comment="oos_score_tuned > oos_score_default; NULL for live"
    ),
)

# Every Optuna trial, in our own table rather than Optuna's RDBStorage schema (docs/backtest.md#tuning).
tuning_trials = sa.Table(
    "tuning_trials",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the tuned data (UTC)"),
    sa.Column(
        "study_name", sa.String(255), primary_key=True, comment="Optuna study: scope, window and as_of"
    ),
    sa.Column(
        "trial_number",
        sa.Integer,
        primary_key=True,
        comment="Optuna trial number in its study (0 = config values)",
    ),
    sa.Column("scope", sa.String(160), nullable=False, comment="all, category:<name> or market:<id>"),
    sa.Column("window_index", sa.Integer, nullable=False, comment="walk-forward window; -1 = live"),
    sa.Column("params", sa.Text, nullable=False, comment="JSON: the parameters the trial tried"),
    sa.Column(
        "score", sa.Float, comment="train-window Sharpe (0 below min_trades); NULL if the trial failed"
    ),
    sa.Column("trades", sa.Integer, comment="train-window trades of the trial"),
    sa.Column("state", sa.String(16), nullable=False, comment="Optuna trial state (complete, fail, ...)"),
)

tuning_proposals = sa.Table(
    "tuning_proposals",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the tuned data (UTC)"),
    sa.Column(
        "catalogue_key",
        sa.String(64),
        primary_key=True,
        comment="tune_<scope>_<param>: the recommendation key",
    ),
    sa.Column("scope", sa.String(160), nullable=False, comment="all or category:<name>"),
    sa.Column("scope_kind", sa.String(16), nullable=False, comment="all or category"),
    sa.Column(
        "param", sa.String(32), nullable=False, comment="tuned parameter (rvr, roc, hype, burst_z, ...)"
    ),
    sa.Column(
        "parameter", sa.String(128), nullable=False, comment="config key a recommendation would change"
    ),
    sa.Column("default_value", sa.Float, nullable=False, comment="its config value"),
    sa.Column("proposed_value", sa.Float, nullable=False, comment="the live study's best value"),
    sa.Column(
        "windows", sa.Integer, nullable=False, comment="decided windows: tuned and config scored differently"
    ),
    sa.Column("windows_won", sa.Integer, nullable=False, comment="decided windows tuned won out of sample"),
    sa.Column(
        "mean_oos_gain",
        sa.Float,
        comment="mean out-of-sample Sharpe over decided windows, tuned minus config",
    ),
    sa.Column("market_share", sa.Float, nullable=False, comment="the scope's share of all tuned markets"),
    sa.Column(
        "predicted_effect",
        sa.Float,
        nullable=False,
        comment="expected backtest_sharpe change (0 unless proposed)",
    ),
    sa.Column(
        "proposed",
        sa.Boolean,
        nullable=False,
        comment="passed the rule: won > half the decided windows and on average",
    ),
    sa.Column("reason", sa.Text, nullable=False, comment="the rule's verdict in words"),
)

# Money in the journal and its attribution is in the source book's cash units: backtest = each
# market side starts with backtest.init_cash; paper = USD, each side stakes
# signals.max_position_pct of research.bankroll_usd (starting_cash says which).
trade_journal = sa.Table(
    "trade_journal",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="last bar of the backtested data (UTC)"),
    sa.Column("source", sa.String(16), primary_key=True, comment="backtest or paper (the risk gate's book)"),
    sa.Column("market_id", sa.String(64), primary_key=True, comment="Gamma market id"),
    sa.Column(
        "direction", sa.String(8), primary_key=True, comment="YES trades yes_price, NO trades 1 - yes_price"
    ),
    sa.Column("entry_ts", sa.DateTime, primary_key=True, comment="fill bar of the entry (signal bucket + 1)"),
    sa.Column("rule", sa.String(32), comment="signal rule that opened the trade (momentum, hype_lead)"),
    sa.Column("signal_ts", sa.DateTime, comment="bucket whose data fired the signal (its bucket_ts)"),
    sa.Column("exit_ts", sa.DateTime, nullable=False, comment="fill bar of the exit (last bar when open)"),
    sa.Column("status", sa.String(8), nullable=False, comment="closed or open"),
    sa.Column(
        "exit_reason", sa.String(16), nullable=False, comment="time_exit, opposite_signal or open_at_end"
    ),
    sa.Column("category", sa.String(64), comment="market category (as in market_snapshots)"),
    sa.Column("strength", sa.Float, comment="signal strength, 0..1"),
    sa.Column("win_prob", sa.Float, comment="the signal's calibrated P(win); NULL when the rule has none"),
    sa.Column("reason", sa.Text, nullable=False, comment="one line: why the signal fired"),
    sa.Column(
        "features",
        sa.Text,
        nullable=False,
        comment="JSON object: the market_features row at signal_ts (rvr, roc, hype_index, spread, ...)",
    ),
    sa.Column(
        "signal_detail", sa.Text, nullable=False, comment="JSON object: the signal's rule-specific columns"
    ),
    sa.Column(
        "signals_at_entry",
        sa.Integer,
        nullable=False,
        comment="signals filled at this entry (several rules may fire; the strongest names the trade)",
    ),
    sa.Column("starting_cash", sa.Float, nullable=False, comment="cash the market side started with"),
    sa.Column("size", sa.Float, nullable=False, comment="tokens bought"),
    sa.Column("entry_price", sa.Float, nullable=False, comment="close x (1 + slippage)"),
    sa.Column("exit_price", sa.Float, nullable=False, comment="close x (1 - slippage); last close when open"),
    sa.Column("entry_fees", sa.Float, nullable=False, comment="fees paid at entry, cash units"),
    sa.Column("exit_fees", sa.Float, nullable=False, comment="fees paid at exit (0 while open), cash units"),
    sa.Column(
        "slippage_cost",
        sa.Float,
        nullable=False,
        comment="slippage x traded value at the close, entry plus exit fill, cash units",
    ),
    sa.Column(
        "total_costs",
        sa.Float,
        nullable=False,
        comment="entry_fees + exit_fees + slippage_cost (already inside pnl)",
    ),
    sa.Column("pnl", sa.Float, nullable=False, comment="P&L after fees and slippage, cash units"),
    sa.Column("trade_return", sa.Float, nullable=False, comment="pnl / (size x entry_price)"),
    sa.Column("win", sa.Boolean, comment="pnl > 0; NULL while open"),
    sa.Column("bars_held", sa.Integer, nullable=False, comment="bars between entry and exit"),
)

performance_attribution = sa.Table(
    "performance_attribution",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="as_of of the trade_journal slice"),
    sa.Column("source", sa.String(16), primary_key=True, comment="backtest or paper"),
    sa.Column(
        "dimension",
        sa.String(64),
        primary_key=True,
        comment="all, rule, category, hour, or a bucketed feature (strength, rvr, hype_index, spread, ...)",
    ),
    sa.Column(
        "bucket", sa.String(64), primary_key=True, comment="group: a rule, category, '14:00', or '1.5 to 2.3'"
    ),
    sa.Column("bucket_order", sa.Integer, nullable=False, comment="order of buckets in the dimension"),
    sa.Column("lower", sa.Float, comment="feature bucket's lower quantile edge; NULL otherwise"),
    sa.Column("upper", sa.Float, comment="feature bucket's upper quantile edge; NULL otherwise"),
    sa.Column("trades", sa.Integer, nullable=False, comment="trades in the group, open ones included"),
    sa.Column("closed_trades", sa.Integer, nullable=False, comment="closed trades (the rest is over these)"),
    sa.Column("pnl", sa.Float, nullable=False, comment="realised P&L after costs, cash units of the source"),
    sa.Column("mean_return", sa.Float, comment="mean trade_return"),
    sa.Column("hit_rate", sa.Float, comment="share of trades with pnl > 0"),
    sa.Column("profit_factor", sa.Float, comment="gross profit / gross loss (inf: no losing trade)"),
    sa.Column(
        "sharpe",
        sa.Float,
        comment="mean / std of trade returns x sqrt(trades per year of the group); NULL below 2 trades",
    ),
)

# --- kaizen ---------------------------------------------------------------------------

kaizen_metrics = sa.Table(
    "kaizen_metrics",
    metadata,
    sa.Column(
        "metric", sa.String(64), primary_key=True, comment="registered metric name (config kaizen.metrics)"
    ),
    sa.Column(
        "scope",
        sa.String(255),
        primary_key=True,
        comment="'*' the metric; job:<name> / step:<key> breakdowns",
    ),
    sa.Column("ts", sa.DateTime, primary_key=True, comment="UTC day the reading describes (midnight)"),
    sa.Column("value", sa.Float, nullable=False, comment="the metric's value for that day"),
    sa.Column(
        "sample_size", sa.Integer, nullable=False, comment="runs, API calls, signals... behind the value"
    ),
    sa.Column(
        "source", sa.String(64), nullable=False, comment="dagster, ingestion_runs, trading_signals, ..."
    ),
    sa.Column("as_of", sa.DateTime, nullable=False, comment="end of the measurement window"),
    _now_col("collected_at"),
)
sa.Index("ix_kaizen_metrics_ts", kaizen_metrics.c.ts)

metric_trends = sa.Table(
    "metric_trends",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True, comment="kaizen metric name (kaizen.metrics)"),
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="newest day in the analysed history"),
    sa.Column("n_points", sa.Integer, nullable=False, comment="daily values in the trend window"),
    sa.Column(
        "slope_per_day", sa.Float, nullable=False, comment="Sen's slope (median pairwise), units per day"
    ),
    sa.Column("kendall_tau", sa.Float, nullable=False, comment="Kendall's tau of value against time"),
    sa.Column("mk_z", sa.Float, nullable=False, comment="Mann-Kendall z (tie-corrected variance)"),
    sa.Column("p_value", sa.Float, nullable=False, comment="two-sided Mann-Kendall p-value"),
    sa.Column("significant", sa.Boolean, nullable=False, comment="p_value < kaizen.trend_alpha"),
    sa.Column("verdict", sa.String(16), nullable=False, comment="improving, worsening or flat"),
    sa.Column("last_week_mean", sa.Float, comment="mean over the last 7 days"),
    sa.Column("previous_week_mean", sa.Float, comment="mean over the 7 days before"),
    sa.Column("wow_change", sa.Float, comment="last_week_mean - previous_week_mean"),
    sa.Column("wow_pct_change", sa.Float, comment="wow_change / |previous_week_mean|"),
    _now_col("computed_at"),
)

metric_forecasts = sa.Table(
    "metric_forecasts",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True, comment="kaizen metric name (kaizen.metrics)"),
    sa.Column("origin_ts", sa.DateTime, primary_key=True, comment="last observed day"),
    sa.Column(
        "scenario",
        sa.String(96),
        primary_key=True,
        comment="baseline, or whatif:<improvement or catalogue key>",
    ),
    sa.Column("ts", sa.DateTime, primary_key=True, comment="forecast day"),
    sa.Column("step", sa.Integer, nullable=False, comment="days after origin_ts"),
    sa.Column("mean", sa.Float, nullable=False, comment="forecast mean"),
    sa.Column(
        "lower", sa.Float, nullable=False, comment="prediction interval, level 1 - kaizen.forecast_alpha"
    ),
    sa.Column("upper", sa.Float, nullable=False, comment="upper prediction bound"),
    sa.Column(
        "deviation_line",
        sa.Float,
        nullable=False,
        comment="value beyond which the metric deviates from target",
    ),
    sa.Column("effect", sa.Float, nullable=False, comment="what-if step change applied (0 for baseline)"),
    _now_col("computed_at"),
)

metric_forecast_summary = sa.Table(
    "metric_forecast_summary",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True, comment="kaizen metric name (kaizen.metrics)"),
    sa.Column(
        "origin_ts", sa.DateTime, primary_key=True, comment="last observed day the forecast starts from (UTC)"
    ),
    sa.Column("model", sa.String(64), nullable=False, comment="e.g. ARIMA(1,0,0) + season(7)"),
    sa.Column("aic", sa.Float, comment="AIC of the chosen model"),
    sa.Column("n_points", sa.Integer, nullable=False, comment="observed daily values the model was fit on"),
    sa.Column("last_value", sa.Float, nullable=False, comment="value on origin_ts"),
    sa.Column(
        "deviation_line",
        sa.Float,
        nullable=False,
        comment="value beyond which the metric deviates from target",
    ),
    sa.Column(
        "early_warning", sa.Boolean, nullable=False, comment="forecast mean crosses the deviation line"
    ),
    sa.Column("warning_ts", sa.DateTime, comment="first forecast day beyond the line"),
    sa.Column("warning_step", sa.Integer, comment="days ahead of the first early warning"),
    sa.Column("max_deviation_probability", sa.Float, comment="max over the horizon of P(beyond the line)"),
    sa.Column("mase", sa.Float, comment="rolling-origin MASE (scale: in-sample naive one-step MAE)"),
    sa.Column("naive_mase", sa.Float, comment="the naive (last value) forecast's MASE on the same origins"),
    sa.Column("accuracy_origins", sa.Integer, comment="rolling origins the MASE was averaged over"),
    sa.Column("anomalies", sa.Integer, nullable=False, comment="anomalous days in the history"),
    _now_col("computed_at"),
)

metric_anomalies = sa.Table(
    "metric_anomalies",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True, comment="kaizen metric name (kaizen.metrics)"),
    sa.Column("ts", sa.DateTime, primary_key=True, comment="day of the anomalous value (UTC)"),
    sa.Column("value", sa.Float, nullable=False, comment="observed value"),
    sa.Column("expected", sa.Float, nullable=False, comment="one-step-ahead prediction"),
    sa.Column("residual_z", sa.Float, comment="(value - expected) / robust residual sigma"),
    sa.Column("robust_z", sa.Float, comment="rolling median/MAD z of the residual"),
    sa.Column("reason", sa.String(64), nullable=False, comment="outside interval and/or robust z"),
    _now_col("detected_at"),
)

bottleneck = sa.Table(
    "bottleneck",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="newest metric day"),
    sa.Column(
        "kind", sa.String(16), primary_key=True, comment="step (ranked by critical path) or metric (by gap)"
    ),
    sa.Column("rank", sa.Integer, primary_key=True, comment="rank within kind (1 = worst)"),
    sa.Column("candidate", sa.String(255), nullable=False, comment="step key or metric name"),
    sa.Column("category", sa.String(16), nullable=False, comment="pipeline or outcome"),
    sa.Column("score", sa.Float, nullable=False, comment="critical_share + failure_share, or weighted_gap"),
    sa.Column("critical_seconds", sa.Float, comment="seconds on runs' critical paths (steps)"),
    sa.Column("critical_share", sa.Float, comment="share of the critical path's time spent in this step"),
    sa.Column("failures", sa.Integer, comment="failed executions of this step in the window"),
    sa.Column("failure_share", sa.Float, comment="share of this step's executions that failed"),
    sa.Column("value", sa.Float, comment="metric value (metrics)"),
    sa.Column("target", sa.Float, comment="the metric's target (kaizen.metrics)"),
    sa.Column("relative_gap", sa.Float, comment="(target - value) x direction / target"),
    sa.Column("importance", sa.Float, comment="the metric's importance weight (kaizen.metrics)"),
    sa.Column("is_constraint", sa.Boolean, nullable=False, comment="the one current constraint"),
    sa.Column("constraint_metric", sa.String(64), comment="metric the constraint shows up in"),
    sa.Column("explanation", sa.Text, comment="why this is the constraint (constraint row only)"),
    _now_col("computed_at"),
)

improvements = sa.Table(
    "improvements",
    metadata,
    sa.Column("improvement_id", sa.String(64), primary_key=True, comment="slug; the title's when not given"),
    sa.Column("title", sa.Text, nullable=False, comment="what the improvement is"),
    sa.Column(
        "target_metric",
        sa.String(64),
        nullable=False,
        comment="kaizen metric the improvement targets (kaizen.metrics)",
    ),
    sa.Column(
        "predicted_effect", sa.Float, nullable=False, comment="expected change of the metric (signed units)"
    ),
    sa.Column("cost_hours", sa.Float, nullable=False, comment="hours spent"),
    sa.Column("cost_money", sa.Float, nullable=False, comment="USD"),
    sa.Column("status", sa.String(16), nullable=False, comment="proposed, in_progress, shipped or abandoned"),
    sa.Column("shipped_at", sa.DateTime, comment="when the change went live (required for shipped)"),
    sa.Column("catalogue_key", sa.String(64), comment="catalogue entry it came from, if any"),
    sa.Column("notes", sa.Text, comment="free-text notes"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the improvement was logged (UTC)"),
    _now_col("updated_at"),
)

improvement_impact = sa.Table(
    "improvement_impact",
    metadata,
    sa.Column(
        "improvement_id",
        sa.String(64),
        primary_key=True,
        comment="id of the improvement (improvements table)",
    ),
    sa.Column(
        "target_metric",
        sa.String(64),
        nullable=False,
        comment="kaizen metric the improvement targets (kaizen.metrics)",
    ),
    sa.Column("shipped_at", sa.DateTime, nullable=False, comment="when the improvement shipped (UTC)"),
    sa.Column("verdict", sa.String(16), nullable=False, comment="pending, improved, worsened or no_effect"),
    sa.Column("n_before", sa.Integer, nullable=False, comment="daily points in the before window"),
    sa.Column("n_after", sa.Integer, nullable=False, comment="daily values in the window after shipping"),
    sa.Column("mean_before", sa.Float, comment="mean of the metric before shipping"),
    sa.Column("mean_after", sa.Float, comment="mean of the metric after shipping"),
    sa.Column("actual_effect", sa.Float, comment="mean_after - mean_before"),
    sa.Column("ci_low", sa.Float, comment="Welch confidence interval of the effect"),
    sa.Column("ci_high", sa.Float, comment="upper bound of the effect's confidence interval"),
    sa.Column("t_stat", sa.Float, comment="Welch t statistic"),
    sa.Column("df", sa.Float, comment="Welch-Satterthwaite degrees of freedom"),
    sa.Column("p_value", sa.Float, comment="Welch t-test p-value"),
    sa.Column(
        "predicted_effect",
        sa.Float,
        nullable=False,
        comment="effect predicted when the improvement was logged",
    ),
    sa.Column("error", sa.Float, comment="predicted_effect - actual_effect"),
    sa.Column("abs_pct_error", sa.Float, comment="|error| / |actual_effect|"),
    sa.Column(
        "relative_bias", sa.Float, comment="(predicted - actual) in the better direction / |predicted|"
    ),
    sa.Column("value_usd", sa.Float, comment="actual effect x direction x value_per_unit"),
    sa.Column("cost_usd", sa.Float, nullable=False, comment="cost_hours x hourly_rate_usd + cost_money"),
    sa.Column("roi", sa.Float, comment="(value_usd - cost_usd) / cost_usd"),
    sa.Column("validated_at", sa.DateTime, comment="shipped_at + impact window (when measured)"),
    _now_col("computed_at"),
)

learning_velocity = sa.Table(
    "learning_velocity",
    metadata,
    sa.Column("week_start", sa.DateTime, primary_key=True, comment="Monday of the validation week"),
    sa.Column("validated", sa.Integer, nullable=False, comment="improvements whose impact was measured"),
    sa.Column("improved", sa.Integer, nullable=False, comment="of those, significantly better"),
    sa.Column("mean_abs_pct_error", sa.Float, comment="mean |predicted - actual| / |actual|"),
    sa.Column(
        "mean_relative_bias", sa.Float, comment="mean relative bias of the week's validated predictions"
    ),
    sa.Column(
        "cumulative_validated", sa.Integer, nullable=False, comment="improvements validated up to that week"
    ),
    _now_col("computed_at"),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="metric day the recommendations are for"),
    sa.Column("rank", sa.Integer, primary_key=True, comment="1 = best expected return"),
    sa.Column("catalogue_key", sa.String(64), nullable=False, comment="key in kaizen.catalogue"),
    sa.Column("title", sa.Text, nullable=False, comment="what to change"),
    sa.Column(
        "target_metric",
        sa.String(64),
        nullable=False,
        comment="kaizen metric the improvement targets (kaizen.metrics)",
    ),
    sa.Column(
        "addresses_constraint", sa.Boolean, nullable=False, comment="targets the current constraint's metric"
    ),
    sa.Column("parameter", sa.String(128), comment="setting the change adjusts"),
    sa.Column("proposed_value", sa.String(128), comment="the value to set it to"),
    sa.Column("predicted_effect", sa.Float, nullable=False, comment="the catalogue's prediction"),
    sa.Column("bias_factor", sa.Float, nullable=False, comment="1 - mean relative bias of past predictions"),
    sa.Column(
        "bias_basis", sa.String(16), nullable=False, comment="metric, all or none (what it was learned from)"
    ),
    sa.Column("corrected_effect", sa.Float, nullable=False, comment="predicted_effect x bias_factor"),
    sa.Column("value_usd", sa.Float, nullable=False, comment="value of one unit of metric change, USD"),
    sa.Column("cost_hours", sa.Float, nullable=False, comment="estimated hours"),
    sa.Column("cost_money", sa.Float, nullable=False, comment="estimated money, USD"),
    sa.Column(
        "cost_usd", sa.Float, nullable=False, comment="cost_hours at kaizen.hourly_rate_usd plus cost_money"
    ),
    sa.Column("expected_return", sa.Float, nullable=False, comment="value_usd - cost_usd"),
    sa.Column("expected_roi", sa.Float, comment="expected_return / cost_usd"),
    _now_col("computed_at"),
)

resource_plan = sa.Table(
    "resource_plan",
    metadata,
    sa.Column("as_of", sa.DateTime, primary_key=True, comment="metric day the plan is for"),
    sa.Column("catalogue_key", sa.String(64), primary_key=True, comment="key in kaizen.catalogue"),
    sa.Column("selected", sa.Boolean, nullable=False, comment="in the plan"),
    sa.Column("expected_return", sa.Float, nullable=False, comment="expected return, USD"),
    sa.Column("cost_hours", sa.Float, nullable=False, comment="estimated hours"),
    sa.Column("cost_money", sa.Float, nullable=False, comment="estimated money, USD"),
    sa.Column("period", sa.String(16), nullable=False, comment="budget period"),
    sa.Column("budget_hours", sa.Float, nullable=False, comment="kaizen.budget_hours"),
    sa.Column("budget_money", sa.Float, nullable=False, comment="kaizen.budget_money, USD"),
    sa.Column("hours_left", sa.Float, nullable=False, comment="budget_hours minus the selected items' hours"),
    sa.Column("money_left", sa.Float, nullable=False, comment="budget money left after the selection, USD"),
    _now_col("computed_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column(
        "feedback_id", sa.String(40), primary_key=True, comment="sha1 of time, rating, author and text"
    ),
    sa.Column("submitted_at", sa.DateTime, nullable=False, comment="when the feedback was submitted (UTC)"),
    sa.Column("rating", sa.Integer, nullable=False, comment="1 (poor) to 5 (excellent)"),
    sa.Column("text", sa.Text, nullable=False, comment="free-text comment"),
    sa.Column("author", sa.String(128), comment="who gave the feedback (optional)"),
    sa.Column("sentiment", sa.Float, nullable=False, comment="VADER compound score in [-1, 1]"),
    sa.Column("sentiment_label", sa.String(8), nullable=False, comment="positive, neutral or negative"),
    sa.Column("source", sa.String(16), nullable=False, comment="cli or job"),
)
sa.Index("ix_feedback_submitted_at", feedback.c.submitted_at)

feedback_summary = sa.Table(
    "feedback_summary",
    metadata,
    sa.Column("week_start", sa.DateTime, primary_key=True, comment="start of the week (UTC)"),
    sa.Column("responses", sa.Integer, nullable=False, comment="feedback responses that week"),
    sa.Column("mean_rating", sa.Float, nullable=False, comment="mean rating (1-5)"),
    sa.Column("mean_sentiment", sa.Float, nullable=False, comment="mean VADER compound sentiment (-1..1)"),
    sa.Column(
        "positive_share", sa.Float, nullable=False, comment="share of responses with positive sentiment"
    ),
    sa.Column(
        "negative_share", sa.Float, nullable=False, comment="share of responses with negative sentiment"
    ),
    _now_col("computed_at"),
)

kaizen_reports = sa.Table(
    "kaizen_reports",
    metadata,
    sa.Column(
        "cadence", sa.String(16), primary_key=True, comment="daily, weekly, monthly, quarterly or yearly"
    ),
    sa.Column(
        "period_start", sa.DateTime, primary_key=True, comment="start of the reported period (UTC, inclusive)"
    ),
    sa.Column("period_end", sa.DateTime, nullable=False, comment="exclusive"),
    sa.Column("markdown", sa.Text, nullable=False, comment="the rendered report"),
    _now_col("generated_at"),
)


# --- ops ------------------------------------------------------------------------------

alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column(
        "alert_id", sa.String(40), primary_key=True, comment="sha1 of alert_key and opened_at: one episode"
    ),
    sa.Column("alert_key", sa.String(255), nullable=False, comment="check:<asset>/<check> or run:<job>"),
    sa.Column("kind", sa.String(8), nullable=False, comment="check or run"),
    sa.Column("asset_key", sa.String(255), comment="asset of a check alert ('/'-joined path)"),
    sa.Column("check_name", sa.String(128), comment="asset check of a check alert"),
    sa.Column("job_name", sa.String(255), comment="job of the failing run"),
    sa.Column("priority", sa.String(8), nullable=False, comment="critical, warning or info (routing)"),
    sa.Column("severity", sa.String(8), comment="Dagster check severity ERROR/WARN (run alerts: none)"),
    sa.Column("status", sa.String(8), nullable=False, comment="open or resolved"),
    sa.Column(
        "opened_at", sa.DateTime, nullable=False, comment="first failing evaluation or run of this episode"
    ),
    sa.Column("last_failed_at", sa.DateTime, nullable=False, comment="newest failing evaluation or run"),
    sa.Column("resolved_at", sa.DateTime, comment="first passing evaluation / successful run after opening"),
    sa.Column("failure_count", sa.Integer, nullable=False, comment="failing evaluations in this episode"),
    sa.Column("first_run_id", sa.String(64), comment="run of the first failure of this episode"),
    sa.Column("last_run_id", sa.String(64), comment="run of the newest failure (the email links it)"),
    sa.Column("value", sa.Float, comment="check metadata 'value' of the newest failure"),
    sa.Column("target", sa.Float, comment="check metadata 'target'"),
    sa.Column("deviation", sa.Float, comment="check metadata 'deviation'"),
    sa.Column("description", sa.Text, comment="the check's description"),
    sa.Column("detail", sa.Text, comment="evaluation description or the run's error (secrets redacted)"),
    sa.Column("notify_count", sa.Integer, nullable=False, comment="firing/repeat emails enqueued"),
    sa.Column("last_notified_at", sa.DateTime, comment="when the newest firing/repeat email was enqueued"),
    sa.Column(
        "recipients", sa.Text, comment="JSON list the firing emails went to (resolved email goes there too)"
    ),
)
sa.Index("ix_alert_state_key_status", alert_state.c.alert_key, alert_state.c.status)

alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column(
        "message_id", sa.String(40), primary_key=True, comment="sha1 of kind, alerts and their notify counts"
    ),
    sa.Column(
        "kind", sa.String(8), nullable=False, comment="firing, repeat, resolved or notice (a one-off message)"
    ),
    sa.Column("priority", sa.String(8), nullable=False, comment="highest priority in the email"),
    sa.Column("run_id", sa.String(64), comment="run the grouped failures came from"),
    sa.Column("alert_ids", sa.Text, nullable=False, comment="JSON list of alert_state ids in the email"),
    sa.Column("subject", sa.Text, nullable=False, comment="email subject"),
    sa.Column(
        "recipients",
        sa.Text,
        nullable=False,
        comment="JSON list of addresses (a chat's id; empty for webhooks)",
    ),
    sa.Column(
        "body_text",
        sa.Text,
        nullable=False,
        comment="plain-text body (email, chat) or the webhook's JSON document",
    ),
    sa.Column("body_html", sa.Text, nullable=False, comment="HTML email body"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the email was enqueued (UTC)"),
    sa.Column("status", sa.String(8), nullable=False, comment="pending, sent or skipped (no recipients)"),
    sa.Column("attempts", sa.Integer, nullable=False, comment="send attempts so far"),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False, comment="not retried before this (backoff)"),
    sa.Column("last_error", sa.Text, comment="last delivery error (secrets redacted)"),
    sa.Column("sent_at", sa.DateTime, comment="when the email was sent (UTC; null until sent)"),
    sa.Column(
        "channel",
        sa.String(16),
        comment="email (also when null: rows of older releases), telegram, slack or webhook",
    ),
    sa.Column(
        "image_png",
        sa.LargeBinary,
        comment="chart sent with the message (Telegram sendPhoto; critical metric alerts)",
    ),
)
sa.Index("ix_alert_outbox_status", alert_outbox.c.status, alert_outbox.c.next_attempt_at)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column(
        "alert_id", sa.String(40), primary_key=True, comment="sha1 of alert_key and opened_at: one episode"
    ),
    sa.Column("alert_key", sa.String(255), nullable=False, comment="check:<asset>/<check> or run:<job>"),
    sa.Column("kind", sa.String(8), nullable=False, comment="check or run"),
    sa.Column("asset_key", sa.String(255), comment="asset of a check alert ('/'-joined path)"),
    sa.Column("check_name", sa.String(128), comment="asset check of a check alert"),
    sa.Column("job_name", sa.String(255), comment="job of the failing run"),
    sa.Column("priority", sa.String(8), nullable=False, comment="critical, warning or info (routing)"),
    sa.Column("status", sa.String(8), nullable=False, comment="open or resolved"),
    sa.Column(
        "opened_at", sa.DateTime, nullable=False, comment="first failing evaluation or run of this episode"
    ),
    sa.Column("last_failed_at", sa.DateTime, nullable=False, comment="newest failing evaluation or run"),
    sa.Column("resolved_at", sa.DateTime, comment="first passing evaluation / successful run after opening"),
    sa.Column("failure_count", sa.Integer, nullable=False, comment="failing evaluations in this episode"),
    sa.Column("last_run_id", sa.String(64), comment="run of the newest failure (the email links it)"),
    sa.Column("value", sa.Float, comment="check metadata 'value' of the newest failure"),
    sa.Column("target", sa.Float, comment="check metadata 'target'"),
    sa.Column("deviation", sa.Float, comment="check metadata 'deviation'"),
    sa.Column("emails_sent", sa.Integer, nullable=False, comment="outbox emails delivered for this alert"),
    sa.Column("emails_pending", sa.Integer, nullable=False, comment="outbox emails waiting for (re)delivery"),
    sa.Column("last_email_at", sa.DateTime, comment="newest delivered email"),
    sa.Column("run_url", sa.Text, comment="link to the newest failing run in the Dagster UI"),
)

health_report = sa.Table(
    "health_report",
    metadata,
    sa.Column("checked_at", sa.DateTime, primary_key=True, comment="when the probes ran (UTC)"),
    sa.Column(
        "probe", sa.String(64), primary_key=True, comment="warehouse_size, price_freshness, api_<source>, ..."
    ),
    sa.Column("status", sa.String(8), nullable=False, comment="ok, warn, error or skipped"),
    sa.Column("value", sa.Float, comment="measured number (unit column)"),
    sa.Column("threshold", sa.Float, comment="the configured limit the value is compared with"),
    sa.Column("unit", sa.String(16), comment="unit of value and threshold"),
    sa.Column("detail", sa.Text, nullable=False, comment="what was found and what to do"),
)

database_backup = sa.Table(
    "database_backup",
    metadata,
    sa.Column("file_name", sa.String(255), primary_key=True, comment="backup file in database.backup_dir"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the backup was taken (UTC)"),
    sa.Column("dialect", sa.String(16), nullable=False, comment="sqlite (.sqlite.gz) or postgresql (.dump)"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="backup file size"),
    sa.Column(
        "source_rows", sa.BigInteger, nullable=False, comment="rows in the source at the copy's snapshot"
    ),
    sa.Column("tables", sa.Integer, nullable=False, comment="tables in the backup"),
    sa.Column(
        "verified", sa.Boolean, nullable=False, comment="restore-tested: integrity and row counts match"
    ),
    sa.Column("verified_at", sa.DateTime, comment="when the backup was last restored and compared (UTC)"),
    sa.Column("sha256", sa.String(64), nullable=False, comment="SHA-256 of the backup file"),
    sa.Column("duration_seconds", sa.Float, comment="copy + compress + verify"),
)

warehouse_maintenance = sa.Table(
    "warehouse_maintenance",
    metadata,
    sa.Column("ran_at", sa.DateTime, primary_key=True, comment="when maintenance ran (UTC)"),
    sa.Column("dialect", sa.String(16), nullable=False, comment="sqlite or postgresql"),
    sa.Column("operations", sa.Text, nullable=False, comment="statements run, e.g. VACUUM; ANALYZE"),
    sa.Column("size_before_bytes", sa.BigInteger, nullable=False, comment="warehouse size before"),
    sa.Column("size_after_bytes", sa.BigInteger, nullable=False, comment="warehouse size after"),
    sa.Column("duration_seconds", sa.Float, nullable=False, comment="how long maintenance took"),
)

daily_ops_summary = sa.Table(
    "daily_ops_summary",
    metadata,
    sa.Column("day", sa.DateTime, primary_key=True, comment="UTC day start"),
    sa.Column("runs_started", sa.Integer, nullable=False, comment="Dagster runs started that day"),
    sa.Column("runs_succeeded", sa.Integer, nullable=False, comment="runs of that day that succeeded"),
    sa.Column("runs_failed", sa.Integer, nullable=False, comment="runs of that day that failed"),
    sa.Column("alerts_opened", sa.Integer, nullable=False, comment="alert episodes opened that day"),
    sa.Column("alerts_resolved", sa.Integer, nullable=False, comment="alert episodes resolved that day"),
    sa.Column(
        "alerts_open_at_end", sa.Integer, nullable=False, comment="open at the end of the day (or now)"
    ),
    sa.Column("emails_sent", sa.Integer, nullable=False, comment="alert emails sent that day"),
    sa.Column(
        "emails_pending", sa.Integer, nullable=False, comment="enqueued that day and not yet delivered"
    ),
    sa.Column("rows_ingested", sa.BigInteger, nullable=False, comment="new rows reported by ingestion_runs"),
    sa.Column("warehouse_rows", sa.BigInteger, nullable=False, comment="all rows at summary time"),
    sa.Column(
        "warehouse_size_bytes", sa.BigInteger, nullable=False, comment="warehouse size at the end of the day"
    ),
    sa.Column("updated_at", sa.DateTime, nullable=False, comment="when this row was last written (UTC)"),
)


# --- flags and experiments ----------------------------------------------------------------

feature_flags = sa.Table(
    "feature_flags",
    metadata,
    sa.Column("flag_key", sa.String(64), primary_key=True, comment="flag key (snake_case or kebab-case)"),
    sa.Column("parameter", sa.String(128), nullable=False, comment="config key the flag overrides"),
    sa.Column("unit_kind", sa.String(8), nullable=False, comment="market or run: what a unit is"),
    sa.Column("variants", sa.Text, nullable=False, comment="JSON object variant name -> parameter value"),
    sa.Column("weights", sa.Text, nullable=False, comment="JSON object variant name -> share (sums to 1)"),
    sa.Column("allocation", sa.Float, nullable=False, comment="share of units included (0..1)"),
    sa.Column("targets", sa.Text, nullable=False, comment="JSON object unit id -> variant (pinned units)"),
    sa.Column("salt", sa.String(128), nullable=False, comment="bucketing salt (MurmurHash3 of salt:unit)"),
    sa.Column("status", sa.String(16), nullable=False, comment="active, killed or archived"),
    sa.Column("owner", sa.String(64), nullable=False, comment="who owns the flag (a person or experiments)"),
    sa.Column("experiment_id", sa.String(96), comment="the experiment the flag runs, if any"),
    sa.Column("description", sa.Text, comment="why the flag exists"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the flag was created (UTC)"),
    _now_col("updated_at"),
)

flag_changes = sa.Table(
    "flag_changes",
    metadata,
    sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True, comment="sequence number"),
    sa.Column("flag_key", sa.String(64), nullable=False, comment="flag changed"),
    sa.Column("changed_at", sa.DateTime, nullable=False, comment="when (UTC)"),
    sa.Column("actor", sa.String(64), nullable=False, comment="who or what changed it (user, experiments)"),
    sa.Column("action", sa.String(16), nullable=False, comment="create, update, kill or ship"),
    sa.Column("before", sa.Text, comment="JSON of the flag before the change (NULL on create)"),
    sa.Column("after", sa.Text, nullable=False, comment="JSON of the flag after the change"),
    sa.Column("reason", sa.Text, nullable=False, comment="why"),
)
sa.Index("ix_flag_changes_flag", flag_changes.c.flag_key, flag_changes.c.changed_at)

flag_assignments = sa.Table(
    "flag_assignments",
    metadata,
    sa.Column("flag_key", sa.String(64), primary_key=True, comment="flag evaluated"),
    sa.Column("unit_kind", sa.String(8), primary_key=True, comment="market or run"),
    sa.Column("unit_id", sa.String(96), primary_key=True, comment="market id or Dagster run id"),
    sa.Column("variant", sa.String(64), primary_key=True, comment="variant the unit got"),
    sa.Column(
        "reason", sa.String(16), nullable=False, comment="OpenFeature reason (SPLIT, TARGETING_MATCH, ...)"
    ),
    sa.Column(
        "first_exposure_at", sa.DateTime, nullable=False, comment="first evaluation with this variant (UTC)"
    ),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.String(96), primary_key=True, comment="catalogue key and creation day"),
    sa.Column("catalogue_key", sa.String(64), nullable=False, comment="the recommendation it tests"),
    sa.Column("parameter", sa.String(128), nullable=False, comment="config key under test"),
    sa.Column(
        "unit_kind", sa.String(8), nullable=False, comment="market or run (randomization = analysis unit)"
    ),
    sa.Column("control_value", sa.Text, nullable=False, comment="JSON: the config value (control arm)"),
    sa.Column("treatment_value", sa.Text, nullable=False, comment="JSON: the proposed value"),
    sa.Column("hypothesis", sa.Text, nullable=False, comment="what should happen, in words"),
    sa.Column("primary_metric", sa.String(64), nullable=False, comment="kaizen metric that decides"),
    sa.Column("target_metric", sa.String(64), comment="the recommendation's kaizen metric"),
    sa.Column("predicted_effect", sa.Float, comment="the recommendation's corrected effect on target_metric"),
    sa.Column("direction", sa.String(8), nullable=False, comment="higher or lower is better (primary)"),
    sa.Column("guardrails", sa.Text, nullable=False, comment="JSON list of guardrail metrics"),
    sa.Column(
        "mde", sa.Float, nullable=False, comment="minimum detectable effect (bias-corrected prediction)"
    ),
    sa.Column("alpha", sa.Float, nullable=False, comment="significance level"),
    sa.Column("power", sa.Float, nullable=False, comment="planned power at the MDE"),
    sa.Column("unit_sd", sa.Float, comment="sd of the primary metric per unit (pre-period)"),
    sa.Column("units_per_arm", sa.Integer, comment="units per arm the sequential test needs"),
    sa.Column("units_available", sa.Integer, comment="units today (markets) or per day (runs)"),
    sa.Column("expected_days", sa.Float, comment="expected duration at today's unit count"),
    sa.Column("max_days", sa.Integer, nullable=False, comment="experiments.max_days when drafted"),
    sa.Column("underpowered", sa.Boolean, nullable=False, comment="needs longer than max_days: not started"),
    sa.Column(
        "status",
        sa.String(16),
        nullable=False,
        comment="draft, running, stopped, shipped, inconclusive, invalid",
    ),
    sa.Column("flag_key", sa.String(64), comment="the flag that assigns its units"),
    sa.Column(
        "decision",
        sa.String(32),
        comment="ship, stop_primary_loses, stop_guardrail, inconclusive, invalid_srm",
    ),
    sa.Column("decision_reason", sa.Text, comment="the evidence, in words"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="drafted (UTC)"),
    sa.Column("started_at", sa.DateTime, comment="assignment began (UTC)"),
    sa.Column("ended_at", sa.DateTime, comment="decided or stopped (UTC)"),
    _now_col("updated_at"),
)

experiment_looks = sa.Table(
    "experiment_looks",
    metadata,
    sa.Column("experiment_id", sa.String(96), primary_key=True, comment="experiment"),
    sa.Column("look_at", sa.DateTime, primary_key=True, comment="when the look was taken (UTC)"),
    sa.Column("metric", sa.String(64), primary_key=True, comment="kaizen metric"),
    sa.Column("role", sa.String(12), nullable=False, comment="primary or guardrail"),
    sa.Column("days", sa.Float, nullable=False, comment="days since the start"),
    sa.Column("units_control", sa.Integer, nullable=False, comment="units with data in the control arm"),
    sa.Column("units_treatment", sa.Integer, nullable=False, comment="units with data in the treatment arm"),
    sa.Column("exposures_control", sa.Integer, nullable=False, comment="units assigned to control"),
    sa.Column("exposures_treatment", sa.Integer, nullable=False, comment="units assigned to treatment"),
    sa.Column("mean_control", sa.Float, comment="mean per unit, control"),
    sa.Column("mean_treatment", sa.Float, comment="mean per unit, treatment"),
    sa.Column("estimate", sa.Float, comment="treatment - control (CUPED-adjusted when it helps)"),
    sa.Column("lower", sa.Float, comment="always-valid lower bound (1 - alpha)"),
    sa.Column("upper", sa.Float, comment="always-valid upper bound (1 - alpha)"),
    sa.Column("p_value", sa.Float, comment="always-valid p-value"),
    sa.Column("p_holm", sa.Float, comment="Holm-adjusted across the guardrails (primary: as is)"),
    sa.Column("cuped_reduction", sa.Float, comment="variance reduction by CUPED (0 when not used)"),
    sa.Column("srm_p", sa.Float, comment="sample-ratio mismatch chi-square p-value of the exposures"),
    sa.Column("outcome", sa.String(16), nullable=False, comment="wins, loses, harms, neutral or no_data"),
    sa.Column("decision", sa.String(32), comment="the experiment's decision at this look, if any"),
)

decision_log = sa.Table(
    "decision_log",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True, comment="sequence number"),
    sa.Column("decided_at", sa.DateTime, nullable=False, comment="when (UTC, pipeline clock)"),
    sa.Column("actor", sa.String(64), nullable=False, comment="kaizen-loop, or the person who acted"),
    sa.Column(
        "action",
        sa.String(24),
        nullable=False,
        comment="start_experiment, ship, stop, inconclusive, invalid; start_rollout, widen, advance, "
        "await_approval, approve, pause, resume, complete, rollback, step_back; freeze, unfreeze or undo",
    ),
    sa.Column("subject_kind", sa.String(16), nullable=False, comment="experiment, deployment or loop"),
    sa.Column("subject_id", sa.String(96), nullable=False, comment="experiment or deployment id, or 'loop'"),
    sa.Column("parameter", sa.String(128), comment="config key the decision changes, if any"),
    sa.Column("before", sa.Text, comment="JSON: the value before (the config value for experiments)"),
    sa.Column("after", sa.Text, comment="JSON: the value after"),
    sa.Column("evidence", sa.Text, nullable=False, comment="why, in words and figures"),
    sa.Column("undo_of", sa.Integer, comment="the decision this entry undoes"),
    sa.Column("undone_at", sa.DateTime, comment="when this decision was undone (UTC)"),
    sa.Column("undone_by", sa.String(64), comment="who undid it"),
)
sa.Index("ix_decision_log_subject", decision_log.c.subject_id, decision_log.c.decided_at)

loop_state = sa.Table(
    "loop_state",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True, comment="'freeze'"),
    sa.Column("active", sa.Boolean, nullable=False, comment="the freeze holds: no automatic change"),
    sa.Column("since", sa.DateTime, comment="when it was set or lifted (UTC)"),
    sa.Column("actor", sa.String(64), comment="who set or lifted it"),
    sa.Column("reason", sa.Text, comment="why"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("deployment_id", sa.String(96), primary_key=True, comment="the change and its start day"),
    sa.Column("parameter", sa.String(128), nullable=False, comment="config key the change sets"),
    sa.Column("unit_kind", sa.String(8), nullable=False, comment="market or run"),
    sa.Column(
        "before_value", sa.Text, nullable=False, comment="JSON: the config value (what rollback returns to)"
    ),
    sa.Column("after_value", sa.Text, nullable=False, comment="JSON: the value being rolled out"),
    sa.Column("source", sa.String(96), nullable=False, comment="the experiment it ships, or the person"),
    sa.Column("flag_key", sa.String(64), nullable=False, comment="the flag whose allocation ramps"),
    sa.Column("steps", sa.Text, nullable=False, comment="JSON list of shares (rollouts.steps at the start)"),
    sa.Column("step_index", sa.Integer, nullable=False, comment="current step (0-based)"),
    sa.Column(
        "state",
        sa.String(20),
        nullable=False,
        comment="ramping, held, awaiting_approval, complete or rolled_back",
    ),
    sa.Column("step_started_at", sa.DateTime, nullable=False, comment="when the current step began (UTC)"),
    sa.Column("reason", sa.Text, nullable=False, comment="evidence of the last change of state"),
    sa.Column("created_at", sa.DateTime, nullable=False, comment="when the rollout began (UTC)"),
    sa.Column("created_by", sa.String(64), nullable=False, comment="kaizen-loop or the person"),
    sa.Column("ended_at", sa.DateTime, comment="completed or rolled back (UTC)"),
    sa.Column("last_look_at", sa.DateTime, comment="the rollout sensor's last look (UTC)"),
    _now_col("updated_at"),
)

# a look's exposure and decision repeat on each of its guardrail rows, so every row stands alone
deployment_steps = sa.Table(
    "deployment_steps",
    metadata,
    sa.Column("deployment_id", sa.String(96), primary_key=True, comment="the rollout looked at"),
    sa.Column(
        "look_at", sa.DateTime, primary_key=True, comment="when the look was taken (UTC, pipeline clock)"
    ),
    sa.Column(
        "metric",
        sa.String(64),
        primary_key=True,
        comment="guardrail metric ('-' when the unit kind has no guardrail)",
    ),
    sa.Column("step_index", sa.Integer, nullable=False, comment="the step looked at (0-based)"),
    sa.Column("share", sa.Float, nullable=False, comment="the flag's allocation at the look"),
    sa.Column("units_on_change", sa.Integer, nullable=False, comment="units on the change with data"),
    sa.Column("units_in_control", sa.Integer, nullable=False, comment="units not on the change with data"),
    sa.Column("estimate", sa.Float, comment="change - control on the guardrail"),
    sa.Column("lower", sa.Float, comment="always-valid lower bound (two-sided at 2 x alpha)"),
    sa.Column("upper", sa.Float, comment="always-valid upper bound (two-sided at 2 x alpha)"),
    sa.Column(
        "outcome",
        sa.String(16),
        comment="loses (harmed, Holm across the guardrails), neutral, wins or no_data",
    ),
    sa.Column("srm_p", sa.Float, nullable=False, comment="sample-ratio mismatch p-value against the share"),
    sa.Column(
        "action",
        sa.String(16),
        nullable=False,
        comment="hold, advance, await_approval, complete or rollback",
    ),
    sa.Column("reason", sa.Text, nullable=False, comment="the evidence of the action, in words"),
    sa.Column(
        "applied",
        sa.Boolean,
        nullable=False,
        comment="the action took effect (false: a person or another tick moved the rollout first)",
    ),
)

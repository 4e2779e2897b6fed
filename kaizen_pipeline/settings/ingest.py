"""Sections of the ingest domain: collection, quality, the APIs, the warehouse, transport and the demo world."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from kaizen_pipeline.settings._base import _Section


class DataCollectionSettings(_Section):
    frequency_minutes: int = Field(15, ge=1, le=1440, description="Ingest schedule period.")
    min_volume_24h: float = Field(
        50_000, ge=0, description="Markets below this 24 h volume (USD) are skipped."
    )
    min_liquidity: float = Field(0, ge=0, description="Markets below this liquidity (USD) are skipped.")
    max_markets: int = Field(50, ge=1, le=1000, description="Keep the top N open markets by 24 h volume.")
    history_days: int = Field(
        30, ge=1, le=365, description="Price history fetched by the first unpartitioned run (catch-up mode)."
    )
    trade_history_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Trade volume history fetched by the first unpartitioned run (catch-up mode).",
    )
    max_concurrency: int = Field(16, ge=1, le=256, description="Concurrent per-market requests.")
    whale_trade_usd: float = Field(
        10_000,
        gt=0,
        description="Large-trade threshold (USD, size x price): Data API /trades with filterType=CASH "
        "and this filterAmount feed whale_trades (the large tail, not every trade of a liquid market).",
    )
    schedules_running: bool | None = Field(
        None,
        description="Default status of every schedule and sensor (they fetch data and send mail): true starts "
        "them all, false stops them all; empty: on with source live, off with source demo.",
    )
    history_start: date = Field(
        date(2026, 1, 1),
        description="First day of the daily partitions of market_prices, trade_volumes and kaizen_metrics "
        "(UTC days; read when the code location loads). Default: the demo world's epoch.",
    )


class QualitySettings(_Section):
    stale_after_minutes: float = Field(
        30, gt=0, description="Newest data older than this fails the freshness checks."
    )
    max_jump_ratio: float = Field(
        0.5, gt=0, description="Relative change between consecutive prices flagged as a jump."
    )
    binary_sum_tolerance: float = Field(
        0.02, gt=0, lt=1, description="Allowed |YES + NO - 1| at the same timestamp."
    )
    gap_factor: float = Field(2.0, ge=1, description="A gap longer than this x fidelity is reported.")
    tweet_window_slack_minutes: float = Field(
        5, ge=0, description="Clock slack allowed around twitter.window_days when checking post timestamps."
    )
    book_stale_after_minutes: float = Field(
        30,
        gt=0,
        description="A tracked token whose newest order book is older than this fails stale_order_books.",
    )
    check_window_hours: float = Field(
        24,
        gt=0,
        le=24 * 365,
        description="Hours of prices the price checks read in a run without partitions; a partitioned run "
        "(the 15-minute cycle's day, a backfilled range) checks its own days.",
    )


class PolymarketSettings(_Section):
    gamma_url: str = Field("https://gamma-api.polymarket.com", description="Gamma API base URL (markets).")
    clob_url: str = Field("https://clob.polymarket.com", description="CLOB API base URL (price history).")
    data_url: str = Field("https://data-api.polymarket.com", description="Data API base URL (trades).")
    page_size: int = Field(100, ge=1, le=100, description="Gamma keyset page size (the API caps it at 100).")
    fidelity_minutes: int = Field(15, ge=1, le=1440, description="CLOB price-history resolution.")
    trades_page_size: int = Field(
        10_000,
        ge=1,
        le=10_000,
        description="Data API /trades page size (limit; 10,000 is the documented maximum): a backfill pages "
        "each market's history, so fewer, larger pages spend less of the 200-per-10 s limit.",
    )
    trades_markets_per_request: int = Field(
        20,
        ge=1,
        le=20,
        description="Markets one Data API /trades request names (comma-separated condition ids; 20 is the "
        "smallest list limit Polymarket documents); 1: a request per market.",
    )
    markets_rate_limit: int = Field(300, ge=1, description="Gamma /markets requests per 10 s.")
    prices_history_rate_limit: int = Field(1000, ge=1, description="CLOB /prices-history requests per 10 s.")
    trades_rate_limit: int = Field(200, ge=1, description="Data API /trades requests per 10 s.")
    book_rate_limit: int = Field(1500, ge=1, description="CLOB GET /book requests per 10 s.")
    books_rate_limit: int = Field(500, ge=1, description="CLOB POST /books (batch) requests per 10 s.")
    books_batch_size: int = Field(
        50, ge=1, le=500, description="Tokens per CLOB POST /books request (the order_books asset)."
    )
    book_levels: int = Field(
        25, ge=1, le=500, description="Price levels kept per side of each order book snapshot (best first)."
    )


class TwitterSettings(_Section):
    api_url: str = Field("https://api.x.com", description="X API base URL (recent search).")
    bearer_token: SecretStr | None = Field(None, description="Env only: KAIZEN_TWITTER__BEARER_TOKEN.")
    keywords: list[str] = Field(
        default_factory=lambda: ["polymarket.com", "#Polymarket"],
        description="Terms of the general search query, in priority order (trimmed to the query length limit).",
    )
    max_tweets_per_query: int = Field(
        100, ge=10, le=100, description="Page size (max_results) of each search request."
    )
    max_pages_per_query: int = Field(10, ge=1, le=100, description="Pagination budget per query and run.")
    bot_detection: bool = Field(True, description="Flag bot-like posts and leave them out of hype scores.")
    window_days: int = Field(7, ge=1, le=7, description="Recent search only reaches back 7 days.")
    rate_limit: int = Field(450, ge=1, description="Requests per 15 minutes.")
    per_market_queries: bool = Field(True, description="Search each market's question keywords too.")


class DatabaseSettings(_Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; overrides path (e.g. postgresql+psycopg2://...)."
    )
    path: str = Field("data/warehouse.sqlite", description="SQLite file used when url is empty.")
    backup_interval_hours: int = Field(
        24, ge=1, le=24 * 30, description="Period of the database_backup schedule."
    )
    backup_dir: str = Field("data/backups", description="Directory of verified backups and their catalogue.")
    backup_keep: int = Field(
        7, ge=1, le=365, description="Newest verified backups kept; older ones are deleted."
    )
    max_size_gb: float = Field(5, gt=0, description="Warehouse size that fails the health check (ERROR).")
    warn_size_gb: float = Field(4, gt=0, description="Warehouse size that warns in the health check.")

    def sqlalchemy_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{Path(self.path).expanduser()}"


class TransportSettings(_Section):
    timeout_seconds: float = Field(
        20.0, gt=0, le=600, description="Per-phase HTTP timeout (connect, read, write, pool)."
    )
    max_retries: int = Field(
        5, ge=0, le=10, description="Retries after the first attempt (exponential backoff with jitter)."
    )
    backoff_base_seconds: float = Field(1.0, ge=0, le=60, description="First retry wait; doubles per retry.")
    backoff_max_seconds: float = Field(60.0, ge=0, description="Cap of one retry wait.")
    max_rate_limit_wait_seconds: float = Field(
        900.0, ge=0, description="Longest honoured Retry-After / reset wait."
    )
    request_deadline_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Deadline of one request attempt: connect, headers and the whole body.",
    )
    shared_limiter_url: str = Field(
        "",
        description="Redis URL (redis://[:password@]host:6379/0) holding the API rate limits shared by every "
        "process, run and worker that calls an endpoint; empty: each process counts only its own requests. "
        "Set but unreachable when a run starts: the run fails (docs/ingest.md#transport).",
    )
    shared_limiter_prefix: str = Field(
        "kaizen:ratelimit",
        min_length=1,
        description="Prefix of the shared rate limits' Redis keys (prefix:{endpoint}); deployments with "
        "separate API quotas (other keys, other IPs) use different prefixes.",
    )


class DemoSettings(_Section):
    seed: int = Field(
        7, description="Seed of the simulated world: the same seed gives the same markets, prices and posts."
    )
    n_markets: int = Field(50, ge=1, le=2000, description="Markets in the simulated world.")
    history_days: int = Field(
        30,
        ge=1,
        le=120,
        description="Days of history the simulator serves back from now (its trade-history reach).",
    )
    epoch: str = Field("2026-01-01T00:00:00Z", description="Start of the simulated world (UTC).")
    kaizen_history_days: int = Field(
        90,
        ge=0,
        le=730,
        description="Days of seeded kaizen metric history (planted trend, seasonality, anomaly, shift after an "
        "improvement, feedback) written once before the demo's own readings; 0: none.",
    )
    transient_error_rate: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Planted: share of requests the demo API answers 503 (a retry succeeds as often as any "
        "request); the known effect run experiments are tested against (docs/experiments.md).",
    )
    frozen_now: datetime | None = Field(
        None,
        description="Freeze the demo clock at this UTC time (reproducible replays); empty: follow the wall clock.",
    )
    server_url: str | None = Field(
        None,
        description="Base URL of a running simulator server (python -m kaizen_pipeline.ingest.simulator.server) "
        "that answers the demo source over HTTP instead of a world built in each process: one long-lived "
        "world shared by every run (its seed, markets and clock are the server's).",
    )

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"demo.server_url: not an http(s) URL (got {value!r})")
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _frozen_after_epoch(self) -> DemoSettings:
        try:
            epoch = datetime.fromisoformat(self.epoch.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"demo.epoch: not an ISO time (got {self.epoch!r})") from None
        if self.frozen_now is None:
            return self
        frozen = self.frozen_now
        epoch = epoch.astimezone(UTC) if epoch.tzinfo else epoch.replace(tzinfo=UTC)
        frozen = frozen.astimezone(UTC) if frozen.tzinfo else frozen.replace(tzinfo=UTC)
        if frozen < epoch:
            raise ValueError(
                f"demo.frozen_now ({frozen.isoformat()}) is before demo.epoch ({epoch.isoformat()}); "
                "the frozen clock must be at or after the start of the simulated world"
            )
        return self

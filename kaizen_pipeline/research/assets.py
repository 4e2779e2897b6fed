"""Research assets: read the warehouse, call the pure research modules, write tables, attach metadata."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from dagster import AssetExecutionContext

from kaizen_pipeline.clock import buckets, floor_to_bucket, pipeline_now
from kaizen_pipeline.flags.checks import flags_evaluated_result, flags_evaluated_spec
from kaizen_pipeline.flags.provider import row_variants, scheduled_values
from kaizen_pipeline.partitions import partition_start
from kaizen_pipeline.reporting import figure_markdown, markdown_table
from kaizen_pipeline.research.calibration import reliability_table
from kaizen_pipeline.research.charts import (
    correlation_by_lag_figure,
    equity_figure,
    hype_vs_price_figure,
    reliability_figure,
)
from kaizen_pipeline.research.correlation import hype_price_correlations as correlate
from kaizen_pipeline.research.features import build_market_features
from kaizen_pipeline.research.hype import build_hype_scores
from kaizen_pipeline.research.lead import RULE_HYPE_LEAD, RULE_MOMENTUM, LeadParams, trailing_leads
from kaizen_pipeline.research.pipeline import (
    SIGNAL_INPUTS,
    ResearchConfig,
    calibrated_signals,
    gated_signals,
    hype_lead_candidates,
    research_config,
)
from kaizen_pipeline.research.portfolio import return_correlations, size_portfolio
from kaizen_pipeline.research.signals import SignalThresholds
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse, utcnow

GROUP = "research"
TOP_MARKETS = 4


def _context(
    context: AssetExecutionContext, resource: SettingsResource
) -> tuple[Settings, ResearchConfig, datetime]:
    """This run's settings (bucket width, holding and costs are per-run parameters) and research configs."""
    settings = resource.for_unit("run", context.run_id)
    return settings, research_config(settings), pipeline_now(settings)


def _floor(ts: datetime, minutes: int) -> pd.Timestamp:
    return floor_to_bucket(ts, minutes)


def _with_computed_at(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    out = frame.copy()
    out["computed_at"] = utcnow()
    return out[[c.name for c in table.columns]]


def _market_names(markets: pd.DataFrame) -> dict[str, str]:
    """market id -> question (or slug), for chart legends."""
    names = markets["question"].fillna(markets["slug"]) if "question" in markets else markets["slug"]
    return dict(zip(markets["market_id"].astype(str), names.fillna("").astype(str), strict=True))


def _latest_markets(wh: Warehouse) -> pd.DataFrame:
    """One row per market: its latest snapshot (question, category and token ids)."""
    return wh.read_frame(
        """
        SELECT s.market_id, s.question, s.category, s.yes_token_id, s.no_token_id, s.slug, s.event_slug
        FROM market_snapshots s
        JOIN (SELECT market_id, MAX(snapshot_ts) AS ts FROM market_snapshots GROUP BY market_id) last
          ON last.market_id = s.market_id AND last.ts = s.snapshot_ts
        """
    )


@dg.asset(group_name=GROUP, kinds={"pandas"}, deps=["tweets", "polymarket_markets"])
def hype_scores(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Per market and bucket (data_collection.frequency_minutes): posts, authors, engagement, VADER sentiment, bot share, hype 0-100."""
    run_settings, cfg, now = _context(context, settings)
    wh = warehouse.get()
    minutes = cfg.bucket_minutes
    end = _floor(now, minutes)
    start = end - timedelta(days=run_settings.twitter.window_days)
    tweets = wh.read_frame(
        "SELECT * FROM tweets WHERE created_at >= :start AND created_at < :stop",
        {"start": start.to_pydatetime(), "stop": (end + buckets(1, minutes)).to_pydatetime()},
        parse_dates=["created_at"],
    )
    mentions = wh.read_frame(
        "SELECT m.tweet_id, m.market_id FROM tweet_mentions m JOIN tweets t ON t.tweet_id = m.tweet_id "
        "WHERE t.created_at >= :start",
        {"start": start.to_pydatetime()},
    )
    authors = wh.read_frame("SELECT * FROM tweet_authors", parse_dates=["created_at", "updated_at"])
    markets = _latest_markets(wh)
    scores = build_hype_scores(
        tweets,
        mentions,
        authors,
        cfg.hype,
        cfg.bots,
        market_ids=markets["market_id"].tolist(),
        start=start,
        end=end,
        market_links=markets[["market_id", "slug", "event_slug"]],
        exclude_ambiguous=cfg.exclude_ambiguous_posts,
    )
    ambiguous = int(scores.attrs.get("ambiguous_posts", 0))
    table = wh.table("hype_scores")
    result = wh.replace_changed(
        table, _with_computed_at(scores, table), where=table.c.bucket_ts >= start.to_pydatetime()
    )
    context.log.info(f"hype_scores: {len(scores)} rows for {scores['market_id'].nunique()} markets")

    prices = wh.read_frame(
        "SELECT market_id, ts AS bucket_ts, price AS yes_price FROM price_points WHERE outcome = 'Yes' AND ts >= :start",
        {"start": start.to_pydatetime()},
        parse_dates=["bucket_ts"],
    )
    ranking = scores.groupby("market_id")["post_count"].sum().sort_values(ascending=False)
    top = ranking.head(TOP_MARKETS).index.tolist()
    latest = scores[scores["bucket_ts"] == scores["bucket_ts"].max()] if not scores.empty else scores
    summary = (
        scores.groupby("market_id")
        .agg(posts=("post_count", "sum"), bot_posts=("bot_posts", "sum"), max_hype=("hype_index", "max"))
        .join(latest.set_index("market_id")[["hype_index"]].rename(columns={"hype_index": "hype_now"}))
        .sort_values("posts", ascending=False)
        .reset_index()
    )
    total_posts = int(scores["post_count"].sum() + scores["bot_posts"].sum()) if not scores.empty else 0
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.int(result.rows_written),
            "markets": dg.MetadataValue.int(int(scores["market_id"].nunique()) if not scores.empty else 0),
            "window_start": dg.MetadataValue.text(str(start)),
            "bot_detection": dg.MetadataValue.bool(cfg.bots.enabled),
            "ambiguous_posts_left_out": dg.MetadataValue.int(ambiguous if cfg.exclude_ambiguous_posts else 0),
            "bot_share": dg.MetadataValue.float(
                float(scores["bot_posts"].sum() / total_posts) if total_posts else 0.0
            ),
            "top_markets": dg.MetadataValue.md(markdown_table(summary, max_rows=15, float_digits=1)),
            "hype_vs_price": dg.MetadataValue.md(
                figure_markdown(
                    hype_vs_price_figure(scores, prices, top, _market_names(markets)), alt="hype vs price"
                )
                if top
                else "_no markets_"
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"pandas"},
    deps=["market_prices", "trade_volumes", "polymarket_markets", "order_books", "whale_trades", hype_scores],
)
def market_features(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Per market and bucket: YES price, return, RVR, rate of change, volatility, spread, liquidity, hype,
    order-book mid, spread, depth and imbalance, and signed large-trade flow."""
    run_settings, cfg, now = _context(context, settings)
    wh = warehouse.get()
    end = _floor(now, cfg.bucket_minutes)
    window_start = end - timedelta(days=run_settings.data_collection.history_days)
    # Rows from the run's first partition day on are rewritten (the 15-minute cycle: today's), read
    # with every window's lookback before them; a run without partitions rewrites the whole window.
    first_day = partition_start(context.run.tags)
    rewrite_from = max(window_start, pd.Timestamp(first_day)) if first_day else window_start
    book_max_age = run_settings.research.book_max_age_buckets
    feature_cfg = replace(cfg.features, book_max_age_buckets=book_max_age)
    start = max(window_start, rewrite_from - buckets(feature_cfg.lookback_buckets, cfg.bucket_minutes))
    params = {"start": start.to_pydatetime()}
    markets = _latest_markets(wh)
    prices = wh.read_frame(
        "SELECT market_id, ts, price FROM price_points WHERE outcome = 'Yes' AND ts >= :start", params, ["ts"]
    )
    prices = prices[prices["market_id"].isin(markets["market_id"])]
    volumes = wh.read_frame(
        "SELECT market_id, bucket_ts, volume_usd FROM trade_volumes WHERE bucket_ts >= :start",
        params,
        ["bucket_ts"],
    )
    snapshots = wh.read_frame(
        "SELECT market_id, snapshot_ts, best_bid, best_ask, spread, liquidity FROM market_snapshots",
        parse_dates=["snapshot_ts"],
    )
    hype = wh.read_frame(
        "SELECT market_id, bucket_ts, hype_index FROM hype_scores WHERE bucket_ts >= :start",
        params,
        ["bucket_ts"],
    )
    # A book older than the window's first bucket still describes it, up to book_max_age_buckets.
    books = wh.read_frame(
        "SELECT market_id, outcome, book_ts, bids, asks FROM order_book_snapshots "
        "WHERE outcome = 'Yes' AND book_ts >= :books_start",
        {"books_start": (start - buckets(book_max_age, cfg.bucket_minutes)).to_pydatetime()},
        ["book_ts"],
    )
    whales = wh.read_frame(
        "SELECT market_id, ts, outcome, side, usd FROM whale_trades WHERE ts >= :start", params, ["ts"]
    )
    features = build_market_features(
        prices,
        volumes,
        markets,
        feature_cfg,
        snapshots=snapshots,
        hype=hype,
        books=books,
        whales=whales,
    )
    features = features[features["bucket_ts"] >= rewrite_from].reset_index(drop=True)
    table = wh.table("market_features")
    first = features["bucket_ts"].min() if not features.empty else rewrite_from
    result = wh.replace_changed(
        table, _with_computed_at(features, table), where=table.c.bucket_ts >= first.to_pydatetime()
    )
    context.log.info(f"market_features: {len(features)} rows")
    latest = (
        features.sort_values("bucket_ts").groupby("market_id").tail(1).sort_values("rvr", ascending=False)
    )
    cols = [
        "market_id",
        "category",
        "bucket_ts",
        "yes_price",
        "rvr",
        "roc",
        "volatility",
        "spread",
        "hype_index",
        "book_spread",
        "book_imbalance",
        "whale_flow_usd",
    ]
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.int(result.rows_written),
            "buckets_with_book": dg.MetadataValue.int(int(features["book_mid"].notna().sum())),
            "markets": dg.MetadataValue.int(
                int(features["market_id"].nunique()) if not features.empty else 0
            ),
            "first_bucket": dg.MetadataValue.text(str(first)),
            "latest_by_rvr": dg.MetadataValue.md(markdown_table(latest[cols], max_rows=15)),
        }
    )


@dg.asset(group_name=GROUP, kinds={"statsmodels"}, deps=[hype_scores, market_features])
def hype_price_correlations(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Per market: hype-vs-forward-return correlation by lag, peak lag, Granger p-value, BH-corrected significance."""
    run_settings, cfg, now = _context(context, settings)
    wh = warehouse.get()
    measure = run_settings.research.corr_hype_column
    end = _floor(now, cfg.bucket_minutes)
    start = end - timedelta(days=run_settings.twitter.window_days)
    panel = wh.read_frame(
        f"""
        SELECT h.market_id, h.bucket_ts, h.{measure} AS hype, f.ret
        FROM hype_scores h JOIN market_features f ON f.market_id = h.market_id AND f.bucket_ts = h.bucket_ts
        WHERE h.bucket_ts >= :start
        """,
        {"start": start.to_pydatetime()},
        parse_dates=["bucket_ts"],
    )
    res = correlate(panel, cfg.correlation)
    if not res.empty:
        span = panel.groupby("market_id")["bucket_ts"].agg(["min", "max"])
        res["window_start"] = res["market_id"].map(span["min"])
        res["window_end"] = res["market_id"].map(span["max"])
    res["hype_measure"] = measure
    table = wh.table("hype_price_correlations")
    result = wh.replace(table, _with_computed_at(res, table) if not res.empty else [])
    n_sig = int(res["significant"].sum()) if not res.empty else 0
    few = int((~res["enough_samples"]).sum()) if not res.empty else 0
    context.log.info(f"hype_price_correlations: {n_sig} of {len(res)} markets significant after BH")
    shown = res.sort_values("granger_p", na_position="last")
    cols = ["market_id", "n_samples", "best_lag", "pearson_at_best", "spearman_at_best", "granger_p", "granger_p_adj",
            "significant"]  # fmt: skip
    top = shown[shown["best_lag"].notna()]["market_id"].head(TOP_MARKETS * 2).tolist()
    return dg.MaterializeResult(
        metadata={
            "markets": dg.MetadataValue.int(len(res)),
            "significant": dg.MetadataValue.int(n_sig),
            "too_few_samples": dg.MetadataValue.int(few),
            "hype_measure": dg.MetadataValue.text(measure),
            "rows_written": dg.MetadataValue.int(result.rows_written),
            "strongest": dg.MetadataValue.md(markdown_table(shown[cols], max_rows=15)),
            "correlation_by_lag": dg.MetadataValue.md(
                figure_markdown(
                    correlation_by_lag_figure(res, top, _market_names(_latest_markets(wh))),
                    alt="correlation by lag",
                )
                if top
                else "_none_"
            ),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "trading_signals",
            group_name=GROUP,
            kinds={"pandas"},
            deps=[market_features],
            description="Signals of the momentum and hype_lead rules (signals.rules): buy YES or NO at the next bar, "
            "gated by the risk limits, with calibrated win probabilities.",
        ),
        dg.AssetSpec(
            "risk_state",
            group_name=GROUP,
            kinds={"pandas"},
            deps=[market_features],
            description="Paper-book equity, realised daily/weekly/monthly losses, drawdown and the circuit breaker.",
        ),
    ],
    check_specs=[flags_evaluated_spec("trading_signals")],
)
def trading_signals(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> Iterator[dg.MaterializeResult]:
    """Signals from each market's thresholds (signals.*, or its flag variant), gated by the risk limits; writes risk_state."""
    run_settings, cfg, _ = _context(context, settings)
    wh = warehouse.get()
    # The rules' inputs only, raw: 30 days of 1,000 markets is 2.9 M rows, where every column and
    # SQLAlchemy's per-value processing each doubled the read.
    features = wh.read_frame(
        f"SELECT {', '.join(SIGNAL_INPUTS)} FROM market_features", parse_dates=["bucket_ts"], raw=True
    )

    markets = features["market_id"].drop_duplicates().tolist()
    segments = settings.variant_segments("market", markets)  # each market's variants, and since when
    schedule = {
        m: [(seg.start, SignalThresholds.from_settings(seg.settings)) for seg in segs]
        for m, segs in segments.items()
    }
    thresholds = scheduled_values(features["market_id"], features["bucket_ts"], schedule, cfg.thresholds)
    lead_candidates, leads = None, pd.DataFrame()
    if RULE_HYPE_LEAD in cfg.rules:
        lead_schedule = {
            m: [(seg.start, LeadParams.from_settings(seg.settings)) for seg in segs]
            for m, segs in segments.items()
        }
        lead_params = scheduled_values(features["market_id"], features["bucket_ts"], lead_schedule, cfg.lead)
        leads, posts = _trailing_leads(wh, features, cfg, run_settings.research.corr_hype_column)
        lead_candidates = hype_lead_candidates(features, posts, leads, lead_params, cfg.bucket_minutes)
    accepted, blocked, timeline = gated_signals(
        features,
        thresholds,
        cfg.limits,
        cfg.book,
        cfg.risk_reset_at,
        hype_lead=lead_candidates,
        rules=cfg.rules,
    )
    accepted = calibrated_signals(accepted, features, cfg.calibration, cfg.book.price_floor)
    accepted["variants"] = row_variants(accepted["market_id"], accepted["bucket_ts"], segments)
    flag_errors = settings.flag_errors()
    if flag_errors:
        context.log.warning("flags fell back to config values: " + "; ".join(flag_errors))
    start = (features["bucket_ts"].min() if not features.empty else pd.Timestamp(utcnow())).to_pydatetime()
    sig_table, risk_table = wh.table("trading_signals"), wh.table("risk_state")
    sig_res = wh.replace(
        sig_table, _with_computed_at(accepted, sig_table), where=sig_table.c.bucket_ts >= start
    )
    risk_res = wh.replace(
        risk_table, _with_computed_at(timeline, risk_table), where=risk_table.c.bucket_ts >= start
    )
    last = timeline.iloc[-1] if not timeline.empty else None
    state = str(last["state"]) if last is not None else "ok"
    reason = str(last["reason"] or "") if last is not None else ""
    if state != "ok":
        context.log.warning(f"risk state {state}: {reason}")
    halted_buckets = int((timeline["state"] != "ok").sum()) if not timeline.empty else 0
    recent = accepted.sort_values("bucket_ts", ascending=False)
    cols = [
        "market_id",
        "bucket_ts",
        "rule",
        "direction",
        "strength",
        "yes_price",
        "win_prob",
        "rvr",
        "roc",
        "hype_index",
        "lead_lag",
        "category",
    ]
    by_rule = accepted["rule"].value_counts() if not accepted.empty else pd.Series(dtype=int)
    yield dg.MaterializeResult(
        asset_key="trading_signals",
        metadata={
            "signals": dg.MetadataValue.int(len(accepted)),
            **{
                f"signals_{rule}": dg.MetadataValue.int(int(by_rule.get(rule, 0)))
                for rule in (RULE_MOMENTUM, RULE_HYPE_LEAD)
            },
            "markets_with_lead": dg.MetadataValue.int(_markets_with_lead(leads)),
            "blocked_by_risk": dg.MetadataValue.int(len(blocked)),
            "rows_written": dg.MetadataValue.int(sig_res.rows_written),
            "risk_state": dg.MetadataValue.text(state),
            "risk_reason": dg.MetadataValue.text(reason or "-"),
            "thresholds": dg.MetadataValue.json(
                {
                    "rvr_threshold": cfg.thresholds.rvr,
                    "roc_threshold": cfg.thresholds.roc,
                    "hype_threshold": cfg.thresholds.hype,
                }
            ),
            "latest_signals": dg.MetadataValue.md(markdown_table(recent[cols], max_rows=15)),
            "flag_errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in flag_errors) or "_none_"),
        },
    )
    yield flags_evaluated_result("trading_signals", flag_errors)
    yield dg.MaterializeResult(
        asset_key="risk_state",
        metadata={
            "state": dg.MetadataValue.text(state),
            "reason": dg.MetadataValue.text(reason or "-"),
            "equity": dg.MetadataValue.float(float(last["equity"]) if last is not None else 1.0),
            "drawdown": dg.MetadataValue.float(float(last["drawdown"]) if last is not None else 0.0),
            "halted_buckets": dg.MetadataValue.int(halted_buckets),
            "rows_written": dg.MetadataValue.int(risk_res.rows_written),
            "state_changes": dg.MetadataValue.md(markdown_table(_state_changes(timeline), max_rows=15)),
            "equity_chart": dg.MetadataValue.md(
                figure_markdown(equity_figure(timeline), alt="paper equity")
                if not timeline.empty
                else "_none_"
            ),
        },
    )


def _trailing_leads(
    wh: Warehouse, features: pd.DataFrame, cfg: ResearchConfig, measure: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hype_lead rule's lead estimates (earlier refits read back, new ones stored) and post counts."""
    if features.empty:
        return pd.DataFrame(), pd.DataFrame(columns=["market_id", "bucket_ts", "post_count"])
    start = features["bucket_ts"].min().to_pydatetime()
    hype = wh.read_frame(
        f"SELECT market_id, bucket_ts, post_count, {measure} AS hype FROM hype_scores WHERE bucket_ts >= :start",
        {"start": start},
        parse_dates=["bucket_ts"],
    )
    panel = hype.merge(features[["market_id", "bucket_ts", "ret"]], on=["market_id", "bucket_ts"])
    table = wh.table("hype_lead_estimates")
    known = wh.read_frame(
        "SELECT * FROM hype_lead_estimates WHERE estimated_at >= :start",
        {"start": start},
        parse_dates=["estimated_at", "window_start"],
    )
    # a refit whose window reaches past the data we have now may change as data arrives: redo it
    newest = panel["bucket_ts"].max() if not panel.empty else None
    if newest is not None and not known.empty:
        window = pd.Timedelta(days=cfg.lead.window_days)
        # estimates of another window length (the config changed) are made again
        known = known[
            (known["estimated_at"] <= newest) & (known["estimated_at"] - known["window_start"] == window)
        ]
    leads = trailing_leads(
        panel,
        cfg.correlation,
        cfg.lead,
        until=features["bucket_ts"].max(),
        known=known.drop(columns="computed_at", errors="ignore"),
    )
    fresh = leads[~leads["estimated_at"].isin(known["estimated_at"])] if not known.empty else leads
    if not fresh.empty:
        wh.upsert(table, _with_computed_at(fresh.assign(best_lag=fresh["best_lag"].astype("Int64")), table))
    return leads, hype[["market_id", "bucket_ts", "post_count"]]


def _markets_with_lead(leads: pd.DataFrame) -> int:
    """Markets whose newest lead estimate is significant."""
    if leads.empty:
        return 0
    newest = leads[leads["estimated_at"] == leads["estimated_at"].max()]
    return int(newest["significant"].astype(bool).sum())


def _state_changes(timeline: pd.DataFrame) -> pd.DataFrame:
    if timeline.empty:
        return timeline
    changed = timeline["state"] != timeline["state"].shift()
    return timeline.loc[changed, ["bucket_ts", "state", "equity", "drawdown", "reason"]]


@dg.asset(group_name=GROUP, kinds={"pandas"}, deps=["trading_signals", "risk_state", market_features])
def portfolio_allocation(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Fractional-Kelly sizes of the open signals, shrunk for correlation and capped; rebalancing trades."""
    _, cfg, _ = _context(context, settings)
    wh = warehouse.get()
    as_of = wh.scalar("SELECT MAX(bucket_ts) FROM market_features")
    if as_of is None:
        return dg.MaterializeResult(metadata={"positions": dg.MetadataValue.int(0)})
    as_of = pd.Timestamp(as_of)
    since = as_of - buckets(cfg.book.hold_buckets, cfg.bucket_minutes)
    signals = wh.read_frame(
        "SELECT * FROM trading_signals WHERE bucket_ts > :since ORDER BY bucket_ts",
        {"since": since.to_pydatetime()},
        parse_dates=["bucket_ts"],
    )
    window_start = as_of - buckets(cfg.correlation_window_buckets, cfg.bucket_minutes)
    returns = wh.read_frame(
        "SELECT market_id, bucket_ts, ret, yes_price FROM market_features WHERE bucket_ts > :start",
        {"start": window_start.to_pydatetime()},
        parse_dates=["bucket_ts"],
    )
    prices_now = (
        returns.dropna(subset=["yes_price"]).sort_values("bucket_ts").groupby("market_id")["yes_price"].last()
    )
    open_markets = signals["market_id"].drop_duplicates().tolist()
    corr = return_correlations(returns, open_markets)
    current = wh.read_frame("SELECT market_id, direction, target_weight AS weight FROM portfolio_allocation")
    caps = pd.Series(
        {m: settings.for_unit("market", m).signals.max_position_pct / 100.0 for m in open_markets},
        dtype=float,
    )
    alloc = size_portfolio(signals, prices_now, corr, current, cfg.sizing, as_of, position_caps=caps)
    keep = alloc[(alloc["target_weight"] > 0) | (alloc["current_weight"] > 0)]
    table = wh.table("portfolio_allocation")
    result = wh.replace(table, _with_computed_at(keep, table) if not keep.empty else [])
    exposure = float(keep["target_weight"].sum()) if not keep.empty else 0.0
    cols = ["market_id", "direction", "category", "price", "edge", "kelly_fraction", "corr_shrink", "target_weight",
            "capped_by", "trade"]  # fmt: skip
    by_cat = (
        keep.groupby("category", dropna=False)["target_weight"].sum().reset_index()
        if not keep.empty
        else keep
    )
    context.log.info(
        f"portfolio_allocation: {int((keep['target_weight'] > 0).sum())} positions, exposure {exposure:.2%}"
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": dg.MetadataValue.text(str(as_of)),
            "positions": dg.MetadataValue.int(
                int((keep["target_weight"] > 0).sum()) if not keep.empty else 0
            ),
            "total_exposure": dg.MetadataValue.float(exposure),
            "rows_written": dg.MetadataValue.int(result.rows_written),
            "allocation": dg.MetadataValue.md(
                markdown_table(keep[cols] if not keep.empty else keep, max_rows=20)
            ),
            "by_category": dg.MetadataValue.md(markdown_table(by_cat)),
        }
    )


@dg.asset(group_name=GROUP, kinds={"statsmodels"}, deps=["trading_signals"])
def signal_calibration(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Brier score and reliability diagram of each rule's calibrated win probabilities against the market price's."""
    wh = warehouse.get()
    as_of = wh.scalar("SELECT MAX(bucket_ts) FROM market_features")
    signals = wh.read_frame("SELECT rule, win_prob, signal_price, outcome FROM trading_signals")
    table = reliability_table(signals)
    if as_of is None or table.empty:
        return dg.MaterializeResult(
            metadata={"signals_with_outcome": dg.MetadataValue.int(0), "note": dg.MetadataValue.text(
                "no signal has an outcome yet (outcomes are known signal_hold_buckets after the fill)"
            )}
        )  # fmt: skip
    as_of = pd.Timestamp(as_of)
    db = wh.table("signal_calibration")
    result = wh.replace(
        db,
        _with_computed_at(table.assign(as_of=as_of.to_pydatetime()), db),
        where=db.c.as_of == as_of.to_pydatetime(),
    )
    totals = table[table["bin"] == -1].set_index("rule")
    every = totals.loc["*"]
    context.log.info(
        f"signal_calibration: Brier {every['brier']:.4f} vs market {every['brier_market']:.4f} on {int(every['n'])} signals"
    )
    metadata: dict[str, dg.MetadataValue] = {
        "as_of": dg.MetadataValue.text(str(as_of)),
        "signals_with_outcome": dg.MetadataValue.int(int(every["n"])),
        "brier": dg.MetadataValue.float(float(every["brier"])),
        "brier_market": dg.MetadataValue.float(float(every["brier_market"])),
        "rows_written": dg.MetadataValue.int(result.rows_written),
        "by_rule": dg.MetadataValue.md(
            markdown_table(
                totals.reset_index()[
                    ["rule", "n", "brier", "brier_market", "mean_predicted", "mean_market", "mean_outcome"]
                ]
            )
        ),  # fmt: skip
        "reliability_diagram": dg.MetadataValue.md(
            figure_markdown(reliability_figure(table), alt="reliability")
        ),
    }
    for rule in totals.index:
        if rule != "*":
            metadata[f"brier_{rule}"] = dg.MetadataValue.float(float(totals.loc[rule, "brier"]))
    return dg.MaterializeResult(metadata=metadata)


RESEARCH_ASSETS = [
    hype_scores,
    market_features,
    hype_price_correlations,
    trading_signals,
    signal_calibration,
    portfolio_allocation,
]

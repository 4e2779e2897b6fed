"""market_features reads order_book_snapshots and whale_trades: the newest bucket carries the book columns."""

import dagster as dg
import numpy as np
import pytest

from kaizen_pipeline.ingest.assets import INGEST_ASSETS
from kaizen_pipeline.research.assets import hype_scores, market_features
from kaizen_pipeline.resources import build_resources, warehouse_for
from kaizen_pipeline.settings import load_settings

FROZEN_NOW = "2026-11-20T12:05:00Z"


def test_market_features_join_the_ingested_books_and_large_trades(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "KAIZEN_DEMO__FROZEN_NOW": FROZEN_NOW,
        "KAIZEN_DATA_COLLECTION__MAX_MARKETS": "6",
        "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "2",
        "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    result = dg.materialize(
        [*INGEST_ASSETS, hype_scores, market_features],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
    )
    meta = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    # one collection: only the newest bucket has a book (no back-fill into older buckets)
    assert meta["market_features"]["buckets_with_book"] == 6
    wh = warehouse_for(settings.database.sqlalchemy_url())
    features = wh.read_frame("SELECT * FROM market_features", parse_dates=["bucket_ts"])
    latest = features[features["bucket_ts"] == features["bucket_ts"].max()]
    assert len(latest) == 6 and latest["book_mid"].notna().all()
    assert (latest["book_mid"] - latest["yes_price"]).abs().max() <= 0.05  # the mid sits on the price
    assert (latest["book_spread"] > 0).all() and (latest["depth_5c_usd"] >= latest["depth_1c_usd"]).all()
    assert latest["book_imbalance"].between(-1, 1).all()
    older = features[features["bucket_ts"] < features["bucket_ts"].max()]
    assert older["book_mid"].isna().all()
    flows = features["whale_flow_usd"]
    assert flows.notna().mean() > 0.9 and (flows > 0).any() and (flows < 0).any()
    assert np.isfinite(flows.dropna()).all()

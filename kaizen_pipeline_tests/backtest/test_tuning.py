"""Optuna tuning of the signal parameters: planted edge found, seeded, no look-ahead, trials stored, proposals ranked."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from kaizen_pipeline.backtest.assets import TUNING_ASSETS
from kaizen_pipeline.backtest.book import BookConfig
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.tuning import (
    LIVE_WINDOW,
    ParamSpec,
    RuleSpace,
    TuningConfig,
    hype_lead_space,
    momentum_space,
    study_name,
    tune,
    window_signals,
)
from kaizen_pipeline.kaizen.loop import compute_recommendations
from kaizen_pipeline.research.lead import LeadParams
from kaizen_pipeline.research.signals import SignalThresholds
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline_tests.backtest.test_assets import write_research_table

DEFAULT = SignalThresholds(rvr=1.5, roc=0.1, hype=50.0)
SMALL = TuningConfig(n_trials=12, train_bars=384, test_bars=192, max_windows=3, per_market_min_trades=10_000)


def planted_features(n_markets: int = 4, n_bars: int = 1100, seed: int = 5) -> pd.DataFrame:
    """Markets whose momentum signals pay only when volume triples (RVR >= 3.5); RVR 1.6-2.8 moves reverse.

    The config thresholds (RVR 1.5) take both kinds and lose their costs on the bad half; a
    threshold near 3 keeps only the paying kind.
    """
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01", periods=n_bars, freq="15min")
    frames = []
    for m in range(n_markets):
        logit = np.cumsum(rng.normal(0, 0.01, n_bars))
        rvr = rng.uniform(0.5, 1.2, n_bars)
        roc = rng.normal(0, 0.01, n_bars)
        events = np.flatnonzero(rng.random(n_bars - 20) < 0.03) + 2
        for t in events:
            good = rng.random() < 0.5
            rvr[t] = rng.uniform(3.5, 5.0) if good else rng.uniform(1.6, 2.8)
            roc[t] = 0.2
            logit[t + 2 :] += 0.5 if good else -0.5  # the move comes after the fill at t + 1
        frames.append(
            pd.DataFrame(
                {
                    "market_id": f"m{m}",
                    "bucket_ts": index,
                    "yes_price": 1 / (1 + np.exp(-logit)),
                    "rvr": rvr,
                    "roc": roc,
                    "hype_index": rng.uniform(60, 100, n_bars),
                    "category": "politics" if m < 2 else "sports",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _tune(features: pd.DataFrame, tuning: TuningConfig = SMALL):
    as_of = pd.Timestamp(features["bucket_ts"].max())
    return tune(features, [momentum_space(DEFAULT, 15)], BookConfig(), tuning, as_of)


def test_a_planted_threshold_that_pays_out_of_sample_is_found_and_proposed() -> None:
    result = _tune(planted_features())
    table = result.windows
    assert set(table["scope"]) == {"all", "category:politics", "category:sports"}
    tested = table[table["window_index"] != LIVE_WINDOW]
    assert len(tested) == 3 * 3 and (table["window_index"] == LIVE_WINDOW).sum() == 3
    live_all = json.loads(
        table[(table["scope"] == "all") & (table["window_index"] == LIVE_WINDOW)]["params"].iloc[0]
    )
    assert 2.8 < live_all["rvr"] <= 3.5 + 1e-9  # between the losing and the paying RVR bands
    everyone = tested[tested["scope"] == "all"]
    assert (everyone["oos_score_tuned"] > everyone["oos_score_default"]).all()
    assert result.summary["mean_oos_sharpe_tuned"] > result.summary["mean_oos_sharpe_default"]
    proposals = result.proposals.set_index("catalogue_key")
    row = proposals.loc["tune_all_rvr"]
    assert row["proposed"] and row["parameter"] == "signals.rvr_threshold"
    assert row["windows_won"] == row["windows"] == 3 and row["predicted_effect"] > 0
    assert "tune_politics_rvr" in proposals.index  # per category, keyed by its slug
    assert proposals.loc["tune_politics_rvr", "market_share"] == pytest.approx(0.5)
    # every trial is kept, the config values first
    assert len(result.trials) == len(table) * SMALL.n_trials
    first = result.trials[result.trials["trial_number"] == 0]
    assert {json.loads(p)["rvr"] for p in first["params"]} == {DEFAULT.rvr}


def test_the_seed_makes_the_result_reproducible() -> None:
    features = planted_features(n_markets=2, n_bars=800)
    tuning = TuningConfig(
        n_trials=8, train_bars=384, test_bars=192, max_windows=2, per_market_min_trades=10_000
    )
    a, b = _tune(features, tuning), _tune(features, tuning)
    pd.testing.assert_frame_equal(a.windows, b.windows)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    other = _tune(features, TuningConfig(**{**tuning.__dict__, "seed": 7}))
    assert not a.trials["params"].equals(other.trials["params"])


def test_test_window_data_never_changes_the_chosen_params() -> None:
    features = planted_features(n_markets=2, n_bars=900)
    tuning = TuningConfig(
        n_trials=8, train_bars=384, test_bars=192, max_windows=2, per_market_min_trades=10_000
    )
    before = _tune(features, tuning).windows
    last = before[before["window_index"] == before["window_index"].max()].iloc[0]
    changed = features.copy()
    later = changed["bucket_ts"] >= last["test_start"]  # the last test window (and the live window's tail)
    rng = np.random.default_rng(0)
    changed.loc[later, "yes_price"] = rng.uniform(0.05, 0.95, int(later.sum()))
    changed.loc[later, "rvr"] = rng.uniform(0, 6, int(later.sum()))
    after = _tune(changed, tuning).windows
    tested = before["window_index"] != LIVE_WINDOW
    cols = ["scope", "window_index", "params", "train_score", "train_default_score"]
    pd.testing.assert_frame_equal(before.loc[tested, cols], after.loc[tested, cols])
    # ... while the last test window's out-of-sample scores did see the new data
    assert not before.loc[tested, "oos_score_tuned"].equals(after.loc[tested, "oos_score_tuned"])


def test_the_space_is_data_another_rules_parameter_plugs_in() -> None:
    features = planted_features(n_markets=2, n_bars=800)
    seen: list[float] = []

    def quiet(window: pd.DataFrame, params: dict[str, float]) -> pd.DataFrame:
        seen.append(params["burst_z"])
        return window.iloc[:0][["market_id", "bucket_ts"]].assign(direction="YES")

    extra = RuleSpace("quiet", (ParamSpec("burst_z", 1.5, 6.0, 0.25),), quiet, {"burst_z": 3.0})
    tuning = TuningConfig(
        n_trials=4, train_bars=384, test_bars=192, max_windows=1, per_market_min_trades=10_000
    )
    result = tune(
        features, [extra, momentum_space(DEFAULT, 15)], BookConfig(), tuning, features["bucket_ts"].max()
    )
    assert {"burst_z", "rvr", "roc", "hype", "hour_vol"} <= set(json.loads(result.windows["params"].iloc[0]))
    assert seen[0] == 3.0 and len(set(seen)) > 1
    assert result.proposals.empty or "burst_z" not in set(
        result.proposals["param"]
    )  # no config key: not proposed
    with pytest.raises(ValueError, match="low must be < high"):
        ParamSpec("broken", 2.0, 1.0)
    with pytest.raises(ValueError, match="features lack column 'yes_price'"):
        tune(features.drop(columns="yes_price"), [extra], BookConfig(), tuning, features["bucket_ts"].max())


def test_study_names_say_scope_window_and_as_of() -> None:
    as_of = pd.Timestamp("2026-01-12 23:45")
    assert (
        study_name("category:politics", 2, as_of) == "tune|category:politics|window=2|as_of=2026-01-12T23:45"
    )
    assert "window=live" in study_name("all", LIVE_WINDOW, as_of)


@pytest.fixture
def tuning_settings(tmp_path: Path) -> Settings:
    return load_settings(
        database={"path": str(tmp_path / "warehouse.sqlite")},
        backtest={
            "walk_forward": {"train_bars": 384, "test_bars": 192},
            "tuning": {"n_trials": 6, "max_windows": 2, "per_market_min_trades": 10_000},
        },
        signals={"rvr_threshold": 1.5, "roc_threshold": 0.1, "hype_threshold": 50, "rules": ["momentum"]},
    )


def _materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        TUNING_ASSETS,
        resources={
            "warehouse": WarehouseResource(url=settings.database.sqlalchemy_url()),
            "settings": SettingsResource.of(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_trials_land_in_the_warehouse_once_and_a_proposal_becomes_a_recommendation(
    tuning_settings: Settings,
) -> None:
    wh = Warehouse(tuning_settings.database.sqlalchemy_url())
    write_research_table(wh, "market_features", planted_features(n_markets=4, n_bars=900))
    result = _materialize(tuning_settings)
    assert result.success
    studies = wh.count("parameter_tuning")
    trials = wh.count("tuning_trials")
    assert studies == 3 * 3 and trials == studies * 6
    names = set(wh.read_frame("SELECT study_name FROM tuning_trials")["study_name"])
    assert any("category:sports|window=0|as_of=" in n for n in names)
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert isinstance(meta["mean_oos_sharpe_tuned"].value, float)
    assert "data:image/png;base64" in meta["chart"].value

    assert _materialize(tuning_settings).success  # the same as_of again: replaced, not added
    assert (wh.count("parameter_tuning"), wh.count("tuning_trials")) == (studies, trials)
    proposals = wh.read_frame("SELECT * FROM tuning_proposals WHERE proposed")
    assert "tune_all_rvr" in set(proposals["catalogue_key"])

    wh.upsert(
        wh.table("kaizen_metrics"),
        [
            {
                "metric": "backtest_sharpe",
                "scope": "*",
                "ts": datetime(2026, 1, 10),
                "value": 0.5,
                "sample_size": 1,
                "source": "backtest_results",
                "as_of": datetime(2026, 1, 10),
                "collected_at": datetime(2026, 1, 10),
            }
        ],  # fmt: skip
    )
    recs = compute_recommendations(wh, tuning_settings).frame.set_index("catalogue_key")
    rec = recs.loc["tune_all_rvr"]
    assert rec["parameter"] == "signals.rvr_threshold" and rec["target_metric"] == "backtest_sharpe"
    proposed = proposals.set_index("catalogue_key").loc["tune_all_rvr"]
    assert float(rec["proposed_value"]) == pytest.approx(proposed["proposed_value"])
    assert rec["predicted_effect"] == pytest.approx(proposed["predicted_effect"])
    wh.dispose()


def test_the_hour_option_holds_each_signal_to_its_own_hours_roc_threshold() -> None:
    features = planted_features(n_markets=2, n_bars=400)
    features.loc[features.index % 7 == 0, "roc"] = 0.08  # signals near the threshold in every hour
    features["rvr"] = features["rvr"].clip(lower=2.0)
    factors = pd.Series(np.linspace(0.5, 2.0, 24), index=range(24))
    lo, hi = features["bucket_ts"].min(), features["bucket_ts"].max()
    space = momentum_space(DEFAULT, 15)
    params = {"rvr": 1.5, "roc": 0.1, "hype": 50.0, "hour_vol": 1.0}
    got = window_signals([space], features, params, lo, hi, factors)
    hours = features["bucket_ts"].dt.hour
    expected = pd.concat(
        [
            rule_signals(rows, SignalThresholds(1.5, 0.1 * factors[h], 50.0), 15)
            for h, rows in features.groupby(hours)
        ]
    )
    key = ["market_id", "bucket_ts"]
    assert len(got) > 20
    pd.testing.assert_frame_equal(
        got[key].sort_values(key).reset_index(drop=True),
        expected[key].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    off = window_signals([space], features, params | {"hour_vol": 0.0}, lo, hi, factors)
    assert len(off) != len(got)


def test_hype_leads_burst_threshold_is_tuned_through_the_real_rule() -> None:
    features = planted_features(n_markets=2, n_bars=800)
    rng = np.random.default_rng(1)
    features["post_count"] = rng.poisson(1.0, len(features)).astype(float)
    features.loc[features.index % 97 == 50, "post_count"] = 25.0  # bursts
    days = pd.date_range(features["bucket_ts"].min().normalize(), features["bucket_ts"].max(), freq="D")
    leads = pd.DataFrame(
        [
            {"market_id": m, "estimated_at": d, "best_lag": 2, "pearson_at_best": 0.3, "significant": True}
            for m in ("m0", "m1")
            for d in days
        ]
    )
    space = hype_lead_space(leads, LeadParams(), 15)
    assert space.warmup_bars == LeadParams().baseline_buckets
    loose = space.signals_for(features, {"burst_z": 3.0})
    assert len(loose) > 5 and space.signals_for(features, {"burst_z": 6.0}).shape[0] <= len(loose)
    tuning = TuningConfig(
        n_trials=3, train_bars=384, test_bars=192, max_windows=1, per_market_min_trades=10_000
    )
    result = tune(
        features, [space, momentum_space(DEFAULT, 15)], BookConfig(), tuning, features["bucket_ts"].max()
    )
    assert {"burst_z", "rvr"} <= set(json.loads(result.windows["params"].iloc[0]))

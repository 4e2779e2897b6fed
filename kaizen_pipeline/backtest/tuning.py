"""Adaptive signal parameters: Optuna TPE studies on walk-forward train windows, judged out of sample (pure).

Scopes: every market together (``all``), each ``market_features.category`` (``category:<name>``) and
each market with at least ``per_market_min_trades`` trades at the default parameters over the
history (``market:<id>``). Windows are :mod:`walk_forward`'s (``window_starts`` over the bars), the
newest ``max_windows`` of them, plus a ``live`` window: the newest ``train_bars`` bars, tuned but
not tested (its best parameters are what a proposal would set).

Per scope and window one Optuna study (``TPESampler`` seeded by ``seed``, the scope and the window; ``n_trials`` trials, the default
parameters enqueued as trial 0) maximizes the train window's score, computed from the train
window's rows only (plus ``warmup_bars`` before it for trailing baselines); the best and the
default parameters are then backtested on the following test window with fresh cash. No
look-ahead: nothing of the test window enters the study.

Score = Sharpe of the equal-weight book after fees and slippage (``run_book`` -> ``backtest.metrics``);
a book with fewer than ``min_trades`` trades scores 0 (not trading earns the risk-free 0).

Time of day: with ``hour_of_day`` a rule whose space names an ``hour_scaled`` parameter gets a
categorical ``hour_vol`` (0/1); at 1 that parameter is multiplied, in each UTC hour h, by
sigma_h / sigma_all of the scope's bar-to-bar YES-price returns in the train window (clipped to
[0.25, 4]; an hour with fewer than 20 returns keeps 1; the rule runs once at the loosest hour's
threshold and each signal is then held to its own hour's threshold on ``hour_column``). The test window uses the train window's
profile, so the option is kept only where the study picks it and it then holds up out of sample.

Proposal rule (overfitting guard): count a scope's *decided* windows, the tested windows where the
tuned and the config values scored differently out of sample (a tie, e.g. nothing traded or the
study kept the config values, says nothing either way). With at least ``min_windows`` of them,
tuned beats default when its out-of-sample score is higher in more than half of the decided
windows AND higher on their average. Only then is each live parameter that differs from its default proposed, with
predicted effect on the book's Sharpe = mean out-of-sample gain x the scope's share of the
markets / the number of changed parameters (tuned jointly; each experiment moves one).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd

from kaizen_pipeline.backtest.book import BookConfig, build_book, price_grid
from kaizen_pipeline.backtest.rules import rule_signals
from kaizen_pipeline.backtest.run import run_book
from kaizen_pipeline.backtest.walk_forward import window_starts
from kaizen_pipeline.research.lead import LeadParams, hype_lead_rule
from kaizen_pipeline.research.signals import SIGNAL_COLUMNS, SignalThresholds

SignalsFor = Callable[[pd.DataFrame, dict[str, float]], pd.DataFrame]

LIVE_WINDOW = -1  # window_index of the study on the newest train_bars (no test window)
HOUR_VOL = "hour_vol"
HOUR_FACTOR_CLIP = (0.25, 4.0)
HOUR_MIN_RETURNS = 20
SCOPE_ALL = "all"
PROPOSED_KINDS = ("all", "category")  # market scopes are reported, not proposed (module docstring)

TUNING_COLUMNS = [
    "scope",
    "scope_kind",
    "window_index",
    "study_name",
    "markets",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "n_trials",
    "params",
    "default_params",
    "hour_vol",
    "train_score",
    "train_default_score",
    "train_trades",
    "oos_score_tuned",
    "oos_score_default",
    "oos_trades_tuned",
    "oos_trades_default",
    "tuned_beats_default",
]
TRIAL_COLUMNS = ["study_name", "trial_number", "scope", "window_index", "params", "score", "trades", "state"]
PROPOSAL_COLUMNS = [
    "catalogue_key",
    "scope",
    "scope_kind",
    "param",
    "parameter",
    "default_value",
    "proposed_value",
    "windows",
    "windows_won",
    "mean_oos_gain",
    "market_share",
    "predicted_effect",
    "proposed",
    "reason",
]


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter: a float range (``low``..``high`` by ``step``) or ``choices``."""

    name: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[float, ...] = ()
    config_key: str | None = None  # the settings key a proposal changes (None: nothing to propose)

    def __post_init__(self) -> None:
        if not self.choices and not self.low < self.high:
            raise ValueError(
                f"tuning parameter {self.name!r}: low must be < high (got {self.low}, {self.high})"
            )

    def suggest(self, trial: optuna.Trial) -> float:
        if self.choices:
            return float(trial.suggest_categorical(self.name, list(self.choices)))
        # rounded: the step grid's floats carry binary noise (0.14500000000000002)
        return round(float(trial.suggest_float(self.name, self.low, self.high, step=self.step)), 9)


@dataclass(frozen=True)
class RuleSpace:
    """A signal rule's tunable parameters and its generator ``signals_for(features_window, params)``.

    ``defaults``: the configured values (the control). ``warmup_bars``: bars before a window the
    rule may read (trailing baselines). ``hour_scaled``: the parameter the time-of-day option scales.
    """

    rule: str
    params: tuple[ParamSpec, ...]
    signals_for: SignalsFor
    defaults: dict[str, float]
    warmup_bars: int = 0
    hour_scaled: str | None = None
    hour_column: str | None = None  # the signal column |value| >= hour_scaled's threshold (the rule's test)

    def __post_init__(self) -> None:
        missing = [p.name for p in self.params if p.name not in self.defaults]
        if missing:
            raise ValueError(f"rule {self.rule!r}: no default for parameter(s) {', '.join(missing)}")
        if self.hour_scaled is not None and self.hour_scaled not in self.defaults:
            raise ValueError(
                f"rule {self.rule!r}: hour_scaled {self.hour_scaled!r} is not one of its parameters"
            )


@dataclass(frozen=True)
class TuningConfig:
    """backtest.tuning knobs (windows come from backtest.walk_forward)."""

    n_trials: int = 30
    seed: int = 42
    train_bars: int = 672
    test_bars: int = 192
    max_windows: int = 4
    min_trades: int = 5
    per_market_min_trades: int = 40
    min_windows: int = 2
    hour_of_day: bool = True

    def __post_init__(self) -> None:
        for name in ("n_trials", "train_bars", "test_bars", "max_windows", "min_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"tuning: {name} must be >= 1 (got {getattr(self, name)!r})")

    @classmethod
    def from_settings(cls, settings: Any) -> TuningConfig:
        tu, wf = settings.backtest.tuning, settings.backtest.walk_forward
        return cls(
            n_trials=tu.n_trials,
            seed=tu.seed,
            train_bars=wf.train_bars,
            test_bars=wf.test_bars,
            max_windows=tu.max_windows,
            min_trades=tu.min_trades,
            per_market_min_trades=tu.per_market_min_trades,
            min_windows=tu.min_windows,
            hour_of_day=tu.hour_of_day,
        )


@dataclass
class TuningResult:
    """parameter_tuning rows, every trial, the proposals and a summary."""

    windows: pd.DataFrame
    trials: pd.DataFrame
    proposals: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)


def momentum_space(defaults: SignalThresholds, bucket_minutes: int) -> RuleSpace:
    """The momentum rule (research.signals.signal_rule): RVR, ROC and hype thresholds; the hour option scales ROC."""

    def signals_for(features: pd.DataFrame, params: dict[str, float]) -> pd.DataFrame:
        th = SignalThresholds(params["rvr"], params["roc"], params["hype"])
        return rule_signals(features, th, bucket_minutes)

    return RuleSpace(
        rule="momentum",
        params=(
            ParamSpec("rvr", 1.0, 5.0, 0.1, config_key="signals.rvr_threshold"),
            ParamSpec("roc", 0.01, 0.30, 0.005, config_key="signals.roc_threshold"),
            ParamSpec("hype", 0.0, 95.0, 5.0, config_key="signals.hype_threshold"),
        ),
        signals_for=signals_for,
        defaults={"rvr": defaults.rvr, "roc": defaults.roc, "hype": defaults.hype},
        hour_scaled="roc",
        hour_column="roc",  # the rule fires on |ROC| >= roc_threshold
    )


def hype_lead_space(leads: pd.DataFrame, base: LeadParams, bucket_minutes: int) -> RuleSpace:
    """The hype_lead rule (research.lead.hype_lead_rule) on the stored lead estimates: the burst z threshold.

    ``base``: the configured LeadParams; features need ``post_count``. The burst baseline reads
    ``baseline_buckets`` bars before a window (warm-up: trailing only).
    """

    def signals_for(features: pd.DataFrame, params: dict[str, float]) -> pd.DataFrame:
        return hype_lead_rule(features, leads, replace(base, burst_z=params["burst_z"]), bucket_minutes)

    return RuleSpace(
        rule="hype_lead",
        params=(ParamSpec("burst_z", 1.5, 6.0, 0.25, config_key="signals.hype_lead_burst_z"),),
        signals_for=signals_for,
        defaults={"burst_z": float(base.burst_z)},
        warmup_bars=int(base.baseline_buckets),
    )


def scope_slug(scope: str) -> str:
    """A catalogue-key-safe name of a scope: ``category:US Politics`` -> ``us_politics``."""
    name = scope.split(":", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unnamed"


def study_name(scope: str, window_index: int, as_of: pd.Timestamp) -> str:
    """Study names say the scope (category or market), the window and the as_of."""
    window = "live" if window_index == LIVE_WINDOW else str(window_index)
    return f"tune|{scope}|window={window}|as_of={pd.Timestamp(as_of):%Y-%m-%dT%H:%M}"


def study_seed(seed: int, scope: str, window_index: int) -> int:
    """The TPE seed of one study: ``seed`` mixed with the scope and window (stable across runs and as_of)."""
    return (seed + zlib.crc32(f"{scope}|{window_index}".encode())) % 2**32


def hour_factors(features: pd.DataFrame) -> pd.Series:
    """sigma_h / sigma_all of bar-to-bar YES-price returns per UTC hour (module docstring), index 0..23."""
    frame = features[["market_id", "bucket_ts", "yes_price"]].sort_values(["market_id", "bucket_ts"])
    ret = frame.groupby("market_id")["yes_price"].pct_change()
    hours = pd.to_datetime(frame["bucket_ts"]).dt.hour
    ret = ret.replace([np.inf, -np.inf], np.nan)
    sigma_all = float(ret.std())
    out = pd.Series(1.0, index=range(24))
    if not np.isfinite(sigma_all) or sigma_all <= 0:
        return out
    by_hour = ret.groupby(hours).agg(["std", "count"])
    ok = by_hour["count"] >= HOUR_MIN_RETURNS
    out.loc[by_hour.index[ok]] = (by_hour.loc[ok, "std"] / sigma_all).clip(*HOUR_FACTOR_CLIP).to_numpy()
    return out.fillna(1.0)


def window_signals(
    spaces: Sequence[RuleSpace],
    features: pd.DataFrame,
    params: dict[str, float],
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    factors: pd.Series | None,
) -> pd.DataFrame:
    """Every rule's signals on ``features`` (already cut to the window and its warm-up), kept in [lo, hi].

    Where two rules fire on one market and bucket, the earlier space's row is kept.
    """
    frames = []
    for space in spaces:
        mine = {p.name: params.get(p.name, space.defaults[p.name]) for p in space.params}
        scaled = space.hour_scaled
        if scaled is not None and factors is not None and params.get(HOUR_VOL, 0.0) >= 0.5:
            # one call at the loosest hour's threshold, then each row against its own hour's threshold
            loosest = mine | {scaled: mine[scaled] * float(factors.min())}
            sig = space.signals_for(features, loosest)
            if not sig.empty:
                hours = pd.to_datetime(sig["bucket_ts"]).dt.hour.to_numpy()
                needed = mine[scaled] * factors.reindex(hours).to_numpy()
                sig = sig[np.abs(sig[space.hour_column].astype(float).to_numpy()) >= needed]
            frames.append(sig)
        else:
            frames.append(space.signals_for(features, mine))
    parts = [f for f in frames if f is not None and not f.empty]
    if not parts:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    sig = pd.concat(parts, ignore_index=True)
    sig["bucket_ts"] = pd.to_datetime(sig["bucket_ts"])
    sig = sig[(sig["bucket_ts"] >= lo) & (sig["bucket_ts"] <= hi)]
    return sig.drop_duplicates(["market_id", "bucket_ts"], keep="first")


@dataclass
class _Window:
    """Rows of one window of one scope, its price grid and warm-up rows."""

    lo: pd.Timestamp
    hi: pd.Timestamp
    rows: pd.DataFrame  # warm-up + window
    grid: pd.DataFrame


def _cut(
    features: pd.DataFrame, index: pd.DatetimeIndex, lo: int, hi: int, warmup: int, floor: float
) -> _Window:
    start, end = index[lo], index[hi - 1]
    warm_start = index[max(lo - warmup, 0)]
    ts = features["bucket_ts"]
    rows = features[(ts >= warm_start) & (ts <= end)]
    inside = rows[rows["bucket_ts"] >= start]
    grid = price_grid(inside, floor) if len(inside) else pd.DataFrame()
    return _Window(start, end, rows, grid)


def score(
    spaces: Sequence[RuleSpace],
    window: _Window,
    params: dict[str, float],
    config: BookConfig,
    min_trades: int,
    factors: pd.Series | None,
) -> tuple[float, int]:
    """(score, trades) of ``params`` on ``window`` (module docstring: Sharpe, 0 below min_trades)."""
    if window.grid.empty:
        return 0.0, 0
    signals = window_signals(spaces, window.rows, params, window.lo, window.hi, factors)
    inside = window.rows[window.rows["bucket_ts"] >= window.lo]
    run = run_book(build_book(inside, signals, config, grid=window.grid), config)
    trades = int(run.book_metrics["num_trades"]) if run.book.n_cols else 0
    sharpe = run.book_metrics["sharpe"]
    if trades < min_trades or sharpe is None or not np.isfinite(sharpe):
        return 0.0, trades
    return float(sharpe), trades


def _study(
    spaces: Sequence[RuleSpace],
    train: _Window,
    config: BookConfig,
    tuning: TuningConfig,
    factors: pd.Series | None,
    name: str,
    defaults: dict[str, float],
    seed: int,
) -> optuna.Study:
    specs = [p for s in spaces for p in s.params]
    if factors is not None:
        specs.append(ParamSpec(HOUR_VOL, choices=(0.0, 1.0)))
    study = optuna.create_study(
        study_name=name, direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
    )
    # the control is always tried: the study never picks something worse in sample than the config
    study.enqueue_trial(defaults | ({HOUR_VOL: 0.0} if factors is not None else {}))

    def objective(trial: optuna.Trial) -> float:
        params = {p.name: p.suggest(trial) for p in specs}
        value, trades = score(spaces, train, params, config, tuning.min_trades, factors)
        trial.set_user_attr("trades", trades)
        return value

    study.optimize(objective, n_trials=tuning.n_trials)
    return study


def _scopes(
    features: pd.DataFrame, spaces: Sequence[RuleSpace], config: BookConfig, tuning: TuningConfig
) -> list[tuple[str, str, list[str]]]:
    """(scope, kind, markets): all, each category, each market over the per-market trade floor.

    A category holding every market would repeat ``all``'s studies, so it is left out.
    """
    markets = sorted(features["market_id"].unique())
    scopes = [(SCOPE_ALL, "all", markets)]
    if "category" in features.columns:
        cats = features[["market_id", "category"]].dropna().drop_duplicates("market_id", keep="last")
        for cat, rows in cats.groupby("category"):
            members = sorted(rows["market_id"])
            if str(cat).strip() and members != markets:
                scopes.append((f"category:{cat}", "category", members))
    defaults = {k: v for s in spaces for k, v in s.defaults.items()}
    lo, hi = features["bucket_ts"].min(), features["bucket_ts"].max()
    grid = price_grid(features, config.price_floor)
    signals = window_signals(spaces, features, defaults, lo, hi, None)
    run = run_book(build_book(features, signals, config, grid=grid), config)
    if run.book.n_cols and len(run.trades):
        traded = pd.Series(run.book.columns.get_level_values(0)[run.trades.col]).value_counts()
        for market, n in traded.items():
            if n >= tuning.per_market_min_trades:
                scopes.append((f"market:{market}", "market", [str(market)]))
    return scopes


def tune(
    features: pd.DataFrame,
    spaces: Sequence[RuleSpace],
    config: BookConfig,
    tuning: TuningConfig,
    as_of: pd.Timestamp,
) -> TuningResult:
    """Per scope and walk-forward window: an Optuna study in train, tuned vs default out of sample."""
    if not spaces:
        raise ValueError("tune: no rule space to tune")
    for col in ("market_id", "bucket_ts", "yes_price"):
        if col not in features.columns:
            raise ValueError(f"tune: features lack column {col!r}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    features = features.assign(bucket_ts=pd.to_datetime(features["bucket_ts"]))
    index = pd.DatetimeIndex(sorted(features["bucket_ts"].unique()))
    starts = window_starts(len(index), tuning.train_bars, tuning.test_bars)[-tuning.max_windows :]
    empty = TuningResult(
        pd.DataFrame(columns=TUNING_COLUMNS),
        pd.DataFrame(columns=TRIAL_COLUMNS),
        pd.DataFrame(columns=PROPOSAL_COLUMNS),
        {"windows": 0, "studies": 0},
    )
    if not starts:
        return empty
    defaults = {k: v for s in spaces for k, v in s.defaults.items()}
    warmup = max(s.warmup_bars for s in spaces)
    hour_option = tuning.hour_of_day and any(s.hour_scaled for s in spaces)
    plan = [(s, s + tuning.train_bars, s + tuning.train_bars + tuning.test_bars) for s in starts]
    live_lo = max(len(index) - tuning.train_bars, 0)
    n_markets = features["market_id"].nunique()
    rows, trials = [], []
    for scope, kind, markets in _scopes(features, spaces, config, tuning):
        data = features[features["market_id"].isin(markets)]
        tested = [(w, lo, mid, hi) for w, (lo, mid, hi) in enumerate(plan)]
        for w, lo, mid, hi in [*tested, (LIVE_WINDOW, live_lo, len(index), None)]:
            train = _cut(data, index, lo, mid, warmup, config.price_floor)
            factors = hour_factors(train.rows[train.rows["bucket_ts"] >= train.lo]) if hour_option else None
            name = study_name(scope, w, as_of)
            seed = study_seed(tuning.seed, scope, w)
            study = _study(spaces, train, config, tuning, factors, name, defaults, seed)
            best = {k: round(float(v), 9) for k, v in study.best_params.items()}
            for t in study.trials:
                trials.append(
                    {
                        "study_name": name,
                        "trial_number": t.number,
                        "scope": scope,
                        "window_index": w,
                        "params": json.dumps(
                            {k: round(float(v), 9) for k, v in t.params.items()}, sort_keys=True
                        ),
                        "score": t.value,
                        "trades": t.user_attrs.get("trades"),
                        "state": t.state.name.lower(),
                    }
                )
            row = {
                "scope": scope,
                "scope_kind": kind,
                "window_index": w,
                "study_name": name,
                "markets": len(markets),
                "train_start": train.lo,
                "train_end": train.hi,
                "test_start": None,
                "test_end": None,
                "n_trials": len(study.trials),
                "params": json.dumps(best, sort_keys=True),
                "default_params": json.dumps(defaults, sort_keys=True),
                "hour_vol": bool(best.get(HOUR_VOL, 0.0) >= 0.5) if hour_option else None,
                "train_score": float(study.best_value),
                "train_default_score": float(study.trials[0].value),
                "train_trades": study.best_trial.user_attrs.get("trades"),
                "oos_score_tuned": None,
                "oos_score_default": None,
                "oos_trades_tuned": None,
                "oos_trades_default": None,
                "tuned_beats_default": None,
            }
            if hi is not None:
                # the test window: never seen by the study; the hour profile is the train window's
                test = _cut(data, index, mid, hi, warmup, config.price_floor)
                tuned, n_tuned = score(spaces, test, best, config, tuning.min_trades, factors)
                control, n_control = score(spaces, test, defaults, config, tuning.min_trades, None)
                row |= {
                    "test_start": test.lo,
                    "test_end": test.hi,
                    "oos_score_tuned": tuned,
                    "oos_score_default": control,
                    "oos_trades_tuned": n_tuned,
                    "oos_trades_default": n_control,
                    "tuned_beats_default": bool(tuned > control),
                }
            rows.append(row)
    table = pd.DataFrame(rows, columns=TUNING_COLUMNS)
    proposals = propose(table, spaces, tuning.min_windows, n_markets)
    tested_rows = table[table["window_index"] != LIVE_WINDOW]
    hour_rows = tested_rows[tested_rows["hour_vol"].notna()] if hour_option else tested_rows.iloc[:0]
    summary = {
        "windows": len(plan),
        "studies": len(table),
        "scopes": int(table["scope"].nunique()),
        "mean_oos_sharpe_tuned": float(tested_rows["oos_score_tuned"].astype(float).mean()),
        "mean_oos_sharpe_default": float(tested_rows["oos_score_default"].astype(float).mean()),
        # over the decided windows (a tie says nothing either way)
        "tuned_win_share": _win_share(tested_rows),
        "hour_vol_chosen_share": float(hour_rows["hour_vol"].astype(float).mean())
        if len(hour_rows)
        else math.nan,
        "hour_vol_won_share": _hour_vol_won(hour_rows),
        "proposed": int(proposals["proposed"].sum()) if len(proposals) else 0,
    }
    return TuningResult(table, pd.DataFrame(trials, columns=TRIAL_COLUMNS), proposals, summary)


def _win_share(rows: pd.DataFrame) -> float:
    """Share of the decided windows (tuned and config scored differently) that tuned won."""
    gains = rows["oos_score_tuned"].astype(float) - rows["oos_score_default"].astype(float)
    gains = gains[gains.abs() > 1e-12]
    return float((gains > 0).mean()) if len(gains) else math.nan


def _hour_vol_won(rows: pd.DataFrame) -> float:
    """Share of the decided tested windows that picked the hour option in which tuned then beat the config."""
    picked = rows[rows["hour_vol"].astype(bool)] if len(rows) else rows
    return _win_share(picked) if len(picked) else math.nan


def propose(
    table: pd.DataFrame, spaces: Sequence[RuleSpace], min_windows: int, n_markets: int
) -> pd.DataFrame:
    """One row per scope (all, category) and live parameter that differs from its default (module docstring rule)."""
    specs = {p.name: p for s in spaces for p in s.params}
    defaults = {k: v for s in spaces for k, v in s.defaults.items()}
    rows = []
    for scope, part in table[table["scope_kind"].isin(PROPOSED_KINDS)].groupby("scope", sort=True):
        tested = part[part["window_index"] != LIVE_WINDOW]
        live = part[part["window_index"] == LIVE_WINDOW]
        if live.empty:
            continue
        gains = tested["oos_score_tuned"].astype(float) - tested["oos_score_default"].astype(float)
        gains = gains[gains.abs() > 1e-12]  # the decided windows
        won = int((gains > 0).sum())
        mean_gain = float(gains.mean()) if len(gains) else math.nan
        share = float(part["markets"].iloc[0]) / max(n_markets, 1)
        params = json.loads(live["params"].iloc[0])
        changed = [
            name
            for name, spec in specs.items()
            if spec.config_key and name in params and not math.isclose(params[name], defaults[name])
        ]
        verdict = f"tuned beat the config out of sample in {won} of {len(gains)} decided windows"
        if len(gains) < min_windows:
            ok, reason = False, f"{len(gains)} decided window(s) of {len(tested)} < min_windows {min_windows}"
        elif not (won * 2 > len(gains) and mean_gain > 0):
            ok, reason = False, f"{verdict}, mean gain {mean_gain:+.3f}: not proposed"
        else:
            ok, reason = True, f"{verdict}, mean gain {mean_gain:+.3f}"
        for name in changed:
            rows.append(
                {
                    "catalogue_key": f"tune_{scope_slug(scope)}_{name}"[:64],
                    "scope": scope,
                    "scope_kind": part["scope_kind"].iloc[0],
                    "param": name,
                    "parameter": specs[name].config_key,
                    "default_value": defaults[name],
                    "proposed_value": params[name],
                    "windows": len(gains),
                    "windows_won": won,
                    "mean_oos_gain": mean_gain,
                    "market_share": share,
                    "predicted_effect": mean_gain * share / len(changed) if ok else 0.0,
                    "proposed": ok,
                    "reason": reason,
                }
            )
    return pd.DataFrame(rows, columns=PROPOSAL_COLUMNS)

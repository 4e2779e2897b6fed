"""Benchmark: guarded rollouts on simulated units, through the real rollout code path.

Each simulation is one rollout on a fresh SQLite warehouse: ``DeploymentStore.create`` starts it with
the default ``rollouts`` settings (5% -> 25% -> 100%, 24 h a step, 5 units on the change with data),
units are assigned by the rollout's flag through ``SettingsResource.resolve_units`` (which records
their first exposures, as the ingest and research runs do), and ``look_at_rollouts`` looks every
``experiments.look_interval_hours`` (the ``rollouts_due`` condition of the sensor), with the default
guardrails (one-sided always-valid intervals, Holm, sample-ratio test). A simulation ends when the
rollout completes or is rolled back, or at its horizon. Only the unit data is synthetic: the values
the runner reads (``UnitData``), drawn from the demo's measured truth with a planted effect on the
units on the change. Each rollout starts at a random quarter hour of its day (a shipped experiment
hands over at whatever time its look decided).

Scenarios and why these sizes:

- **runs** (``transport.*``, unit: one ingest run): 96 runs a day, the 15-minute ingest schedule.
  Values are the run world of ``bench/ground_truth.py`` (docs/experiments.md, demo ground truth):
  success 0.967, API error rate 0.31 (sd 0.10), duration 2.87 s (sd 1.6), no degraded runs. Harmful:
  ``transport.max_retries`` 5 -> 0, the measured truth: success falls by 0.967 (to 0) and the error
  rate rises to 0.49 (sd 0.35; a run without retries stops at its first 503). Harmless:
  ``transport.timeout_seconds`` 20 -> 25, no effect. Beneficial: ``transport.backoff_base_seconds``
  -> 0, duration 2.87 -> 0.07 s, success unchanged (its measured -0.033 [-0.145, +0.079] is noise).
  Horizon 14 days (a healthy ramp takes 3).
- **markets** (``signals.*``, unit: a tracked market, analysed per market-day): P&L per market-day
  as a fraction of a market side's stake, from the market world of ``bench/ground_truth.py``: a
  market's level (sd ``MARKET_LEVEL_SD``) plus heavy-tailed daily noise (Student t, 3 df, sd
  ``MARKET_DAY_SD``) and Poisson entries; drawdown as ``market_day_values`` computes it over the
  runner's 42-day window. Harmful: ``signals.hype_threshold`` 70 -> 0, -0.0117 a market-day (-0.88
  between-market sd), three times the entries. Harmless: ``signals.roc_threshold`` 0.10 -> 0.12, no
  effect. Beneficial: ``signals.rvr_threshold`` 2 -> 3, +0.0170 a market-day. Two universes: the
  demo's 50 markets, where 5% is 0 to 5 markets (the runner widens a canary to
  ``rollouts.min_units_per_step`` markets), and 1,000 tracked markets, a live book's size,
  where 5% is about 50. Horizon 14 days, as for runs: a ramp that has not finished in two weeks
  has stalled (its exposure then counts the two weeks).

Exposure is counted in the change's unit until the rollout ended (rollback, completion or horizon):
runs on the change for run units, market-days on the change for market units. Lead time is the
days from the start to ``complete`` (100% with no guardrail harmed).

The last line is the summary the issue asks for (harmful rate: the primary scenario, runs, rolled
back at the 5% step; false rollbacks: every harmless and beneficial simulation of every scenario;
exposure: runs on the primary scenario's harmful change before it ended; lead time: the replayed
closed loop's, from the recommendation to 100% of markets, or with ``--no-replay`` every harmless and
beneficial simulation that completed, days from the start to ``complete``):
``harmful_rollback_rate=<x> false_rollback_rate=<x> mean_harmful_exposure=<x> lead_time_days=<x>``.

    python bench/closed_loop.py                # 200 simulations a scenario and the replay (about 12 min)
    python bench/closed_loop.py --sims 50      # a quick look
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
import yaml
from statsmodels.stats.proportion import proportion_confint

from kaizen_pipeline.experiments.metrics import market_day_values
from kaizen_pipeline.experiments.replay import MARKET_LOOP_CONFIG, LoopReplay, frozen_at
from kaizen_pipeline.experiments.runner import UnitData
from kaizen_pipeline.flags.store import FlagStore
from kaizen_pipeline.loop.control import DecisionLog
from kaizen_pipeline.loop.deployments import CHANGE, DeploymentStore
from kaizen_pipeline.loop.history import dora_figures, per_deployment, read_history
from kaizen_pipeline.loop.runner import look_at_rollouts, rollouts_due
from kaizen_pipeline.ops.progress import terminal_progress
from kaizen_pipeline.resources import _WAREHOUSES, SettingsResource, warehouse_for
from kaizen_pipeline.settings import Settings, load_settings

Effect = Literal["harmful", "harmless", "beneficial"]
RUN_SLOT = timedelta(minutes=15)  # the ingest schedule: one run, and one resolution of every market
RUN_BATCH = timedelta(hours=6)  # runs resolved together (one SettingsResource): see _simulate_runs
START = datetime(2026, 11, 2)  # a Monday; each rollout starts at a random quarter hour of this day
RUN_COLUMNS = ["run_id", "started_at", "metric", "value"]
MARKET_COLUMNS = ["market_id", "day", "metric", "value"]


# --- the demo's measured truth (bench/ground_truth.py, docs/experiments.md) -----------------------


@dataclass(frozen=True)
class RunWorld:
    """Per-run metric distributions of one transport value in the demo's run world."""

    success: float  # P(run_success_rate = 1)
    error_mean: float  # api_error_rate, a Beta with this mean and sd
    error_sd: float
    retries: bool  # api_retry_rate equals the error rate (every 503 retried) or is 0
    duration_mean: float  # run_duration_seconds, a log-normal with this mean and sd
    duration_sd: float


RUN_CONTROL = RunWorld(0.967, 0.31, 0.10, True, 2.87, 1.6)
RUN_TREATED: dict[Effect, RunWorld] = {
    # max_retries 0: every run stops at its first 503 (success 0); failing requests are then a larger,
    # bimodal share of the few made (measured 0.49, sd 0.35: 1.0 when the first request fails)
    "harmful": RunWorld(0.0, 0.49, 0.35, False, 0.022, 0.044),
    "harmless": RUN_CONTROL,
    # backoff_base 0: a 503 clears at once, so waiting bought nothing: same success, 0.07 s runs
    "beneficial": RunWorld(0.967, 0.31, 0.10, True, 0.07, 0.03),
}


@dataclass(frozen=True)
class MarketWorld:
    """P&L per market-day (fraction of stake) and entries of one signal threshold in the market world.

    A market-day's P&L is ``MARKET_MEAN + level + shift + day_sd * noise``: ``level`` the market's
    lasting level (sd ``MARKET_LEVEL_SD``), plus a per-market ``effect_sd`` spread of the change's
    effect; ``noise`` Student t (3 df, unit variance: the measured within-market excess kurtosis is
    23) correlated ``corr`` with the same day's control noise (the paired worlds share the prices).
    """

    shift: float
    day_sd: float
    corr: float
    effect_sd: float
    entries: float  # trades a market-day (Poisson)


# Measured on the replay of bench/ground_truth.py --weeks 5 (MARKET_TRUTH_CONFIG: 50 markets, 36 days,
# every market under each value): control -0.0270 a market-day, sd of a market's 36-day mean 0.0133
# = a level of sd 0.0071 plus daily noise of sd 0.067; hype 70 -> 0 -0.0117 (paired, correlation 0.69
# with control's days, no spread across markets beyond noise), rvr 2 -> 3 +0.0170 (sd 0.047,
# correlation 0.56, spread 0.006 across markets); 0.79, 1.50 and 0.25 trades a market-day, 12% hits.
MARKET_MEAN = -0.027
MARKET_LEVEL_SD = 0.0071
MARKET_CONTROL = MarketWorld(0.0, 0.067, 1.0, 0.0, 0.79)
MARKET_TREATED: dict[Effect, MarketWorld] = {
    "harmful": MarketWorld(-0.0117, 0.067, 0.69, 0.0, 1.50),
    "harmless": MARKET_CONTROL,
    "beneficial": MarketWorld(0.0170, 0.047, 0.56, 0.006, 0.25),
}
HIT_RATE = 0.12
WINDOW_DAYS = 42  # the deployments asset's UnitData window: experiments.max_days + pre_period_days


@dataclass(frozen=True)
class Scenario:
    """One rollout setting: its unit, its planted effect, the change it stands for and its size."""

    key: str
    unit_kind: Literal["run", "market"]
    effect: Effect
    parameter: str
    value: str
    units: int  # runs a day, or tracked markets
    horizon_days: int


def scenarios(market_universes: Sequence[int] = (50, 1000)) -> list[Scenario]:
    changes = {
        "run": {
            "harmful": ("transport.max_retries", "0"),
            "harmless": ("transport.timeout_seconds", "25"),
            "beneficial": ("transport.backoff_base_seconds", "0"),
        },
        "market": {
            "harmful": ("signals.hype_threshold", "0"),
            "harmless": ("signals.roc_threshold", "0.12"),
            "beneficial": ("signals.rvr_threshold", "3"),
        },
    }
    out = [Scenario(f"runs-{e}", "run", e, *changes["run"][e], 96, 14) for e in RUN_TREATED]
    for n in market_universes:
        out += [
            Scenario(f"markets{n}-{e}", "market", e, *changes["market"][e], n, 14) for e in MARKET_TREATED
        ]
    return out


# --- one simulation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one simulated rollout ended."""

    scenario: str
    state: str  # complete, rolled_back, or the state it was in at the horizon
    step_index: int  # the step it ended (or stood) at
    rollback_reason: str | None  # "guardrail" or "srm"
    exposure: float  # runs, or market-days, on the change until the rollout ended
    days: float  # from the start to its end (or to the horizon)
    trail: tuple[str, ...]  # one entry per look: "day 2 at 5%: advance (...)"
    seconds: float = 0.0  # wall time of the simulation

    @property
    def rolled_back(self) -> bool:
        return self.state == "rolled_back"

    @property
    def lead_time_days(self) -> float | None:
        return self.days if self.state == "complete" else None


class _Sim:
    """One rollout on its own warehouse, with a clock the simulation moves."""

    def __init__(self, scenario: Scenario, base: Settings, workdir: Path, rng: np.random.Generator, tag: str):
        self.scenario, self.rng = scenario, rng
        db = base.database.model_copy(update={"path": str(workdir / "warehouse.sqlite"), "url": None})
        # the demo source so pipeline_now is the frozen clock the simulation moves (exposure times)
        self.settings = base.model_copy(update={"database": db, "source": "demo"})
        # the process's one Warehouse for this URL: the one SettingsResource records exposures through
        self.wh = warehouse_for(self.settings.database.sqlalchemy_url())
        self.store = DeploymentStore(self.wh)
        self.deployment_id = f"{scenario.key}-{tag}"  # the flag's salt: every simulation buckets anew
        self.created = START + RUN_SLOT * int(rng.integers(0, 96))
        self.trail: list[str] = []
        self.store.create(
            self.settings, deployment_id=self.deployment_id, parameter=scenario.parameter, value=scenario.value,
            source="bench/closed_loop.py", actor="bench", reason=f"simulated {scenario.effect} change",
            now=self.created,
        )  # fmt: skip

    def resolve(self, kind: Literal["run", "market"], units: Sequence[str], at: datetime) -> set[str]:
        """Units on the change as a run starting at ``at`` resolves them (first exposures recorded at ``at``)."""
        resource = SettingsResource.of(frozen_at(self.settings, at))
        resolved = resource.resolve_units(kind, units)
        return {u for u, r in resolved.items() if r.variants.get(self.deployment_id) == CHANGE}

    def look(self, now: datetime, data: UnitData) -> dict[str, Any]:
        """The sensor's look (when due) and the rollout's row after it."""
        if rollouts_due(self.wh, self.settings, now):
            for look in look_at_rollouts(self.wh, self.settings, data, now=now):
                self.trail.append(f"day {(now - self.created) / timedelta(days=1):.0f} at {look.share:.0%}: "
                                  f"{look.action.kind} ({look.action.reason})")  # fmt: skip
        return self.store.get(self.deployment_id)

    def close(self) -> None:
        # warehouse_for keeps an engine per URL for the process: drop this simulation's (its file goes
        # with the workdir), or thousands of simulations would hold thousands of pools
        _WAREHOUSES.pop(self.settings.database.sqlalchemy_url(), None)
        self.wh.dispose()


def _beta(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    strength = mean * (1 - mean) / sd**2 - 1
    return rng.beta(mean * strength, (1 - mean) * strength, n)


def _lognormal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    sigma2 = math.log(1 + (sd / mean) ** 2)
    return rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), n)


def _run_values(rng: np.random.Generator, world: RunWorld, n: int) -> dict[str, np.ndarray]:
    """The five values ``run_values`` derives from a run's ingestion_runs rows, ``n`` runs of one world."""
    errors = _beta(rng, world.error_mean, world.error_sd, n)
    return {
        "run_success_rate": (rng.random(n) < world.success).astype(float),
        "api_error_rate": errors,
        "api_retry_rate": errors if world.retries else np.zeros(n),
        "run_duration_seconds": _lognormal(rng, world.duration_mean, world.duration_sd, n),
        "degraded_runs": np.zeros(n),
    }


def _simulate_runs(sim: _Sim) -> Outcome:
    scenario, rng = sim.scenario, sim.rng
    ids: list[str] = []
    starts: list[datetime] = []
    values: dict[str, list[np.ndarray]] = {}
    on_change = 0
    interval = timedelta(hours=sim.settings.experiments.look_interval_hours)
    end = sim.created + timedelta(days=scenario.horizon_days)
    empty = UnitData(pd.DataFrame(columns=MARKET_COLUMNS), pd.DataFrame(columns=RUN_COLUMNS))
    row = sim.look(sim.created, empty)
    now = sim.created
    slots_per_batch = max(int(RUN_BATCH / RUN_SLOT), 1)
    while row["state"] not in ("complete", "rolled_back") and now < end:
        nxt = min(now + interval, end)
        # the runs until the next look, resolved in batches: the flag only changes at a look, so each
        # run gets the variant it would get alone; its exposure is recorded at its batch's first start
        slots = [now + RUN_SLOT * k for k in range(int((nxt - now) / RUN_SLOT))]
        for b in range(0, len(slots), slots_per_batch):
            batch = slots[b : b + slots_per_batch]
            names = [f"{rng.integers(1 << 62):016x}{rng.integers(1 << 62):016x}" for _ in batch]
            treated = sim.resolve("run", names, batch[0])
            on = np.array([name in treated for name in names])
            on_change += int(on.sum())
            control = _run_values(rng, RUN_CONTROL, len(names))
            changed = _run_values(rng, RUN_TREATED[scenario.effect], len(names))
            for metric in control:
                values.setdefault(metric, []).append(np.where(on, changed[metric], control[metric]))
            ids += names
            starts += batch
        now = nxt
        n = len(ids)
        runs = pd.DataFrame({
            "run_id": np.tile(ids, len(values)), "started_at": np.tile(np.array(starts, dtype="datetime64[ns]"), len(values)),
            "metric": np.repeat(list(values), n), "value": np.concatenate([np.concatenate(v) for v in values.values()]),
        })  # fmt: skip
        row = sim.look(now, UnitData(empty.market_days, runs, [], float(scenario.units)))
    return _outcome(sim, row, now, float(on_change))


def _simulate_markets(sim: _Sim) -> Outcome:
    scenario, rng = sim.scenario, sim.rng
    n = scenario.units
    markets = [f"mkt-{i:04d}" for i in range(n)]
    first_day = pd.Timestamp(sim.created).normalize() - pd.Timedelta(days=WINDOW_DAYS)
    days = pd.date_range(first_day, periods=WINDOW_DAYS + scenario.horizon_days + 2, freq="D")
    # each market-day drawn once under both values (paired: the change moves the same day's P&L)
    treated_world = MARKET_TREATED[scenario.effect]
    level = MARKET_MEAN + rng.normal(0.0, MARKET_LEVEL_SD, n)
    base = rng.standard_t(3, size=(n, len(days))) / math.sqrt(3.0)
    own = rng.standard_t(3, size=(n, len(days))) / math.sqrt(3.0)
    control = level[:, None] + MARKET_CONTROL.day_sd * base
    treated_noise = treated_world.corr * base + math.sqrt(1.0 - treated_world.corr**2) * own
    effect = treated_world.shift + treated_world.effect_sd * rng.normal(0.0, 1.0, n)
    treated = (level + effect)[:, None] + treated_world.day_sd * treated_noise
    exposed_at: dict[str, datetime] = {}
    interval = timedelta(hours=sim.settings.experiments.look_interval_hours)
    end = sim.created + timedelta(days=scenario.horizon_days)

    def on_share(now: datetime) -> np.ndarray:
        """Share of each market-day on the change (from its first exposure; a partial first day)."""
        share = np.zeros((n, len(days)))
        for i, m in enumerate(markets):
            if m in exposed_at:
                start = (exposed_at[m] - days[0].to_pydatetime()) / timedelta(days=1)
                share[i] = np.clip(np.arange(len(days)) + 1 - start, 0.0, 1.0)
        return share

    def data_at(now: datetime) -> UnitData:
        today = int((pd.Timestamp(now).normalize() - days[0]) / pd.Timedelta(days=1))
        window = slice(max(today - WINDOW_DAYS, 0), today)
        w = on_share(now)[:, window]
        pnl = (1.0 - w) * control[:, window] + w * treated[:, window]
        rate = (1.0 - w) * MARKET_CONTROL.entries + w * treated_world.entries
        trades = rng.poisson(rate)
        outcomes = pd.DataFrame({
            "market_id": np.repeat(markets, pnl.shape[1]), "day": np.tile(days[window], n),
            "pnl_after_costs": pnl.reshape(-1), "trades": trades.reshape(-1),
            "closed_trades": trades.reshape(-1), "hits": rng.binomial(trades, HIT_RATE).reshape(-1),
        })  # fmt: skip
        values = market_day_values(outcomes, markets, list(days[window]), init_cash=1.0)
        return UnitData(values, pd.DataFrame(columns=RUN_COLUMNS), markets, 96.0)

    def ingest(now: datetime) -> None:
        """The next ingest run after ``now`` resolves every tracked market (new ones first exposed then)."""
        at = now + RUN_SLOT
        for m in sim.resolve("market", markets, at):
            exposed_at.setdefault(m, at)

    flags = FlagStore(sim.wh)

    def look(now: datetime) -> dict[str, Any]:
        before = flags.get(sim.deployment_id).allocation
        row = sim.look(now, data_at(now))
        if flags.get(sim.deployment_id).allocation != before:
            # every ingest run resolves every market, but bucketing is deterministic: only a new
            # allocation (a step, or a widened canary) exposes new markets, at the next run
            ingest(now)
        return row

    ingest(sim.created)
    row = look(sim.created)
    now = sim.created
    while row["state"] not in ("complete", "rolled_back") and now < end:
        now = min(now + interval, end)
        row = look(now)
    exposure = sum((now - t) / timedelta(days=1) for t in exposed_at.values() if t < now)
    return _outcome(sim, row, now, exposure)


def _outcome(sim: _Sim, row: dict[str, Any], now: datetime, exposure: float) -> Outcome:
    reason = None
    if row["state"] == "rolled_back":
        reason = "srm" if "sample-ratio" in str(row["reason"]) else "guardrail"
    return Outcome(sim.scenario.key, str(row["state"]), int(row["step_index"]), reason, exposure,
                   (now - sim.created) / timedelta(days=1), tuple(sim.trail))  # fmt: skip


def simulate_one(scenario: Scenario, seed: Sequence[int], base: Settings | None = None) -> Outcome:
    """One rollout of ``scenario`` on a fresh warehouse in a temporary directory."""
    base = base if base is not None else default_settings()
    started = time.perf_counter()
    rng = np.random.default_rng(list(seed))
    workdir = Path(tempfile.mkdtemp(prefix="closed-loop-"))
    sim = _Sim(scenario, base, workdir, rng, "-".join(str(s) for s in seed))
    try:
        outcome = _simulate_runs(sim) if scenario.unit_kind == "run" else _simulate_markets(sim)
        return replace(outcome, seconds=time.perf_counter() - started)
    finally:
        sim.close()
        shutil.rmtree(workdir, ignore_errors=True)


_BASE: Settings | None = None


def default_settings() -> Settings:
    """The default settings (an empty config file; KAIZEN_* variables still apply), read once per process."""
    global _BASE
    if _BASE is None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.yaml").write_text("{}\n")
            _BASE = load_settings(Path(tmp) / "config.yaml")
    return _BASE


def _task(args: tuple[Scenario, tuple[int, ...], Settings]) -> Outcome:
    return simulate_one(*args)


# --- many simulations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval."""
        if not self.total:
            return (float("nan"), float("nan"))
        lo, hi = proportion_confint(self.hits, self.total, alpha=0.05, method="wilson")
        return float(lo), float(hi)

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.value:6.1%} [{lo:.1%}, {hi:.1%}] ({self.hits}/{self.total})"


@dataclass
class ScenarioResult:
    scenario: Scenario
    outcomes: list[Outcome] = field(default_factory=list)

    def rate(self, predicate: Any) -> Rate:
        return Rate(sum(1 for o in self.outcomes if predicate(o)), len(self.outcomes))

    @property
    def rolled_back(self) -> Rate:
        return self.rate(lambda o: o.rolled_back)

    @property
    def rolled_back_at_first_step(self) -> Rate:
        return self.rate(lambda o: o.rolled_back and o.step_index == 0)

    @property
    def completed(self) -> Rate:
        return self.rate(lambda o: o.state == "complete")

    def mean_exposure(self) -> float:
        return float(np.mean([o.exposure for o in self.outcomes])) if self.outcomes else float("nan")

    def mean_lead_time(self) -> float:
        times = [o.lead_time_days for o in self.outcomes if o.lead_time_days is not None]
        return float(np.mean(times)) if times else float("nan")


@dataclass
class SimulationResult:
    """Every scenario's outcomes and the issue's summary figures (module docstring)."""

    results: dict[str, ScenarioResult]
    seconds: float
    primary: str = "runs"

    def _of(self, effect: Effect, prefix: str | None = None) -> list[ScenarioResult]:
        return [r for r in self.results.values()
                if r.scenario.effect == effect and (prefix is None or r.scenario.key.startswith(prefix + "-"))]  # fmt: skip

    @property
    def harmful_rollback_rate(self) -> Rate:
        """Share of the primary scenario's harmful rollouts rolled back at the 5% step."""
        harmful = self._of("harmful", self.primary)
        return harmful[0].rolled_back_at_first_step if harmful else Rate(0, 0)

    @property
    def false_rollback_rate(self) -> Rate:
        good = self._of("harmless") + self._of("beneficial")
        return Rate(sum(r.rolled_back.hits for r in good), sum(r.rolled_back.total for r in good))

    @property
    def mean_harmful_exposure(self) -> float:
        """Mean runs on the primary scenario's harmful change before it ended."""
        harmful = self._of("harmful", self.primary)
        return harmful[0].mean_exposure() if harmful else float("nan")

    @property
    def lead_time_days(self) -> float:
        """Mean days from the start to complete of the harmless and beneficial changes that completed."""
        good = self._of("harmless") + self._of("beneficial")
        times = [o.lead_time_days for r in good for o in r.outcomes if o.lead_time_days is not None]
        return float(np.mean(times)) if times else float("nan")

    def summary_line(self) -> str:
        return (f"harmful_rollback_rate={self.harmful_rollback_rate.value:.4f} "
                f"false_rollback_rate={self.false_rollback_rate.value:.4f} "
                f"mean_harmful_exposure={self.mean_harmful_exposure:.2f} lead_time_days={self.lead_time_days:.2f}")  # fmt: skip


def simulate(
    sims: int,
    *,
    seed: int = 13,
    workers: int = 2,
    only: Iterable[Scenario] | None = None,
    settings: Settings | None = None,
) -> SimulationResult:
    """``sims`` simulated rollouts of every scenario (or of ``only``), spread over ``workers`` processes.

    ``settings``: the rollouts' settings (default: the defaults; the database is each simulation's own).
    """
    chosen = list(only) if only is not None else scenarios()
    base = settings if settings is not None else default_settings()
    tasks = [(s, (seed, i, k), base) for i, s in enumerate(chosen) for k in range(sims)]
    started = time.perf_counter()
    results = {s.key: ScenarioResult(s) for s in chosen}
    if workers > 1:
        # fork: the workers inherit the imported modules; no warehouse is open before the pool starts
        with mp.get_context("fork").Pool(workers) as pool:
            for outcome in pool.imap_unordered(_task, tasks, chunksize=4):
                results[outcome.scenario].outcomes.append(outcome)
    else:
        for task in tasks:
            outcome = _task(task)
            results[outcome.scenario].outcomes.append(outcome)
    return SimulationResult(results, time.perf_counter() - started)


@dataclass(frozen=True)
class ReplayResult:
    """The closed loop on replayed demo days: what it decided, day by day, and its delivery figures."""

    timeline: list[str]
    lead_time_days: float
    shipped: int
    rolled_back: int
    days: int
    seconds: float


def replay_loop(workdir: Path, max_days: int = 30) -> ReplayResult:
    """recommendation -> experiment -> winner -> 5% -> 25% -> 100% on the demo market truth
    (``MARKET_LOOP_CONFIG``; the slow market end-to-end test runs the same replay with a freeze and an
    approval on top), through the real assets on a frozen clock moved a day at a time."""
    started = time.perf_counter()
    config = workdir / "config.yaml"
    # everything the replay writes stays in workdir, never in the user's warehouse
    local = {"database": {"path": str(workdir / "warehouse.sqlite"), "backup_dir": str(workdir / "backups")},
             "logging": {"log_dir": str(workdir / "logs")}}  # fmt: skip
    config.write_text(yaml.safe_dump({**MARKET_LOOP_CONFIG, **local}))
    os.environ["KAIZEN_CONFIG"] = str(config)
    replay = LoopReplay(load_settings(), dg.DagsterInstance.ephemeral(), log_level="WARNING")
    replay.begin()
    days = 0
    with terminal_progress("closed-loop replay", unit="days") as report:
        while days < max_days and not replay.settled("volume_confirms"):
            report("replaying demo days", days, max_days)
            replay.day()
            days += 1
    wh = replay.warehouse
    log = DecisionLog(wh).frame().sort_values("decision_id")
    timeline = [
        f"{r.decided_at:%m-%d} {r.actor:11} {r.action:16} {r.subject_id:40} {str(r.evidence).splitlines()[0][:90]}"
        for r in log.itertuples()
    ]
    dora = dora_figures(per_deployment(read_history(wh)), replay.now)
    return ReplayResult(
        timeline, float(dora.lead_time_days_median or float("nan")), dora.shipped, dora.rolled_back, days,
        time.perf_counter() - started,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sims", type=int, default=200, help="simulated rollouts per scenario")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--min-units-per-step",
        type=int,
        default=None,
        help="rollouts.min_units_per_step (default: its default)",
    )
    parser.add_argument(
        "--no-replay", action="store_true", help="skip the replayed closed loop (about 6 min)"
    )
    parser.add_argument(
        "--only", default="", help="scenarios whose name starts with this (runs, markets1000)"
    )
    parser.add_argument(
        "--min-hours-per-step",
        type=float,
        default=None,
        help="rollouts.min_hours_per_step (default: its default)",
    )
    args = parser.parse_args()
    settings = default_settings()
    for key in ("min_hours_per_step", "min_units_per_step"):
        if getattr(args, key) is not None:
            ro = settings.rollouts.model_copy(update={key: getattr(args, key)})
            settings = settings.model_copy(update={"rollouts": ro})
    ro, exp = settings.rollouts, settings.experiments
    chosen = [s for s in scenarios() if s.key.startswith(args.only)]
    result = simulate(args.sims, seed=args.seed, workers=args.workers, only=chosen, settings=settings)

    print(f"rollouts: steps {', '.join(f'{s:.0%}' for s in ro.steps)}; >= {ro.min_hours_per_step:g} h and "
          f">= {ro.min_units_per_step} units with data a step; a look every {exp.look_interval_hours:g} h; "
          f"guardrails one-sided at alpha {exp.alpha:g} with Holm; SRM p < {exp.srm_p_threshold:g}")  # fmt: skip
    print(f"{args.sims} simulations a scenario, {args.workers} processes, {result.seconds:.0f} s")
    print()
    header = f"{'scenario':22} {'rolled back':>28} {'at 5%':>28} {'completed':>9} {'SRM':>4} {'exposure':>9} {'lead d':>6}"
    print(header)
    for r in result.results.values():
        unit = "runs" if r.scenario.unit_kind == "run" else "mkt-d"
        srm = sum(1 for o in r.outcomes if o.rollback_reason == "srm")
        print(f"{r.scenario.key:22} {r.rolled_back!s:>28} {r.rolled_back_at_first_step!s:>28} "
              f"{r.completed.value:>9.1%} {srm:>4} {r.mean_exposure():>6.1f} {unit:<5} {r.mean_lead_time():>6.2f}")  # fmt: skip
    print()
    for r in result.results.values():
        steps = pd.Series([o.step_index for o in r.outcomes if o.rolled_back]).map(
            lambda i: f"{ro.steps[i]:.0%}"
        )
        stood = pd.Series([o.step_index for o in r.outcomes if not o.rolled_back and o.state != "complete"])
        detail = ", ".join(f"{k} {v}" for k, v in steps.value_counts().sort_index().items()) or "none"
        print(f"{r.scenario.key}: rolled back at {detail}; at the horizon still at "
              f"{', '.join(f'{ro.steps[k]:.0%} {v}' for k, v in stood.value_counts().sort_index().items()) or 'none'}")  # fmt: skip
    print()
    for key in ("runs-harmful", "runs-beneficial", "markets1000-harmful", "markets50-harmful"):
        if key in result.results and result.results[key].outcomes:
            first = result.results[key].outcomes[0]
            print(f"timeline, {key} (one simulation): " + "; ".join(first.trail[:6]))
    print()
    print(f"harmful runs rolled back at 5%: {result.harmful_rollback_rate} (target >= 95%); "
          f"harmless and beneficial rolled back: {result.false_rollback_rate} (target <= 5%)")  # fmt: skip
    line = result.summary_line()
    if not args.no_replay:
        with tempfile.TemporaryDirectory(prefix="closed-loop-") as tmp:
            replayed = replay_loop(Path(tmp))
        print()
        print(f"the closed loop on {replayed.days} replayed demo days ({replayed.seconds:.0f} s): "
              f"{replayed.shipped} shipped, {replayed.rolled_back} rolled back; decision_log:")  # fmt: skip
        for entry in replayed.timeline:
            print("  " + entry)
        print(f"lead time, recommendation -> 100% of markets (replay): {replayed.lead_time_days:.2f} days; "
              f"start -> 100% in the simulations: {result.lead_time_days:.2f} days")  # fmt: skip
        # the summary's lead time is the replay's: from the recommendation, as the issue defines it
        line = line.rsplit(" lead_time_days=", 1)[0] + f" lead_time_days={replayed.lead_time_days:.2f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

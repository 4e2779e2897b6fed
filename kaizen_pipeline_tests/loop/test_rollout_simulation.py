"""Simulated rollouts through the real path (bench/closed_loop.py, reduced): a harmful run change is rolled
back at the 5% step, a harmless one is not rolled back, so a regression in the rollout statistics fails here.

Each simulation is a fresh SQLite warehouse, ``DeploymentStore.create``, flag resolution of 96 runs a day
and ``look_at_rollouts`` every 24 h (the bench's docstring). 40 simulations an arm; the bounds are loose
(the bench's 200 give the figures in docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "closed_loop.py"
SIMS = 40


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("closed_loop", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("closed_loop", module)  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_rollouts() -> dict[str, object]:
    """40 harmful (max_retries 5 -> 0) and 40 harmless run rollouts, one process, fixed seed."""
    bench = _bench()
    chosen = [s for s in bench.scenarios(market_universes=()) if s.effect in ("harmful", "harmless")]
    return bench.simulate(SIMS, seed=20261204, workers=1, only=chosen).results


def test_a_harmful_run_change_is_rolled_back_at_the_5_percent_step(run_rollouts: dict) -> None:
    harmful = run_rollouts["runs-harmful"]
    caught = harmful.rolled_back_at_first_step
    assert caught.value >= 0.85, f"harmful change rolled back at 5% in {caught}"
    assert all(o.rollback_reason == "guardrail" for o in harmful.outcomes if o.rolled_back)
    # caught within two looks: about 5 to 10 runs on the change (96 a day, 5%)
    assert harmful.mean_exposure() < 15, harmful.mean_exposure()


def test_a_harmless_run_change_is_not_rolled_back_by_a_guardrail(run_rollouts: dict) -> None:
    harmless = run_rollouts["runs-harmless"]
    false_alarm = harmless.rate(lambda o: o.rollback_reason == "guardrail")
    assert false_alarm.value <= 0.15, f"harmless change rolled back by a guardrail in {false_alarm}"


def test_a_harmless_run_change_ramps_to_100_percent(run_rollouts: dict) -> None:
    harmless = run_rollouts["runs-harmless"]
    # a guardrail or a sample-ratio mismatch (the split of each step's own runs against its share)
    assert harmless.rolled_back.value <= 0.15, f"harmless change rolled back in {harmless.rolled_back}"
    assert harmless.completed.value >= 0.85, f"harmless change completed in {harmless.completed}"

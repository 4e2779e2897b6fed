"""Cycle benchmark: the demo world at 50, 200 and 1,000 markets through the real Dagster commands.

Each size gets a fresh data directory and Dagster home (SQLite, the demo source, a frozen clock). The
demo world of each size is served over HTTP on 127.0.0.1 by one long-lived simulator server
(``demo.server_url``), as the real APIs are: it enforces the documented rate limits server-side
(Gamma, CLOB, Data API per 10 s; X per 15 minutes of the frozen clock), and building the simulated
world, the stand-in's own cost, is not charged to the pipeline's commands. Per size it runs, each as
its own command the way a user does:

1. the first run: ``kaizen backfill --days 30 --job cycle_job`` (the 30-day history, one run);
2. the 15-minute cycle, 15 minutes later on the frozen clock: ``dagster job execute -j cycle_job``
   for today's partition (ingest, hype, features, correlations, signals, risk, sizing);

and at 50 markets also ``kaizen backfill --days 30`` of ``main_job`` on a fresh directory (the
quickstart's first run, exactly as the quickstart runs it: the world built in its own process). Wall time is the command's; step compute is the sum of the run's step
durations from the Dagster event log; the rest is orchestration (process start, imports, events).

Last line: ``main_job_50_s=<x> cycle_1000_s=<x> scaling_4x=<x> overhead_share=<x>``, where
scaling_4x = cycle wall at 200 markets / at 50, and overhead_share = 1 - step compute / wall of the
1,000-market cycle. Targets (issue 15): main_job_50_s <= 30, cycle_1000_s <= 120, scaling_4x <= 4.4,
overhead_share <= 0.25.

Run: ``python bench/cycle.py`` (``--sizes 50 200`` for a shorter run; the 1,000-market backfill
alone takes many minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from kaizen_pipeline.ingest.simulator.server import EndpointLimit, SimulatorServer
from kaizen_pipeline.ingest.simulator.world import DemoWorld
from kaizen_pipeline.ops.progress import terminal_progress
from kaizen_pipeline.settings.ingest import DemoSettings, PolymarketSettings

FROZEN_NOW = "2026-02-01T00:00:00Z"
CYCLE_NOW = "2026-02-01T00:15:00Z"
CYCLE_DAY = "2026-02-01"
REPO = Path(__file__).resolve().parents[1]
DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}/dagster
telemetry:
  enabled: false
"""


def environment(home: Path, markets: int, now: str, server_url: str | None = None) -> dict[str, str]:
    """The command environment of one size: its own config, warehouse, logs and Dagster home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_")}
    (home / "config.yaml").write_text("{}\n")
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "KAIZEN_CONFIG": str(home / "config.yaml"),
            "KAIZEN_DATABASE__PATH": str(home / "warehouse.sqlite"),
            "KAIZEN_DATABASE__BACKUP_DIR": str(home / "backups"),
            "KAIZEN_LOGGING__LOG_DIR": str(home / "logs"),
            "KAIZEN_DEMO__FROZEN_NOW": now,
            "KAIZEN_DEMO__N_MARKETS": str(markets),
            "KAIZEN_DATA_COLLECTION__MAX_MARKETS": str(markets),
            "PYTHONWARNINGS": "ignore",
        }
    )
    if server_url:
        env["KAIZEN_DEMO__SERVER_URL"] = server_url
    return env


class FrozenClock:
    """The simulator's clock, moved by the bench between commands like the pipeline's frozen clock."""

    def __init__(self, now: str) -> None:
        self.now = _unix(now)

    def __call__(self) -> float:
        return self.now


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@contextmanager
def simulator(markets: int, clock: FrozenClock) -> Iterator[SimulatorServer]:
    """The demo world of ``markets`` markets behind a real HTTP server with the documented limits."""
    demo, poly = DemoSettings(), PolymarketSettings()
    world = DemoWorld(demo.seed, markets, demo.history_days, demo.epoch, clock=clock)
    limits = {
        "/markets": EndpointLimit(poly.markets_rate_limit, 10.0),
        "/prices-history": EndpointLimit(poly.prices_history_rate_limit, 10.0),
        "/trades": EndpointLimit(poly.trades_rate_limit, 10.0),
        "/book": EndpointLimit(poly.book_rate_limit, 10.0),
        "/books": EndpointLimit(poly.books_rate_limit, 10.0),
    }  # X's 450 per 15 minutes is the simulated API's own (on the world's clock)
    with SimulatorServer(world, limits=limits) as server:
        yield server


def fresh_home(root: Path, name: str) -> Path:
    home = root / name
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home))
    return home


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``command``; its output goes to a log beside the Dagster home."""
    log = Path(env["DAGSTER_HOME"]) / "commands.log"
    start = time.perf_counter()
    with log.open("a") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return elapsed


def step_seconds(env: dict[str, str]) -> float:
    """Summed step durations of the newest run in the Dagster home (from its event log)."""
    code = (
        "import dagster as dg, json\n"
        "with dg.DagsterInstance.get() as inst:\n"
        "    run = inst.get_runs(limit=1)[0]\n"
        "    starts, total = {}, 0.0\n"
        "    for e in inst.all_logs(run.run_id):\n"
        "        ev = e.dagster_event\n"
        "        if ev is None: continue\n"
        "        if ev.event_type_value == 'STEP_START': starts[ev.step_key] = e.timestamp\n"
        "        elif ev.event_type_value in ('STEP_SUCCESS', 'STEP_FAILURE'):\n"
        "            total += e.timestamp - starts.get(ev.step_key, e.timestamp)\n"
        "    print(json.dumps({'steps': total, 'status': str(run.status)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps"])


def measure_size(root: Path, markets: int) -> dict[str, float]:
    home = fresh_home(root, f"cycle_{markets}")
    kaizen = str(Path(sys.executable).with_name("kaizen"))
    dagster = str(Path(sys.executable).with_name("dagster"))
    clock = FrozenClock(FROZEN_NOW)
    with simulator(markets, clock) as server:
        env = environment(home, markets, FROZEN_NOW, server.url)
        timed([dagster, "instance", "migrate"], env)
        backfill = timed([kaizen, "backfill", "--days", "30", "--job", "cycle_job"], env)
        backfill_steps = step_seconds(env)
        clock.now = _unix(CYCLE_NOW)
        env = environment(home, markets, CYCLE_NOW, server.url)
        tags = json.dumps({"dagster/partition": CYCLE_DAY})
        cycle = timed(
            [
                dagster,
                "job",
                "execute",
                "-m",
                "kaizen_pipeline.definitions",
                "-j",
                "cycle_job",
                "--tags",
                tags,
            ],
            env,
        )
        cycle_steps = step_seconds(env)
        violations = server.stats.rate_limit_violations
    if violations:
        raise RuntimeError(
            f"{markets} markets: the pipeline broke the documented rate limits {violations} times"
        )
    return {
        "backfill_s": backfill,
        "backfill_steps_s": backfill_steps,
        "cycle_s": cycle,
        "cycle_steps_s": cycle_steps,
    }


def measure_main_job(root: Path, markets: int = 50) -> tuple[float, float]:
    home = fresh_home(root, f"main_{markets}")
    env = environment(home, markets, FROZEN_NOW)
    timed([str(Path(sys.executable).with_name("dagster")), "instance", "migrate"], env)
    wall = timed([str(Path(sys.executable).with_name("kaizen")), "backfill", "--days", "30"], env)
    return wall, step_seconds(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--skip-main-job", action="store_true", help="measure the cycles only")
    parser.add_argument("--keep", action="store_true", help="keep the Dagster homes (runs, logs) to inspect")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kaizen-cycle-bench-"))
    try:
        main_wall = float("nan")
        results = {}
        with terminal_progress("cycle bench", unit="sizes") as report:
            if not args.skip_main_job:
                report("main_job at 50 markets (the quickstart's first run)", 0, len(args.sizes))
                main_wall, main_steps = measure_main_job(root)
                print(
                    f"main_job, 50 markets, first run (30-day backfill): wall {main_wall:.1f} s, "
                    f"steps {main_steps:.1f} s",
                    flush=True,
                )
            for i, markets in enumerate(args.sizes):
                report(f"{markets} markets: first run, then the cycle", i, len(args.sizes))
                r = results[markets] = measure_size(root, markets)
                print(
                    f"{markets:>5} markets: first run {r['backfill_s']:.1f} s (steps {r['backfill_steps_s']:.1f} s); "
                    f"cycle {r['cycle_s']:.1f} s, steps {r['cycle_steps_s']:.1f} s, "
                    f"steps/wall {r['cycle_steps_s'] / r['cycle_s']:.2f}",
                    flush=True,
                )
        big = results[max(results)]
        small = results.get(50)
        four = results.get(200)
        scaling = four["cycle_s"] / small["cycle_s"] if small and four else float("nan")
        overhead = 1 - big["cycle_steps_s"] / big["cycle_s"]
        print(
            f"main_job_50_s={main_wall:.1f} cycle_{max(results)}_s={big['cycle_s']:.1f} "
            f"scaling_4x={scaling:.2f} overhead_share={overhead:.2f}"
        )
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

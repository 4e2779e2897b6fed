"""A new Dagster home survives two first launches at once when the documented prepare step ran first.

Dagster creates its SQLite storage on first use; two processes doing that at once can stamp the
schedule storage with two alembic heads, and every later run then fails. The README's start
commands and .ci/run run `dagster instance migrate` before anything else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PREPARE = "dagster instance migrate"
# What each first launch does with the instance: open it and touch the run, event and schedule storage.
# Both wait for the same start time after their (slow) imports, so their first use of the home overlaps.
LAUNCH = (
    "import sys, time\n"
    "import dagster as dg\n"
    "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    instance.get_runs(limit=1)\n"
    "    instance.all_instigator_state()\n"
)
RUN = (
    "import dagster as dg\n"
    "@dg.op\n"
    "def one() -> int:\n"
    "    return 1\n"
    "@dg.job\n"
    "def probe() -> None:\n"
    "    one()\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    assert probe.execute_in_process(instance=instance).success\n"
    "    assert len(instance.all_instigator_state()) == 0\n"
)


def _home(path: Path) -> Path:
    path.mkdir()
    text = (REPO / "dagster.yaml").read_text()
    text = re.sub(r"base_dir: data/dagster", f"base_dir: {path / 'storage'}", text)
    assert str(path) in text, "dagster.yaml's base_dir changed: update this test"
    (path / "dagster.yaml").write_text(text)
    return path


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def _prepare(home: Path) -> None:
    done = subprocess.run(
        [str(BIN / "dagster"), *PREPARE.split()[1:]], env=_env(home), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))  # the race is not certain to hit on every try
def test_two_first_launches_at_once_after_the_prepare_step_leave_a_working_home(
    tmp_path: Path, attempt: int
) -> None:
    home = _home(tmp_path / "home")
    _prepare(home)
    start = str(time.time() + 15)  # importing dagster takes seconds on a busy machine
    launches = [
        subprocess.Popen([sys.executable, "-c", LAUNCH, start], env=_env(home), stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in launches]
    assert [p.returncode for p in launches] == [0, 0], "\n".join(e[-1500:] for e in errors)
    after = subprocess.run([sys.executable, "-c", RUN], env=_env(home), capture_output=True, timeout=120)
    assert after.returncode == 0, after.stderr.decode()[-2000:]


def test_the_documented_start_commands_prepare_the_instance_first() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    starts = [line for line in readme.splitlines() if "kaizen backfill" in line and PREPARE in line][:1]
    starts += [line for line in readme.splitlines() if "`DAGSTER_HOME=$PWD" in line and "dagster dev" in line]
    assert len(starts) == 2, "README's quickstart command 1 or its 'Open the UI' line moved"
    first_ci = next(
        line
        for line in ci.splitlines()
        if re.search(r"\bdagster(-daemon)? ", line) and not line.startswith("#")
    )
    for line in starts:
        launch = re.search(r"dagster (job execute|dev)|kaizen backfill", line)
        assert launch and PREPARE in line and line.index(PREPARE) < launch.start(), line
    assert PREPARE in first_ci, f"the first dagster command of .ci/run is not `{PREPARE}`: {first_ci}"

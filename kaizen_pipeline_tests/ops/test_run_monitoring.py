"""dagster.yaml's run monitoring, for real: a daemon, runs killed with kill -9, the queue moving on.

The runs' processes die together with the code server that launched them (what a crash of
`dagster dev` or the OOM killer does): nothing is left to report them, so without run monitoring
they stay STARTED, fill run_queue.max_concurrent_runs and every later run stays QUEUED.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from kaizen_pipeline_tests.ops.sleepy_location import MAX_RUNTIME_SECONDS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = Path(__file__).resolve().parent / "sleepy_location.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run processes through /proc (Linux)"),
]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the repository's dagster.yaml, its storage under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    text = (REPO / "dagster.yaml").read_text()
    text = re.sub(r"base_dir: data/dagster", f"base_dir: {home / 'storage'}", text)
    assert str(home) in text, "dagster.yaml's base_dir changed: update this test"
    (home / "dagster.yaml").write_text(text)
    (home / "workspace.yaml").write_text(
        f"load_from:\n  - python_file:\n      relative_path: {LOCATION}\n      location_name: sleepy\n"
    )
    return home


@pytest.fixture
def daemon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, subprocess.Popen]]:
    home = _home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the cleanup reaches every run process
    )
    try:
        yield home, daemon
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(daemon.pid, sig)
            except ProcessLookupError:
                break
            try:
                daemon.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)  # runs and step processes left in the group
        daemon.wait(5)
        log.close()


def _launch(home: Path, count: int) -> None:
    launches = [
        subprocess.Popen(
            [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "sleepy_job"],
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in launches:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]


def _statuses(instance: dg.DagsterInstance) -> dict[str, dg.DagsterRunStatus]:
    return {r.run_id: r.status for r in instance.get_runs()}


def _wait(condition, timeout: float, what: str, instance: dg.DagsterInstance) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(_statuses(instance)):
            return
        time.sleep(1)
    pytest.fail(f"{what} within {timeout:.0f} s; runs: {_statuses(instance)}")


def test_runs_killed_with_their_code_server_fail_and_the_queue_moves(
    daemon_home: tuple[Path, subprocess.Popen],
) -> None:
    home, daemon = daemon_home
    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled, "dagster.yaml does not enable run_monitoring"
        slots = yaml.safe_load((home / "dagster.yaml").read_text())["run_queue"]["max_concurrent_runs"]
        _launch(home, slots)
        _wait(
            lambda s: list(s.values()).count(dg.DagsterRunStatus.STARTED) == slots,
            150,
            f"{slots} runs STARTED",
            instance,
        )
        killed = list(_statuses(instance))
        servers = [p for p in _descendants(daemon.pid) if " api grpc" in _cmdline(p)]
        assert servers, "no code server under the daemon"
        for server in servers:
            for pid in [*reversed(_descendants(server)), server]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _launch(home, 1)
        queued = next(r for r in _statuses(instance) if r not in killed)
        _wait(
            lambda s: (
                all(s[r] == dg.DagsterRunStatus.FAILURE for r in killed)
                and s[queued] != dg.DagsterRunStatus.QUEUED
            ),
            # the job's max runtime, then one monitoring poll, then one run-queue tick
            MAX_RUNTIME_SECONDS + instance.run_monitoring_poll_interval_seconds + 30,
            "the killed runs FAILED and the new run left the queue",
            instance,
        )

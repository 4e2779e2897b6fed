"""`kaizen start`, `kaizen status`, `kaizen stop` with the real Dagster webserver and daemon (slow), and
`kaizen status` on a home where nothing runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kaizen_pipeline.ops.supervisor import group_alive, pid_alive
from kaizen_pipeline_tests.demo_home import demo_home, free_port

BIN = Path(sys.executable).parent


def _kaizen(
    home: Path, env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kaizen"), *args], cwd=home, env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=3) as answer:
            return answer.status == 200
    except OSError:
        return False


def _children(home: Path) -> dict[str, dict]:
    state = json.loads((home / "run" / "state.json").read_text())
    return {c["name"]: c for c in state["children"]}


@pytest.mark.slow
def test_start_restarts_a_crashed_webserver_and_stop_ends_everything(tmp_path: Path) -> None:
    env = demo_home(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        started = _kaizen(tmp_path, env, "start", "--port", str(port))
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"started: the UI at {url}" in started.stdout
        assert _answers(url)
        children = _children(tmp_path)
        webserver, daemon = children["webserver"]["pid"], children["daemon"]["pid"]
        assert pid_alive(webserver) and pid_alive(daemon)
        again = _kaizen(tmp_path, env, "start", "--port", str(port))
        assert again.returncode == 0 and "already running" in again.stdout

        os.killpg(webserver, signal.SIGKILL)  # a crash: the supervisor brings it back
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            restarted = _children(tmp_path)["webserver"]
            if restarted["pid"] and restarted["pid"] != webserver and _answers(url):
                break
            time.sleep(1)
        else:
            pytest.fail("the webserver was not restarted within 120 s")
        assert restarted["restarts"] == 1 and restarted["last_exit"] == -signal.SIGKILL
        assert _children(tmp_path)["daemon"]["pid"] == daemon  # the daemon was left alone

        status = _kaizen(tmp_path, env, "status", "--port", str(port))
        assert status.returncode == 0, status.stderr
        out = status.stdout
        for expected in ("supervisor", "webserver", "daemon", "running", "ingest_schedule", "alert_sensor",
                         "main_job", "never ran", "Open alerts", "Data freshness", "rollouts in progress: none"):  # fmt: skip
            assert expected in out, expected
        schedule_line = next(line for line in out.splitlines() if "ingest_schedule" in line)
        assert " off " in schedule_line  # the demo starts with schedules stopped

        groups = [restarted["pid"], daemon]
        stopped = _kaizen(tmp_path, env, "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not any(group_alive(g) for g in groups)  # code servers included
        assert not _answers(url)
        assert not (tmp_path / "run" / "supervisor.pid").exists()
        assert "not running" in _kaizen(tmp_path, env, "stop").stdout
    finally:
        pid_file = tmp_path / "run" / "supervisor.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.mark.slow  # two `kaizen status` processes, each loading the definitions
def test_status_on_a_home_where_nothing_runs(tmp_path: Path) -> None:
    env = demo_home(tmp_path)
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    status = _kaizen(tmp_path, env, "status")
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert out.count("stopped") >= 3  # supervisor, webserver, daemon
    assert "ingest_schedule" in out and "never ran" in out
    # nothing collected yet: every kind of data is "never", no alerts, no traceback
    freshness = out[out.index("Data freshness") :]
    assert freshness.count("never") == 6 and "no open alerts" in out
    assert "Traceback" not in out + status.stderr
    assert "delivered by: nothing" in out  # no recipients, no chat: said, in yellow
    env["KAIZEN_ALERTS__WEBHOOK_URL"] = "http://127.0.0.1:9/hooks/secret-path-77"
    env["KAIZEN_ALERTS__RECIPIENTS"] = '["ops@example.test"]'
    out = _kaizen(tmp_path, env, "status").stdout
    assert "delivered by: email, webhook" in out and "secret-path-77" not in out

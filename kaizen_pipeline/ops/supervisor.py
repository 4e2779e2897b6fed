"""`kaizen start` / `kaizen stop`: the Dagster webserver and daemon in the background, supervised.

A small supervisor process (``python -m kaizen_pipeline.ops.supervisor``) starts both, each in its
own process group with its output appended to a log file, writes their PIDs and restart counts to
``<control dir>/state.json``, restarts one that dies (backoff 1, 2, 4 ... 60 s) and, on SIGTERM,
stops both gracefully (SIGTERM to the group, SIGKILL after ``STOP_GRACE_SECONDS``). Pure: no
Dagster import; the processes are Dagster's own command-line programs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

STOP_GRACE_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0  # a child that ran this long starts its backoff again from 1 s
POLL_SECONDS = 0.5
STATE_FILE = "state.json"
SUPERVISOR_PID = "supervisor.pid"


@dataclass
class Child:
    """One supervised program: its command and what the supervisor knows of it."""

    name: str
    command: list[str]
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    next_start: float = 0.0
    backoff: float = 1.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def programs(bin_dir: Path, workspace: Path, host: str, port: int) -> list[Child]:
    """The webserver and the daemon of this project, loading the code location from ``workspace``."""
    return [
        Child(
            "webserver",
            [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
        ),
        Child("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)]),
    ]


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(control_dir: Path) -> dict[str, Any]:
    """What the supervisor last wrote (empty when it never ran); ``supervisor_pid`` from its PID file."""
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((control_dir / STATE_FILE).read_text())
    pid_text = ""
    with contextlib.suppress(OSError):
        pid_text = (control_dir / SUPERVISOR_PID).read_text().strip()
    state["supervisor_pid"] = int(pid_text) if pid_text.isdigit() else None
    return state


def supervisor_pid(control_dir: Path) -> int | None:
    """The running supervisor's PID, or None (a stale PID file is ignored)."""
    pid = read_state(control_dir)["supervisor_pid"]
    return pid if pid_alive(pid) else None


class Supervisor:
    """Keeps ``children`` running until SIGTERM or SIGINT; writes their state after every change."""

    def __init__(self, children: Sequence[Child], control_dir: Path, log_dir: Path) -> None:
        self.children = list(children)
        self.control_dir = control_dir
        self.log_dir = log_dir
        self.stopping = False

    def _write_state(self) -> None:
        data = {"updated_at": time.time(), "children": [c.public() for c in self.children]}
        tmp = self.control_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.control_dir / STATE_FILE)

    def _start(self, child: Child) -> None:
        log = (self.log_dir / f"{child.name}.log").open("ab")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log.write(f"\n--- {stamp} kaizen supervisor starts {child.name} ---\n".encode())
        log.flush()
        # its own process group, so a stop reaches the code servers it spawns too
        child._proc = subprocess.Popen(
            child.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        child.pid, child.started_at = child._proc.pid, time.time()

    def _reap(self, child: Child, now: float) -> None:
        code = child._proc.poll() if child._proc is not None else 0
        if code is None:
            if child.started_at and now - child.started_at > HEALTHY_AFTER_SECONDS:
                child.backoff = 1.0
            return
        child.last_exit, child.pid, child._proc = code, None, None
        child.restarts += 1
        child.next_start = now + child.backoff
        child.backoff = min(MAX_BACKOFF_SECONDS, child.backoff * 2)

    def run(self) -> int:
        self.control_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.control_dir / SUPERVISOR_PID).write_text(str(os.getpid()))

        def on_signal(_signum: int, _frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            while not self.stopping:
                now = time.time()
                changed = False
                for child in self.children:
                    if child._proc is not None:
                        before = child.pid
                        self._reap(child, now)
                        changed |= child.pid != before
                    if child._proc is None and now >= child.next_start and not self.stopping:
                        self._start(child)
                        changed = True
                if changed:
                    self._write_state()
                time.sleep(POLL_SECONDS)
        finally:
            self._stop_children()
            self._write_state()
            with contextlib.suppress(OSError):
                (self.control_dir / SUPERVISOR_PID).unlink()
        return 0

    def _stop_children(self) -> None:
        running = [c for c in self.children if c._proc is not None and c._proc.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child._proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            try:
                child._proc.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child._proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                child._proc.wait()  # type: ignore[union-attr]
        # what they spawned (code servers) shares their process group: wait for it too, then kill the rest
        groups = [c._proc.pid for c in running if c._proc is not None]
        while any(group_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for child in self.children:
            if child._proc is not None:
                child.last_exit = child._proc.returncode
            child.pid, child._proc = None, None


def spawn(control_dir: Path, log_dir: Path, bin_dir: Path, workspace: Path, host: str, port: int) -> int:
    """Start the supervisor detached from this terminal; returns its PID."""
    control_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    (control_dir / STATE_FILE).unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "kaizen_pipeline.ops.supervisor",
        "--control-dir", str(control_dir), "--log-dir", str(log_dir), "--bin-dir", str(bin_dir),
        "--workspace", str(workspace), "--host", host, "--port", str(port),
    ]  # fmt: skip
    with (log_dir / "supervisor.log").open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return proc.pid


def stop(control_dir: Path, timeout: float = STOP_GRACE_SECONDS + 10) -> bool:
    """SIGTERM the supervisor and wait until it and its programs are gone; False on timeout."""
    pid = supervisor_pid(control_dir)
    if pid is None:
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.2)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kaizen's process supervisor (started by `kaizen start`)")
    parser.add_argument("--control-dir", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    children = programs(args.bin_dir, args.workspace, args.host, args.port)
    return Supervisor(children, args.control_dir, args.log_dir).run()


if __name__ == "__main__":
    raise SystemExit(main())

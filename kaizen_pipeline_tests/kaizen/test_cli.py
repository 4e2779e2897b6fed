"""`kaizen improvement ...` and `kaizen feedback` write the same tables as the Dagster jobs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from kaizen_pipeline.cli import main
from kaizen_pipeline.kaizen import store
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse


def test_log_ship_and_list_an_improvement(warehouse: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["improvement", "log", "--title", "Raise the retry budget", "--metric", "api_error_rate", "--effect", "-0.01",
         "--hours", "1", "--money", "20", "--catalogue-key", "raise_retry_budget"]
    )  # fmt: skip
    assert code == 0
    assert "logged improvement raise_the_retry_budget (proposed)" in capsys.readouterr().out
    row = warehouse.read_frame("SELECT * FROM improvements").iloc[0]
    assert (row["target_metric"], row["predicted_effect"], row["cost_hours"], row["status"]) == (
        "api_error_rate", -0.01, 1.0, "proposed"
    )  # fmt: skip
    assert main(["improvement", "ship", "raise_the_retry_budget", "--at", "2026-03-01T12:00:00"]) == 0
    row = warehouse.read_frame("SELECT * FROM improvements", parse_dates=["shipped_at"]).iloc[0]
    assert row["status"] == "shipped" and row["shipped_at"] == datetime(2026, 3, 1, 12)
    assert main(["improvement", "list"]) == 0
    assert "raise_the_retry_budget" in capsys.readouterr().out


def test_invalid_improvement_names_the_field(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["improvement", "log", "--title", "x", "--metric", "nope", "--effect", "1"]) == 1
    assert "target_metric: 'nope' is not a registered metric" in capsys.readouterr().err
    assert main(["improvement", "ship", "missing"]) == 1
    assert warehouse.count("improvements") == 0


def test_a_time_that_is_not_a_date_is_a_one_line_usage_error_naming_the_option(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["improvement", "log", "--title", "x", "--metric", "signal_hit_rate", "--effect", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--status", "shipped", "--shipped-at", "yesterday"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("error: argument --shipped-at: 'yesterday' is not a date or time "
                            "(use YYYY-MM-DD or ISO 8601, e.g. 2026-12-01T14:30, UTC)")  # fmt: skip
    assert "Traceback" not in "\n".join(err) and warehouse.count("improvements") == 0
    assert main([*args, "--status", "shipped", "--shipped-at", "2026-03-01"]) == 0


def test_relogging_updates_in_place_and_keeps_created_at(warehouse: Warehouse, settings: Settings) -> None:
    first = store.log_improvement(
        warehouse, settings.kaizen, title="Cache metadata", target_metric="run_duration_seconds",
        predicted_effect=-60, now=datetime(2026, 1, 1),
    )  # fmt: skip
    second = store.log_improvement(
        warehouse, settings.kaizen, title="Cache metadata", target_metric="run_duration_seconds",
        predicted_effect=-90, status="shipped", now=datetime(2026, 1, 5),
    )  # fmt: skip
    assert warehouse.count("improvements") == 1
    assert second["created_at"] == first["created_at"] == datetime(2026, 1, 1)
    assert second["shipped_at"] == datetime(2026, 1, 5)  # shipped without a time: now
    with pytest.raises(ValueError, match="shipped_at"):
        store.log_improvement(
            warehouse, settings.kaizen, title="y", target_metric="run_duration_seconds", predicted_effect=1,
            status="proposed", shipped_at="2026-01-01",
        )  # fmt: skip


def test_feedback_command_scores_sentiment(warehouse: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "--rating", "5", "--text", "The daily report is excellent and clear"]) == 0
    assert "sentiment positive" in capsys.readouterr().out
    row = warehouse.read_frame("SELECT * FROM feedback").iloc[0]
    assert row["rating"] == 5 and row["sentiment"] > 0.5 and row["source"] == "cli"
    with pytest.raises(SystemExit):
        main(["feedback", "--rating", "9"])


def test_help_and_argument_errors_load_no_data_stack() -> None:
    """`kaizen --help` and a usage error answer at once: pandas, SQLAlchemy, SciPy, statsmodels, httpx and
    Dagster load only in the commands that use them."""
    heavy = ("pandas", "sqlalchemy", "scipy", "statsmodels", "httpx", "dagster", "matplotlib")
    code = (
        "import sys\n"
        "from kaizen_pipeline.cli import main\n"
        "for argv in (['--help'], ['flags', '--help'], ['improvement', 'log', '--shipped-at', 'yesterday']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """`kaizen config --reference | head -1` where head has gone: no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kaizen_pipeline.cli import main; raise SystemExit(main())",
            "config",
            "--reference",
        ],
        stdout=write_end,
        stderr=subprocess.PIPE,
        check=False,
    )
    os.close(write_end)
    assert done.stderr.decode() == ""
    assert done.returncode == 141  # as a tool killed by SIGPIPE


def test_the_menu_runs_the_chosen_task_and_quits_on_q() -> None:
    from kaizen_pipeline.cli import choose_task

    said: list[str] = []
    answers = iter(["x", "f"])
    assert choose_task(lambda _: next(answers), said.append) == ["flags", "list"]
    assert any("[s] status" in line for line in said) and any("no task 'x'" in line for line in said)
    assert choose_task(lambda _: "q", said.append) is None
    assert choose_task(lambda _: (_ for _ in ()).throw(EOFError), said.append) is None


def test_kaizen_alone_in_a_terminal_opens_the_menu(tmp_path: Path) -> None:
    """Through a real pseudo-terminal: the menu shows, "q" quits with 0."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: kaizen with no arguments on the terminal
        os.execv(
            sys.executable,
            [sys.executable, "-c", "import sys; from kaizen_pipeline.cli import main; sys.exit(main())"],
        )
    out = b""
    deadline = time.monotonic() + 30
    while b"choice:" not in out and time.monotonic() < deadline:
        out += os.read(fd, 4096)
    os.write(fd, b"q\n")
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 4096):
            out += chunk
    _, status = os.waitpid(pid, 0)
    assert b"[s] status" in out and b"[q] quit" in out
    assert os.waitstatus_to_exitcode(status) == 0

"""`kaizen backup` draws a progress bar on a terminal (bytes while compressing) and nothing when piped."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from kaizen_pipeline.kaizen.feedback import feedback_row
from kaizen_pipeline.warehouse import Warehouse

KAIZEN = [
    sys.executable,
    "-c",
    "import sys; from kaizen_pipeline.cli import main; sys.exit(main())",
    "backup",
]


def _filled(warehouse: Warehouse) -> None:
    """A few MB of rows, so the compression step has bytes to count."""
    start = datetime(2026, 1, 1)
    rows = [
        feedback_row(4, f"note {i} " + "words " * 300, start + timedelta(minutes=i), "test")
        for i in range(3000)
    ]
    warehouse.upsert("feedback", rows)


def test_a_terminal_sees_the_phases_and_a_byte_bar(warehouse: Warehouse, kaizen_env: Path) -> None:
    _filled(warehouse)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, KAIZEN)
    out = b""
    try:
        while chunk := os.read(fd, 65536):
            out += chunk
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))
    assert os.waitstatus_to_exitcode(status) == 0, text[-500:]
    assert "backup: compressing" in text and re.search(r"\d+(\.\d)?/\d+(\.\d)? [kM]B", text)
    assert "backup: verifying the backup" in text
    assert text.strip().splitlines()[-1].endswith("verified")


def test_a_pipe_gets_the_result_line_only(warehouse: Warehouse, kaizen_env: Path) -> None:
    _filled(warehouse)
    done = subprocess.run(KAIZEN, capture_output=True, text=True, check=True)
    assert done.stderr == "" and len(done.stdout.strip().splitlines()) == 1 and "\x1b" not in done.stdout

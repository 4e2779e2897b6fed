"""Shared renderers for Dagster metadata: markdown tables and PNG charts as base64 markdown images.

Pure module (no Dagster import); every domain's assets use these two functions, and every domain's
``charts.py`` takes ``plt`` from here so the headless backend is chosen in one place.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the daemon and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# Metadata lands in Dagster's event log on every run: a 5 MB cell must not be copied there.
MAX_CELL_CHARS = 200
MAX_TABLE_CHARS = 20_000


def _fmt(value: Any, float_digits: int) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{float_digits}f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = f"{text[:MAX_CELL_CHARS]}... ({len(text)} chars)"
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, max_rows: int = 20, float_digits: int = 4) -> str:
    """Render the first ``max_rows`` rows of ``frame`` as a GitHub markdown table."""
    if frame is None or frame.empty:
        return "_no rows_"
    shown = frame.head(max_rows)
    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    sep = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = [
        "| " + " | ".join(_fmt(v, float_digits) for v in row) + " |"
        for row in shown.itertuples(index=False, name=None)
    ]
    kept: list[str] = []
    size = len(header) + len(sep)
    for line in body:
        if size + len(line) > MAX_TABLE_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    hidden = len(frame) - len(kept)
    more = [f"\n_{hidden} more rows_"] if hidden > 0 else []
    return "\n".join([header, sep, *kept, *more])


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figure_markdown(fig: plt.Figure, alt: str = "chart", dpi: int = 80) -> str:
    """Encode a matplotlib figure as a PNG markdown image (the figure is closed)."""
    encoded = base64.b64encode(figure_png(fig, dpi)).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"

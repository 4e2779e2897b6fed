"""Charts live in each domain's ``charts.py``; matplotlib's backend and the PNG encoding live in reporting.py."""

from __future__ import annotations

from pathlib import Path

import kaizen_pipeline

PACKAGE = Path(kaizen_pipeline.__file__).parent


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_figures_are_drawn_only_in_charts_modules() -> None:
    drawing = sorted(name for name, text in _sources().items() if "plt.subplots(" in text)
    assert drawing == [
        "backtest/charts.py",
        "experiments/charts.py",
        "kaizen/charts.py",
        "research/charts.py",
    ]


def test_one_place_sets_the_backend_and_encodes_figures() -> None:
    sources = _sources()
    assert sorted(n for n, t in sources.items() if "import matplotlib" in t) == ["reporting.py"]
    assert sorted(n for n, t in sources.items() if ".savefig(" in t) == ["reporting.py"]

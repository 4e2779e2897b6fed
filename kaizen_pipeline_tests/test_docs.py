"""The documentation holds together: README.md is a front page, and README.md plus docs/*.md link
only to files and headings that exist and name only code paths that exist.

The quickstart's start commands (instance migrate before any launch) are checked in
test_instance.py; here: its install commands are the ones .ci/run runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
CODE_PATH = re.compile(r"`(kaizen_pipeline/[^`\s]*)`")


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def _prose(text: str) -> str:
    """The text without fenced code blocks (headings and links inside them are not markdown)."""
    return FENCE.sub("", text)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(_prose(path.read_text())):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        found.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return found


def test_github_slug_follows_githubs_rules() -> None:
    assert github_slug("Risk (`risk.py`)") == "risk-riskpy"
    assert (
        github_slug("Runs: maximum runtime, dead runs, retries") == "runs-maximum-runtime-dead-runs-retries"
    )
    assert github_slug("### `market_snapshots`".lstrip("# ")) == "market_snapshots"


def test_readme_is_a_front_page() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail into docs/"


@pytest.mark.parametrize("doc", _markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(INLINE_CODE.sub("", _prose(doc.read_text()))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        if not path.exists():
            broken.append(f"{target}: no file {rel}")
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {rel}")
    assert broken == [], f"{doc.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", _markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_named_code_paths_exist(doc: Path) -> None:
    missing = [path for path in CODE_PATH.findall(doc.read_text()) if not (REPO / path).exists()]
    assert missing == [], f"{doc.relative_to(REPO)} names paths that do not exist: {missing}"


def _quickstart_commands() -> list[str]:
    """The shell commands of README's Quickstart block, '&&' chains split into single commands."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Quickstart has no ```bash block"
    commands = []
    for line in block.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands += [part.strip() for part in line.split("&&")]
    return commands


def _words(command: str) -> list[str]:
    return shlex.split(command)


def test_quickstart_installs_what_ci_runs() -> None:
    """.ci/run installs the project the way the README says (command 2's install, a superset of 1's)."""
    commands = _quickstart_commands()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    ci_words = [_words(line) for line in ci if line and not line.startswith("#")]

    venvs = [c for c in commands if c.startswith("python3 -m venv")]
    activates = [c for c in commands if c.startswith(". ") and "activate" in c]
    installs = [_words(c) for c in commands if c.startswith("pip install")]
    assert len(installs) == 2, f"expected two `pip install` commands in the quickstart: {commands}"
    for command in {*venvs, *activates}:
        assert _words(command) in ci_words, f".ci/run does not run the quickstart's `{command}`"

    def extras(words: list[str]) -> set[str]:
        target = words[words.index("-e") + 1]
        match = re.fullmatch(r"\.(?:\[([\w,-]*)\])?", target)
        assert match, f"unexpected install target {target!r}"
        return set(filter(None, (match.group(1) or "").split(",")))

    first, second = installs
    assert extras(first) <= extras(second), "command 2's install is not a superset of command 1's"
    ci_installs = [w for w in ci_words if w[:2] == ["pip", "install"] and "-e" in w]
    assert [extras(w) for w in ci_installs] == [extras(second)], (
        f".ci/run installs {ci_installs}, the README's command 2 installs {second}"
    )
    for command in commands:
        if command.startswith("DAGSTER_HOME=$PWD dagster") or command == "pytest":
            assert _words(command) in ci_words, f".ci/run does not run the quickstart's `{command}`"

"""The shell commands the documentation shows, as the tests run them.

Every ``bash`` block in ``README.md`` and ``docs/`` (the generated reference
aside) follows a marker that says how a test runs it::

    <!-- doc-test: run -->              run here, in an empty folder (.venv is this venv)
    <!-- doc-test: hub (...) -->        run against a test hub (tests/hub/test_docs_commands.py)
    <!-- doc-test: ci -->               the command .ci/run runs, as CI runs it
    <!-- doc-test: by tests/... (...) --> a test that runs the command itself
    <!-- doc-test: skip (needs ...) --> cannot run here: needs a cluster, Canvas, ...
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SKIPPED = ("generated", "_build", "changelog.md")
KINDS = ("run", "hub", "ci", "by", "skip")
SHELLS = ("bash", "sh", "shell", "console")
MARKER = re.compile(r"^<!-- doc-test: (\w+)(.*?) -->$")
FENCE = re.compile(r"^(`{3,})\s*\{?([\w-]*)\}?\s*(.*)$")


@dataclass
class Block:
    page: Path
    line: int
    kind: str  # one of KINDS, or "" when the block has no marker
    note: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    return [p for p in PAGES if not any(s in p.relative_to(REPO).parts for s in SKIPPED)]


def blocks(page: Path) -> list[Block]:
    """The shell blocks of one page, with the marker on the line before each."""
    found = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        ticks, lang = fence.group(1), fence.group(2)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(ticks))
        if lang in SHELLS:
            marker = MARKER.match(lines[i - 1]) if i else None
            kind, note = (marker.group(1), marker.group(2).strip()) if marker else ("", "")
            found.append(Block(page, i + 1, kind, note, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return found


def all_blocks(kind: str | None = None) -> list[Block]:
    every = [b for page in pages() for b in blocks(page)]
    return [b for b in every if kind is None or b.kind == kind]


def run(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a block with bash (-e: every command must succeed) in ``cwd``, where ``.venv``
    is the venv running the tests."""
    venv = cwd / ".venv"
    if not venv.exists():
        venv.symlink_to(sys.prefix)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

"""The documentation's commands are run by tests, its pictures are made by
docs/screenshots.py, and the messages its troubleshooting page quotes are the code's
(see tests/docblocks.py for the markers)."""

from __future__ import annotations

import configparser
import json
import os
import re
from pathlib import Path

import pytest

from .. import docblocks
from ..docblocks import REPO, Block

pytestmark = pytest.mark.unit

CI = (REPO / ".ci" / "run").read_text()


def test_every_shell_block_says_how_it_is_tested() -> None:
    every = docblocks.all_blocks()
    assert len(every) >= 10, "the parser finds the documentation's blocks"
    unmarked = [b.where for b in every if b.kind not in docblocks.KINDS]
    assert unmarked == [], "shell blocks without a doc-test marker"
    for block in docblocks.all_blocks("skip"):
        assert re.fullmatch(r"\(needs .+\)", block.note), f"{block.where}: skip needs a reason"
    # commands that cannot run here are the exception
    assert len(docblocks.all_blocks("skip")) <= 6


def test_a_block_without_a_marker_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text\n\n<!-- doc-test: run -->\n```bash\necho one\n```\n\n```bash\necho two\n```\n"
        "\n```python\nprint(3)\n```\n"
    )
    found = docblocks.blocks(page)
    assert [(b.kind, b.code) for b in found] == [("run", "echo one\n"), ("", "echo two\n")]


def commands(block: Block) -> list[str]:
    """The block's commands, ``&&``-chains split, comments and continuations joined."""
    text = re.sub(r"\\\n\s*", "", block.code)
    out = []
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        out += [part.strip() for part in line.split("&&") if part.strip()]
    return out


@pytest.mark.parametrize("block", docblocks.all_blocks("ci"), ids=lambda b: b.where)
def test_ci_runs_the_command_as_shown(block: Block) -> None:
    ci = [re.sub(r" -q\b", "", line.strip()) for line in CI.splitlines()]
    for command in commands(block):
        assert any(command in line for line in ci), f"{block.where}: {command!r} not in .ci/run"


@pytest.mark.parametrize("block", docblocks.all_blocks("by"), ids=lambda b: b.where)
def test_the_named_test_runs_the_command(block: Block) -> None:
    path = block.note.split()[0]
    test = (REPO / path).read_text()
    for command in commands(block):
        words = command.split()
        if "hub-viz" in words[0]:  # .venv/bin/hub-viz SUBCOMMAND: the test runs it
            assert f'"{words[1]}"' in test, f"{path} does not run hub-viz {words[1]}"


def test_every_extra_a_command_installs_exists() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    extras = set(cfg["options.extras_require"])
    named = {
        extra
        for block in docblocks.all_blocks()
        for group in re.findall(r"\.\[([\w,]+)\]", block.code)
        for extra in group.split(",")
    }
    assert named, "the commands install extras"
    assert named <= extras


@pytest.mark.parametrize("block", docblocks.all_blocks("run"), ids=lambda b: b.where)
def test_the_command_runs(block: Block, tmp_path: Path) -> None:
    result = docblocks.run(block, tmp_path, dict(os.environ))
    assert result.returncode == 0, (block.where, result.stdout[-2000:], result.stderr[-2000:])
    for made in tmp_path.glob("*.json"):  # what a command writes is what it says
        json.loads(made.read_text())


def test_every_picture_is_made_by_the_screenshot_script_and_used() -> None:
    script = (REPO / "docs" / "screenshots.py").read_text()
    text = "\n".join(p.read_text() for p in docblocks.pages())
    used = set(re.findall(r"\(((?:\.\./)*(?:docs/)?images/[\w-]+\.png)\)", text))
    pictures = {p.name for p in (REPO / "docs" / "images").glob("*.png")}
    assert {Path(u).name for u in used} == pictures
    for name in pictures:
        assert f'"{name}"' in script, f"docs/screenshots.py does not make {name}"


def quoted_messages() -> list[str]:
    page = (REPO / "docs" / "operate" / "troubleshooting.md").read_text()
    return [m for m in re.findall(r'^"(.+)"$', page, flags=re.M)]


def code_text() -> str:
    """hub_viz's Python with adjacent string literals joined, as Python joins them."""
    text = "\n".join(p.read_text() for p in (REPO / "hub_viz").rglob("*.py"))
    return re.sub(r'"\s*\n\s*f?"', "", text)


def test_the_troubleshooting_messages_are_the_codes() -> None:
    messages = quoted_messages()
    assert len(messages) >= 15
    code = code_text()
    for message in messages:
        # a placeholder stands for what the code fills in
        parts = [p for p in re.split(r"\{[^}]*\}|…", message) if p.strip()]
        for part in parts:
            assert part in code, f"troubleshooting.md quotes {message!r}: {part!r} not in hub_viz"

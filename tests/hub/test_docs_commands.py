"""The documentation's commands that need a hub, run against a real one as written
(the blocks marked ``<!-- doc-test: hub -->``, see tests/docblocks.py).

The demo's address in them (``hub.localhost:8000``) becomes the test hub's, a token
shown as ``...`` becomes a token of ``alice``; ``STATE`` is the hub's state folder
and ``BACKUP`` an empty folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .. import docblocks
from ..docblocks import Block

pytestmark = pytest.mark.hub

AUTHOR = "alice"  # the user the documentation's examples publish as
BLOCKS = docblocks.all_blocks("hub")


@pytest.fixture(scope="module")
def doc_hub(hub):
    """The test hub with the course the examples share with: alice teaches course-101."""
    hub.ensure_user(AUTHOR)
    for group, members in (("course-101", [AUTHOR]), ("course-101-instructors", [AUTHOR])):
        r = hub.api("POST", f"/groups/{group}")
        assert r.status_code in (201, 409), r.text
        r = hub.api("POST", f"/groups/{group}/users", json={"users": members})
        assert r.status_code == 200, r.text
    yield hub
    # what the examples leave behind: the API's dashboard and the hub API's server
    for slug in ("sales",):
        r = hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)
        assert r.status_code in (200, 204, 404), r.text
    hub.stop(AUTHOR, "report")


def as_run_here(block: Block, hub) -> Block:
    """The block with the demo's address and placeholders made the test hub's."""
    netloc = urlsplit(hub.url).netloc  # hub.localhost:<port>
    code = block.code.replace("hub.localhost:8000", netloc)
    code = re.sub(r"\b(\w*TOKEN)=\.\.\.", r'\1="$TOKEN"', code)
    assert "..." not in code, f"{block.where}: a placeholder the test cannot fill"
    return Block(block.page, block.line, block.kind, block.note, code)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where)
def test_the_command_runs_against_a_hub(doc_hub, block: Block, tmp_path: Path) -> None:
    token = doc_hub.user_token(AUTHOR)
    backup = tmp_path / "backup"
    backup.mkdir()
    env = dict(
        os.environ,
        JUPYTERHUB_URL=doc_hub.url,
        JUPYTERHUB_API_TOKEN=token,
        TOKEN=token,
        STATE=str(doc_hub.log.parent),
        BACKUP=str(backup),
    )
    work = tmp_path / "work"
    work.mkdir()
    result = docblocks.run(as_run_here(block, doc_hub), work, env)
    assert result.returncode == 0, (block.where, result.stdout[-3000:], result.stderr[-3000:])
    if "BACKUP" in block.code:  # the backup holds what the page says it holds
        assert {p.name for p in backup.iterdir()} >= {"hub_viz.sqlite", "jupyterhub.sqlite"}


def test_there_are_commands_to_run() -> None:
    assert len(BLOCKS) >= 4

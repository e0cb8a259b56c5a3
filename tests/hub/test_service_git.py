"""A dashboard whose source is a git repository: fetched by the spawner, served, redeployed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from ..conftest import EXAMPLES, Hub

pytestmark = pytest.mark.hub

AUTHOR = "git-author"


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> str:
    """A bare repository with the Dash example on branch 'lecture-1'."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(EXAMPLES / "dash" / "app.py", work / "app.py")
    git("init", "-q", "-b", "lecture-1", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "add", "app.py", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "app", cwd=work)
    git("clone", "-q", "--bare", str(work), str(tmp_path / "repo.git"), cwd=tmp_path)
    return f"file://{tmp_path / 'repo.git'}"


def open_ready(hub: Hub, ref: str, viewer: str) -> dict:
    r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    assert r.status_code == 200, r.text
    if r.json()["status"] != "ready":
        owner, slug = ref.split("/")
        assert hub.wait(owner, slug), hub.spawn_message(owner, slug)
        r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    return r.json()


def test_git_source_is_fetched_and_served(hub: Hub, repo: str):
    hub.ensure_user(AUTHOR)
    r = hub.svc("POST", "dashboards", AUTHOR, json={
        "title": "From git", "slug": "git-dash", "entry": "app.py", "framework": "dash",
        "git": {"url": repo, "ref": "lecture-1"}, "visibility": "all",
    })
    assert r.status_code == 201, r.text
    assert r.json()["git"] == {"url": repo, "ref": "lecture-1"}
    try:
        body = open_ready(hub, f"{AUTHOR}/git-dash", "git-viewer")
        assert body["status"] == "ready", body
        page = requests.get(hub.url + body["url"], timeout=60)
        assert page.status_code == 200 and "_dash-config" in page.text

        # A ref that does not exist: the redeploy fails with a readable reason for the author.
        r = hub.svc("PATCH", f"dashboards/{AUTHOR}/git-dash", AUTHOR,
                    json={"git": {"url": repo, "ref": "no-such-branch"}})
        assert r.status_code == 200, r.text
        assert r.json()["redeployed"] is True
        assert "Could not fetch ref 'no-such-branch'" in r.json()["redeploy_error"]
        assert "git-dash" not in hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
    finally:
        assert hub.svc("DELETE", f"dashboards/{AUTHOR}/git-dash", AUTHOR).status_code == 204


def test_git_url_scheme_not_allowed_is_refused(hub: Hub):
    hub.ensure_user(AUTHOR)
    r = hub.svc("POST", "dashboards", AUTHOR, json={
        "title": "Bad git", "entry": "app.py", "framework": "dash",
        "git": {"url": "ssh://example.org/repo.git"},
    })
    assert r.status_code == 400
    assert "git URL must start with https:// or file://" in r.json()["message"]

"""A dashboard whose source is a git repository: fetched by its instance, served, redeployed.

The hub never clones: the launcher of each instance fetches the source into
a folder of its own before the app starts, within the hub's size cap
(2 MB on this hub). Hosts that are not public are refused at publish.
"""

from __future__ import annotations

import html
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from ..conftest import EXAMPLES, Hub, start_hub, stop_hub, wait_until

pytestmark = pytest.mark.hub

AUTHOR = "git-author"
CAP = 2_000_000


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def bare_repo(tmp_path: Path, name: str, files: dict[str, bytes]) -> str:
    """A bare repository ``name`` with ``files`` on branch 'lecture-1'; its file:// URL."""
    work = tmp_path / f"{name}-work"
    work.mkdir()
    for rel, data in files.items():
        (work / rel).write_bytes(data)
    git("init", "-q", "-b", "lecture-1", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-qm", "app", cwd=work)
    git("clone", "-q", "--bare", str(work), str(tmp_path / f"{name}.git"), cwd=tmp_path)
    return f"file://{tmp_path / f'{name}.git'}"


@pytest.fixture(scope="module")
def git_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    running = start_hub(
        tmp_path_factory.mktemp("git-hub"),
        isolated=True,
        extra_config=f"c.DashboardLocalSpawner.git_max_bytes = {CAP}\n",
    )
    yield running
    stop_hub(running)


@pytest.fixture
def repo(tmp_path: Path) -> str:
    """The Dash example on branch 'lecture-1'."""
    return bare_repo(tmp_path, "repo", {"app.py": (EXAMPLES / "dash" / "app.py").read_bytes()})


def publish(hub: Hub, slug: str, url: str, **extra: object) -> requests.Response:
    hub.ensure_user(AUTHOR)
    return hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": slug,
            "slug": slug,
            "entry": "app.py",
            "framework": "dash",
            "git": {"url": url, "ref": "lecture-1"},
            "visibility": "all",
            **extra,
        },
    )


def open_dashboard(hub: Hub, ref: str, viewer: str) -> dict:
    r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    assert r.status_code == 200, r.text
    if r.json()["status"] != "ready":
        owner, slug = ref.split("/")
        hub.wait(owner, slug)
        r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    return r.json()


def launcher_of(url: str) -> int | None:
    """The pid of the launcher whose argv carries ``--git-url=<url>``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"--git-url={url}".encode() in argv and b"hub_viz.launcher" in argv:
            return int(entry.name)
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_git_source_is_fetched_by_the_instance_and_served(git_hub: Hub, repo: str):
    hub = git_hub
    r = publish(hub, "git-dash", repo)
    assert r.status_code == 201, r.text
    assert r.json()["git"] == {"url": repo, "ref": "lecture-1"}
    try:
        body = open_dashboard(hub, f"{AUTHOR}/git-dash", "git-viewer")
        assert body["status"] == "ready", (body, hub.spawn_message(AUTHOR, "git-dash"))
        page = requests.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200 and "_dash-config" in page.text

        # The launcher fetched it, into a folder of its own where the app runs; the hub
        # keeps no checkout.
        launcher = launcher_of(repo)
        assert launcher is not None, "the launcher is told the git URL"
        (app,) = children(launcher)
        checkout = Path(os.readlink(f"/proc/{app}/cwd"))
        assert checkout.name == "checkout"
        assert checkout.parent.name.startswith("hub-viz-source-")
        assert checkout.parent.parent == Path(tempfile.gettempdir())
        assert (checkout / "app.py").read_bytes() == (EXAMPLES / "dash" / "app.py").read_bytes()
        state = hub.log.parent
        assert not any("git" in p.name for p in state.iterdir() if p.is_dir()), sorted(
            p.name for p in state.iterdir()
        )

        # A ref that does not exist is refused when the update asks for it (the ref is
        # resolved to its commit for the new version), and the instance goes on.
        r = hub.svc(
            "PATCH",
            f"dashboards/{AUTHOR}/git-dash",
            AUTHOR,
            json={"git": {"url": repo, "ref": "no-such-branch"}},
        )
        assert r.status_code == 400, r.text
        assert "no branch or tag 'no-such-branch'" in r.json()["message"]
        assert hub.svc("GET", f"dashboards/{AUTHOR}/git-dash", AUTHOR).json()["git"] == {
            "url": repo,
            "ref": "lecture-1",
        }
        assert launcher_of(repo) == launcher
        # the stopped instance takes its checkout with it
        assert hub.svc("POST", f"dashboards/{AUTHOR}/git-dash/stop", AUTHOR).status_code == 200
        wait_until(lambda: not checkout.parent.exists(), what="the checkout to be removed")
    finally:
        assert hub.svc("DELETE", f"dashboards/{AUTHOR}/git-dash", AUTHOR).status_code == 204


def test_a_repository_over_the_size_cap_does_not_start(git_hub: Hub, tmp_path: Path):
    hub = git_hub
    big = bare_repo(
        tmp_path,
        "big",
        {
            "app.py": (EXAMPLES / "dash" / "app.py").read_bytes(),
            "blob.bin": os.urandom(3 * CAP),
        },
    )
    r = publish(hub, "git-big", big)
    assert r.status_code == 201, r.text
    try:
        sentence = (
            "The git repository is larger than the 2 MB this hub allows for a dashboard's source."
        )
        r = hub.svc("POST", f"dashboards/{AUTHOR}/git-big/open", AUTHOR)
        assert r.status_code == 502, r.text  # the start failed, and says why
        assert sentence in r.json()["message"]
        assert hub.wait(AUTHOR, "git-big") == {}, "the instance must not stay"
        assert sentence in html.unescape(hub.spawn_message(AUTHOR, "git-big"))
    finally:
        assert hub.svc("DELETE", f"dashboards/{AUTHOR}/git-big", AUTHOR).status_code == 204


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        (
            "https://127.0.0.1/org/repo.git",
            "The git URL's host 127.0.0.1 is a loopback address; git sources must come from a "
            "public host.",
        ),
        (
            "https://0x7f000001/org/repo.git",
            "The git URL's host 0x7f000001 (127.0.0.1) is a loopback address",
        ),
        (
            "https://[::ffff:169.254.169.254]/latest",
            "is a cloud metadata address inside an IPv6 address",
        ),
        ("https://a.localhost/org/repo.git", "The git host 'a.localhost' resolves to"),
        ("https://10.0.0.5/org/repo.git", "is a private address"),
    ],
)
def test_hosts_that_are_not_public_are_refused_at_publish(git_hub: Hub, url: str, sentence: str):
    r = publish(git_hub, "git-internal", url)
    assert r.status_code == 400, r.text
    assert sentence in r.json()["message"]


def test_changing_the_url_to_an_internal_host_is_refused(git_hub: Hub, repo: str):
    hub = git_hub
    assert publish(hub, "git-moves", repo).status_code == 201
    try:
        r = hub.svc(
            "PATCH",
            f"dashboards/{AUTHOR}/git-moves",
            AUTHOR,
            json={"git": {"url": "https://169.254.169.254/latest/meta-data"}},
        )
        assert r.status_code == 400, r.text
        assert "is a cloud metadata address" in r.json()["message"]
        assert hub.svc("GET", f"dashboards/{AUTHOR}/git-moves", AUTHOR).json()["git"]["url"] == repo
    finally:
        assert hub.svc("DELETE", f"dashboards/{AUTHOR}/git-moves", AUTHOR).status_code == 204


def test_git_url_scheme_not_allowed_is_refused(git_hub: Hub):
    git_hub.ensure_user(AUTHOR)
    r = git_hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Bad git",
            "entry": "app.py",
            "framework": "dash",
            "git": {"url": "ssh://example.org/repo.git"},
        },
    )
    assert r.status_code == 400
    assert "git URL must start with https:// or file://" in r.json()["message"]

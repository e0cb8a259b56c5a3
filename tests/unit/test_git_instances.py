"""Git sources between spawner and launcher: the hub passes the source on, the instance fetches.

The spawner (in the hub) checks the URL's form and gives the launcher
``--git-*`` options; the launcher's :class:`GitCheckout` clones into a
folder of its own and finds the entry there, never outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.errors import SpecError
from hub_viz.hubstart import prepare_service
from hub_viz.launcher.app import StatusHandler
from hub_viz.launcher.process import AppState
from hub_viz.launcher.source import GitCheckout
from hub_viz.settings import shared_names
from hub_viz.signing import Signer
from hub_viz.spawner import DashboardLocalSpawner

from .test_gitfetch import git, make_remote

pytestmark = pytest.mark.unit

# -- the spawner -----------------------------------------------------------------------------


def local_spawner(tmp_path: Path, spec: dict, **traits) -> DashboardLocalSpawner:
    c = Config()
    configure(
        c,
        state_dir=str(tmp_path),
        dashboards_root=str(tmp_path / "{username}"),
        run_as_hub_user=True,
    )
    for name, value in traits.items():
        setattr(
            c.DashboardSettings if name in shared_names() else c.DashboardLocalSpawner, name, value
        )
    prepare_service(c, c.JupyterHub.services)  # the hub starts: the service's keys
    key = (tmp_path / "hub_viz_signing_key.pem").read_text()
    user = SimpleNamespace(
        name="viewer", id=0, url="/user/viewer/", escaped_name="viewer", settings={}
    )
    hub = SimpleNamespace(
        api_url="http://127.0.0.1:8081/hub/api",
        base_url="/hub/",
        url="http://127.0.0.1:8081/hub/",
        public_host="",
        host="",
    )
    server = orm.Server(
        proto="http", ip="", port=0, base_url="/user/viewer/sales/", cookie_name="jupyterhub"
    )
    spawner = DashboardLocalSpawner(
        config=c,
        user=user,
        hub=hub,
        orm_spawner=SimpleNamespace(name="sales", server=server, state=None),
    )
    spawner.user_options = {"hub_viz_spec": Signer(key).sign_spec("viewer", "sales", spec)}
    spawner.port = 4321
    return spawner


GIT_SPEC = {
    "framework": "dash",
    "entry": "lecture/app.py",
    "source_owner": "prof",
    "dashboard": "prof/sales",
    "git": {"url": "https://git.example.edu/c/d.git", "ref": "v2"},
}


async def test_the_spawner_passes_the_source_to_the_launcher_and_fetches_nothing(
    tmp_path, monkeypatch
):
    async def no_subprocesses(*args, **kwargs):
        raise AssertionError(f"the hub ran {args}")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_subprocesses)
    spawner = local_spawner(tmp_path, GIT_SPEC, git_max_bytes=5_000_000, git_timeout=30)
    spawner._dashboard = await spawner.resolve_dashboard()  # the entry is not on the hub
    args = spawner.get_args()
    assert "--entry=app.py" in args
    assert "--cwd=lecture" in args, "the entry's folder, inside the checkout"
    assert args[args.index("--git-url=https://git.example.edu/c/d.git") :][:5] == [
        "--git-url=https://git.example.edu/c/d.git",
        "--git-ref=v2",
        "--git-schemes=https",
        "--git-max-bytes=5000000",
        "--git-timeout=30",
    ]


async def path_source_args(tmp_path: Path, **traits) -> list[str]:
    """The launcher's arguments for GIT_SPEC's dashboard from a path on the hub (its entry
    file made), from a local spawner with ``traits``."""
    (tmp_path / "prof" / "lecture").mkdir(parents=True, exist_ok=True)
    (tmp_path / "prof" / "lecture" / "app.py").write_text("app = None\n")
    spec = {k: v for k, v in GIT_SPEC.items() if k != "git"}
    spawner = local_spawner(tmp_path, spec, **traits)
    spawner._dashboard = await spawner.resolve_dashboard()
    return spawner.get_args()


async def test_a_path_source_gets_no_git_options(tmp_path):
    args = await path_source_args(tmp_path)
    assert f"--cwd={tmp_path / 'prof' / 'lecture'}" in args
    assert not any(a.startswith("--git-") for a in args)


async def test_the_spawner_refuses_a_scheme_the_hub_does_not_allow(tmp_path):
    spec = {**GIT_SPEC, "git": {"url": "file:///srv/repo.git", "ref": "main"}}
    spawner = local_spawner(tmp_path, spec)
    with pytest.raises(Exception) as e:
        await spawner.resolve_dashboard()
    assert "The git URL must start with https://" in e.value.jupyterhub_message


# -- the launcher's checkout -------------------------------------------------------------------


def checkout_for(
    url: str, entry: str = "app.py", cwd: str = ".", ref: str = "main", max_bytes: int = 10_000_000
) -> GitCheckout:
    return GitCheckout(
        argparse.Namespace(
            git_url=url,
            git_ref=ref,
            git_schemes="https,file",
            git_max_bytes=max_bytes,
            git_timeout=60,
            cwd=cwd,
            entry=entry,
        )
    )


@pytest.fixture
def lecture_remote(tmp_path: Path) -> str:
    files = {"app.py": b"VERSION = 1\n", "lecture/app.py": b"x = 1\n"}
    bare = make_remote(tmp_path, "lecture", files)
    return f"file://{bare}"


async def test_the_launcher_fetches_into_a_folder_of_its_own(lecture_remote):
    checkout = checkout_for(lecture_remote, cwd="lecture")
    try:
        folder = Path(await checkout.fetch(asyncio.Event()))
        assert folder == checkout.root.resolve() / "lecture"
        assert (folder / "app.py").read_text() == "x = 1\n"
        assert checkout.workdir.name.startswith("hub-viz-source-")
        assert not checkout.fetching
    finally:
        checkout.remove()
    assert not checkout.workdir.exists()


async def test_an_entry_missing_from_the_repository_is_a_sentence(lecture_remote):
    checkout = checkout_for(lecture_remote, entry="report.ipynb", cwd="lecture")
    try:
        with pytest.raises(SpecError) as e:
            await checkout.fetch(asyncio.Event())
        assert e.value.message == (
            "The entry file 'lecture/report.ipynb' does not exist in the "
            "git repository at ref 'main'."
        )
    finally:
        checkout.remove()


async def test_an_entry_that_links_outside_the_checkout_is_refused(tmp_path):
    bare = make_remote(tmp_path, "linked", {"app.py": b"x = 1\n"})
    work = tmp_path / "linked-work"
    git("checkout", "-q", "main", cwd=work)
    os.symlink("/etc/passwd", work / "secret.py")
    git("add", "secret.py", cwd=work)
    git("commit", "-qm", "link", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    checkout = checkout_for(f"file://{bare}", entry="secret.py")
    try:
        with pytest.raises(SpecError, match="'secret.py' points outside the git repository"):
            await checkout.fetch(asyncio.Event())
    finally:
        checkout.remove()


async def test_a_stop_while_fetching_ends_the_fetch(lecture_remote):
    checkout = checkout_for(lecture_remote)
    stopping = asyncio.Event()
    stopping.set()
    try:
        assert await checkout.fetch(stopping) == ""
    finally:
        checkout.remove()


# -- what the start-up page and the spawner read while the source is fetched -------------------


async def test_the_status_says_fetching_while_the_instance_fetches(lecture_remote):
    checkout = checkout_for(lecture_remote)
    ctx = SimpleNamespace(
        app=SimpleNamespace(state=AppState.STARTING, elapsed=0.5, message="", tail=[]),
        framework=SimpleNamespace(display_name="Dash"),
        checkout=checkout,
        owner="prof",
        author="prof",
        server_token="server-token",
        frame_ancestors=None,
        grants=SimpleNamespace(header_is_owner=lambda handler, owner: False),
    )
    app = web.Application([(r"/_hub_viz/status", StatusHandler)], hub_viz=ctx)
    server = app.listen(0, "127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    client = AsyncHTTPClient()

    async def status() -> dict:
        r = await client.fetch(
            f"http://127.0.0.1:{port}/_hub_viz/status",
            headers={"Authorization": "token server-token"},
        )
        return json.loads(r.body)

    try:
        checkout.fetching = True
        assert (await status())["phase"] == "fetching"
        checkout.fetching = False
        assert "phase" not in await status()
    finally:
        server.stop()
        checkout.remove()

"""Launchers forked from the fork server (``launcher_fork_server``) through a real hub: a
class opening a per-viewer dashboard together gets its pages, each launcher is a fork of
the one server, and a stop ends the launcher and its app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urljoin

import psutil
import pytest
import requests

from ..conftest import Hub, running_test_hub, wait_until
from .test_warm_starts import (
    assert_each_renders_after_its_turn,
    follow_together,
    open_together,
    publish_clock,
)

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def forking_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_test_hub(
        tmp_path_factory.mktemp("forking-hub"),
        extra_config="c.DashboardLocalSpawner.launcher_fork_server = True\n",
    ) as hub:
        yield hub


def fork_server_of(hub: Hub, preload: str) -> psutil.Process:
    """The hub's fork server that has ``preload`` imported for apps (one per framework)."""
    servers = [
        p
        for p in psutil.Process(hub.proc.pid).children()
        if "hub_viz.launcher.forkserver" in " ".join(p.cmdline())
        and f"--preload={preload}" in p.cmdline()
    ]
    assert len(servers) == 1, servers
    return servers[0]


def launcher_of(hub: Hub, owner: str, name: str) -> psutil.Process:
    """The launcher of ``owner``'s server ``name``: the pid the hub keeps in its state."""
    servers = hub.api("GET", f"/users/{owner}").json()["servers"]
    return psutil.Process(servers[name]["state"]["pid"])


def test_a_class_opens_a_per_viewer_dashboard_through_forked_launchers(forking_hub: Hub) -> None:
    hub = forking_hub
    publish_clock(hub, "forked", "Forked")
    viewers = ["f1", "f2", "f3"]
    bodies = open_together(hub, viewers, "teacher/forked")
    streams = follow_together(hub, viewers, bodies)
    assert_each_renders_after_its_turn(hub, viewers, bodies, streams)

    server = fork_server_of(hub, "bokeh.command.bootstrap")
    launchers = {}
    for viewer, body in zip(viewers, bodies, strict=True):
        owner, name = body["server"].split("/", 1)
        assert owner == viewer
        launcher = launcher_of(hub, owner, name)
        assert launcher.ppid() == server.pid, "forked by the fork server"
        # what ps and /proc show: the launcher's command line and environment
        assert "hub_viz.launcher" in launcher.cmdline() and launcher.name() == "hub-viz-launch"
        env = launcher.environ()
        assert (env["JUPYTERHUB_USER"], env["JUPYTERHUB_SERVER_NAME"]) == (owner, name)
        assert launcher.children(), "the launcher runs its app"
        launchers[viewer] = (name, launcher, launcher.children(recursive=True))
    assert "Forked launcher" in hub.log.read_text()
    # each Bokeh app is a fork of the server, which has Bokeh's server imported
    assert hub.log.read_text().count("The app runs as a fork with its framework imported") >= 3

    # a stop ends the launcher and its app, and the server ran on from the same fork server
    name, launcher, apps = launchers["f1"]
    hub.stop("f1", name)
    wait_until(lambda: not launcher.is_running() or launcher.status() == "zombie", 30)
    assert not psutil.pid_exists(launcher.pid), "the fork server collects its exit"
    assert not any(p.is_running() for p in apps)
    assert fork_server_of(hub, "bokeh.command.bootstrap").pid == server.pid
    for viewer in ("f2", "f3"):
        assert launchers[viewer][1].is_running()
    assert hub.svc("DELETE", "dashboards/teacher/forked", "teacher").status_code == 204


def test_per_viewer_dash_apps_are_forks_with_dash_imported(forking_hub: Hub) -> None:
    hub = forking_hub
    publish_clock(hub, "forked-dash", "Forked Dash", framework="dash")
    viewers = ["d1", "d2"]
    bodies = open_together(hub, viewers, "teacher/forked-dash")
    streams = follow_together(hub, viewers, bodies)
    server = fork_server_of(hub, "hub_viz.runners.dash:import_dash")
    for viewer, body, events in zip(viewers, bodies, streams, strict=True):
        assert events[-1].get("ready"), (viewer, events)
        # the viewer's page and what draws it, through the hub
        browser = requests.Session()
        page = browser.get(urljoin(hub.url, events[-1]["url"]), timeout=60)
        assert page.status_code == 200 and "Dash example" in page.text
        layout = browser.get(page.url.split("?")[0].rstrip("/") + "/_dash-layout", timeout=60)
        assert layout.status_code == 200 and "Sum of squares 1..200 = 2686700" in layout.text

        owner, name = body["server"].split("/", 1)
        launcher = launcher_of(hub, owner, name)
        assert launcher.ppid() == server.pid
        (app,) = launcher.children()  # the launcher's child, as a new process would be
        assert os.getsid(app.pid) == app.pid
        assert [a for a in app.cmdline() if a][1:3] == ["-m", "waitress"]
        env = app.environ()
        assert env["HUB_VIZ_DASH_ENTRY"] == "app.py"
        assert not [k for k in env if k.startswith(("JUPYTERHUB_", "HUB_VIZ_FRAMEWORK"))]
    assert hub.log.read_text().count("The app runs as a fork with its framework imported") >= 2
    assert hub.svc("DELETE", "dashboards/teacher/forked-dash", "teacher").status_code == 204

"""Faults on a real hub: the service, the hub and the proxy restarting, apps dying or hanging.

One hub (``configure()``'s own ``cleanup_servers``) with real configurable-http-proxy,
launchers and apps. A viewer keeps a Bokeh page and its websocket open while parts
around the running dashboard are killed; the service's store and deployment records
must come through unchanged. The hub polls servers every 2 s here (30 s in production)
so that a crashed app is noticed quickly; the restart of the hub comes last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import websocket

from ..conftest import SERVICE, Hub, restart_hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

OWNER, VIEWER = "fault-owner", "fault-viewer"
BOKEH, CRASH, HANG = "fault-bokeh", "fault-crash", "fault-hang"
BOKEH_MARKER = EXAMPLES["bokeh-example"][1]
DASH_MARKER = EXAMPLES["dash-example"][1]
START_TIMEOUT = 12  # the hub's Spawner.start_timeout here (configure(): 180)

EXTRA_CONFIG = f"""
c.Spawner.poll_interval = 2
c.Spawner.start_timeout = {START_TIMEOUT}
c.ConfigurableHTTPProxy.check_running_interval = 1
# a start answers 202 at once and is followed on the progress stream, as on Kubernetes
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"""
PUBLISHED = {
    BOKEH: {"title": "Faults: Bokeh", "framework": "bokeh", "entry": "bokeh/app.py"},
    CRASH: {"title": "Faults: Dash", "framework": "dash", "entry": "dash/app.py"},
    # imports forever: its readiness path never answers
    HANG: {"title": "Faults: hanging", "framework": "dash", "entry": "broken/slow.py"},
}


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Hub]]:
    """The module's hub, in a list: the restart test puts the restarted hub in its place."""
    running = start_hub(
        tmp_path_factory.mktemp("faults-hub"),
        cleanup_servers=None,
        extra_config=EXTRA_CONFIG,
        configure_kwargs={"extra_service_config": {"reconcile_interval": 1, "thumbnails": False}},
    )
    box = [running]
    try:
        for user in (OWNER, VIEWER):
            running.ensure_user(user)
        for slug, fields in PUBLISHED.items():
            r = running.svc(
                "POST", "dashboards", OWNER, json={"slug": slug, "visibility": "all", **fields}
            )
            assert r.status_code == 201, r.text
        yield box
    finally:
        last = box[-1]
        if last.proc.poll() is None:
            for slug in PUBLISHED:
                last.api("DELETE", f"/users/{OWNER}/servers/{slug}")
            wait_until(lambda: not leftovers(last), timeout=30, what="the servers to stop")
        stop_hub(last)
        for proc in leftovers(last):
            proc.kill()


@pytest.fixture
def hub(hubs: list[Hub]) -> Hub:
    return hubs[-1]


# -- helpers -------------------------------------------------------------------------------


def dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie its parent has not reaped yet."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def server(hub: Hub, slug: str) -> dict[str, Any]:
    """The hub's model of OWNER's server (with its spawner state), {} when not running."""
    r = hub.api("GET", f"/users/{OWNER}")
    assert r.status_code == 200, r.text
    return (r.json().get("servers") or {}).get(slug) or {}


def usage(hub: Hub, slug: str) -> dict[str, Any]:
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/usage", OWNER)
    assert r.status_code == 200, r.text
    return r.json()


def events(hub: Hub, slug: str, user: str) -> list[dict[str, Any]]:
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/progress", user, stream=True)
    assert r.status_code == 200, r.text
    return [
        json.loads(line[5:])
        for line in r.iter_lines(decode_unicode=True)
        if line and line.startswith("data:")
    ]


def open_dashboard(hub: Hub, slug: str, user: str = VIEWER) -> str:
    """Open through the service like the open page does; the enter link once ready."""
    r = hub.svc("POST", f"dashboards/{OWNER}/{slug}/open", user)
    assert r.status_code == 200, r.text
    if r.json()["status"] == "ready":
        return r.json()["url"]
    last = events(hub, slug, user)[-1]
    assert last.get("ready"), last
    return last["url"]


def service_up(hub: Hub) -> bool:
    try:
        return requests.get(f"{hub.url}{SERVICE}api/openapi.yaml", timeout=5).ok
    except requests.ConnectionError:
        return False


def service_process(hub: Hub) -> psutil.Process:
    [proc] = [
        p for p in psutil.Process(hub.proc.pid).children() if "hub_viz.service" in p.cmdline()
    ]
    return proc


def hub_env(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}


def leftovers(hub: Hub, slug: str | None = None) -> list[psutil.Process]:
    """Live launchers of this hub and apps in its dashboards folder (``slug``'s only, if given)."""
    api_port = re.search(
        r"hub_port = (\d+)", (hub.log.parent / "jupyterhub_config.py").read_text()
    )[1]
    folder = hub.root / Path(PUBLISHED[slug]["entry"]).parent if slug else hub.root
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            env = hub_env(proc)
            launcher = f":{api_port}/" in env.get("JUPYTERHUB_API_URL", "") and env.get(
                "JUPYTERHUB_SERVICE_PREFIX", ""
            ).startswith("/user/")
            if launcher and (slug is None or env.get("JUPYTERHUB_SERVER_NAME") == slug):
                found.append(proc)
            elif Path(proc.cwd()).is_relative_to(folder):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


class BokehViewer:
    """A viewer's tab on a Bokeh dashboard: the page and its websocket, through the proxy."""

    def __init__(self, hub: Hub, url: str, tab: requests.Session | None = None) -> None:
        self.hub = hub
        self.tab = tab or requests.Session()
        page = self.tab.get(hub.url + url, timeout=60)
        assert page.status_code == 200, page.text[:500]
        assert page.url == f"{hub.url}/user/{OWNER}/{BOKEH}/app", page.url
        self.page_url = page.url
        self.ws: websocket.WebSocket | None = None
        self.connect()

    def page(self) -> requests.Response:
        return self.tab.get(self.page_url, timeout=30, allow_redirects=False)

    def connect(self) -> None:
        """Load the page and open its websocket the way Bokeh's client does."""
        page = self.page()
        assert page.status_code == 200, page.text[:500]
        token = re.search(r'"token":\s*"([^"]+)"', page.text)
        assert token, page.text[:1000]
        cookies = "; ".join(f"{k}={v}" for k, v in self.tab.cookies.items())
        self.ws = websocket.create_connection(
            self.page_url.replace("http", "ws", 1) + "/ws",
            subprotocols=["bokeh", token[1]],
            header=[f"Cookie: {cookies}"],
            origin=self.hub.url,
            timeout=30,
        )
        assert json.loads(self.ws.recv())["msgtype"] == "ACK"
        self.ws.recv(), self.ws.recv()  # the ACK's metadata and content

    def document(self) -> str:
        """Ask the app for its document over the open websocket; its JSON text."""
        assert self.ws is not None
        header = {"msgid": str(time.monotonic_ns()), "msgtype": "PULL-DOC-REQ"}
        for part in (header, {}, {}):
            self.ws.send(json.dumps(part))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("msgtype") == "PULL-DOC-REPLY":
                self.ws.recv()
                return self.ws.recv()
            self.ws.recv(), self.ws.recv()

    def works(self) -> bool:
        page = self.page()
        return (
            page.status_code == 200
            and "<title>Bokeh example</title>" in page.text
            and (BOKEH_MARKER in self.document())
        )

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


@pytest.fixture
def viewer(hub: Hub) -> Iterator[BokehViewer]:
    tab = BokehViewer(hub, open_dashboard(hub, BOKEH))
    assert tab.works()
    yield tab
    tab.close()


def records(hub: Hub, slug: str) -> dict[str, Any]:
    """What the service's store says about ``slug``'s runs and opens (not growing totals)."""
    u = usage(hub, slug)
    return {k: u[k] for k in ("deployments", "opens", "viewers", "running_now", "recent")}


def open_record(hub: Hub, slug: str) -> dict[str, Any]:
    """The one open deployment record of ``slug``."""
    [record] = [d for d in usage(hub, slug)["recent"] if d["stopped"] is None]
    return record


# -- tests ---------------------------------------------------------------------------------


def test_killed_service_comes_back_and_loses_nothing(hub: Hub, viewer: BokehViewer):
    before = usage(hub, BOKEH)
    record = open_record(hub, BOKEH)
    listed = hub.svc("GET", "dashboards", VIEWER).json()["items"]
    service = service_process(hub)
    service.send_signal(signal.SIGKILL)
    wait_until(lambda: dead(service), timeout=10, what="the service to die")
    assert not service_up(hub)

    # the service is not on the data path: the open tab keeps working, a new one too
    assert viewer.works()
    second_tab = requests.Session()
    second_tab.cookies.update(viewer.tab.cookies)
    again = BokehViewer(hub, viewer.page_url.removeprefix(hub.url), second_tab)
    assert again.works()
    again.close()

    # the hub restarts a managed service that exits (it polls it every 30 s)
    wait_until(lambda: service_up(hub), timeout=60, what="the hub to restart the service")
    assert service_process(hub).pid != service.pid
    assert viewer.works()
    time.sleep(3)  # a few reconcile rounds: the running server is found, not closed
    assert hub.svc("GET", "dashboards", VIEWER).json()["items"] == listed
    assert hub.svc("GET", f"dashboards/{OWNER}/{BOKEH}", VIEWER).json()["status"] == "running"
    assert open_record(hub, BOKEH) == record
    # opening again joins the running server: no new deployment
    BokehViewer(hub, open_dashboard(hub, BOKEH)).close()
    after = usage(hub, BOKEH)
    assert (after["deployments"], after["opens"]) == (before["deployments"], before["opens"] + 1)
    assert open_record(hub, BOKEH) == record


def test_killed_proxy_is_restarted_and_viewers_reconnect(hub: Hub, viewer: BokehViewer):
    record = open_record(hub, BOKEH)
    pid_file = hub.log.parent / "proxy.pid"
    proxy = psutil.Process(int(pid_file.read_text()))
    proxy.send_signal(signal.SIGKILL)
    wait_until(lambda: dead(proxy), timeout=10, what="the proxy to die")
    with pytest.raises((websocket.WebSocketException, OSError)):
        viewer.document()

    # the hub notices, starts configurable-http-proxy again and restores every route
    def reachable() -> bool:
        try:
            return viewer.page().status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(reachable, timeout=30, what="the dashboard to be reachable again")
    assert psutil.Process(int(pid_file.read_text())).pid != proxy.pid
    viewer.connect()
    assert viewer.works()
    assert service_up(hub)
    assert server(hub, BOKEH)["ready"]
    assert open_record(hub, BOKEH) == record


def test_crashed_app_stops_its_server_is_recorded_and_restarts(hub: Hub):
    enter = open_dashboard(hub, CRASH)
    tab = requests.Session()
    assert tab.get(hub.url + enter, timeout=60).status_code == 200
    launcher = psutil.Process(server(hub, CRASH)["state"]["pid"])
    [app] = launcher.children()
    os.killpg(app.pid, signal.SIGKILL)  # the app dies under a running launcher

    # the launcher exits, the hub stops the server, the service closes the record
    wait_until(lambda: dead(launcher), timeout=30, what="the launcher to exit")
    wait_until(lambda: not server(hub, CRASH), timeout=30, what="the hub to stop the server")
    [record] = wait_until(
        lambda: [d for d in usage(hub, CRASH)["recent"] if d["stopped"]],
        timeout=30,
        what="the service to close the deployment record",
    )
    assert (record["stop_reason"], record["stopped_by"]) == ("crashed", "")
    owner_view = hub.svc("GET", f"dashboards/{OWNER}/{CRASH}", OWNER).json()
    assert owner_view["status"] == "stopped"
    logs = hub.svc("GET", f"dashboards/{OWNER}/{CRASH}/logs", OWNER).json()
    assert logs["status"] == "stopped"
    assert "crashed" in logs["message"], logs
    assert not leftovers(hub, CRASH)

    # a viewer opening it again starts it again, as a new deployment
    enter = open_dashboard(hub, CRASH)
    page = tab.get(hub.url + enter, timeout=60)
    assert page.status_code == 200, page.text[:500]
    layout = tab.get(page.url + "_dash-layout", timeout=30)
    assert DASH_MARKER in layout.text
    assert [d["stopped"] is None for d in usage(hub, CRASH)["recent"]] == [True, False]


def test_spawn_that_never_becomes_ready_times_out_readably_and_leaves_nothing(hub: Hub):
    r = hub.svc("POST", f"dashboards/{OWNER}/{HANG}/open", OWNER)
    if r.status_code == 200:  # pending: the open page follows the progress stream
        assert r.json()["status"] == "pending", r.text
        author = events(hub, HANG, OWNER)
        last = author[-1]
        assert last.get("failed") is True and "url" not in last, author
        message = last["message"]
    else:  # the hub gave up before it answered the start
        assert r.status_code == 502, r.text
        message = r.json()["message"]
    assert re.search(
        r"The Dash dashboard .*did not (answer|become ready) (with)?in \d+ seconds", message
    ), message
    # a viewer is told it did not start, not the app's log
    viewer = events(hub, HANG, VIEWER)[-1]
    assert viewer.get("failed") is True, viewer
    assert "could not start" in viewer["message"], viewer

    # nothing is left: no server in the hub, no launcher or app process, no open record
    wait_until(lambda: not server(hub, HANG), timeout=30, what="the hub to forget the spawn")
    wait_until(lambda: not leftovers(hub, HANG), timeout=20, what="the processes to end")
    [record] = wait_until(
        lambda: [d for d in usage(hub, HANG)["recent"] if d["stopped"]],
        timeout=30,
        what="the service to close the deployment record",
    )
    assert record["stop_reason"] == "failed to start"  # not "crashed": it never ran
    assert hub.svc("GET", f"dashboards/{OWNER}/{HANG}", OWNER).json()["status"] == "stopped"


def test_restarted_hub_finds_the_running_dashboard(hubs: list[Hub], viewer: BokehViewer):
    hub = hubs[-1]
    before = {slug: records(hub, slug) for slug in PUBLISHED}
    record = open_record(hub, BOKEH)
    launcher = server(hub, BOKEH)["state"]["pid"]
    listed = hub.svc("GET", "dashboards", VIEWER).json()["items"]

    hubs.append(restart_hub(hub))
    hub = hubs[-1]

    # the same launcher is found again from the spawner's saved state, and routed anew
    model = server(hub, BOKEH)
    assert model["ready"] and model["state"]["pid"] == launcher, model
    assert psutil.pid_exists(launcher)
    wait_until(
        lambda: viewer.page().status_code == 200,
        timeout=30,
        what="the dashboard's route to come back",
    )
    viewer.connect()
    assert viewer.works()
    time.sleep(3)  # a few reconcile rounds of the restarted service
    assert open_record(hub, BOKEH) == record
    assert {slug: records(hub, slug) for slug in PUBLISHED} == before
    assert hub.svc("GET", "dashboards", VIEWER).json()["items"] == listed

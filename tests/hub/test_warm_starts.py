"""Warm starts through a real hub: preheated Voilà kernels, per-viewer warm pools, and
starts that wait their turn when the hub is at its limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import psutil
import pytest
import requests

from ..conftest import BROWSER_UA, Hub, running_test_hub, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

POOL = "hub-viz-pool"
DASH_TEXT = EXAMPLES["dash-example"][1]
VOILA_TEXT = EXAMPLES["voila-example"][1]


@pytest.fixture(scope="module")
def warm_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_test_hub(
        tmp_path_factory.mktemp("warm-hub"),
        warm_pool_ceiling=3,
        max_warm_kernels=4,
        service={"warm_pool_interval": 1, "keep_warm_interval": 1},
    ) as hub:
        yield hub


def pool_servers(hub: Hub) -> dict[str, dict]:
    r = hub.api("GET", f"/users/{POOL}")
    return r.json().get("servers", {}) if r.status_code == 200 else {}


def ready_pool(hub: Hub) -> set[str]:
    return {name for name, s in pool_servers(hub).items() if s.get("ready")}


def open_as(hub: Hub, viewer: str, ref: str) -> dict:
    r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_warm_pool_hands_each_viewer_a_ready_instance_of_their_own(warm_hub: Hub) -> None:
    hub = warm_hub
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        json={
            "title": "Lab",
            "slug": "lab",
            "entry": "dash/app.py",
            "mode": "per-viewer",
            "visibility": "all",
            "warm_pool": 2,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["warm_pool"] == 2
    first_two = wait_until(lambda: len(ready_pool(hub)) >= 2 and ready_pool(hub), 90, what="2 warm")

    # a viewer gets one of them at once: no start, no progress page
    body = open_as(hub, "s1", "teacher/lab")
    assert body["status"] == "ready" and "url" in body
    owner, name = body["server"].split("/")
    assert owner == POOL and name in first_two
    page = requests.Session()
    r = page.get(urljoin(hub.url, body["url"]), headers={"User-Agent": BROWSER_UA}, timeout=60)
    assert r.status_code == 200 and "_dash-config" in r.text
    layout = page.get(hub.server_url(POOL, name) + "_dash-layout", timeout=30)
    assert DASH_TEXT in layout.text

    # it stays theirs; the next viewer gets the other one
    assert open_as(hub, "s1", "teacher/lab")["server"] == body["server"]
    other = open_as(hub, "s2", "teacher/lab")
    assert other["status"] == "ready" and other["server"] != body["server"]
    assert other["server"].split("/")[1] in first_two

    # nobody else reaches s1's instance: not with s2's cookie, not logged in as s3
    s2 = requests.Session()
    assert s2.get(urljoin(hub.url, other["url"]), timeout=60).status_code == 200
    for session in (s2, hub.login("s3")):
        r = session.get(
            hub.server_url(POOL, name) + "_dash-layout", timeout=30, allow_redirects=False
        )
        assert DASH_TEXT not in r.text
        assert r.status_code in (302, 403), r.status_code

    # the pool refills behind them, within the ceiling of 3 instances, which counts the
    # two handed out: one idle
    wait_until(
        lambda: len(ready_pool(hub) - {name, other["server"].split("/")[1]}) == 1,
        what="the pool to refill",
    )
    assert len(pool_servers(hub)) == 3  # two claimed + one idle

    # nobody may log in as the pool's user
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    r = s.post(
        f"{hub.url}/hub/login",
        data={
            "username": POOL,
            "password": "hub-viz-test",
            "_xsrf": s.cookies.get("_xsrf"),
        },
        timeout=30,
    )
    assert "/hub/home" not in r.url

    # s1's instance stops (the idle culler): it is removed, and s1 gets a new one next time
    hub.api("DELETE", f"/users/{POOL}/servers/{name}")
    wait_until(lambda: name not in pool_servers(hub), what="the stopped instance to be removed")
    again = open_as(hub, "s1", "teacher/lab")
    assert again["status"] == "ready" and again["server"] != body["server"]

    # unpublishing removes every instance, claimed or not
    assert hub.svc("DELETE", "dashboards/teacher/lab", "teacher").status_code == 204
    wait_until(lambda: not pool_servers(hub), what="the pool to be emptied")


def test_voila_keeps_kernels_preheated_and_keep_warm_starts_it(warm_hub: Hub) -> None:
    hub = warm_hub
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        json={
            "title": "Report",
            "slug": "report",
            "entry": "voila/dashboard.ipynb",
            "visibility": "all",
            "warm_kernels": 2,
            "keep_warm": "always",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["keep_warm"] == [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00",
            "end": "24:00",
        }
    ]
    # nobody opened it: the keep-warm round starts it
    wait_until(
        lambda: (
            hub.api("GET", "/users/teacher")
            .json()
            .get("servers", {})
            .get("report", {})
            .get("ready")
        ),
        what="the keep-warm start",
    )
    voila = wait_until(
        lambda: [
            p
            for p in psutil.process_iter(["cmdline"])
            if "voila" in " ".join(p.info["cmdline"] or [])
            and "--pool_size=2" in (p.info["cmdline"] or [])
        ],
        what="the Voilà process",
    )[0]
    wait_until(
        lambda: (
            len([c for c in voila.children(recursive=True) if "ipykernel" in " ".join(c.cmdline())])
            >= 2
        ),
        what="two preheated kernels",
    )
    body = open_as(hub, "s4", "teacher/report")
    assert body["status"] == "ready"
    page = requests.get(urljoin(hub.url, body["url"]), timeout=60)
    assert page.status_code == 200 and VOILA_TEXT in page.text
    assert "range(1, 101)" not in page.text  # still no sources
    # too many kernels, or kernels for a framework without them: 400 with the reason
    r = hub.svc("PATCH", "dashboards/teacher/report", "teacher", json={"warm_kernels": 5})
    assert r.status_code == 400 and "at most 4" in r.json()["message"]
    assert hub.svc("DELETE", "dashboards/teacher/report", "teacher").status_code == 204


@pytest.fixture(scope="module")
def narrow_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub that starts one server at a time."""
    with running_test_hub(
        tmp_path_factory.mktemp("narrow-hub"),
        extra_config="c.JupyterHub.concurrent_spawn_limit = 1\n",
    ) as hub:
        yield hub


def follow(hub: Hub, viewer: str, progress_url: str) -> list[dict]:
    """The progress stream's events until ready or failed."""
    events = []
    with requests.get(
        urljoin(hub.url, progress_url),
        stream=True,
        timeout=180,
        headers={
            "Authorization": f"token {hub.user_token(viewer)}",
            "User-Agent": BROWSER_UA,
        },
    ) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
    return events


def publish_clock(hub: Hub, slug: str, title: str, framework: str = "bokeh") -> None:
    """The teacher publishes a per-viewer dashboard every user may open: the framework's
    example (Bokeh's clock by default)."""
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        json={
            "title": title,
            "slug": slug,
            "entry": f"{framework}/app.py",
            "framework": framework,
            "mode": "per-viewer",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text


def open_together(hub: Hub, viewers: list[str], ref: str) -> list[dict]:
    """Each viewer's open call, all at once."""
    for v in viewers:
        hub.user_token(v)
    with ThreadPoolExecutor(len(viewers)) as pool:
        return list(pool.map(lambda v: open_as(hub, v, ref), viewers))


def follow_together(hub: Hub, viewers: list[str], bodies: list[dict]) -> list[list[dict]]:
    """Each viewer's progress stream until ready or failed (an open answered ready: its url)."""
    with ThreadPoolExecutor(len(viewers)) as pool:
        return list(
            pool.map(
                lambda vb: (
                    follow(hub, vb[0], vb[1]["progress_url"])
                    if "progress_url" in vb[1]
                    else [{"ready": True, "url": vb[1]["url"]}]
                ),
                zip(viewers, bodies, strict=True),
            )
        )


def assert_each_renders_after_its_turn(
    hub: Hub, viewers: list[str], bodies: list[dict], streams: list[list[dict]]
) -> None:
    """Every viewer's page renders; a queued one was told it waits its turn."""
    for v, body, events in zip(viewers, bodies, streams, strict=True):
        assert events[-1].get("ready"), (v, events)
        if body["status"] == "queued":
            waiting = [e["message"] for e in events if "queued" in e]
            assert waiting and "Many dashboards are starting at once" in waiting[0]
        page = requests.get(urljoin(hub.url, events[-1]["url"]), timeout=60)
        assert page.status_code == 200 and "Bokeh" in page.text


def test_opens_beyond_the_hubs_start_limit_wait_their_turn(narrow_hub: Hub) -> None:
    hub = narrow_hub
    publish_clock(hub, "clock", "Clock")
    viewers = ["q1", "q2", "q3"]
    bodies = open_together(hub, viewers, "teacher/clock")
    statuses = [b["status"] for b in bodies]
    assert "queued" in statuses, statuses  # the hub took one start; the others wait
    streams = follow_together(hub, viewers, bodies)
    assert_each_renders_after_its_turn(hub, viewers, bodies, streams)
    assert hub.svc("DELETE", "dashboards/teacher/clock", "teacher").status_code == 204


@pytest.fixture(scope="module")
def one_start_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose service starts one server at a time (the hub itself would take 100)."""
    with running_test_hub(
        tmp_path_factory.mktemp("one-start-hub"), service={"max_starting": 1}
    ) as hub:
        yield hub


def starts_under_way(hub: Hub) -> int:
    """Servers the hub is starting now (pending spawn), every user's."""
    r = hub.api("GET", "/users", params={"state": "active"})
    assert r.status_code == 200, r.text
    return sum(
        1
        for user in r.json()
        for server in (user.get("servers") or {}).values()
        if server.get("pending") == "spawn"
    )


def test_a_class_takes_turns_to_start_under_the_services_limit(one_start_hub: Hub) -> None:
    hub = one_start_hub
    publish_clock(hub, "turns", "Turns")
    viewers = ["t1", "t2", "t3"]
    for v in viewers:
        hub.user_token(v)  # before the sampler starts: token requests are not part of it
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(starts_under_way(hub))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        bodies = open_together(hub, viewers, "teacher/turns")
        # the first start went (ready within the hub's answer, or still pending): the others
        # wait for it, though the hub would have taken them
        statuses = [b["status"] for b in bodies]
        assert statuses.count("queued") == 2, statuses
        assert {"pending", "ready"} & set(statuses), statuses
        streams = follow_together(hub, viewers, bodies)
    finally:
        done.set()
        sampler.join()
    assert max(seen) == 1, seen  # one start at a time, each begun when the one before was ready
    assert seen.count(1) > 3  # the sampler did see the starts under way
    assert_each_renders_after_its_turn(hub, viewers, bodies, streams)
    assert hub.svc("DELETE", "dashboards/teacher/turns", "teacher").status_code == 204


@pytest.fixture(scope="module")
def short_turn_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One start at a time, each holding its place for 3 s at most."""
    with running_test_hub(
        tmp_path_factory.mktemp("short-turn-hub"),
        service={"max_starting": 1, "max_starting_seconds": 3},
    ) as hub:
        yield hub


def test_a_start_that_never_gets_ready_holds_its_place_only_so_long(short_turn_hub: Hub) -> None:
    hub = short_turn_hub
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        # imports forever: never ready until the spawner gives up (the hub's 60 s)
        json={
            "title": "Stuck",
            "slug": "stuck",
            "entry": "broken/slow.py",
            "framework": "dash",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    publish_clock(hub, "after", "After")
    stuck = open_as(hub, "k1", "teacher/stuck")
    assert stuck["status"] == "pending", stuck  # it takes the only place
    body = open_as(hub, "k2", "teacher/after")  # waits for the place (the open call may
    assert body["status"] in ("queued", "ready"), body  # wait out the 3 s itself)
    [events] = follow_together(hub, ["k2"], [body])
    assert_each_renders_after_its_turn(hub, ["k2"], [body], [events])
    # the other dashboard's start went while the stuck one was still under way
    owner, name = stuck["server"].split("/", 1)
    server = hub.api("GET", f"/users/{owner}").json()["servers"][name]
    assert server["pending"] == "spawn" and not server["ready"], server
    hub.stop(owner, name)
    for slug in ("stuck", "after"):
        assert hub.svc("DELETE", f"dashboards/teacher/{slug}", "teacher").status_code == 204

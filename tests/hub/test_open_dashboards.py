"""Each framework, started as a named server through a real hub and proxy."""

from __future__ import annotations

import json
import uuid

import pytest
import websocket

from ..conftest import BROWSER_UA, both_layouts, origin_of, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub


hub = both_layouts()


@pytest.fixture(scope="module")
def running(hub):
    """All six example dashboards started for alice at once, as a class would."""
    for name, (spec, _) in EXAMPLES.items():
        r = hub.start("alice", name, spec)
        assert r.status_code in (201, 202), r.text
    models = {name: hub.wait("alice", name) for name in EXAMPLES}
    for name, model in models.items():
        assert model.get("ready"), f"{name} failed:\n{hub.spawn_message('alice', name)[-2000:]}"
    yield models
    for name in EXAMPLES:
        hub.stop("alice", name)


def page(hub, user, path):
    return hub.login(user).get(hub.at(path), timeout=60)


def test_voila_page_shows_kernel_output_without_sources(hub, running):
    r = page(hub, "alice", "/user/alice/voila-example/")
    assert r.status_code == 200
    assert r.url == hub.at("/user/alice/voila-example/")
    assert EXAMPLES["voila-example"][1] in r.text
    assert "range(1, 101)" not in r.text, "cell sources must be stripped"


def test_dash_layout_and_callback_through_proxy(hub, running):
    session = hub.login("alice")
    base = hub.at("/user/alice/dash-example/")
    r = session.get(base, timeout=30)
    assert r.status_code == 200 and "<title>Dash example</title>" in r.text
    layout = session.get(base + "_dash-layout", timeout=30)
    assert EXAMPLES["dash-example"][1] in layout.text
    callback = session.post(
        base + "_dash-update-component",
        json={
            "output": "square.children",
            "outputs": {"id": "square", "property": "children"},
            "inputs": [{"id": "n", "property": "value", "value": 12}],
            "changedPropIds": ["n.value"],
        },
        timeout=30,
    )
    assert callback.status_code == 200, callback.text
    assert "n squared is 144" in callback.text


@pytest.mark.parametrize(
    ("name", "path", "marker"),
    [
        ("bokeh-example", "/user/alice/bokeh-example/app", "<title>Bokeh example</title>"),
        ("panel-example", "/user/alice/panel-example/app", "<title>Panel example</title>"),
        ("streamlit-example", "/user/alice/streamlit-example/", "<title>Streamlit</title>"),
    ],
)
def test_server_rendered_frameworks_serve_their_page(hub, running, name, path, marker):
    r = page(hub, "alice", f"/user/alice/{name}/")
    assert r.status_code == 200
    assert r.url == hub.at(path), "the launcher sends viewers to the app's page"
    assert marker in r.text


def test_notebook_runs_code_over_the_kernel_websocket(hub, running):
    session = hub.login("alice")
    base = hub.at("/user/alice/notebook-example/")
    lab = session.get(base, timeout=30)
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    assert lab.url.endswith("/lab/tree/analysis.ipynb")
    kernel = session.post(base + "api/kernels", json={"name": "python3"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    cookies = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    ws = websocket.create_connection(
        base.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels",
        header=[f"Cookie: {cookies}"],
        origin=origin_of(base),
        timeout=60,
    )
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "alice",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": "sum(i * i for i in range(1, 601))",
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                },
            }
        )
    )
    result = None
    for _ in range(50):
        msg = json.loads(ws.recv())
        if (
            msg.get("parent_header", {}).get("msg_id") == msg_id
            and msg["msg_type"] == "execute_result"
        ):
            result = msg["content"]["data"]["text/plain"]
            break
    ws.close()
    assert result == EXAMPLES["notebook-example"][1]


def test_other_user_gets_403_from_the_launcher_not_the_app(hub, running):
    hub.ensure_user("bob")
    token = hub.api("POST", "/users/bob/tokens", json={"note": "test"}).json()["token"]
    r = hub.login("bob").get(  # no cookie of alice's server: only bob's token
        hub.at("/user/alice/dash-example/_dash-layout"),
        headers={"Authorization": f"token {token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403
    body = r.json()
    assert body["source"] == "hub-viz" and "not allowed" in body["message"]
    assert "Sum of squares" not in r.text


def test_other_user_browser_session_is_refused(hub, running):
    r = page(hub, "bob", "/user/alice/voila-example/")
    assert r.status_code == 403
    assert EXAMPLES["voila-example"][1] not in r.text


def test_unauthenticated_visitor_is_sent_to_login(hub, running):
    import requests

    base = "/user/alice/dash-example/"
    r = requests.get(hub.at(f"{base}?x=1"), allow_redirects=False, timeout=30)
    assert r.status_code == 302
    # the launcher's login step (where HubOAuth is loaded), then the hub's OAuth
    assert (
        r.headers["Location"]
        == f"{base}_hub_viz/login?next=%2Fuser%2Falice%2Fdash-example%2F%3Fx%3D1"
    )
    r = requests.get(hub.at(r.headers["Location"]), allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/api/oauth2/authorize" in r.headers["Location"]
    # after logging in, the login step goes back to the page asked for, never elsewhere
    session = hub.login("alice")
    for target, landing in (
        (f"{base}?x=1", f"{base}?x=1"),
        ("https://evil.example/", base),
        ("//evil.example/", base),
        (f"{base}..//x", base),
    ):
        r = session.get(
            hub.at(f"{base}_hub_viz/login"),
            params={"next": target},
            allow_redirects=False,
            timeout=30,
        )
        # through the hub's OAuth (and back to the login step) until it lets go
        for _ in range(6):
            location = r.headers.get("Location", "")
            if r.status_code != 302 or not any(
                part in location for part in ("/hub/", "oauth_callback", "_hub_viz/login")
            ):
                break
            r = session.get(
                location if "://" in location else hub.at(location),
                allow_redirects=False,
                timeout=30,
            )
        assert r.status_code == 302, r.status_code
        assert r.headers["Location"] == landing, (target, r.headers["Location"])
    post = requests.post(
        hub.at("/user/alice/dash-example/_dash-update-component"), json={}, timeout=30
    )
    assert post.status_code == 403
    assert post.json()["source"] == "hub-viz"


def test_readiness_probe_is_public_and_reveals_nothing(hub, running):
    import requests

    r = requests.get(hub.at("/user/alice/dash-example/api"), timeout=30)
    assert r.status_code == 200
    assert set(r.json()) == {"version"}
    status = requests.get(hub.at("/user/alice/dash-example/_hub_viz/status"), timeout=30)
    assert status.status_code == 403


def test_owner_sees_status_with_the_app_log(hub, running):
    owner = page(hub, "alice", "/user/alice/voila-example/_hub_viz/status").json()
    assert owner["state"] == "ready" and owner["framework"] == "Voilà"
    assert any("Voila" in line for line in owner["log"]), owner["log"]


def test_activity_is_reported_from_page_views_not_background_requests(hub, running):
    import time

    def last_activity():
        return hub.api("GET", "/users/alice").json()["servers"]["dash-example"]["last_activity"]

    session = hub.login("alice")
    base = hub.at("/user/alice/dash-example/")
    time.sleep(3)  # let any report of earlier traffic go out first
    before = last_activity()
    # a hidden tab polling (and a script without a browser's User-Agent) is not use
    for _ in range(3):
        r = session.get(
            base + "_dash-layout",
            timeout=30,
            headers={
                "User-Agent": BROWSER_UA,
                "Sec-Fetch-Mode": "cors",
                "Accept": "application/json",
            },
        )
        assert r.status_code == 200
        assert session.get(base, timeout=30).status_code == 200  # python-requests: a bot
    time.sleep(5)  # more than two report intervals
    assert last_activity() == before
    # a person loading the page is
    r = session.get(
        base,
        timeout=30,
        headers={"User-Agent": BROWSER_UA, "Sec-Fetch-Mode": "navigate", "Accept": "text/html"},
    )
    assert r.status_code == 200
    deadline = time.monotonic() + 20  # the test hub reports every 2 s
    after = before
    while time.monotonic() < deadline and after == before:
        time.sleep(0.5)
        after = last_activity()
    assert after > before


def test_no_traffic_no_activity_report(hub, running):
    import time

    def last_activity():
        return hub.api("GET", "/users/alice").json()["servers"]["bokeh-example"]["last_activity"]

    # first the positive signal: a page view reaches the hub as activity in this run
    before = last_activity()
    session = hub.login("alice")
    url = hub.at("/user/alice/bokeh-example/app")

    def viewed() -> bool:
        session.get(url, headers={"Accept": "text/html", "User-Agent": BROWSER_UA}, timeout=30)
        return last_activity() != before

    wait_until(viewed, timeout=30, what="a page view reported as activity", every=1)
    # then nobody looks: once the last view's report is in (at most one interval,
    # 2 s), nothing more comes for more than two intervals
    time.sleep(3)
    settled = last_activity()
    time.sleep(5)
    assert last_activity() == settled


def test_the_hubs_own_link_leads_to_the_dashboards_host(hub, running):
    """The hub links to a server on its user's host; on the isolated layout the launcher
    answers there only with a redirect to the server's own host, and nothing else."""
    session = hub.login("alice")
    hubs_link = (hub.layout.user_origin("alice") if hub.layout.isolated else hub.url) + (
        "/user/alice/dash-example/?x=1"
    )
    r = session.get(hubs_link, allow_redirects=False, timeout=30)
    if hub.layout.isolated:
        assert r.status_code == 302, r.status_code
        assert r.headers["Location"] == hub.at("/user/alice/dash-example/?x=1")
        assert EXAMPLES["dash-example"][1] not in r.text and "<title>" not in r.text
        for method in ("POST", "PUT", "DELETE"):  # whatever the method
            other = session.request(method, hubs_link, allow_redirects=False, timeout=30)
            assert other.status_code == 302 and "Set-Cookie" not in other.headers
    page = session.get(hubs_link, timeout=60)
    assert page.status_code == 200 and "<title>Dash example</title>" in page.text
    assert page.url == hub.at("/user/alice/dash-example/?x=1")

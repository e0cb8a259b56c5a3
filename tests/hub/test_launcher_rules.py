"""The launcher's rules against a real hub, proxy, service and apps.

- ``_hub_viz/status`` treats the dashboard's author as its owner: the viewer
  of a per-viewer instance (the server is theirs) gets the state only;
- cookies cannot be tossed: forged hub_viz and HubOAuth cookies admit
  nobody, a forged duplicate beside the real cookie changes nothing;
- an app's redirect never shows its internal address, and an app cannot set
  hub, service or hub_viz cookies, nor cookies for the domain or other paths;
- losing access takes effect after the re-check interval (a few seconds
  here, a minute by default): viewers admitted with a grant and viewers
  logged in through the hub are refused once unshared or made private.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from ..conftest import Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES
from .test_source_audit import environ, launcher_of

pytestmark = pytest.mark.hub

AUTHOR, VIEWER, KEEPER, FRIEND, HUB_FRIEND = (
    "lr-author",
    "lr-viewer",
    "lr-keeper",
    "lr-friend",
    "lr-hubfriend",
)
PV_SLUG, SHARED_SLUG = "lr-per-viewer", "lr-shared"
DASH_OUTPUT = EXAMPLES["dash-example"][1]
STATUS_KEYS = {"state", "framework", "elapsed"}  # all a non-author learns from the status
INTERVAL = 2  # seconds between access re-checks on this hub (60 by default)
ENOUGH = 40  # seconds to wait for a refusal: many intervals, well below a minute

REDIRECTING_APP = """
import http.server
import sys

port, prefix = int(sys.argv[1]), sys.argv[2]
own = f"http://127.0.0.1:{port}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/go"):
            self.send_response(302)
            self.send_header("Location", f"{own}{prefix}landed?x=1")
            self.send_header("Content-Location", f"{own}{prefix}go")
            self.send_header("Refresh", f"0; url={own}/elsewhere")
            self.send_header("Set-Cookie", f"theme=dark; Path={prefix}")
            self.send_header("Set-Cookie", "jupyterhub-session-id=PLANTED; Path=/")
            self.send_header("Set-Cookie", "jupyterhub-hub-login=PLANTED; Path=/hub/")
            self.send_header("Set-Cookie", f"_xsrf=PLANTED; Path={prefix}")
            self.send_header("Set-Cookie", f"hub-viz-viewer=PLANTED; Path={prefix}")
            self.send_header("Set-Cookie", "service-hub-viz=PLANTED; Path=/services/hub-viz/")
            self.send_header("Set-Cookie", f"parent=PLANTED; Domain=127.0.0.1; Path={prefix}")
            self.send_header("Set-Cookie", "everywhere=PLANTED; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"redirecting app at {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("launcher-rules-hub"),
        isolated=True,
        extra_config=f"\nc.DashboardLocalSpawner.access_check_interval = {INTERVAL}\n",
    )
    for name in (AUTHOR, VIEWER, KEEPER, FRIEND, HUB_FRIEND):
        running.ensure_user(name)
    yield running
    stop_hub(running)


@pytest.fixture(scope="module")
def per_viewer(hub: Hub) -> Iterator[dict]:
    """The author's per-viewer Dash dashboard, open in the viewer's own instance."""
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": PV_SLUG,
            "title": "Per viewer",
            "entry": "dash/app.py",
            "visibility": "all",
            "mode": "per-viewer",
        },
    )
    assert r.status_code == 201, r.text
    body = hub.open_ready(AUTHOR, PV_SLUG, VIEWER)
    owner, name = body["server"].split("/", 1)
    assert owner == VIEWER
    session = hub.fresh_login(VIEWER)
    assert session.get(hub.public(body["url"]), timeout=60).status_code == 200
    yield {"name": name, "session": session, "base": hub.server_url(VIEWER, name)}
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{PV_SLUG}", AUTHOR)


def signed_grant(hub: Hub, owner: str, server: str, viewer: str) -> str:
    """A grant as the service signs it (the service's logs endpoint sends such a header)."""
    from hub_viz.signing import Signer

    key = (hub.log.parent / "hub_viz_signing_key.pem").read_text()
    return Signer(key).grant(owner, server, viewer)


# -- status: the author's, not the server owner's -------------------------------------


def test_a_per_viewer_viewer_gets_only_the_state(hub: Hub, per_viewer) -> None:
    session, base, name = per_viewer["session"], per_viewer["base"], per_viewer["name"]
    # the spawner names the dashboard's author and where to re-check viewers
    env = environ(launcher_of(VIEWER, name).pid)
    assert env["HUB_VIZ_AUTHOR"] == AUTHOR and env["JUPYTERHUB_USER"] == VIEWER
    assert env["HUB_VIZ_ACCESS_URL"].endswith(f"/api/viewer-access/{AUTHOR}/{PV_SLUG}")
    status = session.get(base + "_hub_viz/status", timeout=30)
    assert status.status_code == 200 and set(status.json()) == STATUS_KEYS, status.text
    # nor with a grant of their own in the header the service reads the log with
    grant = signed_grant(hub, VIEWER, name, VIEWER)
    r = requests.get(
        base + "_hub_viz/status", timeout=30, headers={"Authorization": f"HubVizGrant {grant}"}
    )
    assert r.status_code == 403 and set(r.json()) == {"status", "message", "source"}


def test_the_author_reads_the_log_of_a_viewers_instance(hub: Hub, per_viewer) -> None:
    grant = signed_grant(hub, VIEWER, per_viewer["name"], AUTHOR)
    r = requests.get(
        per_viewer["base"] + "_hub_viz/status",
        timeout=30,
        headers={"Authorization": f"HubVizGrant {grant}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "ready" and isinstance(body["log"], list) and "message" in body


# -- tossing --------------------------------------------------------------------------


def test_forged_cookies_of_the_launchers_and_the_hubs_names_admit_nobody(
    hub: Hub, per_viewer
) -> None:
    base, session = per_viewer["base"], per_viewer["session"]
    real = session.cookies.get("hub-viz-viewer")
    assert real
    client_id = environ(launcher_of(VIEWER, per_viewer["name"]).pid)["JUPYTERHUB_CLIENT_ID"]
    forged = {
        "hub-viz-viewer": real[:-6] + "AAAAAA",  # a tampered signature
        client_id: "2|1:0|10:1700000000|5:token|8:Zm9yZ2Vk|" + "0" * 64,
    }
    for name, value in forged.items():
        r = requests.get(
            base + "_dash-layout",
            timeout=30,
            allow_redirects=False,
            headers={"Cookie": f"{name}={value}"},
        )
        assert r.status_code == 302, (name, r.status_code)  # sent to the open page
        assert r.headers["Location"] == hub.open_location(AUTHOR, PV_SLUG)
        assert DASH_OUTPUT not in r.text
    # beside the real cookie, in either order, the forged ones change nothing
    tampered = forged["hub-viz-viewer"]
    cookies = {
        "tampered first": f"hub-viz-viewer={tampered}; hub-viz-viewer={real}",
        "tampered last": f"hub-viz-viewer={real}; hub-viz-viewer={tampered}",
        "forged hub cookie": f"{client_id}={forged[client_id]}; hub-viz-viewer={real}",
    }
    for what, cookie in cookies.items():
        r = requests.get(
            base + "_dash-layout", timeout=30, allow_redirects=False, headers={"Cookie": cookie}
        )
        assert r.status_code == 200 and DASH_OUTPUT in r.text, (what, r.status_code)


# -- an app's redirects and cookies ---------------------------------------------------


def test_an_apps_redirect_and_cookies_stay_inside_its_server(hub: Hub) -> None:
    (hub.root / "custom" / "redirecting.py").write_text(REDIRECTING_APP)
    spec = {
        "framework": "custom",
        "entry": "custom/redirecting.py",
        "command": ["{python}", "redirecting.py", "{port}", "{prefix}"],
    }
    assert hub.start(AUTHOR, "redirecting", spec).status_code in (201, 202)
    assert hub.wait(AUTHOR, "redirecting").get("ready")
    try:
        session = hub.fresh_login(AUTHOR)
        prefix = f"/user/{AUTHOR}/redirecting/"
        assert "redirecting app" in session.get(hub.at(prefix), timeout=60).text
        launcher_env = environ(launcher_of(AUTHOR, "redirecting").pid)
        r = session.get(hub.at(prefix + "go"), timeout=30, allow_redirects=False)
        assert r.status_code == 302
        assert r.headers["Location"] == f"{prefix}landed?x=1"
        assert r.headers["Content-Location"] == f"{prefix}go"
        assert r.headers["Refresh"] == f"0; url={prefix}elsewhere"
        assert "127.0.0.1:" not in str(r.headers) and "localhost" not in str(r.headers)
        # the redirect lands on the app, through the launcher
        landed = session.get(hub.at(r.headers["Location"]), timeout=30)
        assert landed.text == f"redirecting app at {prefix}landed?x=1"
        cookies = r.raw.headers.getlist("Set-Cookie")
        assert cookies == [f"theme=dark; Path={prefix}"], cookies
        assert "PLANTED" not in str(r.headers)
        assert "PLANTED" not in hub.log.read_text()  # dropped cookies are logged by name only
        assert launcher_env["HUB_VIZ_AUTHOR"] == AUTHOR
    finally:
        hub.stop(AUTHOR, "redirecting")


# -- losing access --------------------------------------------------------------------


def hub_login(session: requests.Session, base: str) -> requests.Response:
    """Log in to the server through the launcher's hub login, confirming the hub's
    authorization page (a shared server is not the user's own)."""
    r = session.get(base + "_hub_viz/login", params={"next": base}, timeout=60)
    if "/hub/api/oauth2/authorize" in r.url and r.status_code == 200:
        fields = re.findall(r'<input type="hidden" name="(_xsrf|scopes)" value="([^"]*)"', r.text)
        r = session.post(r.url, data=[(k, v.replace("&amp;", "&")) for k, v in fields], timeout=60)
    return r


def layout(session: requests.Session, base: str) -> requests.Response:
    return session.get(base + "_dash-layout", timeout=30, allow_redirects=False)


def refused(session: requests.Session, base: str) -> list[requests.Response]:
    """[the response] once the launcher refuses the viewer, else [] (a 4xx is falsy)."""
    r = layout(session, base)
    assert DASH_OUTPUT not in r.text or r.status_code == 200
    return [r] if r.status_code != 200 else []


def test_unshared_and_private_viewers_are_refused_after_the_recheck(hub: Hub) -> None:
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": SHARED_SLUG,
            "title": "Shared",
            "entry": "dash/app.py",
            "visibility": "users",
            "share_users": [FRIEND, HUB_FRIEND, KEEPER],
        },
    )
    assert r.status_code == 201, r.text
    base = hub.server_url(AUTHOR, SHARED_SLUG)
    try:
        # two viewers come in through the open flow (a grant, then the launcher's cookie)
        sessions = {}
        for name in (FRIEND, KEEPER):
            url = hub.open_ready(AUTHOR, SHARED_SLUG, name)["url"]
            sessions[name] = hub.fresh_login(name)
            assert sessions[name].get(hub.public(url), timeout=60).status_code == 200
            assert DASH_OUTPUT in layout(sessions[name], base).text
        # one through the hub's login (HubOAuth and the hub's share)
        hub_friend = hub.fresh_login(HUB_FRIEND)
        r = hub_login(hub_friend, base)
        assert r.status_code == 200 and r.url == base, (r.status_code, r.url)
        assert DASH_OUTPUT in layout(hub_friend, base).text

        # removed from the share: refused on a request after the re-check interval
        r = hub.svc(
            "PATCH", f"dashboards/{AUTHOR}/{SHARED_SLUG}", AUTHOR, json={"share_users": [KEEPER]}
        )
        assert r.status_code == 200, r.text
        (gone,) = wait_until(
            lambda: refused(sessions[FRIEND], base),
            ENOUGH,
            "the unshared viewer's cookie to be refused",
        )
        assert gone.status_code == 302  # to the open page, which no longer opens it
        assert gone.headers["Location"] == hub.open_location(AUTHOR, SHARED_SLUG)
        assert "hub-viz-viewer=;" in gone.headers.get("Set-Cookie", "")  # the cookie is dropped
        assert hub.svc("POST", f"dashboards/{AUTHOR}/{SHARED_SLUG}/open", FRIEND).status_code == 404
        (hub_gone,) = wait_until(
            lambda: refused(hub_friend, base), ENOUGH, "the unshared hub-login viewer to be refused"
        )
        assert hub_gone.status_code == 403
        assert "not allowed to use this dashboard" in hub_gone.json()["message"]
        # the viewer still shared with keeps their access, re-checked meanwhile
        assert DASH_OUTPUT in layout(sessions[KEEPER], base).text

        # made private: the last viewer is refused too, a write with a sentence
        r = hub.svc(
            "PATCH", f"dashboards/{AUTHOR}/{SHARED_SLUG}", AUTHOR, json={"visibility": "private"}
        )
        assert r.status_code == 200, r.text

        def write_refused() -> list[requests.Response]:
            w = sessions[KEEPER].post(base + "_dash-update-component", json={}, timeout=30)
            return [w] if w.status_code == 403 else []

        (w,) = wait_until(write_refused, ENOUGH, "the private dashboard's viewer to be refused")
        assert w.json()["message"].startswith("You may no longer use this dashboard")
        assert layout(sessions[KEEPER], base).status_code == 302
    finally:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{SHARED_SLUG}", AUTHOR)


def test_only_a_launcher_may_ask_about_a_viewer(hub: Hub, per_viewer) -> None:
    url = f"{hub.service_url}api/viewer-access/{AUTHOR}/{PV_SLUG}"
    server_token = environ(launcher_of(VIEWER, per_viewer["name"]).pid)["JUPYTERHUB_API_TOKEN"]
    for headers in (
        {},
        {"Authorization": f"token {hub.user_token(VIEWER)}"},
        {"Authorization": f"token {hub.user_token(AUTHOR)}"},
        {"Authorization": "token not-a-token"},
    ):
        r = requests.get(url, params={"viewer": VIEWER}, headers=headers, timeout=30)
        assert r.status_code == 403 and "launcher" in r.json()["message"], r.text
    ask = {"Authorization": f"token {server_token}"}

    def allowed(viewer: str, dashboard: str = url) -> bool:
        r = requests.get(dashboard, params={"viewer": viewer}, headers=ask, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["allowed"]

    assert allowed(VIEWER) is True
    # this server serves the dashboard to its viewer only: not to anyone else, nor
    # another dashboard's viewers
    assert allowed(KEEPER) is False and allowed("") is False
    assert allowed(VIEWER, f"{hub.service_url}api/viewer-access/{AUTHOR}/no-such") is False

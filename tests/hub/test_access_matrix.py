"""Who may do what, cell by cell, against a real hub, proxy, service, launcher and Voilà.

One author publishes two shared Voilà dashboards: one shared with a named
user, one with a group. Each role x resource cell of :data:`MATRIX` is one
test. An "allow" cell checks that the thing works; a deny cell checks the
refusal the table names (its status, a JSON sentence where an API answers,
where a redirect leads) and that nothing of the dashboard leaks: neither
its output nor its source. Per-viewer instances and grants get their own
tests below the matrix: no other student reaches a student's instance,
whatever URL, server name, cookie or grant they try.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import websocket

from ..conftest import BROWSER_UA, SERVICE, Hub, both_layouts
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

AUTHOR, FRIEND, MEMBER, STRANGER = "am-author", "am-friend", "am-member", "am-stranger"
GROUP = "am-lab"
USERS_SLUG, GROUPS_SLUG = "am-users", "am-groups"
OUTPUT = EXAMPLES["voila-example"][1]  # what the kernel prints
SOURCE = "range(1, 101)"  # in the notebook's source, never in its output
KERNEL_ID = re.compile(r'"kernelId": "([0-9a-f-]{36})"')

# The notebook behind the dashboard, asked for in every form a Jupyter or Voilà
# server knows; the page forms (marked) show the output and never the source.
PAGE_FORMS = ("", "./", "?voila-template=classic", "?voila-template=lab&voila-theme=dark")
SOURCE_PATHS = (
    *PAGE_FORMS,
    "dashboard.ipynb",
    "./dashboard.ipynb",
    "files/dashboard.ipynb",
    "files/",
    "tree",
    "tree/dashboard.ipynb",
    "notebooks/dashboard.ipynb",
    "edit/dashboard.ipynb",
    "view/dashboard.ipynb",
    "lab/tree/dashboard.ipynb",
    "nbconvert/script/dashboard.ipynb",
    "voila/render/dashboard.ipynb",
    "voila/files/dashboard.ipynb",
    "voila/tree",
    "voila/files/%2E%2E/voila/dashboard.ipynb",
    "static/../dashboard.ipynb",
    "%2E%2E/dashboard.ipynb",
    "api/contents/dashboard.ipynb",
    "api/contents/dashboard.ipynb?content=1&format=text",
    "api/contents?content=1",
)
JUPYTER_PATHS = (
    ("GET", "api/contents"),
    ("GET", "api/kernels"),
    ("GET", "api/sessions"),
    ("GET", "api/terminals"),
    ("GET", "api/kernelspecs"),
    ("GET", "api/nbconvert"),
    ("GET", "api/config/notebook"),
    ("GET", "lab"),
    ("GET", "lab/api/settings"),
    ("GET", "tree"),
    ("GET", "terminals/1"),
    ("POST", "api/kernels"),
    ("POST", "api/sessions"),
    ("POST", "api/terminals"),
    ("POST", "api/shutdown"),
)

ROLES = ("owner", "shared user", "group member", "other user", "anonymous", "embed link holder")
RESOURCES = (
    "open",
    "page",
    "websocket",
    "source file",
    "jupyter api",
    "api read",
    "api update",
    "api delete",
    "logs",
    "usage",
)
OK = "allow"
# What a deny looks like:
DENIES = {
    "401": "401 with a JSON sentence asking to log in",
    "403": "403 (a JSON sentence where hub_viz answers; the launcher refuses a websocket "
    "upgrade with 403)",
    "404": "404 with a JSON sentence, exactly like a dashboard that does not exist",
    "login": "a redirect to the service's open page, which sends to the hub's login page",
    "open-404": "a redirect to the service's open page, which answers 404 (as for a dashboard "
    "that does not exist); their API token gets the launcher's 403, their hub "
    "login the hub's 403 (no OAuth for this server)",
}
MATRIX = {
    #                    open     page     ws     source   jupyter  read   update delete logs   usage
    "owner": (OK, OK, OK, "403", "403", OK, OK, OK, OK, OK),
    "shared user": (OK, OK, OK, "403", "403", OK, "403", "403", "403", "403"),
    "group member": (OK, OK, OK, "403", "403", OK, "403", "403", "403", "403"),
    "other user": (
        "404",
        "open-404",
        "403",
        "open-404",
        "open-404",
        "404",
        "404",
        "404",
        "404",
        "404",
    ),
    "anonymous": ("login", "login", "403", "login", "login", "401", "401", "401", "401", "401"),
    "embed link holder": (
        "401",
        "login",
        "403",
        "login",
        "login",
        "401",
        "401",
        "401",
        "401",
        "401",
    ),
}
CELLS = [
    (role, resource, MATRIX[role][i]) for role in ROLES for i, resource in enumerate(RESOURCES)
]
USERS = {"owner": AUTHOR, "shared user": FRIEND, "group member": MEMBER, "other user": STRANGER}


def grant_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["grant_token"][0]


@dataclass
class World:
    hub: Hub
    embed_token: str
    sessions: dict[str, requests.Session] = field(default_factory=dict)
    author_kernel: str = ""  # a kernel of the author's page, which others try to reach

    def slug_for(self, role: str) -> str:
        return GROUPS_SLUG if role == "group member" else USERS_SLUG

    def base(self, role: str) -> str:
        return f"/user/{AUTHOR}/{self.slug_for(role)}/"

    def url(self, role: str) -> str:
        """The dashboard's public URL (its own host on the isolated layout)."""
        return self.hub.server_url(AUTHOR, self.slug_for(role))

    def session(self, role: str) -> requests.Session:
        """The browser each role ends up with after trying to get in the way it can."""
        if role not in self.sessions:
            self.sessions[role] = self._arrive(role)
        return self.sessions[role]

    def _arrive(self, role: str) -> requests.Session:
        hub = self.hub
        if role in ("anonymous", "embed link holder"):
            s = requests.Session()
            s.headers["User-Agent"] = BROWSER_UA
            if role == "embed link holder":  # the link's page asks them to log in
                r = s.get(f"{hub.service_url}embed/{self.embed_token}", timeout=30)
                assert r.status_code == 401 and OUTPUT not in r.text
            return s
        s = hub.fresh_login(USERS[role])
        if role == "other user":
            # straight to the launcher's hub login: the hub refuses the server's OAuth
            r = s.get(
                f"{self.url(role)}_hub_viz/login", params={"next": self.base(role)}, timeout=60
            )
            assert r.status_code == 403 and "/hub/api/oauth2/authorize" in r.url, r.url
            assert "do not have permission" in r.text
            assert_nothing_leaks(r)
            return s
        # the open flow, as a click on the card: a one-time grant traded for a cookie
        body = hub.open_ready(AUTHOR, self.slug_for(role), USERS[role])
        page = s.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200 and page.url == self.url(role), page.url
        return s


hub = both_layouts()


@pytest.fixture(scope="module")
def world(hub: Hub) -> Iterator[World]:
    for name in (AUTHOR, FRIEND, MEMBER, STRANGER):
        hub.ensure_user(name)
    assert hub.api("POST", f"/groups/{GROUP}").status_code in (201, 409)
    assert hub.api("POST", f"/groups/{GROUP}/users", json={"users": [MEMBER]}).status_code == 200
    for slug, sharing in (
        (USERS_SLUG, {"visibility": "users", "share_users": [FRIEND]}),
        (GROUPS_SLUG, {"visibility": "groups", "share_groups": [GROUP]}),
    ):
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={"slug": slug, "title": slug, "entry": "voila/dashboard.ipynb", **sharing},
        )
        assert r.status_code == 201, r.text
        assert r.json()["framework"] == "voila" and r.json()["mode"] == "shared"
    r = hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{USERS_SLUG}/embeds",
        AUTHOR,
        json={"origins": ["https://course.example.edu"], "note": "matrix"},
    )
    assert r.status_code == 201, r.text
    token = r.json()["url"].rstrip("/").rsplit("/", 1)[1]
    w = World(hub=hub, embed_token=token)
    w.author_kernel = render(w, "owner")
    render(w, "group member")  # both dashboards run before any cell
    yield w
    for slug in (USERS_SLUG, GROUPS_SLUG):
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)


def render(w: World, role: str) -> str:
    """The dashboard page for ``role`` (a fresh kernel of theirs); its kernel id."""
    page = w.session(role).get(w.url(role), timeout=60)
    assert page.status_code == 200 and OUTPUT in page.text, page.status_code
    assert SOURCE not in page.text
    return KERNEL_ID.search(page.text).group(1)


def assert_nothing_leaks(r: requests.Response) -> None:
    assert OUTPUT not in r.text, r.url
    assert SOURCE not in r.text, r.url


def assert_sentence(r: requests.Response) -> str:
    """The JSON error a person reads: a whole sentence, no output, no source."""
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.text[:200]
    message = r.json().get("message", "")
    assert len(message) > 10 and message[0].isupper() and message.endswith("."), message
    assert_nothing_leaks(r)
    return message


def assert_json_refusal(r: requests.Response, code: int) -> str:
    assert r.status_code == code, (code, r.status_code, r.text[:300])
    return assert_sentence(r)


# The launcher's layers that refuse with 403, each by its own sentence: the hub login's
# scope check (a hub user without this server's access:servers scope), its login check
# (nobody logged in), and the kernel filter's route rules (a viewer it admitted asked for
# something that is not part of the dashboard). A deny cell names the layer it expects,
# so that removing one layer fails its cells even where another would refuse instead.
LAYERS = {
    "scope": re.compile(r"User [\w.-]+ is not allowed to use this dashboard\."),
    "login": re.compile(r"Log in through the hub to use this dashboard\."),
    "filter": re.compile(r"This is not part of the dashboard\."),
}


def assert_refused_by(r: requests.Response, layer: str, where: str = "") -> None:
    """A 403 from the launcher (not the app, not the hub), by ``layer``."""
    assert r.status_code == 403, (layer, where, r.status_code, r.text[:300])
    assert r.json()["source"] == "hub-viz", (layer, where, r.text[:300])
    message = assert_sentence(r)
    assert LAYERS[layer].fullmatch(message), (layer, where, message)


def assert_ws_refused_by(refused: websocket.WebSocketBadStatusException, layer: str) -> None:
    """A refused websocket upgrade: 403 from the launcher, by ``layer``."""
    assert refused.status_code == 403
    body = json.loads(refused.resp_body or b"{}")
    assert body.get("source") == "hub-viz", body
    assert LAYERS[layer].fullmatch(body.get("message", "")), (layer, body)


def assert_sent_to_open_page(w: World, r: requests.Response, role: str) -> None:
    """A 302 to the service's open page, which sends a visitor without login to the hub's
    login page and answers 404 to a hub user who may not see the dashboard."""
    assert r.status_code == 302, (r.status_code, r.text[:200])
    assert_nothing_leaks(r)
    location = r.headers["Location"]
    assert location == w.hub.open_location(AUTHOR, w.slug_for(role)), location
    if role in USERS:
        r = w.session(role).get(w.hub.public(location), timeout=30)
        assert r.status_code == 404 and r.url == w.hub.public(location), (r.status_code, r.url)
    else:
        r = requests.get(w.hub.public(location), timeout=30, headers={"User-Agent": BROWSER_UA})
        assert r.status_code == 200 and urlsplit(r.url).path == "/hub/login", r.url
    assert_nothing_leaks(r)


def service(w: World, role: str, method: str, path: str = "", **kwargs) -> requests.Response:
    """The service API as ``role``: its user's token; the embed link holder has no login."""
    return w.hub.svc(
        method, f"dashboards/{AUTHOR}/{w.slug_for(role)}{path}", USERS.get(role), **kwargs
    )


def ws_connect(
    w: World, role: str, kernel: str, headers: list[str] | None = None
) -> websocket.WebSocket:
    server = urlsplit(w.url(role))
    cookies = "; ".join(
        f"{c.name}={c.value}"
        for c in w.session(role).cookies
        if w.base(role).startswith(c.path or "/") and c.domain.lstrip(".") in (server.hostname, "")
    )
    url = w.url(role).replace("http", "ws", 1) + f"api/kernels/{kernel}/channels"
    return websocket.create_connection(
        f"{url}?session_id={uuid.uuid4()}",
        origin=f"{server.scheme}://{server.netloc}",
        timeout=30,
        header=[*([f"Cookie: {cookies}"] if cookies else []), *(headers or [])],
    )


def kernel_info(ws: websocket.WebSocket) -> dict:
    """A kernel_info_request (a message widgets send) and the kernel's reply."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "kernel_info_request",
                    "username": "",
                    "session": uuid.uuid4().hex,
                    "date": "",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    for _ in range(50):
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["channel"] == "shell":
            return msg
    raise AssertionError("no kernel_info_reply")


# -- the cells ---------------------------------------------------------------------------


def check_open(w: World, role: str, expected: str) -> None:
    hub, slug = w.hub, w.slug_for(role)
    if role == "embed link holder":
        r = requests.post(
            f"{hub.service_url}embed/{w.embed_token}/open",
            timeout=60,
            headers={"User-Agent": BROWSER_UA},
        )
        assert expected == "401"
        assert "log in" in assert_json_refusal(r, 401).lower()
        return
    # the open page (after the service's hub login, for those logged in to the hub)
    page = w.session(role).get(f"{hub.service_url}open/{AUTHOR}/{slug}", timeout=30)
    r = service(w, role, "POST", "/open")
    if expected == OK:
        assert r.status_code == 200 and r.json()["status"] in ("ready", "pending"), r.text
        assert r.json()["server"] == f"{AUTHOR}/{slug}"
        assert page.status_code == 200 and slug in page.text
        assert SOURCE not in page.text
    elif expected == "404":
        assert_json_refusal(r, 404)
        assert page.status_code == 404
        assert_nothing_leaks(page)
    else:  # the open page sends to the login; the API does not say whether it exists
        assert expected == "login"
        assert page.status_code == 200 and urlsplit(page.url).path == "/hub/login", page.url
        assert_nothing_leaks(page)
        assert_json_refusal(r, 404)


def check_page(w: World, role: str, expected: str) -> None:
    hub, base = w.hub, w.url(role)
    r = w.session(role).get(base, timeout=60, allow_redirects=False)
    if expected == OK:
        assert r.status_code == 200 and OUTPUT in r.text and SOURCE not in r.text
    else:
        assert expected in ("login", "open-404")
        assert_sent_to_open_page(w, r, role)
        if expected == "open-404":  # with their API token instead: the launcher's scope check
            token = {"Authorization": f"token {hub.user_token(USERS[role])}"}
            assert_refused_by(requests.get(base, headers=token, timeout=30), "scope")


def check_websocket(w: World, role: str, expected: str) -> None:
    if expected == OK:
        kernel = render(w, role)  # the kernel of their own page
        ws = ws_connect(w, role, kernel)
        try:
            assert kernel_info(ws)["msg_type"] == "kernel_info_reply"
        finally:
            ws.close()
        return
    assert expected == "403"
    # the author's kernel, from outside: with their browser's cookies (no viewer: the
    # login check), and with their API token (the hub login's scope check)
    attempts: list[tuple[list[str], str]] = [([], "login")]
    if role in USERS:
        attempts.append(([f"Authorization: token {w.hub.user_token(USERS[role])}"], "scope"))
    for headers, layer in attempts:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            ws_connect(w, role, w.author_kernel, headers)
        assert SOURCE.encode() not in (refused.value.resp_body or b"")
        assert_ws_refused_by(refused.value, layer)


def check_paths(w: World, role: str, expected: str, paths) -> None:
    session, base = w.session(role), w.url(role)
    may_see_page = MATRIX[role][RESOURCES.index("page")] == OK
    token = {"Authorization": f"token {w.hub.user_token(USERS[role])}"} if role in USERS else {}
    for method, path in paths:
        r = session.request(method, base + path, timeout=60, allow_redirects=False)
        where = f"{method} {path}: {r.status_code}"
        assert SOURCE not in r.text, where
        if path in PAGE_FORMS and may_see_page:
            assert r.status_code == 200 and OUTPUT in r.text, where  # the page itself
            continue
        assert OUTPUT not in r.text, where
        if r.status_code == 302 and urlsplit(r.headers["Location"]).path.startswith(
            f"/hub/user/{AUTHOR}/"
        ):
            # the proxy resolved '..' first: a path outside this server, answered by the hub
            assert "%2E%2E" in path, where
            assert_nothing_leaks(session.get(w.hub.public(r.headers["Location"]), timeout=60))
            continue
        if r.status_code == 404 and "%2E%2E" in path and w.hub.layout.isolated:
            # the proxy resolved '..' to a path of this host with no route: its 404
            # (the hub answers on its own host only)
            continue
        if expected == "open-404":
            # the browser is sent to the open page (writes refused); their token gets 403
            if method == "GET":
                assert_sent_to_open_page(w, r, role)
            else:
                assert_refused_by(r, "login", where)
            r = requests.request(
                method, base + path, headers=token, timeout=60, allow_redirects=False
            )
            if r.status_code == 302 and "%2E%2E" in path:
                continue
            assert_refused_by(r, "scope", where)
        elif expected == "403":
            # the launcher refuses (JSON); a Voilà route it passes refuses in Voilà (404/403)
            assert r.status_code in (403, 404), where
            if "json" in r.headers.get("Content-Type", ""):
                assert_sentence(r)
            if path.startswith(
                (
                    "api/",
                    "files",
                    "tree",
                    "lab",
                    "terminals",
                    "nbconvert",
                    "voila/render",
                    "notebooks",
                    "edit",
                    "view",
                )
            ):
                assert_refused_by(r, "filter", where)  # a viewer, not of this route
        elif method == "GET":
            assert expected == "login"
            assert_sent_to_open_page(w, r, role)
        else:  # a write without a viewer never reaches the app
            assert_refused_by(r, "login", where)


def check_api(w: World, role: str, resource: str, expected: str) -> None:
    hub, slug = w.hub, w.slug_for(role)
    if resource == "api read":
        r = service(w, role, "GET")
        if expected == OK:
            body = r.json()
            assert r.status_code == 200 and body["slug"] == slug
            # only the author sees how it runs and with whom it is shared
            for private in ("entry", "share_users", "share_groups"):
                assert (private in body) == (role == "owner"), private
            return
    elif resource == "api update":
        r = service(w, role, "PATCH", json={"description": f"changed by {role}"})
        if expected == OK:
            assert r.status_code == 200 and r.json()["description"] == f"changed by {role}"
            return
        stored = hub.svc("GET", f"dashboards/{AUTHOR}/{slug}", AUTHOR).json()
        assert stored["description"] != f"changed by {role}"
    elif resource == "api delete":
        if expected == OK:  # on a dashboard of its own: the other cells still need theirs
            r = hub.svc(
                "POST",
                "dashboards",
                AUTHOR,
                json={"slug": "am-scratch", "title": "scratch", "entry": "voila/dashboard.ipynb"},
            )
            assert r.status_code == 201, r.text
            assert hub.svc("DELETE", f"dashboards/{AUTHOR}/am-scratch", AUTHOR).status_code == 204
            assert hub.svc("GET", f"dashboards/{AUTHOR}/am-scratch", AUTHOR).status_code == 404
            return
        r = service(w, role, "DELETE")
        assert hub.svc("GET", f"dashboards/{AUTHOR}/{slug}", AUTHOR).status_code == 200
    else:  # logs, usage
        r = service(w, role, "GET", "/" + resource)
        if expected == OK:
            assert r.status_code == 200, r.text
            if resource == "logs":
                body = r.json()
                assert body["status"] == "ready" and body["state"] == "ready"
                assert any("voila" in line.lower() for line in body["log"]), body["log"]
            else:
                assert r.json()["opens"] >= 1
            return
    message = assert_json_refusal(r, int(expected))
    if expected == "404":  # exactly what a dashboard that does not exist answers
        missing = w.hub.svc("GET", f"dashboards/{AUTHOR}/am-nothing-here", USERS.get(role))
        assert missing.status_code == 404
        assert missing.json()["message"].replace("am-nothing-here", slug) == message


def check(w: World, role: str, resource: str, expected: str) -> None:
    assert expected == OK or expected in DENIES
    if resource == "open":
        check_open(w, role, expected)
    elif resource == "page":
        check_page(w, role, expected)
    elif resource == "websocket":
        check_websocket(w, role, expected)
    elif resource == "source file":
        check_paths(w, role, expected, [("GET", p) for p in SOURCE_PATHS])
    elif resource == "jupyter api":
        check_paths(w, role, expected, JUPYTER_PATHS)
    else:
        check_api(w, role, resource, expected)


@pytest.mark.parametrize(
    ("role", "resource", "expected"), CELLS, ids=[f"{r}-{res}-{e}" for r, res, e in CELLS]
)
def test_access_matrix(world: World, role: str, resource: str, expected: str) -> None:
    check(world, role, resource, expected)


def test_the_matrix_covers_every_role_and_resource() -> None:
    assert set(MATRIX) == set(ROLES)
    assert all(len(row) == len(RESOURCES) for row in MATRIX.values())
    assert {v for row in MATRIX.values() for v in row} <= {OK, *DENIES}
    assert len(CELLS) == len(ROLES) * len(RESOURCES) == 60


# -- grants: bearer for one server, once -------------------------------------------------


def test_a_grant_admits_once_and_only_on_its_own_server(world: World) -> None:
    """A used grant, or one for another dashboard, lets nobody in."""
    hub = world.hub
    url = hub.open_ready(AUTHOR, USERS_SLUG, FRIEND)["url"]
    # presented at the other dashboard's launcher: refused, no cookie
    other = requests.Session()
    r = other.get(
        hub.server_url(AUTHOR, GROUPS_SLUG) + "_hub_viz/enter?" + urlsplit(url).query, timeout=30
    )
    assert r.url.endswith(f"{SERVICE}open/{AUTHOR}/{GROUPS_SLUG}") or "/hub/login" in r.url
    assert not other.cookies.get("hub-viz-viewer") and OUTPUT not in r.text
    # used by its viewer, then replayed by someone who found it
    first = requests.Session()
    assert OUTPUT in first.get(hub.public(url), timeout=60).text
    replay = requests.Session()
    r = replay.get(hub.public(url), timeout=30, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == hub.open_location(AUTHOR, USERS_SLUG)
    assert "hub-viz-viewer" not in r.headers.get("Set-Cookie", "")
    # a forged one
    r = requests.get(
        hub.server_url(AUTHOR, USERS_SLUG) + "_hub_viz/enter",
        params={"grant_token": grant_of(url)[:-4] + "AAAA"},
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 302 and "Set-Cookie" not in r.headers


# -- per-viewer instances: nobody reaches anyone else's ----------------------------------

PV_SLUG = "am-per-viewer"
DASH_SOURCE = "range(1, 201)"
DASH_OUTPUT = EXAMPLES["dash-example"][1]


@pytest.fixture(scope="module")
def per_viewer(hub: Hub) -> Iterator[dict]:
    """A per-viewer Dash dashboard open for the friend and for the stranger (each their own)."""
    for name in (AUTHOR, FRIEND, STRANGER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": PV_SLUG,
            "title": "Mine only",
            "entry": "dash/app.py",
            "visibility": "all",
            "mode": "per-viewer",
        },
    )
    assert r.status_code == 201, r.text
    instances = {}
    for viewer in (FRIEND, STRANGER):
        body = hub.open_ready(AUTHOR, PV_SLUG, viewer)
        owner, name = body["server"].split("/", 1)
        assert owner == viewer
        session = hub.fresh_login(viewer)
        assert session.get(hub.public(body["url"]), timeout=60).status_code == 200
        instances[viewer] = {"name": name, "session": session, "base": hub.server_url(viewer, name)}
    yield instances
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{PV_SLUG}", AUTHOR)


def assert_no_dash(r: requests.Response) -> None:
    assert DASH_OUTPUT not in r.text and DASH_SOURCE not in r.text, r.url


def test_per_viewer_instances_are_the_viewers_own(hub: Hub, per_viewer) -> None:
    mine = per_viewer[FRIEND]
    layout = mine["session"].get(mine["base"] + "_dash-layout", timeout=60)
    assert layout.status_code == 200 and DASH_OUTPUT in layout.text
    # the same server name, under each viewer's own user
    assert per_viewer[STRANGER]["name"] == mine["name"]
    assert mine["name"] not in hub.api("GET", f"/users/{AUTHOR}").json()["servers"]


def test_another_student_never_reaches_a_per_viewer_instance(hub: Hub, per_viewer) -> None:
    victim, intruder = per_viewer[FRIEND], per_viewer[STRANGER]
    base = victim["base"]
    # 1. the direct URL with the intruder's browser: no cookie of this server, so the
    #    open page (which would open the intruder's own instance)
    r = intruder["session"].get(base, timeout=60, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == hub.open_location(AUTHOR, PV_SLUG)
    assert_no_dash(r)
    for path in ("_dash-layout", "_dash-dependencies", "app.py", "assets/../app.py"):
        r = intruder["session"].get(base + path, timeout=60)
        assert_no_dash(r)
    # 2. the launcher's hub login: the hub knows them, the server is not theirs
    r = intruder["session"].get(base + "_hub_viz/login", params={"next": base}, timeout=60)
    assert r.status_code == 403 and "/hub/api/oauth2/authorize" in r.url  # the hub refuses
    assert_no_dash(r)
    r = intruder["session"].get(base + "_dash-layout", timeout=60, allow_redirects=False)
    assert r.status_code == 302  # still no way in: back to the open page
    # 3. their API token, on the page and the app's callback route
    token = {"Authorization": f"token {hub.user_token(STRANGER)}"}
    for method, path in (("GET", ""), ("GET", "_dash-layout"), ("POST", "_dash-update-component")):
        r = requests.request(
            method, base + path, headers=token, json={}, timeout=30, allow_redirects=False
        )
        assert r.status_code == 403 and r.json()["source"] == "hub-viz", (method, path)
        assert_no_dash(r)
    # 4. their own viewer cookie (signed by their own instance's launcher), sent here
    own = intruder["session"].cookies.get("hub-viz-viewer")
    assert own
    r = requests.get(
        base + "_dash-layout", cookies={"hub-viz-viewer": own}, timeout=30, allow_redirects=False
    )
    assert r.status_code == 302 and DASH_OUTPUT not in r.text
    # 5. a grant the service gave them for their own instance, presented at the victim's
    grant = grant_of(hub.open_ready(AUTHOR, PV_SLUG, STRANGER)["url"])
    r = requests.get(
        base + "_hub_viz/enter", params={"grant_token": grant}, timeout=30, allow_redirects=False
    )
    assert r.status_code == 302 and "Set-Cookie" not in r.headers
    # 6. the author of the dashboard does not own the viewer's instance either
    r = requests.get(
        base + "_dash-layout",
        timeout=30,
        allow_redirects=False,
        headers={"Authorization": f"token {hub.user_token(AUTHOR)}"},
    )
    assert r.status_code == 403
    assert_no_dash(r)
    # 7. the hub's API: neither their servers nor a start of one in their name
    for method, path in (
        ("GET", f"/users/{FRIEND}"),
        ("POST", f"/users/{FRIEND}/servers/x"),
        ("POST", f"/users/{FRIEND}/servers/{victim['name']}"),
        ("DELETE", f"/users/{FRIEND}/servers/{victim['name']}"),
    ):
        r = requests.request(method, f"{hub.url}/hub/api{path}", headers=token, timeout=30)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    assert hub.api("GET", f"/users/{FRIEND}").json()["servers"][victim["name"]]["ready"]


@pytest.mark.parametrize(
    "guess",
    [PV_SLUG, "am-per-viewer-00000000", "am-per-viewer-1", "notebook-example", "dash-example"],
)
def test_guessed_server_names_start_nothing(hub: Hub, per_viewer, guess: str) -> None:
    """Another student's URL with a guessed server name: no page, no new server."""
    before = set(hub.api("GET", f"/users/{FRIEND}").json()["servers"])
    own = set(hub.api("GET", f"/users/{STRANGER}").json()["servers"])
    intruder = per_viewer[STRANGER]["session"]
    r = intruder.get(hub.server_url(FRIEND, guess), timeout=60)
    assert r.status_code in (403, 404, 503), (guess, r.status_code, r.url)
    assert_no_dash(r)
    r = intruder.get(f"{hub.url}/hub/spawn/{FRIEND}/{guess}", timeout=60)
    assert r.status_code in (403, 404), (guess, r.status_code, r.url)
    assert_no_dash(r)
    assert set(hub.api("GET", f"/users/{FRIEND}").json()["servers"]) == before
    assert set(hub.api("GET", f"/users/{STRANGER}").json()["servers"]) == own

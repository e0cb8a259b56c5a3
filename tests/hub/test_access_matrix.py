"""Who may do what, cell by cell, against a real hub, proxy, service, launcher and Voilà.

Two shared Voilà dashboards of one author: one shared with a named user, one
with a group. Each role × resource cell below is one test; "allow" cells
check the thing works, "deny" cells check the refusal (its status, a JSON
message a person can read where the service answers) and that nothing of
the dashboard leaks: neither its output nor its source.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import pytest
import requests
import websocket

from ..conftest import BROWSER_UA, SERVICE, Hub
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

AUTHOR, FRIEND, MEMBER, STRANGER = "am-author", "am-friend", "am-member", "am-stranger"
GROUP = "am-lab"
USERS_SLUG, GROUPS_SLUG = "am-users", "am-groups"
OUTPUT = EXAMPLES["voila-example"][1]  # what the kernel prints
SOURCE = "range(1, 101)"  # in the notebook's source, never in its output
KERNEL_ID = re.compile(r'"kernelId": "([0-9a-f-]{36})"')
SOURCE_PATHS = (
    "dashboard.ipynb", "voila/files/dashboard.ipynb", "files/dashboard.ipynb",
    "voila/render/dashboard.ipynb", "api/contents/dashboard.ipynb",
    "api/contents/dashboard.ipynb?content=1&format=text", "tree", "voila/tree", "./",
    "static/../dashboard.ipynb", "voila/files/%2E%2E/voila/dashboard.ipynb",
    "?voila-template=classic", "_hub_viz/status",
)
JUPYTER_PATHS = ("api/kernels", "api/sessions", "api/contents", "api/terminals", "lab",
                 "api/kernelspecs", "api/nbconvert")

ROLES = ("owner", "shared user", "group member", "other user", "anonymous", "embed link holder")
RESOURCES = ("open", "page", "websocket", "source file", "jupyter api", "api read",
             "api update", "api delete", "logs", "usage")
A, D = "allow", "deny"
MATRIX = {
    #                     open page ws source jupyter read update delete logs usage
    "owner":              (A, A, A, D, D, A, A, A, A, A),
    "shared user":        (A, A, A, D, D, A, D, D, D, D),
    "group member":       (A, A, A, D, D, A, D, D, D, D),
    "other user":         (D, D, D, D, D, D, D, D, D, D),
    "anonymous":          (D, D, D, D, D, D, D, D, D, D),
    "embed link holder":  (D, D, D, D, D, D, D, D, D, D),
}
CELLS = [(role, resource, MATRIX[role][i]) for role in ROLES for i, resource in enumerate(RESOURCES)]


@dataclass
class World:
    hub: Hub
    embed_token: str
    entered: dict[str, requests.Session] = field(default_factory=dict)
    kernel: str = ""  # a kernel id of the author's page, to try from outside

    def slug_for(self, role: str) -> str:
        return GROUPS_SLUG if role == "group member" else USERS_SLUG

    def base(self, role: str) -> str:
        return f"/user/{AUTHOR}/{self.slug_for(role)}/"

    def user(self, role: str) -> str | None:
        return {"owner": AUTHOR, "shared user": FRIEND, "group member": MEMBER,
                "other user": STRANGER}.get(role)


@pytest.fixture(scope="module")
def world(hub: Hub) -> Iterator[World]:
    for name in (AUTHOR, FRIEND, MEMBER, STRANGER):
        hub.ensure_user(name)
    assert hub.api("POST", f"/groups/{GROUP}").status_code in (201, 409)
    assert hub.api("POST", f"/groups/{GROUP}/users", json={"users": [MEMBER]}).status_code == 200
    for slug, sharing in ((USERS_SLUG, {"visibility": "users", "share_users": [FRIEND]}),
                          (GROUPS_SLUG, {"visibility": "groups", "share_groups": [GROUP]})):
        r = hub.svc("POST", "dashboards", AUTHOR, json={
            "slug": slug, "title": slug, "entry": "voila/dashboard.ipynb", **sharing})
        assert r.status_code == 201, r.text
    r = hub.svc("POST", f"dashboards/{AUTHOR}/{USERS_SLUG}/embeds", AUTHOR,
                json={"origins": ["https://course.example.edu"], "note": "matrix"})
    assert r.status_code == 201, r.text
    token = r.json()["url"].rstrip("/").rsplit("/", 1)[1]
    w = World(hub=hub, embed_token=token)
    # the author's own page, for a kernel id the others try to reach
    w.kernel = render(w, "owner")
    yield w
    for slug in (USERS_SLUG, GROUPS_SLUG):
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)


def open_call(w: World, role: str) -> requests.Response:
    slug = w.slug_for(role)
    if role == "embed link holder":
        return requests.post(f"{w.hub.url}{SERVICE}embed/{w.embed_token}/open",
                             headers={"User-Agent": BROWSER_UA}, timeout=60)
    return w.hub.svc("POST", f"dashboards/{AUTHOR}/{slug}/open", w.user(role))


def enter(w: World, role: str) -> requests.Session:
    """The session a role ends up with after trying to open: cookies from a grant, if any."""
    if role in w.entered:
        return w.entered[role]
    session = requests.Session()
    session.headers["User-Agent"] = BROWSER_UA
    for _ in range(3):
        r = open_call(w, role)
        if r.status_code != 200:
            break
        body = r.json()
        if body["status"] == "ready":
            page = session.get(w.hub.url + body["url"], timeout=60)
            assert page.status_code == 200, page.status_code
            break
        w.hub.wait(AUTHOR, w.slug_for(role))
    w.entered[role] = session
    return session


def render(w: World, role: str) -> str:
    page = enter(w, role).get(w.hub.url + w.base(role), timeout=60)
    assert page.status_code == 200 and OUTPUT in page.text
    assert SOURCE not in page.text
    return KERNEL_ID.search(page.text).group(1)


def assert_nothing_leaks(r: requests.Response) -> None:
    assert OUTPUT not in r.text and SOURCE not in r.text


def assert_json_refusal(r: requests.Response, codes: tuple[int, ...]) -> None:
    assert r.status_code in codes, (r.status_code, r.text[:300])
    message = r.json().get("message", "")
    assert len(message) > 10 and message[0].isupper(), message
    assert_nothing_leaks(r)


def service(w: World, role: str, method: str, path: str, **kwargs) -> requests.Response:
    slug = w.slug_for(role)
    user = w.user(role)
    if role == "embed link holder":  # holds the link, no hub login
        user = None
    return w.hub.svc(method, f"dashboards/{AUTHOR}/{slug}{path}", user, **kwargs)


def ws_connect(w: World, role: str, kernel: str) -> websocket.WebSocket:
    session = enter(w, role)
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    url = w.hub.url.replace("http", "ws", 1) + w.base(role) + f"api/kernels/{kernel}/channels"
    return websocket.create_connection(f"{url}?session_id={uuid.uuid4()}", origin=w.hub.url,
                                       header=[f"Cookie: {cookies}"] if cookies else [],
                                       timeout=30)


def check(w: World, role: str, resource: str, expected: str) -> None:
    hub = w.hub
    if resource == "open":
        r = open_call(w, role)
        if expected == A:
            assert r.status_code == 200 and r.json()["status"] in ("ready", "pending"), r.text
        else:
            assert_json_refusal(r, (401, 403, 404))
    elif resource == "page":
        session = enter(w, role)
        r = session.get(hub.url + w.base(role), timeout=60, allow_redirects=False)
        if expected == A:
            assert r.status_code == 200 and OUTPUT in r.text and SOURCE not in r.text
        else:
            # sent to the service's open page (which refuses them) or refused outright
            assert r.status_code in (302, 403), r.status_code
            if r.status_code == 302:
                assert r.headers["Location"].startswith(f"{SERVICE}open/{AUTHOR}/")
            assert_nothing_leaks(r)
    elif resource == "websocket":
        if expected == A:
            kernel = render(w, role)  # a kernel of their own page
            ws = ws_connect(w, role, kernel)
            ws.close()
        else:
            with pytest.raises(websocket.WebSocketException):
                ws = ws_connect(w, role, w.kernel)  # the author's kernel, from outside
                ws.recv()  # a refused upgrade is closed at once (1008)
    elif resource == "source file":
        session = enter(w, role)
        may_see_page = MATRIX[role][RESOURCES.index("page")] == A
        for path in SOURCE_PATHS:
            r = session.get(hub.url + w.base(role) + path, timeout=60, allow_redirects=False)
            assert SOURCE not in r.text, path
            if not (may_see_page and path in ("./", "?voila-template=classic")):
                assert OUTPUT not in r.text, path  # only the page itself shows the output
    elif resource == "jupyter api":
        session = enter(w, role)
        for path in JUPYTER_PATHS:
            r = session.get(hub.url + w.base(role) + path, timeout=60, allow_redirects=False)
            assert r.status_code in (302, 403, 404), (path, r.status_code)
            assert "kernel" not in r.text.lower() or r.status_code != 200, path
            assert_nothing_leaks(r)
    elif resource == "api read":
        r = service(w, role, "GET", "")
        if expected == A:
            body = r.json()
            assert r.status_code == 200 and body["slug"] == w.slug_for(role)
            # only the author sees how it runs and with whom it is shared
            assert ("entry" in body) == (role == "owner")
            assert ("share_users" in body) == (role == "owner")
        else:
            assert_json_refusal(r, (401, 404))
    elif resource == "api update":
        r = service(w, role, "PATCH", "", json={"description": f"changed by {role}"})
        if expected == A:
            assert r.status_code == 200 and r.json()["description"] == f"changed by {role}"
        else:
            assert_json_refusal(r, (401, 403, 404))
            stored = hub.svc("GET", f"dashboards/{AUTHOR}/{w.slug_for(role)}", AUTHOR).json()
            assert stored["description"] != f"changed by {role}"
    elif resource == "api delete":
        if expected == A:  # on a dashboard of its own: the others' cells still need theirs
            r = hub.svc("POST", "dashboards", AUTHOR, json={
                "slug": "am-scratch", "title": "scratch", "entry": "dash/app.py"})
            assert r.status_code == 201, r.text
            r = hub.svc("DELETE", f"dashboards/{AUTHOR}/am-scratch", AUTHOR)
            assert r.status_code == 204
            assert hub.svc("GET", f"dashboards/{AUTHOR}/am-scratch", AUTHOR).status_code == 404
        else:
            assert_json_refusal(service(w, role, "DELETE", ""), (401, 403, 404))
            assert hub.svc("GET", f"dashboards/{AUTHOR}/{w.slug_for(role)}",
                           AUTHOR).status_code == 200
    elif resource in ("logs", "usage"):
        r = service(w, role, "GET", "/" + resource)
        if expected == A:
            assert r.status_code == 200, r.text
            if resource == "logs":
                assert r.json()["status"] == "ready" and isinstance(r.json()["log"], list)
            else:
                assert r.json()["opens"] >= 1
        else:
            assert_json_refusal(r, (401, 403, 404))


@pytest.mark.parametrize(("role", "resource", "expected"), CELLS,
                         ids=[f"{r}-{res}-{e}" for r, res, e in CELLS])
def test_access_matrix(world: World, role: str, resource: str, expected: str) -> None:
    check(world, role, resource, expected)


def test_the_matrix_covers_every_role_and_resource() -> None:
    assert set(MATRIX) == set(ROLES)
    assert all(len(row) == len(RESOURCES) for row in MATRIX.values())
    assert len(CELLS) == len(ROLES) * len(RESOURCES) == 60


# -- source stays on the server, shared apps hold no hub power ---------------------------

APPS = {  # framework example -> (entry file name, a line of its source not in its output)
    "dash": ("app.py", "range(1, 201)"),
    "bokeh": ("app.py", "range(1, 301)"),
    "panel": ("app.py", "range(1, 401)"),
    "streamlit": ("app.py", "range(1, 501)"),
}
APP_SOURCE_PATHS = (
    "{entry}", "./{entry}", "static/../{entry}", "%2E%2E/{entry}", "app/{entry}",
    "app/static/../{entry}", "assets/{entry}", "_dash-component-suites/../{entry}",
    "static/{entry}", "app/static/{entry}", "_stcore/{entry}", "media/{entry}",
    "files/{entry}", "api/contents/{entry}", "tree", "{entry}?raw=1", "_hub_viz/status",
    "_hub_viz/log",
)


@pytest.fixture(scope="module")
def apps(hub: Hub) -> Iterator[dict[str, requests.Session]]:
    """The four server-side frameworks, shared with every hub user, opened by a non-owner."""
    hub.ensure_user(AUTHOR)
    sessions = {}
    for framework in APPS:
        r = hub.svc("POST", "dashboards", AUTHOR, json={
            "slug": f"am-{framework}", "title": framework, "entry": f"{framework}/app.py",
            "framework": framework, "visibility": "all"})
        assert r.status_code == 201, r.text
    for framework in APPS:
        body = {}
        for _ in range(3):
            body = hub.svc("POST", f"dashboards/{AUTHOR}/am-{framework}/open", STRANGER).json()
            if body["status"] == "ready":
                break
            hub.wait(AUTHOR, f"am-{framework}")
        session = requests.Session()
        session.headers["User-Agent"] = BROWSER_UA
        assert session.get(hub.url + body["url"], timeout=60).status_code == 200
        sessions[framework] = session
    yield sessions
    for framework in APPS:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/am-{framework}", AUTHOR)


@pytest.mark.parametrize("framework", sorted(APPS))
def test_no_route_serves_an_apps_source_to_a_viewer(hub: Hub, apps, framework: str) -> None:
    entry, marker = APPS[framework]
    base = f"{hub.url}/user/{AUTHOR}/am-{framework}/"
    session = apps[framework]
    assert session.get(base, timeout=60).status_code == 200  # the viewer does see the app
    for template in APP_SOURCE_PATHS:
        path = template.format(entry=entry)
        r = session.get(base + path, timeout=60, allow_redirects=False)
        assert marker not in r.text, f"{path} served the source ({r.status_code})"
        assert "Traceback" not in r.text, path
    # the status route tells a viewer the state, never the start-up log
    status = session.get(base + "_hub_viz/status", timeout=30).json()
    assert set(status) == {"state", "framework", "elapsed"}


def app_and_launcher(slug: str) -> tuple[psutil.Process, psutil.Process]:
    for proc in psutil.process_iter(["cmdline", "environ"]):
        env = proc.info["environ"] or {}
        if env.get("JUPYTERHUB_SERVER_NAME") == slug and "hub_viz.launcher" in " ".join(
                proc.info["cmdline"] or []):
            children = proc.children()
            assert children, "the launcher runs its app as a child"
            return proc, children[0]
    raise AssertionError(f"no launcher for {slug}")


def test_a_shared_apps_environment_holds_no_hub_token(hub: Hub, apps) -> None:
    launcher, app = app_and_launcher("am-dash")
    app_env = app.environ()
    leaked = {k for k in app_env if k.startswith(("JUPYTERHUB_", "JPY_"))
              or any(word in k.upper() for word in ("TOKEN", "SECRET", "KEY", "PASSWORD"))}
    assert leaked == set(), leaked
    assert app_env["HUB_VIZ_DASH_ENTRY"] == "app.py"  # the only hub_viz variable: its entry
    assert launcher.environ()["JUPYTERHUB_API_TOKEN"] not in "\n".join(app_env.values())
    # the launcher's own token: this server's activity and access, nothing of its owner's
    token = launcher.environ()["JUPYTERHUB_API_TOKEN"]
    me = requests.get(f"{hub.url}/hub/api/user", timeout=30,
                      headers={"Authorization": f"token {token}"}).json()
    assert me["name"] == AUTHOR
    scopes = set(me["scopes"])
    assert scopes <= {f"access:servers!server={AUTHOR}/am-dash",
                      f"users:activity!server={AUTHOR}/am-dash",
                      f"users:activity!user={AUTHOR}", f"read:users:name!user={AUTHOR}",
                      f"read:users:groups!user={AUTHOR}", f"read:users:activity!user={AUTHOR}",
                      f"read:users!user={AUTHOR}", f"read:users:name!user={AUTHOR}"}, scopes
    for power in ("servers", "tokens", "admin:users", f"servers!user={AUTHOR}"):
        assert power not in scopes
    r = requests.post(f"{hub.url}/hub/api/users/{AUTHOR}/servers/other", timeout=30,
                      headers={"Authorization": f"token {token}"})
    assert r.status_code == 403  # cannot start servers as its owner

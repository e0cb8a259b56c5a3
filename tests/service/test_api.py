"""The hub_viz service's REST API, driven through a real hub, proxy and real apps.

Every endpoint of ``openapi.yaml``: what it answers when things go right and
how it refuses when they do not (status code and a sentence a person can
act on). The service runs with exactly its role's scopes, as configured by
:func:`hub_viz.config.configure`.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import re
import secrets
import threading
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
import yaml
from traitlets.config.loader import PyFileConfigLoader

from hub_viz.layout import Layout
from hub_viz.service.access_api import access_routes
from hub_viz.service.api import NAME, api_routes
from hub_viz.service.embed_handlers import embed_routes
from hub_viz.service.hubapi import SERVICE_SCOPES
from hub_viz.service.lti_api import lti_routes
from hub_viz.service.versions_api import versions_routes

from ..conftest import ISOLATED_DOMAIN, SERVICE, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

OWNER = "api-owner"  # publishes everything here
VIEWER = "api-viewer"  # an ordinary hub user: sees 'all' and 'public' only
SHAREE = "api-sharee"  # named in share_users
MEMBER = "api-member"  # in TEAM
TEAM = "api-team"
ODD = "api.pat+viz@example.org"  # a name the hub escapes in URLs ('+' becomes %2B)
EVERYONE = (OWNER, VIEWER, SHAREE, MEMBER, ODD)

DASH = {"framework": "dash", "entry": "dash/app.py"}
DASH_MARKER = EXAMPLES["dash-example"][1]
MARKED_MARKER = "API tests: the second version of the sales board"
SLOW_MARKER = "API tests: the slow board is up"
LOG_MARKER = "api-tests: loading the sales data"
ENTER = re.compile(  # on the server's own host (the isolated layout), or a path
    r"(?:http://[a-z0-9-]+\.hub\.localhost:\d+)?"
    r"/user/(?P<owner>[^/]+)/(?P<server>[^/]+)/_hub_viz/enter\?grant_token=[\w-]+\.[\w-]+\.[\w-]+"
)

MARKED_APP = f'''
import dash
from dash import html

app = dash.Dash(__name__, title="Marked")
app.layout = html.Div([html.P("{MARKED_MARKER}")])
'''

SLOW_APP = f'''
import time

import dash
from dash import html

print("{LOG_MARKER}", flush=True)
time.sleep(3)
app = dash.Dash(__name__, title="Slow")
app.layout = html.Div([html.P("{SLOW_MARKER}")])
'''


# -- helpers -----------------------------------------------------------------------


def assert_sentence(message: Any) -> None:
    """A message a person can read: words, a capital or a quoted name first, a full stop."""
    assert isinstance(message, str), message
    assert len(message.split()) >= 4, message
    assert message[0].isupper() or message[0] in "'\"", message
    assert message.rstrip().endswith((".", "!", "?")), message
    for noise in ("Traceback", "_xsrf", "HTTP 5", "None"):
        assert noise not in message, message


def assert_error(r: requests.Response, status: int, *fragments: str) -> str:
    """A JSON error ``{"status", "message"}`` with a readable message containing ``fragments``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"status", "message"}, body
    assert body["status"] == status
    assert_sentence(body["message"])
    for fragment in fragments:
        assert fragment.lower() in body["message"].lower(), (fragment, body["message"])
    return body["message"]


def servers(hub: Any, user: str, stopped: bool = False) -> dict[str, Any]:
    query = "?include_stopped_servers=1" if stopped else ""
    r = hub.api("GET", f"/users/{in_url(user)}{query}")
    assert r.status_code == 200, r.text
    return r.json().get("servers") or {}


def shares(hub: Any, owner: str, server: str) -> list[dict[str, Any]] | None:
    """The hub's shares of a server; None when the hub has no such server."""
    r = hub.api("GET", f"/shares/{owner}/{server}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()["items"]


def share_targets(hub: Any, owner: str, server: str) -> set[str]:
    items = shares(hub, owner, server) or []
    for item in items:
        assert item["scopes"] == [f"access:servers!server={owner}/{server}"], item
    return {
        ("user:" + s["user"]["name"]) if s.get("user") else ("group:" + s["group"]["name"])
        for s in items
    }


def usage(hub: Any, owner: str, slug: str, user: str = OWNER, days: str = "") -> dict[str, Any]:
    query = f"?days={days}" if days else ""
    r = hub.svc("GET", f"dashboards/{owner}/{slug}/usage{query}", user)
    assert r.status_code == 200, r.text
    return r.json()


def sse(r: requests.Response) -> list[dict[str, Any]]:
    """The events of a server-sent-events response, read to its end."""
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
    events = []
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            events.append(json.loads(line[5:]))
    return events


def open_ready(hub: Any, owner: str, slug: str, user: str | None) -> tuple[dict, str]:
    """POST open, follow the progress stream when pending; the body and the enter link."""
    r = hub.svc("POST", f"dashboards/{owner}/{slug}/open", user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] in ("ready", "pending"), body
    if body["status"] == "ready":
        return body, body["url"]
    assert body["progress_url"] == f"{SERVICE}api/dashboards/{owner}/{slug}/progress"
    events = sse(hub.svc("GET", f"dashboards/{owner}/{slug}/progress", user, stream=True))
    assert events and events[-1].get("ready") is True, events
    return body, events[-1]["url"]


def in_url(name: str) -> str:
    """A user or server name as the hub writes it in URLs."""
    return quote(name, safe="@~")


def check_enter_url(url: str, owner: str, server: str) -> None:
    match = ENTER.fullmatch(url)
    assert match, url
    assert (match["owner"], match["server"]) == (in_url(owner), in_url(server)), url
    if url.startswith("http"):  # the isolated layout: the server's own host, nobody else's
        expected = Layout(f"http://{ISOLATED_DOMAIN}").server_host(owner, server)
        assert urlsplit(url).hostname == expected, url


def visit(hub: Any, url: str) -> tuple[requests.Session, requests.Response]:
    """Follow a link in a fresh client that never logged in to the hub."""
    session = requests.Session()
    return session, session.get(hub.public(url), timeout=60)


def assert_dash_page(
    hub: Any,
    session: requests.Session,
    page: requests.Response,
    owner: str,
    server: str,
    marker: str = DASH_MARKER,
) -> None:
    assert page.status_code == 200, page.text[:500]
    assert page.url == hub.at(f"/user/{in_url(owner)}/{in_url(server)}/"), page.url
    assert '<script id="_dash-config"' in page.text, page.text[:500]
    layout = session.get(page.url + "_dash-layout", timeout=60)
    assert layout.status_code == 200, layout.text[:500]
    assert marker in layout.text, layout.text[:500]


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(hub):
    """The users and the group, made before any of them calls the service."""
    for name in EVERYONE:
        hub.ensure_user(name)
    r = hub.api("POST", f"/groups/{TEAM}")
    assert r.status_code in (201, 409), r.text
    r = hub.api("POST", f"/groups/{TEAM}/users", json={"users": [MEMBER]})
    assert r.status_code == 200, r.text
    apps = hub.root / "api-tests"
    apps.mkdir(exist_ok=True)
    (apps / "marked.py").write_text(MARKED_APP)
    (apps / "slow.py").write_text(SLOW_APP)
    yield
    hub.api("DELETE", f"/groups/{TEAM}")


@pytest.fixture
def publish(hub, people):
    """Publish as OWNER (or ``owner``); everything published is unpublished afterwards."""
    made: list[tuple[str, str]] = []

    def _publish(owner: str = OWNER, **fields: Any) -> dict[str, Any]:
        r = hub.svc("POST", "dashboards", owner, json=fields)
        assert r.status_code == 201, r.text
        body = r.json()
        made.append((owner, body["slug"]))
        return body

    yield _publish
    for owner, slug in made:
        r = hub.svc("DELETE", f"dashboards/{owner}/{slug}", owner)
        assert r.status_code in (204, 404), r.text


@pytest.fixture(scope="module")
def gallery(hub, people):
    """One never-started dashboard per visibility (the titles share the word 'quokka')."""
    fields = {
        "private": {},
        "users": {"share_users": [SHAREE]},
        "groups": {"share_groups": [TEAM]},
        "all": {"description": "Weekly figures for everyone"},
        "public": {},
    }
    made = {}
    for visibility, extra in fields.items():
        r = hub.svc(
            "POST",
            "dashboards",
            OWNER,
            json={
                "slug": f"api-gal-{visibility}",
                "title": f"Quokka {visibility} board",
                "visibility": visibility,
                **DASH,
                **extra,
            },
        )
        assert r.status_code == 201, r.text
        made[visibility] = r.json()["slug"]
    yield made
    for slug in made.values():
        r = hub.svc("DELETE", f"dashboards/{OWNER}/{slug}", OWNER)
        assert r.status_code == 204, r.text


def listed(hub: Any, user: str, query: str = "") -> dict[str, dict[str, Any]]:
    r = hub.svc("GET", "dashboards" + query, user)
    assert r.status_code == 200, r.text
    return {f"{d['owner']}/{d['slug']}": d for d in r.json()["items"]}


# -- info, auth -------------------------------------------------------------------------


def test_entries_lists_the_callers_files_a_framework_serves(hub, people):
    r = hub.svc("GET", "entries", OWNER)
    assert r.status_code == 200, r.text
    entries = {e["path"]: e["framework"] for e in r.json()["entries"]}
    assert entries["dash/app.py"] == "dash" and entries["voila/dashboard.ipynb"] == "voila"
    assert entries["bokeh/app.py"] == "bokeh" and entries["streamlit/app.py"] == "streamlit"
    assert not [p for p in entries if p.startswith(".") or "/." in p]
    anonymous = requests.get(f"{hub.service_url}api/entries", timeout=30)
    assert anonymous.status_code in (401, 403)


def test_info_lists_choices_and_the_callers_groups(hub, people):
    r = hub.svc("GET", "info", MEMBER)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["user"] == MEMBER
    assert info["groups"] == [TEAM]
    names = [f["name"] for f in info["frameworks"]]
    # 'custom' is allowed on the test hub but needs a command the API does not take
    assert names == [
        "voila",
        "dash",
        "bokeh",
        "panel",
        "streamlit",
        "notebook",
        "gradio",
        "shiny",
        "marimo",
        "solara",
        "nicegui",
    ]
    dash = next(f for f in info["frameworks"] if f["name"] == "dash")
    assert dash["display_name"] == "Dash" and dash["modes"] == ["shared", "per-viewer"]
    # every dashboard has a host of its own on the test hub: anyone may share
    assert info["visibilities"] == ["private", "users", "groups", "all", "public"]
    assert info["publish_limit"] == ""
    assert info["profiles"] == ["small"]
    assert info["profile_choices"] == [
        {
            "name": "small",
            "display_name": "Small",
            "description": "",
            "cpu_limit": 1.0,
            "mem_limit": "1G",
        }
    ]
    assert info["resource_ceiling"] == {"cpu": 2.0, "memory": "4G"}
    assert_error(hub.svc("GET", "info", None), 401, "log in")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "info"),
        ("GET", "dashboards"),
        ("POST", "dashboards"),
        ("GET", f"dashboards/{OWNER}/api-gal-public"),
        ("PATCH", f"dashboards/{OWNER}/api-gal-public"),
        ("DELETE", f"dashboards/{OWNER}/api-gal-public"),
        ("POST", f"dashboards/{OWNER}/api-gal-public/stop"),
        ("GET", f"dashboards/{OWNER}/api-gal-public/logs"),
        ("GET", f"dashboards/{OWNER}/api-gal-public/usage"),
        ("GET", "usage"),
    ],
)
def test_without_a_token_the_api_asks_to_log_in(hub, gallery, method, path):
    kwargs = {"json": {"title": "Nope", **DASH}} if method in ("POST", "PATCH") else {}
    assert_error(hub.svc(method, path, None, **kwargs), 401, "log in to the hub")
    # ...and a token the hub does not know is no better
    r = hub.svc(method, path, None, headers={"Authorization": "token not-a-real-token"}, **kwargs)
    assert_error(r, 401, "log in to the hub")
    assert listed(hub, OWNER)[f"{OWNER}/api-gal-public"]["title"] == "Quokka public board"


def test_a_cookie_login_must_send_the_xsrf_token(hub, people):
    """The service's own pages call the API with its login cookie plus X-XSRFToken."""
    session = hub.login(MEMBER)
    page = session.get(f"{hub.service_url}", timeout=60)  # hub OAuth into the service
    assert page.status_code == 200 and page.url == f"{hub.service_url}", page.url
    body = {"slug": "api-cookie", "title": "Cookie board", **DASH}
    headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    r = session.post(f"{hub.service_url}api/dashboards", json=body, headers=headers, timeout=60)
    assert_error(r, 401, "log in")
    assert (
        session.get(f"{hub.service_url}api/dashboards/{MEMBER}/api-cookie", timeout=60).status_code
        == 404
    )
    xsrf = next(c.value for c in session.cookies if c.name == "_xsrf" and c.path == SERVICE)
    r = session.post(
        f"{hub.service_url}api/dashboards",
        json=body,
        headers={**headers, "X-XSRFToken": xsrf},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == MEMBER
    r = session.delete(
        f"{hub.service_url}api/dashboards/{MEMBER}/api-cookie",
        headers={**headers, "X-XSRFToken": xsrf},
        timeout=60,
    )
    assert r.status_code == 204, r.text


# -- create -----------------------------------------------------------------------------


def test_create_answers_201_with_the_dashboard(hub, publish):
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "title": "  Sales by region (2024)  ",
            "description": "Quarterly sales",
            "visibility": "all",
            "profile": "small",
            "resources": {"memory": "512Mi"},
            **DASH,
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    try:
        assert r.headers["Location"] == f"{SERVICE}api/dashboards/{OWNER}/sales-by-region-2024"
        assert body["slug"] == "sales-by-region-2024"  # made from the title
        assert {
            k: body[k]
            for k in (
                "owner",
                "title",
                "description",
                "framework",
                "mode",
                "visibility",
                "entry",
                "git",
                "args",
                "share_users",
                "share_groups",
                "profile",
                "resources",
                "can_manage",
                "status",
            )
        } == {
            "owner": OWNER,
            "title": "Sales by region (2024)",
            "description": "Quarterly sales",
            "framework": "dash",
            "mode": "shared",
            "visibility": "all",
            "entry": "dash/app.py",
            "git": None,
            "args": [],
            "share_users": [],
            "share_groups": [],
            "profile": "small",
            "resources": {"memory": "512Mi"},
            "can_manage": True,
            "status": "stopped",
        }
        # absolute on the service's own host, where a browser elsewhere finds them
        assert body["open_url"] == f"{hub.service_url}open/{OWNER}/sales-by-region-2024"
        assert body["manage_url"] == f"{hub.service_url}d/{OWNER}/sales-by-region-2024"
        assert body["thumbnail_url"] == (
            f"{hub.service_url}api/dashboards/{OWNER}/sales-by-region-2024/thumbnail"
        )
        assert body["created"].endswith("Z") and body["updated"].endswith("Z")
        # the stored record reads back the same
        read = hub.svc("GET", f"dashboards/{OWNER}/sales-by-region-2024", OWNER).json()
        assert read == body
    finally:
        hub.svc("DELETE", f"dashboards/{OWNER}/sales-by-region-2024", OWNER)

    # a title starting with a digit still gives a slug starting with a letter
    assert publish(title="2025 forecast", **DASH)["slug"] == "d-2025-forecast"
    # no title: the slug is the title; the framework is detected from the entry
    body = publish(slug="api-detected", entry="dash/app.py")
    assert (body["title"], body["framework"], body["visibility"]) == (
        "api-detected",
        "dash",
        "private",
    )
    # a git source's ref is resolved to its commit at publish (the version pins it): a
    # host the hub cannot find is refused then, with the reason (tests/hub/test_versions.py
    # publishes from a repository that answers)
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "slug": "api-git",
            "framework": "dash",
            "entry": "app.py",
            "git": {"url": "https://example.org/org/sales.git", "ref": "v1"},
        },
    )
    assert r.status_code == 400, r.text
    assert "The git host 'example.org' could not be found." in r.json()["message"]
    # app arguments, for a framework that takes them
    body = publish(slug="api-args", framework="bokeh", entry="bokeh/app.py", args=["--rows", "9"])
    assert body["args"] == ["--rows", "9"]


BAD_CREATES = {
    "slug-uppercase": ({"slug": "Bad_Slug"}, ["'slug' must be", "lowercase"]),
    "slug-double-dash": ({"slug": "a--b"}, ["'slug' must be", "single '-'"]),
    "slug-too-long": ({"slug": "a" * 31}, ["1-30 characters"]),
    "slug-trailing-dash": ({"slug": "sales-"}, ["not ending with '-'"]),
    "slug-digit-first": ({"slug": "1sales"}, ["starting with a letter"]),
    "unknown-framework": ({"framework": "vizro"}, ["unknown framework 'vizro'", "dash"]),
    "missing-entry-file": ({"entry": "dash/missing.py"}, ["'dash/missing.py' does not exist"]),
    "no-entry": ({"entry": None}, ["needs 'entry'"]),
    "entry-leaves-folder": ({"entry": "../dash/app.py"}, ["'..' is not allowed"]),
    "entry-leaves-folder-inside": ({"entry": "dash/../../etc/app.py"}, ["'..'"]),
    "git-ftp": ({"git": {"url": "ftp://x"}, "entry": "app.py"}, ["https://", "'ftp://x'"]),
    "git-credentials": (
        {"git": {"url": "https://user:pw@host/repo"}, "entry": "app.py"},
        ["user name or password"],
    ),
    "git-unknown-key": (
        {"git": {"url": "https://host/repo", "branch": "x"}, "entry": "app.py"},
        ["'git'"],
    ),
    "users-without-names": ({"visibility": "users"}, ["needs at least one name", "share_users"]),
    "groups-without-names": ({"visibility": "groups"}, ["share_groups"]),
    "share-users-not-a-list": (
        {"visibility": "users", "share_users": SHAREE},
        ["'share_users' must be a list"],
    ),
    "public-per-viewer": (
        {"visibility": "public", "mode": "per-viewer"},
        ["public dashboard", "shared mode"],
    ),
    "unknown-visibility": ({"visibility": "secret"}, ["unknown visibility 'secret'"]),
    "unknown-mode": ({"mode": "cluster"}, ["unknown mode 'cluster'"]),
    "args-for-dash": ({"args": ["--rows", "9"]}, ["Dash framework takes no 'args'"]),
    "args-not-strings": (
        {"framework": "bokeh", "entry": "bokeh/app.py", "args": [1]},
        ["'args' must be a list of strings"],
    ),
    "unknown-profile": ({"profile": "gpu"}, ["unknown profile 'gpu'", "known profiles: small"]),
    "memory-beyond-ceiling": (
        {"resources": {"memory": "8G"}},
        ["asks for 8G of memory", "at most 4G per dashboard"],
    ),
    "cpu-beyond-ceiling": (
        {"profile": "small", "resources": {"cpu": 3}},
        ["asks for 3 CPU", "at most 2 per dashboard"],
    ),
    "resources-malformed": (
        {"resources": {"memory": "lots"}},
        ["'resources.memory' must be a size such as '512M'"],
    ),
    "unknown-fields": ({"color": "red", "size": 3}, ["unknown field(s) ['color', 'size']"]),
    "title-too-long": ({"title": "t" * 201}, ["'title'", "200 characters"]),
    "no-title-no-slug": ({"slug": None, "title": None}, ["give the dashboard a 'title'"]),
    "keep-warm-overnight": (
        {"keep_warm": [{"start": "22:00", "end": "02:00"}]},
        ["'end' (02:00)", "after 'start' (22:00)", "split"],
    ),
    "keep-warm-bad-day": (
        {"keep_warm": [{"days": ["monday"], "start": "09:00", "end": "10:00"}]},
        ["'days' in keep_warm window 1", "mon, tue"],
    ),
    "keep-warm-too-many": (
        {"keep_warm": [{"start": "09:00", "end": "10:00"}] * 21},
        ["at most 20 windows"],
    ),
    "keep-warm-per-viewer": (
        {"mode": "per-viewer", "keep_warm": [{"start": "09:00", "end": "10:00"}]},
        ["shared dashboards only"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CREATES), ids=list(BAD_CREATES))
def test_create_refuses_bad_input_with_a_reason(hub, people, case):
    changes, fragments = BAD_CREATES[case]
    body = {"slug": "api-bad", "title": "Bad", **DASH, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    assert_error(hub.svc("POST", "dashboards", OWNER, json=body), 400, *fragments)
    assert hub.svc("GET", f"dashboards/{OWNER}/api-bad", OWNER).status_code == 404


def test_create_refuses_groups_the_hub_does_not_know(hub, people):
    ghost = f"api-ghost-{secrets.token_hex(3)}"
    body = {"slug": "api-bad", **DASH, "visibility": "groups", "share_groups": [TEAM, ghost]}
    assert_error(
        hub.svc("POST", "dashboards", OWNER, json=body),
        400,
        f"the hub has no group '{ghost}'",
        "check the names",
    )
    assert hub.svc("GET", f"dashboards/{OWNER}/api-bad", OWNER).status_code == 404


def test_shares_with_users_not_on_the_hub_yet_wait_for_their_first_login(hub, people, publish):
    """An instructor shares with the class list before class: names the hub does not know
    yet are kept, shown as pending, and apply from each one's first login."""
    newcomer = f"api-newcomer-{secrets.token_hex(3)}"
    created = publish(
        slug="api-pending",
        title="Before class",
        visibility="users",
        share_users=[SHAREE, newcomer],
        **DASH,
    )
    assert created["share_users"] == [SHAREE, newcomer]
    assert created["pending_users"] == [newcomer]
    path = f"dashboards/{OWNER}/api-pending"
    assert hub.svc("GET", path, OWNER).json()["pending_users"] == [newcomer]
    page = hub.login(OWNER).get(f"{hub.service_url}d/{OWNER}/api-pending", timeout=30)
    assert "Not on the hub yet" in page.text and newcomer in page.text
    # the shared instance runs for the others meanwhile
    open_ready(hub, OWNER, "api-pending", SHAREE)

    hub.ensure_user(newcomer)  # their first login
    assert hub.svc("GET", path, OWNER).json()["pending_users"] == []
    listed = {d["slug"] for d in hub.svc("GET", "dashboards", newcomer).json()["items"]}
    assert "api-pending" in listed
    _, url = open_ready(hub, OWNER, "api-pending", newcomer)
    assert share_targets(hub, OWNER, "api-pending") == {f"user:{SHAREE}", f"user:{newcomer}"}
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, OWNER, "api-pending")


def test_create_refuses_bodies_that_are_not_a_json_object(hub, people):
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        data="{'slug': 'api-bad'",
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "not valid JSON")
    assert_error(hub.svc("POST", "dashboards", OWNER, json=["api-bad"]), 400, "JSON object")
    big = {"slug": "api-bad", **DASH, "description": "x" * (300 * 1024)}
    assert_error(hub.svc("POST", "dashboards", OWNER, json=big), 413, "larger than 256 KB")


def test_create_with_a_slug_in_use_is_a_conflict(hub, publish):
    publish(slug="api-clash", title="First", **DASH)
    r = hub.svc("POST", "dashboards", OWNER, json={"slug": "api-clash", "title": "Second", **DASH})
    assert_error(r, 409, "already have a dashboard named 'api-clash'")
    assert hub.svc("GET", f"dashboards/{OWNER}/api-clash", OWNER).json()["title"] == "First"
    # slugs are per owner: someone else may use the same one
    assert publish(owner=VIEWER, slug="api-clash", **DASH)["owner"] == VIEWER


# -- list, read ------------------------------------------------------------------------


def test_list_shows_each_caller_only_what_they_may_see(hub, gallery):
    ref = {v: f"{OWNER}/{slug}" for v, slug in gallery.items()}
    mine = set(ref.values())
    expected = {
        OWNER: set(ref),
        VIEWER: {"all", "public"},
        SHAREE: {"users", "all", "public"},
        MEMBER: {"groups", "all", "public"},
    }
    for user, visibilities in expected.items():
        items = listed(hub, user)
        assert set(items) & mine == {ref[v] for v in visibilities}, user
        for key in set(items) & mine:
            item = items[key]
            assert item["status"] == "stopped"
            assert item["can_manage"] is (user == OWNER)
            # share targets and the entry are for the author's eyes only
            assert ("entry" in item) is (user == OWNER)
            assert ("share_users" in item) is (user == OWNER)
    assert listed(hub, OWNER)[ref["users"]]["share_users"] == [SHAREE]
    assert listed(hub, OWNER)[ref["groups"]]["share_groups"] == [TEAM]


def test_list_search_and_mine(hub, gallery, publish):
    publish(owner=VIEWER, slug="api-viewer-own", title="Quokka notes", **DASH)
    ref = {v: f"{OWNER}/{slug}" for v, slug in gallery.items()}
    assert set(listed(hub, VIEWER, "?q=quokka")) == {
        ref["all"],
        ref["public"],
        f"{VIEWER}/api-viewer-own",
    }
    # every word must appear, in title, description, owner, framework or slug
    assert set(listed(hub, VIEWER, "?q=QUOKKA+weekly")) == {ref["all"]}
    assert set(listed(hub, OWNER, "?q=quokka+public+dash")) == {ref["public"]}
    assert set(listed(hub, VIEWER, f"?q={OWNER}+board")) == {ref["all"], ref["public"]}
    assert listed(hub, VIEWER, "?q=quokka+nosuchword") == {}
    # mine=1: only the caller's own, whatever else they may see
    assert set(listed(hub, VIEWER, "?mine=1&q=quokka")) == {f"{VIEWER}/api-viewer-own"}
    assert set(listed(hub, OWNER, "?mine=1&q=quokka")) == set(ref.values())
    assert set(listed(hub, SHAREE, "?mine=1")) == set()


def test_read_answers_404_for_what_the_caller_may_not_see(hub, gallery):
    d = hub.svc("GET", f"dashboards/{OWNER}/api-gal-users", SHAREE)
    assert d.status_code == 200, d.text
    assert d.json()["title"] == "Quokka users board" and d.json()["can_manage"] is False
    hidden = hub.svc("GET", f"dashboards/{OWNER}/api-gal-private", VIEWER)
    missing = hub.svc("GET", f"dashboards/{OWNER}/api-gal-nothing", VIEWER)
    hidden_message = assert_error(hidden, 404, "no dashboard")
    missing_message = assert_error(missing, 404, "no dashboard")
    # the same answer whether it exists or not
    assert hidden_message.replace("api-gal-private", "X") == missing_message.replace(
        "api-gal-nothing", "X"
    )
    assert hidden.headers["Content-Type"] == missing.headers["Content-Type"]
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-gal-groups", SHAREE), 404)
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-gal-users", MEMBER), 404)


# -- update ------------------------------------------------------------------------------


def test_update_is_for_the_owner_and_checks_input(hub, publish):
    publish(slug="api-upd", title="Before", visibility="all", **DASH)
    path = f"dashboards/{OWNER}/api-upd"
    assert_error(
        hub.svc("PATCH", path, VIEWER, json={"title": "Mine now"}), 403, f"only {OWNER} can change"
    )
    publish(slug="api-upd-private", **DASH)
    assert_error(
        hub.svc("PATCH", f"dashboards/{OWNER}/api-upd-private", VIEWER, json={"title": "Mine now"}),
        404,
        "no dashboard",
    )
    assert_error(
        hub.svc("PATCH", f"dashboards/{OWNER}/api-nothing", OWNER, json={"title": "x"}),
        404,
        "no dashboard",
    )
    bad = [
        ({"slug": "api-upd-2"}, "'slug' cannot change"),
        ({"framework": "vizro"}, "unknown framework 'vizro'"),
        ({"entry": "../dash/app.py"}, "'..'"),
        ({"entry": "dash/missing.py"}, "does not exist"),
        ({"visibility": "users"}, "share_users"),
        (
            {"visibility": "groups", "share_groups": ["api-no-such-group"]},
            "the hub has no group 'api-no-such-group'",
        ),
        ({"git": {"url": "ftp://x"}, "entry": "app.py"}, "https://"),
        ({"mode": "per-viewer", "visibility": "public"}, "shared mode"),
        ({"owner": VIEWER}, "unknown field(s) ['owner']"),
        ([1], "JSON object"),
    ]
    for body, fragment in bad:
        assert_error(hub.svc("PATCH", path, OWNER, json=body), 400, fragment)
    assert_error(hub.svc("PATCH", path, OWNER, data="title=x"), 400, "not valid JSON")
    d = hub.svc("GET", path, OWNER).json()
    assert (d["title"], d["visibility"], d["entry"], d["framework"]) == (
        "Before",
        "all",
        "dash/app.py",
        "dash",
    )

    r = hub.svc("PATCH", path, OWNER, json={"title": "After", "description": "New words"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["description"], body["redeployed"]) == ("After", "New words", False)
    assert body["updated"] >= body["created"]
    assert body["entry"] == "dash/app.py" and body["visibility"] == "all"  # unchanged
    assert hub.svc("GET", path, VIEWER).json()["title"] == "After"


def test_visibility_groups_shares_the_server_once_it_exists(hub, publish):
    publish(slug="api-share", title="Shared board", **DASH)
    path = f"dashboards/{OWNER}/api-share"
    assert_error(hub.svc("GET", path, MEMBER), 404)
    r = hub.svc("PATCH", path, OWNER, json={"visibility": "groups", "share_groups": [TEAM]})
    assert r.status_code == 200, r.text
    assert (r.json()["visibility"], r.json()["share_groups"]) == ("groups", [TEAM])
    assert shares(hub, OWNER, "api-share") is None  # no server yet: nothing to share
    assert hub.svc("GET", path, MEMBER).status_code == 200
    assert_error(hub.svc("GET", path, VIEWER), 404)

    body, url = open_ready(hub, OWNER, "api-share", MEMBER)
    assert body["server"] == f"{OWNER}/api-share"
    assert share_targets(hub, OWNER, "api-share") == {f"group:{TEAM}"}
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, OWNER, "api-share")

    # the server exists now: changes to the targets change the hub's shares at once
    r = hub.svc("PATCH", path, OWNER, json={"visibility": "users", "share_users": [SHAREE]})
    assert r.status_code == 200 and r.json()["redeployed"] is False, r.text
    assert share_targets(hub, OWNER, "api-share") == {f"user:{SHAREE}"}
    r = hub.svc("PATCH", path, OWNER, json={"visibility": "all"})
    assert r.status_code == 200, r.text
    assert r.json()["share_users"] == [] and r.json()["share_groups"] == []
    assert share_targets(hub, OWNER, "api-share") == set()  # grants instead of shares
    assert servers(hub, OWNER)["api-share"]["ready"]  # sharing never restarts it


def test_changing_the_entry_of_a_running_dashboard_redeploys_it(hub, publish):
    publish(slug="api-redeploy", title="Redeploy", visibility="users", share_users=[SHAREE], **DASH)
    path = f"dashboards/{OWNER}/api-redeploy"
    _, url = open_ready(hub, OWNER, "api-redeploy", SHAREE)
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, OWNER, "api-redeploy")
    [first] = usage(hub, OWNER, "api-redeploy")["recent"]
    assert (first["started_by"], first["stopped"]) == (SHAREE, None)

    r = hub.svc("PATCH", path, OWNER, json={"entry": "api-tests/marked.py"})
    assert r.status_code == 200, r.text
    assert r.json()["redeployed"] is True and r.json()["entry"] == "api-tests/marked.py"
    assert hub.wait(OWNER, "api-redeploy").get("ready"), hub.spawn_message(OWNER, "api-redeploy")
    new, old = usage(hub, OWNER, "api-redeploy")["recent"]
    assert old["started"] == first["started"]
    assert (old["stop_reason"], old["stopped_by"]) == ("redeploy", OWNER)
    assert old["stopped"] is not None
    assert (new["server"], new["started_by"], new["stopped"]) == (
        f"{OWNER}/api-redeploy",
        OWNER,
        None,
    )
    assert new["started"] > old["started"]
    assert share_targets(hub, OWNER, "api-redeploy") == {f"user:{SHAREE}"}

    # the viewer's next open shows the new version
    _, url = open_ready(hub, OWNER, "api-redeploy", SHAREE)
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, OWNER, "api-redeploy", marker=MARKED_MARKER)

    # a change outside the spec (title) leaves the running instance alone
    r = hub.svc("PATCH", path, OWNER, json={"title": "Redeploy, renamed"})
    assert r.status_code == 200 and r.json()["redeployed"] is False, r.text
    assert len(usage(hub, OWNER, "api-redeploy")["recent"]) == 2

    # a stopped dashboard is not started by a change
    assert hub.svc("POST", f"{path}/stop", OWNER).json() == {"stopped": 1}
    r = hub.svc("PATCH", path, OWNER, json={"entry": "dash/app.py"})
    assert r.status_code == 200 and r.json()["redeployed"] is False, r.text
    wait_until(lambda: "api-redeploy" not in servers(hub, OWNER), what="the server to stop")
    assert "api-redeploy" not in servers(hub, OWNER)


# -- delete ------------------------------------------------------------------------------


def test_delete_stops_removes_and_revokes(hub, publish):
    publish(slug="api-delete", title="Delete me", visibility="users", share_users=[SHAREE], **DASH)
    path = f"dashboards/{OWNER}/api-delete"
    open_ready(hub, OWNER, "api-delete", SHAREE)
    assert servers(hub, OWNER)["api-delete"]["ready"]
    assert share_targets(hub, OWNER, "api-delete") == {f"user:{SHAREE}"}

    assert_error(hub.svc("DELETE", path, SHAREE), 403, f"only {OWNER} can change")
    assert_error(hub.svc("DELETE", path, VIEWER), 404, "no dashboard")
    assert servers(hub, OWNER)["api-delete"]["ready"]

    r = hub.svc("DELETE", path, OWNER)
    assert r.status_code == 204 and r.content == b"", r.text
    wait_until(
        lambda: "api-delete" not in servers(hub, OWNER, stopped=True),
        what="the server to be removed (not just stopped)",
    )
    assert shares(hub, OWNER, "api-delete") is None
    for user in (OWNER, SHAREE):
        assert_error(hub.svc("GET", path, user), 404, "no dashboard")
        assert_error(hub.svc("POST", f"{path}/open", user), 404, "no dashboard")
    assert_error(hub.svc("DELETE", path, OWNER), 404, "no dashboard")
    assert "api-delete" not in servers(hub, OWNER, stopped=True)


# -- open ----------------------------------------------------------------------------------


def test_open_gives_a_one_time_link_that_needs_no_hub_login(hub, publish):
    publish(slug="api-open", title="Open me", visibility="all", **DASH)
    r = hub.svc("POST", f"dashboards/{OWNER}/api-open/open", VIEWER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] in ("ready", "pending") and body["server"] == f"{OWNER}/api-open"
    if body["status"] == "pending":
        _, url = open_ready(hub, OWNER, "api-open", VIEWER)
    else:
        url = body["url"]
    check_enter_url(url, OWNER, "api-open")
    assert servers(hub, OWNER)["api-open"]["ready"]

    session, page = visit(hub, url)
    assert [h.status_code for h in page.history] == [302]
    assert_dash_page(hub, session, page, OWNER, "api-open")
    assert not any(c.name.startswith("jupyterhub") for c in session.cookies)

    # the same link a second time is refused: back to the service's open page
    again = requests.Session()
    second = again.get(hub.public(url), allow_redirects=False, timeout=60)
    assert second.status_code == 302
    assert second.headers["Location"] == hub.open_location(OWNER, "api-open")
    followed = again.get(hub.public(url), timeout=60)
    assert "_dash-config" not in followed.text and DASH_MARKER not in followed.text
    assert (
        again.get(
            hub.at(f"/user/{OWNER}/api-open/_dash-layout"), allow_redirects=False, timeout=60
        ).status_code
        == 302
    )
    # a forged grant is refused the same way
    forged = url[: url.rindex(".") + 1] + "AAAA"
    third = requests.get(hub.public(forged), allow_redirects=False, timeout=60)
    assert third.status_code == 302 and third.headers["Location"].endswith(
        "open/api-owner/api-open"
    )

    # opening a running dashboard starts nothing new
    body2, url2 = open_ready(hub, OWNER, "api-open", VIEWER)
    assert body2["status"] == "ready" and url2 != url
    figures = usage(hub, OWNER, "api-open")
    assert figures["deployments"] == 1 and figures["opens"] == 2
    # the launcher logs the enter path without its one-time grant
    logged = hub.log.read_text(errors="replace")
    assert "_hub_viz/enter (" in logged
    assert url.split("grant_token=")[1] not in logged
    assert "grant_token=ey" not in logged  # the hub scrubs it where it answers such a URL


def test_open_refuses_who_may_not_see_it_and_bots(hub, publish):
    publish(slug="api-closed", title="Closed", visibility="users", share_users=[SHAREE], **DASH)
    path = f"dashboards/{OWNER}/api-closed/open"
    assert_error(hub.svc("POST", path, VIEWER), 404, "no dashboard")
    assert_error(hub.svc("POST", path, None), 404, "no dashboard")
    for agent in (
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "python-requests/2.32.3",
        "curl/8.5.0",
        "",
    ):
        r = hub.svc("POST", path, SHAREE, headers={"User-Agent": agent})
        assert_error(r, 403, "automated clients do not start dashboards")
    assert "api-closed" not in servers(hub, OWNER, stopped=True)
    figures = usage(hub, OWNER, "api-closed")
    assert (figures["deployments"], figures["opens"], figures["recent"]) == (0, 0, [])
    # the open page itself never starts anything either
    r = requests.get(
        f"{hub.service_url}open/{OWNER}/api-closed",
        headers={"User-Agent": "Googlebot/2.1"},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 302
    assert "api-closed" not in servers(hub, OWNER, stopped=True)


def test_concurrent_opens_of_a_stopped_dashboard_start_it_once(hub, publish):
    publish(slug="api-rush", title="Rush", visibility="all", **DASH)
    viewers = [VIEWER, SHAREE, MEMBER, OWNER, VIEWER]
    barrier = threading.Barrier(len(viewers))

    def open_as(user: str) -> requests.Response:
        barrier.wait()
        return hub.svc("POST", f"dashboards/{OWNER}/api-rush/open", user)

    with concurrent.futures.ThreadPoolExecutor(len(viewers)) as pool:
        answers = list(pool.map(open_as, viewers))
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("ready", "pending")
        assert r.json()["server"] == f"{OWNER}/api-rush"
    assert hub.wait(OWNER, "api-rush").get("ready")
    figures = usage(hub, OWNER, "api-rush")
    assert len(figures["recent"]) == 1, figures["recent"]
    assert figures["deployments"] == 1 and figures["running_now"] == 1
    assert figures["opens"] == 5 and figures["viewers"] == 4
    assert figures["recent"][0]["started_by"] in viewers


def test_per_viewer_dashboards_run_as_the_viewer(hub, publish):
    publish(slug="api-mine-only", title="Per viewer", visibility="all", mode="per-viewer", **DASH)
    body, url = open_ready(hub, OWNER, "api-mine-only", VIEWER)
    viewer_server = body["server"].split("/", 1)
    assert viewer_server[0] == VIEWER
    name = viewer_server[1]
    assert name.startswith("api-mine-only-") and len(name) <= 30
    check_enter_url(url, VIEWER, name)
    assert servers(hub, VIEWER)[name]["ready"]
    assert "api-mine-only" not in servers(hub, OWNER, stopped=True)
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, VIEWER, name)
    [record] = usage(hub, OWNER, "api-mine-only")["recent"]
    assert (record["server"], record["started_by"]) == (f"{VIEWER}/{name}", VIEWER)
    # anonymous visitors cannot own an instance; the dashboard is not public anyway
    assert_error(hub.svc("POST", f"dashboards/{OWNER}/api-mine-only/open", None), 404)
    # the author's stop and unpublish reach the viewer's server
    assert hub.svc("DELETE", f"dashboards/{OWNER}/api-mine-only", OWNER).status_code == 204
    wait_until(
        lambda: name not in servers(hub, VIEWER, stopped=True),
        what="the viewer's server to be removed",
    )


def test_public_dashboard_opens_for_anonymous_visitors(hub, publish):
    publish(slug="api-public", title="Public", visibility="public", **DASH)
    body, url = open_ready(hub, OWNER, "api-public", None)
    check_enter_url(url, OWNER, "api-public")
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, OWNER, "api-public")
    figures = usage(hub, OWNER, "api-public")
    assert figures["recent"][0]["started_by"] == ""  # nobody in particular
    assert figures["viewers"] == 1 and figures["opens"] == 1


def test_names_the_hub_escapes_in_urls_still_open(hub, publish):
    """Authors and viewers named like e-mail addresses with '+' (common with OAuth logins)."""
    publish(owner=ODD, slug="api-odd", title="Odd author", visibility="all", **DASH)
    body, url = open_ready(hub, ODD, "api-odd", VIEWER)
    assert body["server"] == f"{ODD}/api-odd"
    check_enter_url(url, ODD, "api-odd")
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, ODD, "api-odd")
    logs = hub.svc("GET", f"dashboards/{ODD}/api-odd/logs", ODD)  # through the proxy too
    assert logs.status_code == 200 and logs.json()["state"] == "ready", logs.text

    publish(slug="api-odd-viewer", title="Per viewer", visibility="all", mode="per-viewer", **DASH)
    body, url = open_ready(hub, OWNER, "api-odd-viewer", ODD)
    owner, name = body["server"].split("/", 1)
    assert owner == ODD and name in servers(hub, ODD)
    check_enter_url(url, ODD, name)
    session, page = visit(hub, url)
    assert_dash_page(hub, session, page, ODD, name)


# -- progress -----------------------------------------------------------------------------


def test_progress_streams_until_a_link_to_the_ready_dashboard(hub, publish):
    publish(
        slug="api-slow", title="Slow", visibility="all", framework="dash", entry="api-tests/slow.py"
    )
    opened: dict[str, requests.Response] = {}
    thread = threading.Thread(
        target=lambda: opened.update(r=hub.svc("POST", f"dashboards/{OWNER}/api-slow/open", VIEWER))
    )
    thread.start()
    try:
        wait_until(lambda: "api-slow" in servers(hub, OWNER), what="the spawn to begin")
        r = hub.svc("GET", f"dashboards/{OWNER}/api-slow/progress", VIEWER, stream=True)
        events = sse(r)
    finally:
        thread.join()
    assert opened["r"].status_code == 200, opened["r"].text
    assert events, "no events"
    *during, last = events
    assert last["ready"] is True and last["progress"] == 100, events
    assert_sentence(last["message"])
    check_enter_url(last["url"], OWNER, "api-slow")
    for event in during:
        assert not event.get("failed") and not event.get("ready"), events
        assert set(event) == {"progress", "message"}, event
    session, page = visit(hub, last["url"])
    assert_dash_page(hub, session, page, OWNER, "api-slow", marker=SLOW_MARKER)

    # once running, the stream is a single event with a fresh link
    again = sse(hub.svc("GET", f"dashboards/{OWNER}/api-slow/progress", VIEWER, stream=True))
    assert len(again) == 1 and again[0]["ready"] is True and again[0]["url"] != last["url"]
    # who may not see it gets the 404 of any other endpoint
    publish(slug="api-slow-private", framework="dash", entry="dash/app.py")
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-slow-private/progress", VIEWER), 404)
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-slow-private/progress", None), 404)


def test_progress_of_a_crashing_app_ends_with_failed(hub, publish):
    publish(
        slug="api-crash", title="Crash", visibility="all", framework="dash", entry="broken/crash.py"
    )
    r = hub.svc("POST", f"dashboards/{OWNER}/api-crash/open", VIEWER)
    if r.status_code == 200:  # the hub answered before the app failed: follow the stream
        assert r.json()["status"] == "pending", r.text
    else:
        assert_error(r, 502)
        assert "sales.csv" not in r.json()["message"]  # the app's log is for the author
    viewer_events = sse(
        hub.svc("GET", f"dashboards/{OWNER}/api-crash/progress", VIEWER, stream=True)
    )
    last = viewer_events[-1]
    assert last["failed"] is True and "url" not in last, viewer_events
    assert_sentence(last["message"])
    assert "sales.csv" not in last["message"]
    author_events = sse(
        hub.svc("GET", f"dashboards/{OWNER}/api-crash/progress", OWNER, stream=True)
    )
    last = author_events[-1]
    assert last["failed"] is True and "url" not in last, author_events
    assert "the data file sales.csv is missing" in last["message"]
    assert not servers(hub, OWNER).get("api-crash", {}).get("ready")


# -- stop, logs -----------------------------------------------------------------------------


def test_stop_is_for_the_author(hub, publish):
    publish(slug="api-stop", title="Stop me", visibility="all", **DASH)
    publish(slug="api-stop-private", **DASH)
    path = f"dashboards/{OWNER}/api-stop"
    open_ready(hub, OWNER, "api-stop", VIEWER)
    assert_error(hub.svc("POST", f"{path}/stop", VIEWER), 403, f"only {OWNER} can change")
    assert_error(hub.svc("POST", f"dashboards/{OWNER}/api-stop-private/stop", VIEWER), 404)
    assert servers(hub, OWNER)["api-stop"]["ready"]

    r = hub.svc("POST", f"{path}/stop", OWNER)
    assert r.status_code == 200 and r.json() == {"stopped": 1}, r.text
    wait_until(lambda: "api-stop" not in servers(hub, OWNER), what="the server to stop")
    # stopped, not removed: its shares survive
    assert "api-stop" in servers(hub, OWNER, stopped=True)
    [record] = usage(hub, OWNER, "api-stop")["recent"]
    assert (record["stop_reason"], record["stopped_by"], record["started_by"]) == (
        "stopped by author",
        OWNER,
        VIEWER,
    )
    assert record["stopped"] is not None
    assert hub.svc("GET", path, OWNER).json()["status"] == "stopped"
    assert hub.svc("POST", f"{path}/stop", OWNER).json() == {"stopped": 0}
    # the next open starts it again, as a new deployment
    open_ready(hub, OWNER, "api-stop", VIEWER)
    assert len(usage(hub, OWNER, "api-stop")["recent"]) == 2


def test_logs_show_the_apps_output_to_the_author_only(hub, publish):
    publish(
        slug="api-logs",
        title="Logs",
        visibility="users",
        share_users=[SHAREE],
        framework="dash",
        entry="api-tests/slow.py",
    )
    path = f"dashboards/{OWNER}/api-logs/logs"
    r = hub.svc("GET", path, OWNER)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "stopped",
        "log": [],
        "message": "Not running.",
        "environment": None,
    }

    open_ready(hub, OWNER, "api-logs", SHAREE)
    r = hub.svc("GET", path, OWNER)
    assert r.status_code == 200, r.text
    logs = r.json()
    assert (logs["status"], logs["state"]) == ("ready", "ready"), logs
    assert isinstance(logs["log"], list) and all(isinstance(line, str) for line in logs["log"])
    assert LOG_MARKER in logs["log"], logs["log"]

    assert_error(hub.svc("GET", path, SHAREE), 403, f"only {OWNER} can change")
    assert_error(hub.svc("GET", path, VIEWER), 404, "no dashboard")


# -- usage ------------------------------------------------------------------------------------


def test_usage_figures_for_the_author(hub, publish):
    publish(slug="api-usage", title="Usage", visibility="users", share_users=[SHAREE], **DASH)
    for user in (SHAREE, SHAREE, OWNER):
        open_ready(hub, OWNER, "api-usage", user)
    today_before = dt.datetime.now(dt.timezone.utc).date()
    figures = usage(hub, OWNER, "api-usage")
    today_after = dt.datetime.now(dt.timezone.utc).date()
    assert (figures["owner"], figures["slug"], figures["title"], figures["days"]) == (
        OWNER,
        "api-usage",
        "Usage",
        30,
    )
    assert figures["deployments"] == 1 and figures["running_now"] == 1
    assert figures["opens"] == 3 and figures["viewers"] == 2
    assert isinstance(figures["instance_hours"], float) and figures["instance_hours"] >= 0
    assert 0 <= figures["running_share"] <= 1
    assert figures["mean_deployment_minutes"] >= 0
    daily = figures["daily"]
    days = [dt.date.fromisoformat(row["day"]) for row in daily]
    assert days[-1] in (today_before, today_after)
    # one row per calendar day the 30-day window touches: 31 unless it starts at midnight
    assert days[0] == days[-1] - dt.timedelta(days=len(days) - 1)
    assert len(daily) in (30, 31)
    assert days == sorted(days) and len(set(days)) == len(days)
    assert all(set(row) == {"day", "viewers", "instance_hours"} for row in daily)
    if today_before == today_after:  # (not across midnight)
        assert daily[-1]["viewers"] == 2
        assert sum(row["viewers"] for row in daily[:-1]) == 0
    [record] = figures["recent"]
    assert (record["server"], record["started_by"], record["stopped"]) == (
        f"{OWNER}/api-usage",
        SHAREE,
        None,
    )

    week = usage(hub, OWNER, "api-usage", days="7")
    assert week["days"] == 7 and len(week["daily"]) in (7, 8)

    # everything the caller manages, without daily rows
    r = hub.svc("GET", "usage", OWNER)
    assert r.status_code == 200, r.text
    assert r.json()["days"] == 30
    item = next(i for i in r.json()["items"] if i["slug"] == "api-usage")
    assert item["deployments"] == 1 and item["opens"] == 3 and "daily" not in item
    assert all(i["owner"] == OWNER for i in r.json()["items"])
    r = hub.svc("GET", "usage?days=1", SHAREE)
    assert r.status_code == 200 and r.json()["days"] == 1, r.text
    assert not any(i["slug"] == "api-usage" for i in r.json()["items"])

    # figures are the author's
    assert_error(
        hub.svc("GET", f"dashboards/{OWNER}/api-usage/usage", SHAREE),
        403,
        f"only {OWNER} can change",
    )
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-usage/usage", VIEWER), 404)
    for days_value in ("0", "abc", "367", "-1", "1.5", ""):
        for path in (f"dashboards/{OWNER}/api-usage/usage", "usage"):
            r = hub.svc("GET", f"{path}?days={days_value}", OWNER)
            assert_error(r, 400, "'days' must be a whole number from 1 to 366")


# -- thumbnail ----------------------------------------------------------------------------------


def test_thumbnail_for_who_may_see_the_dashboard(hub, gallery):
    for user, visibility in (
        (OWNER, "private"),
        (SHAREE, "users"),
        (MEMBER, "groups"),
        (VIEWER, "all"),
        (None, "public"),
    ):
        r = hub.svc("GET", f"dashboards/{OWNER}/api-gal-{visibility}/thumbnail", user)
        assert r.status_code == 200, (user, r.text)
        kind = r.headers["Content-Type"]
        if kind == "image/png":
            assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert kind == "image/svg+xml", kind
            assert r.text.startswith("<svg") and "Dash" in r.text and r.text.endswith("</svg>")
        assert r.headers["Cache-Control"] == "private, max-age=60"
    for user, visibility in (
        (VIEWER, "private"),
        (VIEWER, "users"),
        (SHAREE, "groups"),
        (None, "all"),
    ):
        r = hub.svc("GET", f"dashboards/{OWNER}/api-gal-{visibility}/thumbnail", user)
        assert_error(r, 404, "no dashboard")
    assert_error(hub.svc("GET", f"dashboards/{OWNER}/api-nothing/thumbnail", OWNER), 404)


def test_rendered_is_heard_from_who_may_see_the_dashboard(hub, gallery):
    """The open page's cue for a card screenshot: answered for whoever may see the
    dashboard (it only asks for a capture of a shared dashboard), 404 for others."""
    for user, visibility in ((OWNER, "private"), (SHAREE, "users"), (VIEWER, "all")):
        r = hub.svc("POST", f"dashboards/{OWNER}/api-gal-{visibility}/rendered", user)
        assert r.status_code == 204, (user, r.text)
    for user, visibility in ((VIEWER, "private"), (SHAREE, "groups"), (None, "all")):
        r = hub.svc("POST", f"dashboards/{OWNER}/api-gal-{visibility}/rendered", user)
        assert_error(r, 404, "no dashboard")
    r = hub.svc(
        "POST",
        f"dashboards/{OWNER}/api-gal-all/rendered",
        VIEWER,
        headers={"User-Agent": "curl/8.5.0"},
    )
    assert_error(r, 403, "automated clients")


# -- the description and the service's role -----------------------------------------------------


def openapi_path(route: str) -> str:
    """``<prefix>api/dashboards/([^/]+)/([^/]+)/open`` -> ``/api/dashboards/{owner}/{slug}/open``."""
    path = "/" + route[len(SERVICE) :]
    path = path.replace("([^/]+)/([^/]+)", "{owner}/{slug}").replace("([0-9]{1,12})", "{id}")
    return path.replace("versions/([^/]+)", "versions/{number}").replace("git/([^/]+)", "git/{id}")


def test_openapi_describes_every_route(hub):
    r = requests.get(f"{hub.service_url}api/openapi.yaml", timeout=60)  # no token at all
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/yaml"
    spec = yaml.safe_load(r.text)
    assert spec["openapi"].startswith("3.")
    api = [
        r
        for r in api_routes(SERVICE)
        + embed_routes(SERVICE)
        + lti_routes(SERVICE)
        + access_routes(SERVICE)
        + versions_routes(SERVICE, NAME)
        if "/api/" in r[0] or "/hooks/" in r[0]
    ]
    routes = {openapi_path(route): handler for route, handler in api}
    assert set(routes) == set(spec["paths"])
    for path, handler in routes.items():
        methods = {m for m in ("get", "post", "put", "patch", "delete") if m in vars(handler)}
        described = set(spec["paths"][path]) - {"parameters"}
        assert methods == described, path
        for operation in spec["paths"][path].values():
            if isinstance(operation, dict) and "responses" in operation:
                assert operation.get("summary"), path
    assert spec["components"]["schemas"]["Error"]["required"] == ["status", "message"]


def test_service_role_has_exactly_the_service_scopes(hub):
    """The hub's real configuration gives the service one role with SERVICE_SCOPES only."""
    config_file = hub.log.parent / "jupyterhub_config.py"
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    roles = config.JupyterHub.load_roles
    service_roles = [role for role in roles if "hub-viz" in role.get("services", [])]
    assert [role["name"] for role in service_roles] == ["hub-viz-service"]
    assert service_roles[0]["scopes"] == list(SERVICE_SCOPES)
    assert not any(role.get("name") == "hub-viz" for role in roles)
    [service] = [s for s in config.JupyterHub.services if s["name"] == "hub-viz"]
    assert "admin" not in service or service["admin"] is False
    r = hub.api("GET", "/services/hub-viz")
    if r.status_code == 200 and "roles" in r.json():
        assert r.json()["roles"] == ["hub-viz-service"]
    else:  # the tester may not read services; the restart test's hub checks it live
        assert r.status_code == 403, r.text

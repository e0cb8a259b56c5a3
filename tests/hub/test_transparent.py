"""Through the hub an app sees what it would see bare, and answers the same.

Real apps (``tests/data/transparent``, one example) are published and opened through
the service, then each is started bare (the same command, prefix and files,
on a port of its own) and asked the same paths:

- a Streamlit multipage app with pages named ``Files`` and ``Terminals``;
- a Dash app with a ``files/report.csv`` download, an ``api/events`` route
  and a route that tells the URL it saw for itself;
- a Voilà notebook that prints links to itself built from the request (as
  Voilà's query-strings example does);
- the Bokeh example, for its page and its static files.

Each path answers the same status through the hub as bare, reloaded (a
framed load with the launcher's cookie) and deep-linked (a new tab on the
path goes through the open page and lands on it). Links the apps build point
at the URL the viewer asked for, never at the app's internal address, and
forwarding headers a viewer forges do not reach the app. Static files keep
their ``ETag``/``Last-Modified`` and revalidate with 304.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.frameworks import build_command

from ..conftest import BROWSER_UA, Hub, free_port, wait_until

pytestmark = pytest.mark.hub

AUTHOR = "tp-author"
DATA = Path(__file__).resolve().parents[1] / "data" / "transparent"
FOLDER = "transparent"  # under the hub's dashboards root
APPS = {
    "streamlit": {"framework": "streamlit", "entry": f"{FOLDER}/streamlit/app.py"},
    "dash": {"framework": "dash", "entry": f"{FOLDER}/dash/app.py"},
    "voila": {"framework": "voila", "entry": f"{FOLDER}/voila/links.ipynb"},
    "bokeh": {"framework": "bokeh", "entry": "bokeh/app.py"},  # the example
}
# app -> paths below the prefix asked through the hub and bare
PATHS = {
    "streamlit": ["", "Files", "Terminals", "_stcore/health"],
    "dash": ["", "files/report.csv", "files/missing.csv", "api/events", "links"],
    "voila": ["", "?region=north"],
    "bokeh": ["app", "static/js/bokeh.min.js"],
}
FRAME = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-site"}
TAB = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"}
FORGED = {
    "X-Forwarded-Host": "evil.example.org",
    "X-Forwarded-Proto": "https",
    "Forwarded": "host=evil.example.org;proto=https",
    "X-Forwarded-Prefix": "/evil/",
    "X-Real-IP": "10.9.9.9",
}
INTERNAL = re.compile(r"https?://(127\.0\.0\.1|localhost):\d+")


def slug(app: str) -> str:
    return f"tp-{app}"


@pytest.fixture(scope="module")
def opened(hub: Hub) -> Iterator[dict[str, dict]]:
    """Each app published (private: its author views it) and opened by its author."""
    shutil.copytree(DATA, hub.root / FOLDER, dirs_exist_ok=True)
    hub.ensure_user(AUTHOR)
    seen: dict[str, dict] = {}
    for app, spec in APPS.items():
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={
                "slug": slug(app),
                "title": f"Transparent {app}",
                "visibility": "private",
                **spec,
            },
        )
        assert r.status_code == 201, r.text
    for app in APPS:
        body = hub.open_ready(AUTHOR, slug(app), AUTHOR)
        owner, name = body["server"].split("/", 1)
        session = requests.Session()
        session.headers["User-Agent"] = BROWSER_UA
        first = session.get(hub.public(body["url"]), headers=FRAME, timeout=120)
        assert first.status_code == 200, (app, first.status_code, first.text[:300])
        seen[app] = {
            "session": session,
            "open": body,
            "name": name,
            "base": hub.server_url(owner, name),
            "prefix": f"/user/{owner}/{name}/",
        }
    yield seen
    for app in APPS:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug(app)}", AUTHOR)


@pytest.fixture(scope="module")
def bare(
    hub: Hub, opened: dict[str, dict], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Each app started bare: the command the launcher runs, same prefix, its own port."""
    logs = tmp_path_factory.mktemp("bare-apps")
    procs, bases = [], {}
    try:
        for app, spec in APPS.items():
            port, prefix = free_port(), opened[app]["prefix"]
            command = build_command(
                BUILTIN_FRAMEWORKS[spec["framework"]],
                entry=spec["entry"],
                port=port,
                prefix=prefix,
                python=sys.executable,
            )
            with open(logs / f"{app}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        command.argv,
                        cwd=hub.root,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **command.env},
                    )
                )
            base = f"http://127.0.0.1:{port}{prefix}"

            def ready(url: str = base + command.ready_path) -> bool:
                try:
                    return requests.get(url, timeout=5).status_code < 500
                except requests.ConnectionError:
                    return False

            wait_until(ready, timeout=120, what=f"the bare {app} app to answer")
            bases[app] = base
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def through_hub(inst: dict, path: str, **kwargs) -> requests.Response:
    return inst["session"].get(
        inst["base"] + path, timeout=120, allow_redirects=False, **{"headers": FRAME, **kwargs}
    )


def assert_not_refused(r: requests.Response, what: str) -> None:
    """Not a refusal of the launcher's (which answers JSON with source 'hub-viz')."""
    if r.headers.get("Content-Type", "").startswith("application/json"):
        assert r.json().get("source") != "hub-viz", (what, r.status_code, r.text[:300])


# -- the same answers as bare -------------------------------------------------------------


@pytest.mark.parametrize("app", list(APPS))
def test_every_path_answers_as_bare_when_reloaded(opened, bare, app: str) -> None:
    inst = opened[app]
    for path in PATHS[app]:
        alone = requests.get(
            bare[app] + path, headers={"User-Agent": BROWSER_UA}, timeout=120, allow_redirects=False
        )
        for _ in range(2):  # the page, then a reload of it
            r = through_hub(inst, path)
            assert r.status_code == alone.status_code, (app, path, r.status_code, r.text[:300])
            assert_not_refused(r, f"{app} {path}")
            assert not INTERNAL.search(r.text), (app, path)
        if app == "dash" and path.startswith("files/") and alone.status_code == 200:
            assert r.content == alone.content
            assert r.headers["Content-Disposition"] == alone.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("app", "path"),
    [
        ("streamlit", "Files"),
        ("streamlit", "Terminals"),
        ("dash", "files/report.csv"),
        ("voila", "?region=north"),
    ],
)
def test_a_deep_link_opens_through_the_open_page_and_lands_on_its_path(
    hub: Hub, opened, bare, app: str, path: str
) -> None:
    inst = opened[app]
    # a new tab on the path: sent to the open page's full window, with the path
    tab = inst["session"].get(inst["base"] + path, headers=TAB, timeout=60, allow_redirects=False)
    assert tab.status_code == 302, (tab.status_code, tab.text[:300])
    where = urlsplit(tab.headers["Location"])
    assert parse_qs(where.query)["path"] == [path]
    # the open page frames the grant's entry with that path, which lands on it
    body = hub.open_ready(AUTHOR, slug(app), AUTHOR)
    fresh = requests.Session()
    fresh.headers["User-Agent"] = BROWSER_UA
    r = fresh.get(
        hub.public(body["url"]) + "&next=" + requests.utils.quote(path, safe=""),
        headers=FRAME,
        timeout=120,
    )
    alone = requests.get(bare[app] + path, headers={"User-Agent": BROWSER_UA}, timeout=120)
    assert r.url == inst["base"] + path
    assert r.status_code == alone.status_code == 200, (r.status_code, r.text[:300])


# -- the app sees the public host ------------------------------------------------------------


def test_dash_builds_its_urls_from_the_public_host(opened, bare) -> None:
    inst = opened["dash"]
    seen = through_hub(inst, "links").json()
    assert seen["url"] == inst["base"] + "links"
    assert seen["host_url"] == inst["base"].split("/user/", 1)[0] + "/"
    alone = requests.get(bare["dash"] + "links", timeout=30).json()
    assert alone["url"] == bare["dash"] + "links"  # bare, its own address: the same rule


def test_forged_forwarding_headers_never_reach_the_app(opened) -> None:
    inst = opened["dash"]
    r = through_hub(inst, "links", headers={**FRAME, **FORGED})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    seen = r.json()
    assert seen["url"] == inst["base"] + "links", seen
    assert seen["scheme"] == urlsplit(inst["base"]).scheme
    assert "evil" not in repr(seen) and "10.9.9.9" not in repr(seen)
    forwarded = seen["forwarded"]
    assert forwarded["X-Forwarded-Host"] == urlsplit(inst["base"]).netloc
    assert forwarded["X-Forwarded-Proto"] == urlsplit(inst["base"]).scheme
    assert forwarded["X-Forwarded-For"] == "127.0.0.1"  # the viewer, as the hub's proxy saw
    for name in ("X-Forwarded-Prefix", "Forwarded", "X-Real-IP"):
        assert forwarded[name] is None, name


def voila_links(page: str) -> dict[str, str]:
    """The links in the notebook's HTML outputs (Voilà's lab template sends them as JSON)."""
    links: dict[str, str] = {}
    for output in re.findall(
        r'<script type="application/vnd.voila.cell-output\+json">(.*?)</script>', page, re.S
    ):
        html = json.loads(output).get("data", {}).get("text/html", "")
        links.update(re.findall(r'<a id="([\w-]+)" href="([^"]+)"', html))
    return links


def test_voila_links_to_the_page_the_viewer_asked_for(opened, bare) -> None:
    inst = opened["voila"]
    r = through_hub(inst, "?region=north")
    assert "Sales for region north" in r.text
    links = voila_links(r.text)
    assert links["self-link"] == inst["base"] + "?region=north", links
    assert links["north-link"] == inst["base"] + "?region=north"
    # bare, the same notebook links to the bare server's own address
    alone = requests.get(bare["voila"] + "?region=south", timeout=120)
    assert voila_links(alone.text)["self-link"] == bare["voila"] + "?region=south"


# -- caching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "path"),
    [
        ("dash", "assets/style.css"),
        ("voila", "voila/static/voila.js"),
        ("bokeh", "static/js/bokeh.min.js"),
    ],
)
def test_static_files_revalidate_with_their_etag(opened, bare, app: str, path: str) -> None:
    inst = opened[app]
    alone = requests.get(bare[app] + path, timeout=60)
    r = through_hub(inst, path, headers={})
    assert r.status_code == alone.status_code == 200
    # the instance serves its version's copy of the files (same content and times, another
    # path): a validator made from the path (Dash's ETag) differs from the bare app's, so
    # the ETag is compared with what the same instance answers below
    if "Last-Modified" in alone.headers:
        assert r.headers.get("Last-Modified") == alone.headers["Last-Modified"]
    if app != "dash" and "ETag" in alone.headers:
        assert r.headers.get("ETag") == alone.headers["ETag"]
    assert "ETag" in r.headers
    if "Cache-Control" in alone.headers:
        assert r.headers["Cache-Control"] == alone.headers["Cache-Control"]
    else:  # the app said nothing: kept out of shared caches, cached by the browser
        assert r.headers["Cache-Control"] == "private"
    again = through_hub(inst, path, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304, (again.status_code, again.text[:200])
    assert again.content == b""
    assert again.headers.get("ETag") == r.headers["ETag"]
    changed = through_hub(inst, path, headers={"If-None-Match": '"not-this-one"'})
    assert changed.status_code == 200 and changed.content == r.content


# -- the open page's first ping ---------------------------------------------------------------


def test_a_reload_of_the_open_page_pings_without_an_error(hub: Hub, opened) -> None:
    """The page pings on load; a reload seconds later pings again and is not refused."""
    ping = f"dashboards/{AUTHOR}/{slug('dash')}/ping"
    first = hub.svc("POST", ping, AUTHOR)
    assert first.status_code == 204, first.text
    reload = hub.svc("POST", ping, AUTHOR)
    assert reload.status_code == 204, reload.text
    gone = hub.svc("POST", f"dashboards/{AUTHOR}/tp-no-such-board/ping", AUTHOR)
    assert gone.status_code == 404 and gone.json()["message"]

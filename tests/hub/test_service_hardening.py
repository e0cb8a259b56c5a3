"""The service under attack through a real hub: nested JSON, framing, file modes.

Deeply nested JSON answers 400 with a sentence (never a 500 and a traceback);
every static file and every error page forbids framing; the hub's database,
the service's store and the secrets on disk are readable by their owner only.
(Secrets kept out of the access log: tests/browser/test_no_secrets_in_logs.py.)
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import requests

from hub_viz.service.base import MAX_DEPTH

from ..conftest import BROWSER_UA, Hub
from ..service.test_api import assert_error

pytestmark = pytest.mark.hub

AUTHOR, VIEWER = "harden-author", "harden-viewer"
SLUG = "harden-dash"
STATIC = Path(__file__).resolve().parents[2] / "hub_viz" / "service" / "static"
NONE = "frame-ancestors 'none'"


@pytest.fixture(scope="module")
def published(hub: Hub) -> str:
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Hardening",
            "slug": SLUG,
            "framework": "dash",
            "entry": "dash/app.py",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    yield f"{AUTHOR}/{SLUG}"
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def valid_with(inner: str) -> str:
    """A publish body that would be accepted but for one deeply nested field."""
    return (
        '{"title": "Too deep", "entry": "dash/app.py", "framework": "dash", '
        f'"resources": {inner}}}'
    )


BODIES = {
    "array-100000": nested(100_000, "array"),
    "object-40000": nested(40_000, "object"),
    "array-2000": nested(2_000, "array"),
    "field-5000": valid_with(nested(5_000, "object")),
    # parses in Python, but deeper than any body the API takes
    "field-beyond-limit": valid_with(nested(MAX_DEPTH + 5, "object")),
}


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("call", ["publish", "update", "embed link"])
def test_deeply_nested_json_is_a_400_with_a_sentence(
    hub: Hub, published: str, call: str, body: str
) -> None:
    method, path = {
        "publish": ("POST", "dashboards"),
        "update": ("PATCH", f"dashboards/{published}"),
        "embed link": ("POST", f"dashboards/{published}/embeds"),
    }[call]
    before = hub.log.stat().st_size
    r = hub.svc(
        method, path, AUTHOR, data=BODIES[body], headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "nested too deeply", f"at most {MAX_DEPTH} levels")
    with hub.log.open("rb") as log:
        log.seek(before)
        added = log.read().decode(errors="replace")
    assert "Traceback" not in added and "RecursionError" not in added, added[-3000:]


def test_json_nested_within_the_limit_is_still_read(hub: Hub, published: str) -> None:
    # MAX_DEPTH levels in all (the body itself is the first): past the JSON reader,
    # refused by the field's own check with its own sentence
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        data=valid_with(nested(MAX_DEPTH - 1, "object")),
        headers={"Content-Type": "application/json"},
    )
    message = assert_error(r, 400)
    assert "nested too deeply" not in message


def csp(r: requests.Response) -> str:
    return r.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("name", sorted(p.name for p in STATIC.iterdir()))
def test_every_static_file_forbids_framing(hub: Hub, name: str) -> None:
    r = requests.get(f"{hub.service_url}static/{name}", timeout=30)
    assert r.status_code == 200, (name, r.status_code)
    assert csp(r) == NONE, (name, r.headers)
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_robots_txt_forbids_framing(hub: Hub) -> None:
    for url in (f"{hub.url}/robots.txt", f"{hub.service_url}robots.txt"):
        r = requests.get(url, timeout=30)
        assert r.status_code == 200 and "Disallow: /" in r.text, url
        assert csp(r) == NONE, (url, r.headers)


def test_error_pages_forbid_framing(hub: Hub, published: str) -> None:
    viewer = hub.login(VIEWER)
    cases = [
        ("404 page", 404, viewer.get(f"{hub.service_url}no-such-page", timeout=30)),
        ("404 static", 404, requests.get(f"{hub.service_url}static/missing.js", timeout=30)),
        (
            "403 static outside its folder",
            403,
            requests.get(f"{hub.service_url}static/..%2fapp.py", timeout=30),
        ),
        ("405 static", 405, requests.options(f"{hub.service_url}static/open.js", timeout=30)),
        (
            "403 static without XSRF",
            403,
            requests.post(f"{hub.service_url}static/open.js", timeout=30),
        ),
        ("403 page", 403, viewer.get(f"{hub.service_url}d/{published}", timeout=30)),
        (
            "405 page",
            405,
            requests.post(
                f"{hub.service_url}open/{published}", timeout=30, headers={"User-Agent": BROWSER_UA}
            ),
        ),
        ("404 api", 404, hub.svc("GET", "no-such-thing", VIEWER)),
        ("400 oauth callback", 400, requests.get(f"{hub.service_url}oauth_callback", timeout=30)),
    ]
    for what, status, r in cases:
        assert r.status_code == status, (what, r.status_code, r.text[:300])
        assert csp(r) == NONE, (what, r.headers)
        assert "Traceback" not in r.text, what
    # the service's own 404 page, not Tornado's bare one
    page = cases[0][2]
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Nothing is here; check the address, or find the dashboard in the gallery." in page.text


def test_the_embed_page_is_still_framed_by_its_sites(hub: Hub, published: str) -> None:
    origin = "https://course.example.edu"
    link = hub.svc("POST", f"dashboards/{published}/embeds", AUTHOR, json={"origins": [origin]})
    assert link.status_code == 201, link.text
    r = requests.get(link.json()["url"], timeout=30)
    assert csp(r) == f"frame-ancestors 'self' {origin}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_databases_and_secrets_on_disk_are_private(hub: Hub, published: str) -> None:
    state = hub.log.parent  # the hub's working directory and configure()'s state_dir
    # written to just now, so the hub's database and the store are open and in use
    assert hub.svc("POST", f"dashboards/{published}/open", VIEWER).status_code == 200
    found = {
        p.name: mode(p)
        for p in state.iterdir()
        if p.name.startswith(("jupyterhub.sqlite", "hub_viz.sqlite"))
    }
    assert {
        "jupyterhub.sqlite",
        "hub_viz.sqlite",
        "hub_viz.sqlite-wal",
        "hub_viz.sqlite-shm",
    } <= set(found), found
    secrets = {
        name: mode(state / name)
        for name in ("hub_viz_signing_key.pem", "hub_viz_embed_secret", "cookie_secret")
    }
    assert set(found.values()) | set(secrets.values()) == {0o600}, {
        k: oct(v) for k, v in {**found, **secrets}.items()
    }
    # the hub's umask lets files be read by everyone: the modes above are deliberate
    assert mode(state / "hub_viz_signing_key.pub") == 0o644

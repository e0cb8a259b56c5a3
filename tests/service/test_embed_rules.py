"""Who an embed link lets in: anonymous links only on public dashboards (at creation and
at every open), other links only a hub login allowed to see the dashboard, and none once
revoked or expired.

Driven through a real hub and the real service. A link is anonymous when
its viewers need no hub login, so the dashboard behind it must be public
when the link is made and still be public whenever the link is used.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urljoin

import jwt
import pytest
import requests

from ..conftest import BROWSER_UA, SERVICE, wait_until
from .test_api import assert_error

pytestmark = pytest.mark.hub

AUTHOR = "embed-author"  # a publisher on the test hub
FRIEND, GROUP = "embed-friend", "embed-rules-team"
OUTSIDER = "embed-outsider"  # a hub user outside the group
ORIGIN = "https://lms.example.edu"
DASH = {"framework": "dash", "entry": "dash/app.py"}
NOT_PUBLIC = {
    "private": {},
    "users": {"share_users": [FRIEND]},
    "groups": {"share_groups": [GROUP]},
    "all": {},
}
NO_LONGER_PUBLIC = "This dashboard is no longer public."


@pytest.fixture(scope="module")
def people(hub):
    for name in (AUTHOR, FRIEND, OUTSIDER):
        hub.ensure_user(name)
    assert hub.api("POST", f"/groups/{GROUP}").status_code in (201, 409)
    assert hub.api("POST", f"/groups/{GROUP}/users", json={"users": [FRIEND]}).ok


@pytest.fixture
def dashboard(hub, people, request):
    slug = "er-" + request.node.name.removeprefix("test_")[:20].rstrip("_").replace("_", "-")
    r = hub.svc("POST", "dashboards", AUTHOR, json={"slug": slug, "title": slug, **DASH})
    assert r.status_code == 201, r.text
    yield slug
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)


def set_visibility(hub, slug: str, visibility: str, **targets: Any) -> None:
    r = hub.svc(
        "PATCH", f"dashboards/{AUTHOR}/{slug}", AUTHOR, json={"visibility": visibility, **targets}
    )
    assert r.status_code == 200 and r.json()["visibility"] == visibility, r.text


def new_link(hub, slug: str, anonymous: bool, origin: str = ORIGIN) -> requests.Response:
    return hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{slug}/embeds",
        AUTHOR,
        json={"origins": [origin], "anonymous": anonymous},
    )


def anonymously(method: str, url: str) -> requests.Response:
    """A visitor of the course site: no hub login, a browser's user agent."""
    return requests.request(
        method, url, headers={"User-Agent": BROWSER_UA}, timeout=60, allow_redirects=False
    )


def as_user(hub, user: str, method: str, url: str) -> requests.Response:
    """A hub user (token login) with a browser's user agent."""
    headers = {"User-Agent": BROWSER_UA, "Authorization": f"token {hub.user_token(user)}"}
    return requests.request(method, url, headers=headers, timeout=60, allow_redirects=False)


def framing_origins(hub, slug: str) -> list[str]:
    r = requests.get(f"{hub.service_url}api/embed-origins/{AUTHOR}/{slug}", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["origins"]


def test_no_anonymous_link_for_a_dashboard_that_is_not_public(hub, dashboard):
    for visibility, targets in NOT_PUBLIC.items():
        set_visibility(hub, dashboard, visibility, **targets)
        assert_error(
            new_link(hub, dashboard, anonymous=True),
            400,
            "Only a public dashboard can be embedded for anonymous viewers",
        )
        # a link for logged-in viewers (who may see the dashboard anyway) is fine
        assert new_link(hub, dashboard, anonymous=False).status_code == 201
    links = hub.svc("GET", f"dashboards/{AUTHOR}/{dashboard}/embeds", AUTHOR).json()["items"]
    assert [link["anonymous"] for link in links] == [False] * len(NOT_PUBLIC)
    set_visibility(hub, dashboard, "public")
    assert new_link(hub, dashboard, anonymous=True).status_code == 201


def test_a_link_made_while_public_is_refused_once_it_is_not(hub, dashboard):
    set_visibility(hub, dashboard, "public")
    r = new_link(hub, dashboard, anonymous=True)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    token = url.rsplit("/", 1)[1]

    def opens(page: requests.Response) -> bool:
        """The embed page that opens the dashboard for an anonymous visitor."""
        return page.status_code == 200 and f'data-api="{SERVICE}embed/{token}"' in page.text

    assert opens(anonymously("GET", url))
    # the embed page's cue once the dashboard's frame has loaded (a card's screenshot)
    assert anonymously("POST", f"{url}/rendered").status_code == 204
    for visibility, targets in NOT_PUBLIC.items():
        set_visibility(hub, dashboard, visibility, **targets)
        page = anonymously("GET", url)
        assert page.status_code == 403, (visibility, page.status_code)
        assert NO_LONGER_PUBLIC in page.text
        assert_error(anonymously("POST", f"{url}/open"), 403, NO_LONGER_PUBLIC)
        assert_error(anonymously("GET", f"{url}/progress"), 403, NO_LONGER_PUBLIC)
        assert_error(anonymously("POST", f"{url}/ping"), 403, NO_LONGER_PUBLIC)
        assert_error(anonymously("POST", f"{url}/rendered"), 403, NO_LONGER_PUBLIC)
    # nothing was started for the refused opens
    servers = hub.api("GET", f"/users/{AUTHOR}").json().get("servers", {})
    assert dashboard not in servers
    # the link itself was never revoked: public again, it works again
    set_visibility(hub, dashboard, "public")
    assert opens(anonymously("GET", url))


def test_a_revoked_or_expired_link_is_refused_and_its_site_may_no_longer_frame(hub, dashboard):
    set_visibility(hub, dashboard, "public")
    kept, gone = "https://kept.example.edu", "https://gone.example.edu"
    links = [new_link(hub, dashboard, anonymous=True, origin=o) for o in (kept, gone)]
    assert [r.status_code for r in links] == [201, 201], [r.text for r in links]
    keep, revoke = (r.json() for r in links)
    assert framing_origins(hub, dashboard) == [gone, kept]
    assert anonymously("GET", revoke["url"]).status_code == 200
    r = hub.svc("DELETE", f"dashboards/{AUTHOR}/{dashboard}/embeds/{revoke['id']}", AUTHOR)
    assert r.status_code == 204, r.text
    revoked = "This embed link was revoked by its author."
    page = anonymously("GET", revoke["url"])
    assert page.status_code == 403 and revoked in page.text, (page.status_code, page.text[:300])
    for method, path in (("POST", "open"), ("GET", "progress"), ("POST", "ping")):
        assert_error(anonymously(method, f"{revoke['url']}/{path}"), 403, revoked)
    assert framing_origins(hub, dashboard) == [kept]
    # the kept link signed anew with the service's secret, with an expiry in the past
    secret = (hub.log.parent / "hub_viz_embed_secret").read_text().strip().encode()
    claims = {"iss": "hub-viz-embed", "gid": keep["id"], "exp": int(time.time()) - 60}
    expired = f"{hub.service_url}embed/{jwt.encode(claims, secret, algorithm='HS256')}"
    page = anonymously("GET", expired)
    assert page.status_code == 403 and "has expired" in page.text, page.status_code
    assert_error(anonymously("POST", f"{expired}/open"), 403, "has expired")
    assert anonymously("GET", keep["url"]).status_code == 200


def test_a_link_for_logged_in_viewers_needs_one_allowed_to_see_the_dashboard(hub, dashboard):
    set_visibility(hub, dashboard, "groups", share_groups=[GROUP])
    r = new_link(hub, dashboard, anonymous=False)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    token = url.rsplit("/", 1)[1]
    login = f'data-login="{SERVICE}embed/{token}/login"'
    # without a login the frame asks for one, and nothing answers
    page = anonymously("GET", url)
    assert page.status_code == 401 and login in page.text, page.status_code
    for method, path in (("POST", "open"), ("GET", "progress"), ("POST", "rendered")):
        assert_error(anonymously(method, f"{url}/{path}"), 401, "Log in to the hub")
    # a hub user outside the group is refused
    refused = "You may not see this dashboard."
    page = as_user(hub, OUTSIDER, "GET", url)
    assert page.status_code == 403 and refused in page.text, page.status_code
    for method, path in (("POST", "open"), ("GET", "progress"), ("POST", "rendered")):
        assert_error(as_user(hub, OUTSIDER, method, f"{url}/{path}"), 403, refused)
    # nor handed a viewer ticket by the login window
    page = as_user(hub, OUTSIDER, "GET", f"{url}/login")
    assert page.status_code == 403 and refused in page.text, page.status_code
    assert "data-ticket" not in page.text
    # a member of the group is let in, and the login window hands the frame a ticket
    page = as_user(hub, FRIEND, "GET", url)
    assert page.status_code == 200 and 'data-login=""' in page.text, page.status_code
    assert as_user(hub, FRIEND, "POST", f"{url}/rendered").status_code == 204
    page = as_user(hub, FRIEND, "GET", f"{url}/login")
    assert page.status_code == 200, page.status_code
    ticket = re.search(r'data-ticket="([^"]+)"', page.text)
    assert ticket, page.text[:500]
    with_ticket = {"User-Agent": BROWSER_UA, "X-Hub-Viz-Viewer": ticket.group(1)}
    r = requests.post(f"{url}/rendered", headers=with_ticket, timeout=60)
    assert r.status_code == 204, r.text
    # the frame keeps its ticket as a cookie partitioned to the course site, on the link's path
    r = requests.post(f"{url}/session", headers=with_ticket, timeout=60)
    assert r.status_code == 204, r.text
    kept = r.headers["Set-Cookie"]
    assert kept.startswith(f"hub-viz-embed-viewer={ticket.group(1)}; Path={SERVICE}embed/{token};")
    assert {"HttpOnly", "Secure", "SameSite=None", "Partitioned"} <= set(kept.split("; "))
    # only a ticket in the header is kept: none, a forged one, one for another link, or the
    # cookie alone (which any page of the course site makes the browser send) renew nothing
    secret = (hub.log.parent / "hub_viz_embed_secret").read_text().strip().encode()
    claims = jwt.decode(ticket.group(1), secret, algorithms=["HS256"])
    other_link = jwt.encode({**claims, "gid": claims["gid"] + 1000}, secret, algorithm="HS256")
    forged = jwt.encode(claims, b"f" * 64, algorithm="HS256")
    cookie_only = {"User-Agent": BROWSER_UA, "Cookie": f"hub-viz-embed-viewer={ticket.group(1)}"}
    for headers in (
        {"User-Agent": BROWSER_UA},
        {"User-Agent": BROWSER_UA, "X-Hub-Viz-Viewer": forged},
        {"User-Agent": BROWSER_UA, "X-Hub-Viz-Viewer": other_link},
        cookie_only,
    ):
        r = requests.post(f"{url}/session", headers=headers, timeout=60)
        assert_error(r, 401, "Log in to the hub")
        assert "Set-Cookie" not in r.headers, headers
    # the kept cookie does let the frame in (a reload of the course page)
    assert requests.post(f"{url}/rendered", headers=cookie_only, timeout=60).status_code == 204
    servers = hub.api("GET", f"/users/{AUTHOR}").json().get("servers", {})
    assert dashboard not in servers  # nothing was started for the refused opens


def test_the_dashboard_is_framed_by_its_live_links_sites_only(hub, dashboard):
    """The launcher's side: every response of the dashboard lists the live origins."""
    set_visibility(hub, dashboard, "public")
    r = new_link(hub, dashboard, anonymous=True)
    assert r.status_code == 201, r.text
    link = r.json()
    opened = hub.svc("POST", f"dashboards/{AUTHOR}/{dashboard}/open", AUTHOR).json()
    assert opened["status"] == "ready", opened
    session = requests.Session()
    session.headers["User-Agent"] = BROWSER_UA
    page = session.get(urljoin(hub.url, opened["url"]), timeout=60)
    assert page.status_code == 200, page.status_code
    service = f" {hub.layout.service_origin}" if hub.layout.isolated else ""
    own = f"frame-ancestors 'self'{service}"

    def framing() -> str:
        return session.get(page.url, timeout=60).headers.get("Content-Security-Policy", "")

    # the launcher polls the service's list (every 10 s)
    wait_until(lambda: framing() == f"{own} {ORIGIN}", 60, "the link's site in the header", 1)
    r = hub.svc("DELETE", f"dashboards/{AUTHOR}/{dashboard}/embeds/{link['id']}", AUTHOR)
    assert r.status_code == 204, r.text
    wait_until(lambda: framing() == own, 60, "the revoked link's site gone from the header", 1)

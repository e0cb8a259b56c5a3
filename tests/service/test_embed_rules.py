"""Anonymous embed links are for public dashboards only: at creation, and at every open.

Driven through a real hub and the real service. A link is anonymous when
its viewers need no hub login, so the dashboard behind it must be public
when the link is made and still be public whenever the link is used.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ..conftest import BROWSER_UA, SERVICE
from .test_api import assert_error

pytestmark = pytest.mark.hub

AUTHOR = "embed-author"  # a publisher on the test hub
FRIEND, GROUP = "embed-friend", "embed-rules-team"
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
    for name in (AUTHOR, FRIEND):
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


def new_link(hub, slug: str, anonymous: bool) -> requests.Response:
    return hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{slug}/embeds",
        AUTHOR,
        json={"origins": [ORIGIN], "anonymous": anonymous},
    )


def anonymously(method: str, url: str) -> requests.Response:
    """A visitor of the course site: no hub login, a browser's user agent."""
    return requests.request(
        method, url, headers={"User-Agent": BROWSER_UA}, timeout=60, allow_redirects=False
    )


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

"""The service's pages through the hub: usage with its chart, gallery script, robots, errors."""

from __future__ import annotations

import re

import pytest

from ..conftest import Hub

pytestmark = pytest.mark.hub

AUTHOR, VIEWER, OTHER = "pages-author", "pages-viewer", "pages-other"
SLUG = "pages-bokeh"


@pytest.fixture(scope="module")
def published(hub: Hub):
    for name in (AUTHOR, VIEWER, OTHER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Pages Bokeh",
            "slug": SLUG,
            "entry": "bokeh/app.py",
            "visibility": "users",
            "share_users": [VIEWER],
        },
    )
    assert r.status_code == 201, r.text
    yield f"{AUTHOR}/{SLUG}"
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


def test_usage_page_shows_figures_and_a_chart_of_the_last_30_days(hub: Hub, published: str):
    r = hub.svc("POST", f"dashboards/{published}/open", VIEWER)
    assert r.status_code == 200, r.text
    hub.wait(AUTHOR, SLUG)
    page = hub.login(AUTHOR).get(f"{hub.service_url}d/{published}/usage", timeout=60)
    assert page.status_code == 200
    assert "Instance-hours" in page.text and "Share of time running" in page.text
    assert "<svg" in page.text and "Viewers and running hours per day" in page.text
    # one bar per calendar day touched by the 30-day window (today included)
    assert len(re.findall(r"<rect [^>]*><title>", page.text)) == 31
    assert re.search(r"Opens / distinct viewers</th><td>\d+ / 1<", page.text)


def test_usage_and_manage_pages_are_for_the_author_only(hub: Hub, published: str):
    viewer = hub.login(VIEWER)
    r = viewer.get(f"{hub.service_url}d/{published}/usage", timeout=60)
    assert r.status_code == 403
    assert f"Only {AUTHOR} can change" in r.text
    r = hub.login(OTHER).get(f"{hub.service_url}d/{published}", timeout=60)
    assert r.status_code == 404
    assert "No dashboard" in r.text


def test_gallery_script_lists_only_what_the_user_may_see(hub: Hub, published: str):
    url = f"{hub.service_url}gallery.js"
    same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors"}
    script = hub.login(VIEWER).get(url, headers=same, timeout=60)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert f'"slug": "{SLUG}"' in script.text
    other = hub.login(OTHER).get(url, headers=same, timeout=60)
    assert f'"slug": "{SLUG}"' not in other.text


def test_gallery_script_refuses_other_sites(hub: Hub, published: str):
    r = hub.login(VIEWER).get(
        f"{hub.service_url}gallery.js",
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        timeout=60,
    )
    assert r.status_code == 403
    assert SLUG not in r.text


def test_on_the_isolated_layout_only_the_hubs_page_loads_the_gallery(hub: Hub, published):
    """A sibling host (a dashboard) could include the script and read the cards: only
    the hub's own page (its Referer), or the ticket of the service's own hub-login
    redirect, is answered."""
    assert hub.layout.isolated
    url = f"{hub.service_url}gallery.js"
    site = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}
    viewer = hub.login(VIEWER)
    ok = viewer.get(url, headers={**site, "Referer": f"{hub.url}/hub/home"}, timeout=60)
    assert ok.status_code == 200 and f'"slug": "{SLUG}"' in ok.text
    dashboard = hub.server_url(AUTHOR, SLUG)
    for headers, params in (
        ({"Referer": dashboard}, {}),
        ({}, {}),
        ({"Referer": dashboard}, {"ticket": "2|1:0|10:1|21:x|4:MQ==|00"}),
    ):
        r = viewer.get(
            url, headers={**site, **headers}, params=params, timeout=60, allow_redirects=False
        )
        assert r.status_code == 403 and SLUG not in r.text, (headers, params, r.status_code)


def test_home_page_loads_the_gallery(hub: Hub):
    home = hub.login(VIEWER).get(f"{hub.url}/hub/home", timeout=60)
    assert home.status_code == 200
    # from the service's own host on the isolated layout, a path on the hub's otherwise
    assert f'src="{hub.layout.service_url}gallery.js"' in home.text
    assert 'id="hub-viz-gallery"' in home.text


def test_open_page_head_and_bots_start_nothing(hub: Hub):
    hub.ensure_user(AUTHOR)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Never started",
            "slug": "pages-idle",
            "entry": "dash/app.py",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    try:
        session = hub.login(VIEWER)
        assert session.head(f"{hub.service_url}open/{AUTHOR}/pages-idle", timeout=60).ok
        page = session.get(f"{hub.service_url}open/{AUTHOR}/pages-idle", timeout=60)
        assert page.status_code == 200 and 'id="progress-bar"' in page.text
        bot = hub.svc(
            "POST",
            f"dashboards/{AUTHOR}/pages-idle/open",
            VIEWER,
            headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
        )
        assert bot.status_code == 403
        assert "Automated clients" in bot.json()["message"]
        servers = hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
        assert "pages-idle" not in servers
    finally:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/pages-idle", AUTHOR)


def test_robots_txt_disallows_everything(hub: Hub):
    import requests

    # the site's root, and the service's
    for url in (f"{hub.url}/robots.txt", f"{hub.service_url}robots.txt"):
        r = requests.get(url, timeout=30, allow_redirects=False)
        assert r.status_code == 200, url
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "User-agent: *\nDisallow: /" in r.text

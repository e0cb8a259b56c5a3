"""Embed links in a course site: framed where allowed, blocked elsewhere, dead once revoked.

The course site is a page served from a second loopback address
(``127.0.0.2``), so it is another site than the hub on ``127.0.0.1``, as a
Canvas page is. The dashboard is public and embedded anonymously: the
browser is not logged in to the hub at all.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests

from ..conftest import BROWSER_UA, both_layouts, free_port
from ..examples import EXAMPLES

pytestmark = pytest.mark.browser

AUTHOR = "embed-author"
SLUG = "embed-dash"
TEXT = EXAMPLES["dash-example"][1]


def course_page(src: str) -> bytes:
    return (
        "<!doctype html><html><head><title>Course 101</title></head><body>"
        "<h1>Week 3: squares</h1>"
        f'<iframe id="embedded" src="{src}" width="1000" height="700" title="dashboard"></iframe>'
        "</body></html>"
    ).encode()


class CourseSite:
    """A static page with an iframe, on 127.0.0.2:<port>."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.2:{self.port}"

    def close(self) -> None:
        self.server.shutdown()


hub = both_layouts()


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[CourseSite, CourseSite]]:
    allowed, other = CourseSite(), CourseSite()
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def embed(hub, sites) -> Iterator[dict]:
    allowed, _ = sites
    hub.ensure_user(AUTHOR)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Embedded squares",
            "slug": SLUG,
            "entry": "dash/app.py",
            "visibility": "public",
        },
    )
    assert r.status_code == 201, r.text
    r = hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{SLUG}/embeds",
        AUTHOR,
        json={"origins": [allowed.origin], "anonymous": True, "note": "course 101"},
    )
    assert r.status_code == 201, r.text
    yield r.json()
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


def new_page(browser):
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1200, "height": 900})
    return context, context.new_page()


def test_the_snippet_renders_the_dashboard_inside_the_allowed_site(hub, browser, sites, embed):
    allowed, _ = sites
    assert embed["snippet"].startswith(f'<iframe src="{embed["url"]}"')
    allowed.pages["/week3.html"] = course_page(embed["url"])
    context, page = new_page(browser)
    page.goto(f"{allowed.origin}/week3.html")
    dashboard = page.frame_locator("#embedded").frame_locator("#dashboard-frame")
    dashboard.get_by_text(TEXT).wait_for(timeout=120_000)
    # The widgets work inside the frame (a Dash callback through the launcher).
    dashboard.locator("input").first.fill("9")
    dashboard.get_by_text("n squared is 81").wait_for(timeout=30_000)
    context.close()


def test_the_dashboard_lists_exactly_its_live_origins(hub, sites, embed):
    allowed, _ = sites
    r = requests.get(f"{hub.service_url}api/embed-origins/{AUTHOR}/{SLUG}", timeout=30)
    assert r.json() == {"origins": [allowed.origin]}
    # The launcher sends the same list on the dashboard's own responses (polled every 10 s).
    opened = hub.svc("POST", f"dashboards/{AUTHOR}/{SLUG}/open", AUTHOR).json()
    assert opened["status"] == "ready", opened
    session = requests.Session()
    page = session.get(urljoin(hub.url, opened["url"]), timeout=60)
    deadline = time.monotonic() + 30
    while allowed.origin not in page.headers.get("Content-Security-Policy", ""):
        assert time.monotonic() < deadline, page.headers
        time.sleep(1)
        page = session.get(page.url, timeout=60)
    # the service's open and embed pages frame it too (on the isolated layout, their host)
    service = f" {hub.layout.service_origin}" if hub.layout.isolated else ""
    assert page.headers["Content-Security-Policy"] == (
        f"frame-ancestors 'self'{service} {allowed.origin}"
    )


def test_the_same_snippet_on_another_site_is_blocked(hub, browser, sites, embed):
    _, other = sites
    other.pages["/copy.html"] = course_page(embed["url"])
    dashboard_url = hub.server_url(AUTHOR, SLUG)
    other.pages["/direct.html"] = course_page(dashboard_url)
    context, page = new_page(browser)
    for path in ("/copy.html", "/direct.html"):
        page.goto(f"{other.origin}{path}")
        assert page.locator("iframe").count() == 1, "the iframe element exists"
        # a positive signal, not a fixed wait: the browser refused the frame (its own
        # error page in place of the dashboard); the frame objects are read anew, as a
        # refused navigation may replace the frame
        deadline = time.monotonic() + 60
        while True:
            frames = [f for f in page.frames if f != page.main_frame and not f.is_detached()]
            if frames and all(f.url.startswith("chrome-error://") for f in frames):
                break
            assert time.monotonic() < deadline, [f.url for f in frames]
            page.wait_for_timeout(500)
        for frame in frames:
            text = frame.evaluate("document.body ? document.body.innerText : ''")
            assert TEXT not in text and "Opening" not in text
    context.close()


def test_revoked_or_expired_links_get_403(hub, sites, embed):
    allowed, _ = sites
    r = hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{SLUG}/embeds",
        AUTHOR,
        json={"origins": [allowed.origin], "anonymous": True},
    )
    second = r.json()
    assert requests.get(second["url"], timeout=30).status_code == 200
    r = hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}/embeds/{second['id']}", AUTHOR)
    assert r.status_code == 204
    page = requests.get(second["url"], timeout=30)
    assert page.status_code == 403
    assert "revoked" in page.text
    # An expired token (signed with the service's secret, expiry in the past).
    import jwt

    secret = (hub.log.parent / "hub_viz_embed_secret").read_text().strip().encode()
    expired = jwt.encode(
        {"iss": "hub-viz-embed", "gid": embed["id"], "exp": int(time.time()) - 60},
        secret,
        algorithm="HS256",
    )
    page = requests.get(f"{hub.service_url}embed/{expired}", timeout=30)
    assert page.status_code == 403 and "expired" in page.text
    # A token signed with another secret: not an embed link of this hub.
    forged = jwt.encode({"iss": "hub-viz-embed", "gid": embed["id"]}, b"x" * 32, algorithm="HS256")
    page = requests.get(f"{hub.service_url}embed/{forged}", timeout=30)
    assert page.status_code == 403 and "not valid" in page.text
    # The live link still works.
    assert requests.get(embed["url"], timeout=30).status_code == 200


def test_the_author_creates_a_link_and_copies_the_snippet(hub, browser, sites, embed):
    from .test_publish import log_in

    allowed, _ = sites
    context, page = log_in(hub, browser, AUTHOR)
    page.goto(f"{hub.service_url}d/{AUTHOR}/{SLUG}")
    rows = page.locator("#embeds tbody tr")
    rows.first.wait_for()
    before = rows.count()
    page.fill("#embed-origins", "https://canvas.example.edu")
    page.check("#embed-anonymous")
    page.click("#embed-create")
    page.wait_for_function(f"document.querySelectorAll('#embeds tbody tr').length > {before}")
    snippet = page.locator("#embeds tbody tr").last.locator(".embed-snippet").input_value()
    assert snippet.startswith(f'<iframe src="{hub.service_url}embed/')
    # A bad origin is refused with the service's message.
    page.fill("#embed-origins", "canvas.example.edu/courses/1")
    page.click("#embed-create")
    page.locator("#action-message.alert-danger").wait_for()
    assert "is not an origin" in page.locator("#action-message").inner_text()
    context.close()
    assert (
        allowed.origin
        in requests.get(f"{hub.service_url}api/embed-origins/{AUTHOR}/{SLUG}", timeout=30).json()[
            "origins"
        ]
    )


def test_the_link_shows_a_refusal_once_the_dashboard_is_not_public(hub, browser, sites, embed):
    allowed, _ = sites
    allowed.pages["/week4.html"] = course_page(embed["url"])
    r = hub.svc("PATCH", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR, json={"visibility": "all"})
    assert r.status_code == 200, r.text
    try:
        context, page = new_page(browser)
        page.goto(f"{allowed.origin}/week4.html")
        frame = page.frame_locator("#embedded")
        frame.get_by_text("This dashboard is no longer public.").wait_for(timeout=30_000)
        assert TEXT not in frame.locator("body").inner_text()
        assert frame.locator("#dashboard-frame").count() == 0
        context.close()
    finally:
        r = hub.svc("PATCH", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR, json={"visibility": "public"})
        assert r.status_code == 200, r.text


# -- links that need a hub login -----------------------------------------------------------

STUDENT, OUTSIDER = "embed-student", "embed-outsider"
PRIVATE = "embed-private"


@pytest.fixture(scope="module")
def login_embed(hub, sites) -> Iterator[dict]:
    """A dashboard shared with STUDENT only, embedded with a link that needs a login."""
    allowed, _ = sites
    for name in (STUDENT, OUTSIDER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Squares for the class",
            "slug": PRIVATE,
            "entry": "dash/app.py",
            "visibility": "users",
            "share_users": [STUDENT],
        },
    )
    assert r.status_code == 201, r.text
    r = hub.svc(
        "POST",
        f"dashboards/{AUTHOR}/{PRIVATE}/embeds",
        AUTHOR,
        json={"origins": [allowed.origin], "anonymous": False},
    )
    assert r.status_code == 201, r.text
    allowed.pages["/week5.html"] = course_page(r.json()["url"])
    yield r.json()
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{PRIVATE}", AUTHOR)


def log_in_through_popup(page, frame, name: str) -> None:
    """Press the frame's Log in and use the hub's login form in the window it opens."""
    from ..conftest import PASSWORD

    with page.expect_popup() as opened:
        frame.locator("#embed-login-button").click()
    popup = opened.value
    popup.fill("#username_input", name)
    popup.fill("#password_input", PASSWORD)
    popup.click("#login_submit")
    return popup


def test_a_link_that_needs_a_login_logs_in_from_the_frame(hub, browser, sites, login_embed):
    allowed, _ = sites
    context, page = new_page(browser)
    page.goto(f"{allowed.origin}/week5.html")
    frame = page.frame_locator("#embedded")
    prompt = frame.locator("#embed-login")
    prompt.wait_for()
    assert "Log in to the hub to see this dashboard." in prompt.inner_text()
    assert frame.locator("#progress-box").is_hidden()

    popup = log_in_through_popup(page, frame, STUDENT)
    popup.wait_for_event("close", timeout=60_000)  # handed the frame its ticket and closed
    frame.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(timeout=120_000)
    assert prompt.is_hidden()
    # the dashboard works in the frame (a Dash callback through the launcher)
    dashboard = frame.frame_locator("#dashboard-frame")
    dashboard.locator("input").first.fill("7")
    dashboard.get_by_text("n squared is 49").wait_for(timeout=30_000)
    # it opened for the student: their own session of the dashboard, recorded as theirs
    opens = hub.svc("GET", f"dashboards/{AUTHOR}/{PRIVATE}/usage", AUTHOR).json()
    assert opens["opens"] >= 1, opens

    # a reload of the course page keeps the login (a cookie partitioned to the course site)
    page.reload()
    frame = page.frame_locator("#embedded")
    frame.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(timeout=120_000)
    assert frame.locator("#embed-login").is_hidden()
    [ticket] = [c["value"] for c in context.cookies() if c["name"] == "hub-viz-embed-viewer"]
    context.close()
    # neither the link's token nor the viewer's ticket is in any log line
    log = hub.log.read_text()
    assert ticket and ticket not in log
    assert login_embed["url"].rsplit("/", 1)[1] not in log


def test_a_login_that_may_not_see_the_dashboard_is_refused_in_the_frame(
    hub, browser, sites, login_embed
):
    allowed, _ = sites
    context, page = new_page(browser)
    page.goto(f"{allowed.origin}/week5.html")
    frame = page.frame_locator("#embedded")
    frame.locator("#embed-login").wait_for()
    popup = log_in_through_popup(page, frame, OUTSIDER)
    popup.get_by_text("You may not see this dashboard.").wait_for(timeout=60_000)
    assert frame.locator("#dashboard-frame").count() == 0
    context.close()


def test_viewer_tickets_are_checked(hub, login_embed):
    """A ticket names one viewer and one link; forged, foreign or missing ones get 401."""
    import jwt

    token = login_embed["url"].rsplit("/", 1)[1]
    secret = (hub.log.parent / "hub_viz_embed_secret").read_text().strip().encode()

    def ticket(**claims):
        return jwt.encode(
            {
                "iss": "hub-viz-embed-viewer",
                "gid": login_embed["id"],
                "sub": STUDENT,
                "exp": int(time.time()) + 600,
                **claims,
            },
            secret,
            algorithm="HS256",
        )

    def open_with(value=None):
        headers = {"User-Agent": BROWSER_UA}
        if value is not None:
            headers["X-Hub-Viz-Viewer"] = value
        return requests.post(f"{hub.service_url}embed/{token}/open", headers=headers, timeout=120)

    assert open_with(ticket()).status_code == 200
    for bad, message in [
        (None, "Log in to the hub to see this dashboard."),
        ("not-a-ticket", "Log in to the hub to see this dashboard."),
        (ticket(gid=login_embed["id"] + 1000), "Log in to the hub to see this dashboard."),
        (ticket(exp=int(time.time()) - 60), "Your login to this dashboard expired"),
        (
            jwt.encode(
                {
                    "iss": "hub-viz-embed-viewer",
                    "gid": login_embed["id"],
                    "sub": STUDENT,
                    "exp": int(time.time()) + 600,
                },
                b"y" * 32,
                algorithm="HS256",
            ),
            "Log in to the hub to see this dashboard.",
        ),
    ]:
        r = open_with(bad)
        assert r.status_code == 401, (bad, r.text)
        assert message in r.json()["message"], r.text
    # a valid ticket of a user the dashboard is not shared with
    r = open_with(ticket(sub=OUTSIDER))
    assert r.status_code == 403 and "You may not see this dashboard." in r.json()["message"]

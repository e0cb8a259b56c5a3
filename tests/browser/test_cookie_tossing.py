"""Cookies a dashboard's script sets for the hub's whole domain change nothing, on HTTPS.

A page on a sibling host may set a cookie for the parent domain in any name but a
``__Host-`` one. On an HTTPS isolated hub (the layout a real install runs) the
hub, the service and every launcher log viewers in with ``__Host-`` cookies, and
signed ``_xsrf`` values: a viewer who opened a dashboard that tossed copies of all
their names stays logged in to the hub and the service, and other dashboards
still open without a new login.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import ISOLATED_DOMAIN, PASSWORD, Hub, start_hub, stop_hub
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

ATTACKER = Path(__file__).parent.parent / "attacker"
TOSSED = "tossed-by-the-author"


@pytest.fixture(scope="module")
def https_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    state = tmp_path_factory.mktemp("https-hub")
    with pytest.MonkeyPatch.context() as env:
        # requests (the tests and the hub's own processes) trust the hub's test CA
        env.setenv("REQUESTS_CA_BUNDLE", str(state / "tls" / "ca.pem"))
        hub = start_hub(
            state,
            isolated=True,
            https=True,
            configure_kwargs={"extra_service_config": {"thumbnails": False}},
        )
        yield hub
        stop_hub(hub)


@pytest.fixture(scope="module")
def tossed(https_hub: Hub, browser) -> dict:
    """vera opens pat's dashboard, then mallory's, whose script tosses cookies; then
    the hub's home page and pat's dashboard again. What the browser saw."""
    hub = https_hub
    assert hub.url.startswith("https://")
    for name in ("vera", "pat", "mallory"):
        hub.ensure_user(name)
    shutil.copytree(ATTACKER, hub.root / "quiz", dirs_exist_ok=True)
    for owner, fields in [
        ("pat", {"title": "Sales", "entry": "dash/app.py", "visibility": "all"}),
        ("mallory", {"title": "Quiz", "entry": "quiz/toss_app.py", "visibility": "all"}),
    ]:
        r = hub.svc("POST", "dashboards", owner, json=fields)
        assert r.status_code == 201, r.text

    context, page = logged_in_page(browser, hub.url, "vera", PASSWORD, ignore_https_errors=True)
    found: dict = {"logins": []}

    def open_dashboard(owner: str, slug: str, text: str):
        page.goto(hub.service_url + f"open/{owner}/{slug}")
        page.frame_locator("iframe").get_by_text(text).first.wait_for(timeout=120_000)
        return next(f for f in page.frames if f"/user/{owner}/" in f.url)

    open_dashboard("pat", "sales", "Sum of squares")
    # logged in to the hub, the service and pat's launcher: the names of those cookies
    found["login_cookies"] = sorted({c["name"] for c in context.cookies()})
    quiz = open_dashboard("mallory", "quiz", "tossing cookies")
    quiz.wait_for_function("window.__tossed !== undefined", timeout=60_000)
    found["taken"] = quiz.evaluate("window.__tossed")
    found["in_jar"] = sorted(
        {(c["name"], c["domain"]) for c in context.cookies() if c["value"] == TOSSED}
    )

    # from here on, any trip through the hub's OAuth means a login was lost
    page.on(
        "request",
        lambda r: (
            found["logins"].append(r.url)
            if "/hub/api/oauth2/authorize" in r.url or "/hub/login" in r.url
            else None
        ),
    )
    page.goto(f"{hub.url}/hub/home")
    found["home_url"] = page.url
    found["home_user"] = page.locator("#login_widget, header, nav").first.inner_text()
    open_dashboard("pat", "sales", "Sum of squares")
    found["service_url_after"] = page.url
    context.close()
    return found


def test_the_hub_and_the_service_log_in_with_host_only_cookies(tossed):
    names = tossed["login_cookies"]
    assert {"__Host-jupyterhub-hub-login", "__Host-service-hub-viz"} <= set(names), names
    assert any(n.startswith("__Host-hub-viz-viewer-") for n in names), names
    # nothing a login rests on is in a name a sibling host could set
    assert not {n for n in names if n.startswith(("jupyterhub-hub", "service-", "hub-viz"))}


def test_the_browser_takes_the_plain_names_but_no_host_only_one(tossed):
    # what a page can do: plain names for the parent domain, on every path it likes ...
    taken = set(tossed["taken"].split(","))
    assert {"jupyterhub-hub-login", "service-hub-viz", "hub-viz-viewer", "_xsrf"} <= taken
    assert ("jupyterhub-hub-login", f".{ISOLATED_DOMAIN}") in tossed["in_jar"]
    # ... but never a __Host- one (Chromium refuses those with a Domain)
    assert not {n for n in taken if n.startswith("__Host-")}
    assert not {n for n, _ in tossed["in_jar"] if n.startswith("__Host-")}


def test_the_viewer_is_still_logged_in_to_the_hub(tossed):
    assert tossed["home_url"].endswith("/hub/home"), tossed["home_url"]
    assert "vera" in tossed["home_user"]


def test_the_service_and_other_dashboards_open_without_a_new_login(tossed, https_hub):
    assert tossed["service_url_after"] == https_hub.service_url + "open/pat/sales"
    # no trip through the hub's login or OAuth: the service's and the launcher's own
    # cookies were read, not the tossed copies
    assert tossed["logins"] == []

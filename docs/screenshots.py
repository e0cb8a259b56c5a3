"""Take the documentation's screenshots from a throw-away test hub.

    .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium]

Starts a hub like the tests do (``tests/conftest.start_hub``: configurable-http-proxy,
the hub_viz service, the examples as the users' files), publishes the example
dashboards through the service's API as two authors, opens them once so the
service takes their card thumbnails, then, as a student in the course group,
saves

* ``docs/images/gallery.png``: the hub's home page with the dashboard cards;
* ``docs/images/progress.png``: the open page while a dashboard starts;

then, from a second hub with LTI 1.3 login and the tests' Canvas-shaped platform
(``tests/hub/test_lti.Platform``), as an instructor choosing the tool in a module:

* ``docs/images/lti-picker.png``: the Deep Linking picker in the course's frame.

Uses the system Chromium (never downloads a browser) and stops the hub at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub_viz.service.thumbnails import CHROMIUM_ARGS  # noqa: E402
from tests.conftest import BROWSER_UA, PASSWORD, Hub, start_hub, stop_hub  # noqa: E402

IMAGES = REPO / "docs" / "images"
GROUP, STUDENT = "course-101", "sam"
# (author, API fields): what the gallery shows, in the order published
DASHBOARDS = [
    (
        "ada",
        {
            "title": "Squares in Voilà",
            "entry": "voila/dashboard.ipynb",
            "description": "A notebook as an app: a number from the kernel and a live slider.",
        },
    ),
    (
        "ada",
        {
            "title": "Dash callbacks",
            "entry": "dash/app.py",
            "description": "A Dash layout whose callback answers through the proxy.",
        },
    ),
    (
        "ada",
        {
            "title": "Powers of x (Bokeh)",
            "entry": "bokeh/app.py",
            "description": "A Bokeh server app: drag the slider, the plot follows.",
        },
    ),
    (
        "grace",
        {
            "title": "Panel widgets",
            "entry": "panel/app.py",
            "description": "A reactive Panel column bound to a slider.",
        },
    ),
    (
        "grace",
        {
            "title": "Streamlit script",
            "entry": "streamlit/app.py",
            "description": "A Streamlit script re-run on every change.",
        },
    ),
]
# Opened for the progress picture; its app starts slowest (a Jupyter kernel).
PROGRESS_DASHBOARD = ("ada", "squares-in-voila")


def publish(hub: Hub) -> list[tuple[str, str]]:
    hub.ensure_user(STUDENT)
    hub.api("POST", f"/groups/{GROUP}")
    r = hub.api("POST", f"/groups/{GROUP}/users", json={"users": [STUDENT]})
    r.raise_for_status()
    refs = []
    for owner, fields in DASHBOARDS:
        body = {**fields, "visibility": "groups", "share_groups": [GROUP]}
        r = hub.svc("POST", "dashboards", owner, json=body)
        if r.status_code != 201:
            raise SystemExit(f"publishing {fields['title']} failed: {r.status_code} {r.text}")
        refs.append((owner, r.json()["slug"]))
    return refs


def open_and_wait(hub: Hub, owner: str, slug: str) -> None:
    """Start a dashboard through the service (as its author) and wait until it runs."""
    r = hub.svc("POST", f"dashboards/{owner}/{slug}/open", owner)
    r.raise_for_status()
    server = hub.wait(owner, slug, timeout=120)
    if not server.get("ready"):
        raise SystemExit(f"{owner}/{slug} did not start; see {hub.log}")
    # what the open page sends once the dashboard's page has loaded: the card's cue
    hub.svc("POST", f"dashboards/{owner}/{slug}/rendered", owner).raise_for_status()


def wait_for_thumbnails(hub: Hub, refs: list[tuple[str, str]], timeout: float = 240) -> None:
    """The service screenshots each running dashboard in the background, one at a time."""
    deadline = time.monotonic() + timeout
    missing = list(refs)
    while missing and time.monotonic() < deadline:
        missing = [
            (owner, slug)
            for owner, slug in missing
            if hub.svc("GET", f"dashboards/{owner}/{slug}/thumbnail", owner).headers.get(
                "Content-Type"
            )
            != "image/png"
        ]
        time.sleep(1)
    if missing:
        print(f"warning: no thumbnail yet for {missing}; their cards show a placeholder")


def log_in(browser, hub: Hub, name: str, width: int, height: int):
    context = browser.new_context(
        user_agent=BROWSER_UA, viewport={"width": width, "height": height}
    )
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/hub/home")
    return context, page


def gallery_png(browser, hub: Hub, count: int) -> None:
    context, page = log_in(browser, hub, STUDENT, 1200, 900)
    page.locator(".hub-viz-card").nth(count - 1).wait_for()
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.hub-viz-thumb'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    cards = page.locator("#hub-viz-cards").bounding_box()
    bottom = int(cards["y"] + cards["height"] + 8)
    page.screenshot(
        path=str(IMAGES / "gallery.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1200, "height": bottom},
    )
    context.close()


def progress_png(browser, hub: Hub, attempts: int = 3) -> None:
    """The open page after a few progress messages, before it moves on to the dashboard."""
    from playwright.sync_api import Error

    owner, slug = PROGRESS_DASHBOARD
    for _ in range(attempts):
        hub.stop(owner, slug)
        context, page = log_in(browser, hub, STUDENT, 900, 400)
        page.locator(f'.hub-viz-card[data-dashboard="{owner}/{slug}"] .hub-viz-open').click()
        try:
            page.locator("#progress-log li", has_text="Waiting for").wait_for(timeout=30_000)
            box = page.locator("#open").bounding_box(timeout=1000)
            height = int(box["y"] + box["height"] + 24)
            page.screenshot(
                path=str(IMAGES / "progress.png"),
                clip={"x": 0, "y": 0, "width": 900, "height": height},
            )
            taken = "/open/" in page.url  # still the open page once the picture was taken
            page.wait_for_url(f"**/user/{owner}/{slug}/**")
        except Error as e:  # the app was ready before it said it was waiting: again
            print(f"retrying the progress picture: {e.message.splitlines()[0]}")
            taken = False
        context.close()
        if taken:
            return
    raise SystemExit("the dashboard started before the progress could be photographed")


def picker_png(browser) -> None:
    """The picker as Canvas's "+ External Tool" dialog frames it, with real card images."""
    import os

    from tests.hub.test_lti import (
        AUTHORIZE,
        CLIENT_ID,
        CTX,
        DEPLOYMENT,
        ISSUER,
        TEACHER_ROLES,
        Platform,
        message_hint,
    )

    teacher, colleague = "ada", "grace"
    # published at start-up, as the operator's list does (the course group exists later)
    dashboards = [
        {
            "owner": teacher,
            "slug": "dash-callbacks",
            "title": "Dash callbacks",
            "entry": "dash/app.py",
            "visibility": "groups",
            "share_groups": [f"course-{CTX}"],
            "description": "A Dash layout whose callback answers through the proxy.",
        },
        {
            "owner": teacher,
            "slug": "powers-of-x",
            "title": "Powers of x (Bokeh)",
            "entry": "bokeh/app.py",
            "description": "A Bokeh server app: drag the slider, the plot follows.",
        },
        {
            "owner": teacher,
            "slug": "streamlit-script",
            "title": "Streamlit script",
            "entry": "streamlit/app.py",
            "description": "A Streamlit script re-run on every change.",
        },
        {
            "owner": colleague,
            "slug": "panel-widgets",
            "title": "Panel widgets",
            "entry": "panel/app.py",
            "visibility": "users",
            "share_users": [teacher],
            "description": "A reactive Panel column bound to a slider.",
        },
    ]
    platform = Platform()
    os.environ.setdefault("JUPYTERHUB_CRYPT_KEY", "ab" * 32)
    with tempfile.TemporaryDirectory(prefix="hub-viz-screenshots-lti-") as state:
        hub = start_hub(
            Path(state),
            isolated=True,
            publish=dashboards,
            configure_kwargs={
                "lti": {
                    "client_id": CLIENT_ID,
                    "issuer": ISSUER,
                    "jwks_url": platform.jwks_url,
                    "authorize_url": platform.origin + AUTHORIZE,
                    "deployments": [DEPLOYMENT],
                }
            },
            extra_config="c.JupyterHub.authenticator_class = "
            "'hub_viz.lti.HubVizLTI13Authenticator'\n",
        )
        try:
            refs = [(d["owner"], d["slug"]) for d in dashboards]
            for owner, slug in refs:
                hub.ensure_user(owner)
                open_and_wait(hub, owner, slug)
            wait_for_thumbnails(hub, refs)
            context = browser.new_context(
                user_agent=BROWSER_UA, viewport={"width": 1100, "height": 1100}
            )
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.goto(
                f"{platform.origin}/course?"
                + urlencode(
                    {
                        "hub": hub.url,
                        "sub": teacher,
                        "hint": message_hint(TEACHER_ROLES, f"{hub.url}/hub/lti13/pick"),
                    }
                )
            )
            tool = page.frame_locator("#tool")
            tool.locator(".pick-card").nth(len(refs) - 1).wait_for()
            tool.locator(".pick-card img").last.wait_for()
            page.wait_for_timeout(1000)  # the card images
            tool.locator(".pick-card input").nth(1).check()
            page.locator("#tool").evaluate("frame => { frame.height = 950; }")  # all of it
            page.locator("#tool").screenshot(path=str(IMAGES / "lti-picker.png"))
            context.close()
        finally:
            stop_hub(hub)
            platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hub-viz-screenshots-") as state:
        hub = start_hub(Path(state))
        try:
            refs = publish(hub)
            for owner, slug in refs:
                open_and_wait(hub, owner, slug)
            wait_for_thumbnails(hub, refs)
            hub.stop("grace", refs[-1][1])  # one stopped card beside the running ones
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                try:
                    gallery_png(browser, hub, len(refs))
                    progress_png(browser, hub)
                finally:
                    browser.close()
        finally:
            stop_hub(hub)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            picker_png(browser)
        finally:
            browser.close()
    for name in ("gallery.png", "progress.png", "lti-picker.png"):
        print(IMAGES / name)


if __name__ == "__main__":
    main()

"""An author's script against a hub admin who opens the dashboard, on the isolated layout.

The author (``mallory``) publishes a Dash app whose page carries a script and
shares it with every hub user; a hub admin opens it from the gallery, as a
person would. The script tries what took over the hub when dashboards shared
its origin; every attempt must fail, and each is checked for *how* it failed,
then on the hub's side for what did not happen.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from ..conftest import ISOLATED_DOMAIN, PASSWORD, Hub, start_hub, stop_hub
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

ATTACKER = Path(__file__).parent.parent / "attacker"
ADMIN_PASSWORD = PASSWORD + "-admin-" + "x" * 32  # the shared-password login of admins
BLOCKED = "TypeError: Failed to fetch"  # what Chromium says when CORS withholds a response


@pytest.fixture(scope="module")
def attack_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    state = tmp_path_factory.mktemp("isolated")
    hub = start_hub(
        state,
        isolated=True,
        extra_config=(
            'c.Authenticator.admin_users = {"dean"}\n'
            f"c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}\n"
        ),
    )
    yield hub
    stop_hub(hub)


def open_in_browser(
    page, hub: Hub, owner: str, slug: str, text: str, state: str = "visible"
) -> str:
    """Open a dashboard as its viewer would; the URL of the instance that serves it."""
    page.goto(hub.service_url + f"open/{owner}/{slug}")
    page.frame_locator("iframe").get_by_text(text).first.wait_for(state=state, timeout=120_000)
    return next(f.url for f in page.frames if "/user/" in f.url).split("?")[0]


# Where each framework lets an author put HTML that runs script, the dashboard's entry
ATTACKS = {
    "dash": "quiz/dash_app.py",  # a <script> in the page (Dash's index_string)
    "bokeh": "quiz/bokeh_app.py",  # an <img onerror> in a Div
    "panel": "quiz/panel_app.py",  # an <img onerror> in an HTML pane
    "voila": "quiz/voila_app.ipynb",  # an <img onerror> in an ipywidgets HTML output
}


@pytest.fixture(scope="module")
def attacks(attack_hub: Hub, browser) -> dict[str, dict[str, str]]:
    hub = attack_hub
    for name in ("mallory", "dean", "carol"):
        hub.ensure_user(name)
    assert hub.api("GET", "/users/dean").json()["admin"]
    # what the admin holds a cookie for, and the script tries to read: the admin's own
    # private dashboard, a per-viewer instance of another author's dashboard, the
    # admin's JupyterLab on a notebook
    for owner, fields in [
        ("dean", {"title": "Grades", "entry": "dash/app.py", "visibility": "private"}),
        (
            "carol",
            {"title": "Lab", "entry": "dash/app.py", "mode": "per-viewer", "visibility": "all"},
        ),
        (
            "dean",
            {
                "title": "Notes",
                "entry": "notebook/analysis.ipynb",
                "framework": "notebook",
                "mode": "per-viewer",
                "visibility": "private",
            },
        ),
    ]:
        r = hub.svc("POST", "dashboards", owner, json=fields)
        assert r.status_code == 201, r.text
    context, page = logged_in_page(browser, hub.url, "dean", ADMIN_PASSWORD)
    targets = [
        open_in_browser(page, hub, "dean", "grades", "Sum of squares"),
        open_in_browser(page, hub, "carol", "lab", "Sum of squares"),
    ]
    # JupyterLab on the notebook (its title may sit in a panel not shown yet)
    lab = open_in_browser(page, hub, "dean", "notes", "analysis.ipynb", state="attached")
    targets += [lab, lab + "api/contents"]

    shutil.copytree(ATTACKER, hub.root / "quiz", dirs_exist_ok=True)
    (hub.root / "quiz" / "targets.txt").write_text(f"victim=dean&targets={','.join(targets)}")
    for framework, entry in ATTACKS.items():
        published = hub.svc(
            "POST",
            "dashboards",
            "mallory",
            json={
                "title": f"Quiz {framework}",
                "entry": entry,
                "framework": framework,
                "visibility": "all",
            },
        )
        assert published.status_code == 201, published.text
    tokens_before = {t["id"] for t in hub.api("GET", "/users/dean/tokens").json()["api_tokens"]}

    results: dict[str, dict[str, str]] = {}
    for framework in ATTACKS:
        # the admin opens the author's card from the gallery on the hub's home page
        page.goto(f"{hub.url}/hub/home")
        card = page.locator(".hub-viz-card", has_text=f"Quiz {framework}")
        card.get_by_role("link", name="Open").click()
        page.wait_for_url(f"**/open/mallory/quiz-{framework}")
        page.frame_locator("iframe").locator("body").wait_for(timeout=120_000)
        dashboard = next(f for f in page.frames if "/user/mallory/" in f.url)
        dashboard.wait_for_function("window.__attack !== undefined", timeout=120_000)
        found = dashboard.evaluate("window.__attack")
        found["targets"] = ",".join(targets)
        found["frame_url"] = dashboard.url
        found["page_url"] = page.url
        results[framework] = found
    # logging in to the service and to dashboards issues OAuth tokens: those name their
    # client; a token made through the API by a script would have none
    added = ",".join(
        sorted(
            t.get("oauth_client") or "api"
            for t in hub.api("GET", "/users/dean/tokens").json()["api_tokens"]
            if t["id"] not in tokens_before
        )
    )
    admin = str(hub.api("GET", "/users/mallory").json()["admin"])
    cookies = context.cookies()
    # what the Dash app sent as Set-Cookie (hub, service and hub_viz names, the domain)
    planted = (
        ",".join(
            sorted(
                c["name"]
                for c in cookies
                if "planted" in c["value"] or c["name"] == "planted-for-the-domain"
            )
        )
        or "none"
    )
    # what the scripts set from the page for the whole domain
    tossed = (
        ",".join(
            sorted(
                f"{c['name']}@{c['domain']}"
                for c in cookies
                if c["value"] == "tossed-by-the-author"
            )
        )
        or "none"
    )
    # with the tossed copy in the jar, the admin's own dashboard still opens for the admin
    private = open_in_browser(page, hub, "dean", "grades", "Sum of squares")
    # and the tossed copy alone opens nothing
    alone = requests.get(
        private,
        cookies={"hub-viz-viewer": "tossed-by-the-author"},
        allow_redirects=False,
        timeout=30,
    )
    for found in results.values():
        found["tokens_added"], found["mallory_admin"] = added, admin
        found["planted_cookies"], found["tossed_cookies"] = planted, tossed
        found["tossed_alone"] = f"{alone.status_code} {alone.headers.get('Location', '')}"
    context.close()
    return results


@pytest.fixture(params=list(ATTACKS))
def attack(request, attacks) -> dict[str, str]:
    """What one framework's attack found."""
    return {"framework": request.param, **attacks[request.param]}


def test_the_dashboard_runs_on_its_authors_host_framed_by_the_service(attack, attack_hub):
    layout = attack_hub.layout
    assert attack["frame_url"].startswith(
        layout.server_url("mallory", f"quiz-{attack['framework']}")
    )
    assert attack["page_url"].startswith(layout.service_url + "open/mallory/")
    # each of the viewer's other servers is on a host of its own, not the author's
    hosts = {urlsplit(u).netloc for u in attack["targets"].split(",")}
    assert len(hosts) == 3 and urlsplit(attack["frame_url"]).netloc not in hosts


def test_reading_the_hub_or_the_service_is_blocked_by_cors(attack):
    for name in ("hub_home", "hub_token", "hub_make_admin", "service_list"):
        assert attack[name] == BLOCKED, name


def test_the_viewers_other_dashboards_and_jupyterlab_are_blocked_by_cors(attack):
    tried = {k: v for k, v in attack.items() if k.startswith("reach ")}
    assert len(tried) == 4  # private dashboard, per-viewer instance, JupyterLab, its API
    assert set(tried.values()) == {BLOCKED}, tried


def test_blind_writes_reach_nothing(attack):
    # the browser sends them but shows nothing; the hub and the service refuse them
    # (no XSRF token can be read from another origin): nothing changed below
    assert attack["hub_token_no_cors"] == attack["service_publish_no_cors"] == "opaque"


def test_no_token_made_no_admin_no_dashboard_planted(attack, attack_hub):
    assert "api" not in attack["tokens_added"].split(","), attack["tokens_added"]
    assert attack["mallory_admin"] == "False"
    dean = attack_hub.svc("GET", "dashboards", "dean").json()["items"]
    assert "planted" not in {d["title"] for d in dean}


def test_other_origins_documents_are_out_of_reach(attack):
    assert attack["parent_document"].startswith("SecurityError")
    # a hidden frame of a service file or the hub's page cannot be read either
    assert attack["service_static_frame"] == "no document"
    assert attack["hub_frame"] == "no document"


def test_cookies_the_app_sets_never_reach_the_browser(attack):
    """Set-Cookie in the hub's, the service's and hub_viz's names, or for the parent
    domain: the launcher drops every one."""
    assert attack["planted_cookies"] == "none"


def test_a_cookie_tossed_for_the_domain_opens_nothing(attack, attack_hub):
    # the browser took it (plain HTTP, a parent domain: that much a page can do) ...
    assert attack["tossed_cookies"] == f"hub-viz-viewer@.{ISOLATED_DOMAIN}"
    # ... the admin's own dashboard still opened for the admin beside it (fixture), and
    # alone it is sent to the open page, as no cookie at all would be
    status, location = attack["tossed_alone"].split(" ", 1)
    assert status == "302" and location == attack_hub.open_location("dean", "grades")


def test_the_page_holds_no_hub_or_service_cookie(attack):
    names = set(attack["own_cookies"].split(","))
    assert not {n for n in names if n.startswith(("jupyterhub", "_xsrf", "hub-viz"))}


def test_the_admin_is_still_admin_and_the_author_is_not(attack, attack_hub):
    users = {u["name"]: u["admin"] for u in attack_hub.api("GET", "/users").json()}
    assert users["dean"] is True and users["mallory"] is False


def test_on_the_path_based_layout_the_author_cannot_reach_anyone(path_hub: Hub):
    """Where dashboards share the hub's origin, an author who is not a named publisher
    cannot put the same dashboard in front of anyone else."""
    hub = path_hub
    assert not hub.layout.isolated
    shutil.copytree(ATTACKER, hub.root / "quiz", dirs_exist_ok=True)
    for visibility in ("users", "groups", "all", "public"):
        extra = (
            {"share_users": ["dean"]}
            if visibility == "users"
            else ({"share_groups": ["staff"]} if visibility == "groups" else {})
        )
        r = hub.svc(
            "POST",
            "dashboards",
            "mallory",
            json={
                "title": f"Quiz {visibility}",
                "entry": "quiz/dash_app.py",
                "visibility": visibility,
                **extra,
            },
        )
        assert r.status_code == 403, r.text
        assert "publish" in r.json()["message"]
    r = hub.svc(
        "POST",
        "dashboards",
        "mallory",
        json={"title": "Quiz private", "entry": "quiz/dash_app.py", "visibility": "private"},
    )
    assert r.status_code == 201, r.text
    hub.ensure_user("dean")
    assert hub.svc("GET", "dashboards/mallory/quiz-private", "dean").status_code == 404
    assert all(
        d["owner"] != "mallory" for d in hub.svc("GET", "dashboards", "dean").json()["items"]
    )

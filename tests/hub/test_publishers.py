"""The path-based layout on a real hub: who may publish beyond 'private', and how others hear why.

Dashboards share the hub's origin here (no ``subdomain_host``), so a
dashboard's page could act for whoever opens it: only hub admins and the
publishers the operator names may share one. Checked through the service's
API, its publish form and the ``hub-viz`` command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hub_viz.service.publishers import LIMIT

from ..conftest import SERVICE, Hub, start_hub, stop_hub

pytestmark = pytest.mark.hub

ADMIN, NAMED, MEMBER, STUDENT = "pub-admin", "pub-named", "pub-member", "pub-student"
TEACHERS = "pub-teachers"
SEED_OWNER = "pub-seed-owner"  # no publisher: its seed dashboard is the operator's own
DASH = {"framework": "dash", "entry": "dash/app.py"}
# every visibility beyond private, with the share targets it needs
BEYOND_PRIVATE = {
    "users": {"share_users": [NAMED]},
    "groups": {"share_groups": [TEACHERS]},
    "all": {},
    "public": {},
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("publishers-hub"),
        configure_kwargs={"publishers": [NAMED, f"group:{TEACHERS}"]},
        publish=[
            {
                "owner": SEED_OWNER,
                "slug": "pub-seed",
                "title": "Seeded",
                "visibility": "all",
                **DASH,
            }
        ],
        extra_config=f"c.Authenticator.admin_users = {{{ADMIN!r}}}\n",
    )
    for name in (ADMIN, NAMED, MEMBER, STUDENT, SEED_OWNER):
        running.ensure_user(name)
    assert running.api("POST", f"/groups/{TEACHERS}").status_code in (201, 409)
    r = running.api("POST", f"/groups/{TEACHERS}/users", json={"users": [MEMBER]})
    assert r.status_code == 200, r.text
    yield running
    stop_hub(running)


def publish(hub: Hub, user: str, slug: str, visibility: str, **extra):
    return hub.svc(
        "POST",
        "dashboards",
        user,
        json={"slug": slug, "title": slug, "visibility": visibility, **DASH, **extra},
    )


def refused(r) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {"status": 403, "message": LIMIT}


def test_the_hub_log_says_the_layout_and_who_may_publish(hub: Hub):
    lines = [line for line in hub.log.read_text().splitlines() if "Path-based layout" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("[W "), lines[0]  # a warning
    assert f"{NAMED}, group:{TEACHERS}." in lines[0]


def test_a_user_who_is_no_publisher_publishes_private_only(hub: Hub):
    for visibility, targets in BEYOND_PRIVATE.items():
        refused(publish(hub, STUDENT, f"pub-try-{visibility}", visibility, **targets))
    mine = hub.svc("GET", "dashboards?mine=1", STUDENT).json()["items"]
    assert mine == []  # nothing was stored
    r = publish(hub, STUDENT, "pub-private", "private")
    assert r.status_code == 201, r.text
    # nor can the dashboard be shared later, while it stays private it may change
    ref = f"dashboards/{STUDENT}/pub-private"
    for visibility, targets in BEYOND_PRIVATE.items():
        refused(hub.svc("PATCH", ref, STUDENT, json={"visibility": visibility, **targets}))
    r = hub.svc("PATCH", ref, STUDENT, json={"title": "Renamed"})
    assert r.status_code == 200 and r.json()["visibility"] == "private", r.text
    assert hub.svc("GET", ref, NAMED).status_code == 404  # still nobody else's to see


def test_info_and_the_publish_form_show_the_limit(hub: Hub):
    info = hub.svc("GET", "info", STUDENT).json()
    assert (info["visibilities"], info["publish_limit"]) == (["private"], LIMIT)
    page = hub.login(STUDENT).get(f"{hub.url}{SERVICE}publish", timeout=60)
    assert page.status_code == 200
    assert 'id="publish-limit"' in page.text and "configure(c, publishers=[...])" in page.text
    assert '<option value="private">' in page.text
    for visibility in BEYOND_PRIVATE:
        assert f'<option value="{visibility}">' not in page.text
    # a publisher gets every choice and no note
    page = hub.login(NAMED).get(f"{hub.url}{SERVICE}publish", timeout=60)
    assert 'id="publish-limit"' not in page.text and '<option value="public">' in page.text
    assert hub.svc("GET", "info", NAMED).json()["publish_limit"] == ""


@pytest.mark.parametrize("user", [ADMIN, NAMED, MEMBER], ids=["admin", "named", "group-member"])
def test_admins_publishers_and_their_groups_share(hub: Hub, user: str):
    for visibility, targets in BEYOND_PRIVATE.items():
        slug = f"pub-{visibility}"
        r = publish(hub, user, slug, visibility, **targets)
        assert r.status_code == 201, r.text
        assert r.json()["visibility"] == visibility
    r = hub.svc("PATCH", f"dashboards/{user}/pub-all", user, json={"visibility": "public"})
    assert r.status_code == 200, r.text
    assert hub.svc("GET", f"dashboards/{user}/pub-all", STUDENT).status_code == 200


def test_seed_dashboards_are_the_operators_own(hub: Hub):
    seeded = hub.svc("GET", f"dashboards/{SEED_OWNER}/pub-seed", STUDENT)
    assert seeded.status_code == 200, seeded.text
    assert seeded.json()["visibility"] == "all"


def test_the_command_line_gives_the_same_reason(hub: Hub):
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"}
    env.update(JUPYTERHUB_URL=hub.url, JUPYTERHUB_API_TOKEN=hub.user_token(STUDENT))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub_viz.cli",
            "publish",
            "dash/app.py",
            "--title",
            "CLI try",
            "--framework",
            "dash",
            "--visibility",
            "all",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.strip() == f"hub-viz publish: {LIMIT}"

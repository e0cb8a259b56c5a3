"""The service's dashboards and records outlive a restart of the hub (and of the service)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ..conftest import start_hub, stop_hub
from .test_api import (
    DASH,
    DASH_MARKER,
    assert_dash_page,
    check_enter_url,
    open_ready,
    share_targets,
    visit,
    wait_until,
)

pytestmark = pytest.mark.hub

OWNER = "restart-owner"
VIEWER = "restart-viewer"
MEMBER = "restart-member"
TEAM = "restart-team"

# Lets the tester read the service's roles, to check them on the live hub.
READ_SERVICE_ROLES = """
c.JupyterHub.load_roles.append(
    {"name": "tester-reads-services", "scopes": ["read:services", "read:roles:services"],
     "services": ["tester"]}
)
"""

DASHBOARDS = {
    "restart-private": {"title": "Private figures", "description": "Only mine", **DASH},
    "restart-shared": {
        "title": "Shared figures",
        "visibility": "users",
        "share_users": [VIEWER],
        **DASH,
    },
    "restart-team": {
        "title": "Team figures",
        "visibility": "groups",
        "share_groups": [TEAM],
        "mode": "per-viewer",
        **DASH,
    },
    "restart-public": {
        "title": "Public figures",
        "visibility": "public",
        "framework": "bokeh",
        "entry": "bokeh/app.py",
        "args": ["--rows", "3"],
    },
}


def read_all(hub: Any) -> dict[str, dict[str, Any]]:
    """Each dashboard as its owner reads it, and its usage (with deployments)."""
    out = {}
    for slug in DASHBOARDS:
        r = hub.svc("GET", f"dashboards/{OWNER}/{slug}", OWNER)
        assert r.status_code == 200, r.text
        u = hub.svc("GET", f"dashboards/{OWNER}/{slug}/usage", OWNER)
        assert u.status_code == 200, u.text
        out[slug] = {"dashboard": r.json(), "usage": u.json()}
    return out


def visible_to(hub: Any, user: str) -> set[str]:
    r = hub.svc("GET", "dashboards", user)
    assert r.status_code == 200, r.text
    return {d["slug"] for d in r.json()["items"] if d["owner"] == OWNER}


def test_dashboards_and_records_survive_a_restart(tmp_path):
    state = tmp_path / "hub"
    state.mkdir()
    hub = start_hub(state, extra_config=READ_SERVICE_ROLES)
    try:
        # the live hub gives the service its one role (and its scopes come from configure())
        r = hub.api("GET", "/services/hub-viz")
        assert r.status_code == 200, r.text
        assert r.json()["roles"] == ["hub-viz-service"]

        for name in (OWNER, VIEWER, MEMBER):
            hub.ensure_user(name)
        assert hub.api("POST", f"/groups/{TEAM}").status_code == 201
        r = hub.api("POST", f"/groups/{TEAM}/users", json={"users": [MEMBER]})
        assert r.status_code == 200, r.text
        for slug, fields in DASHBOARDS.items():
            r = hub.svc("POST", "dashboards", OWNER, json={"slug": slug, **fields})
            assert r.status_code == 201, r.text

        _, url = open_ready(hub, OWNER, "restart-shared", VIEWER)
        session, page = visit(hub, url)
        assert_dash_page(hub, session, page, OWNER, "restart-shared")
        team_body, _ = open_ready(hub, OWNER, "restart-team", MEMBER)
        team_server = team_body["server"]
        assert team_server.startswith(f"{MEMBER}/restart-team-")

        before = read_all(hub)
        assert before["restart-shared"]["usage"]["opens"] == 1
        assert before["restart-shared"]["dashboard"]["status"] == "running"
        assert before["restart-team"]["usage"]["recent"][0]["server"] == team_server
        lists = {user: visible_to(hub, user) for user in (VIEWER, MEMBER)}
        assert lists == {
            VIEWER: {"restart-shared", "restart-public"},
            MEMBER: {"restart-team", "restart-public"},
        }
        assert share_targets(hub, OWNER, "restart-shared") == {f"user:{VIEWER}"}
    finally:
        stop_hub(hub)

    assert hub.proc.returncode is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{hub.url}/hub/api/", timeout=5)

    port = int(hub.url.rsplit(":", 1)[1])
    again = start_hub(state, port=port, token=hub.token, extra_config=READ_SERVICE_ROLES)
    try:
        assert again.url == hub.url

        # the hub stopped every server when it stopped; the service notices and closes
        # the open deployment records ("stopped"), keeping when and by whom they started
        def closed() -> dict[str, dict[str, Any]] | None:
            now = read_all(again)
            records = [d for s in now.values() for d in s["usage"]["recent"]]
            return now if all(d["stopped"] for d in records) else None

        after = wait_until(closed, what="the service to close the records of stopped servers")
        for slug, was in before.items():
            now = after[slug]
            assert now["dashboard"].pop("status") == "stopped"
            was["dashboard"].pop("status")
            assert now["dashboard"] == was["dashboard"], slug  # every field, as published
            for key in ("deployments", "opens", "viewers", "title", "owner", "slug", "days"):
                assert now["usage"][key] == was["usage"][key], (slug, key)
            assert len(now["usage"]["recent"]) == len(was["usage"]["recent"])
            for new, old in zip(now["usage"]["recent"], was["usage"]["recent"], strict=True):
                for key in ("server", "started", "started_by"):
                    assert new[key] == old[key], (slug, key)
                if old["stopped"] is None:
                    assert new["stop_reason"] == "stopped" and new["stopped_by"] == ""
            assert now["usage"]["running_now"] == 0
        assert [d["server"] for d in after["restart-team"]["usage"]["recent"]] == [team_server]
        assert after["restart-private"]["dashboard"]["description"] == "Only mine"
        assert after["restart-public"]["dashboard"]["args"] == ["--rows", "3"]
        assert after["restart-shared"]["usage"]["recent"][0]["started_by"] == VIEWER

        assert {user: visible_to(again, user) for user in (VIEWER, MEMBER)} == lists
        assert share_targets(again, OWNER, "restart-shared") == {f"user:{VIEWER}"}
        assert again.api("GET", "/services/hub-viz").json()["roles"] == ["hub-viz-service"]

        # and it still opens: the grants are signed with the same key as before
        _, url = open_ready(again, OWNER, "restart-shared", VIEWER)
        check_enter_url(url, OWNER, "restart-shared")
        session, page = visit(again, url)
        assert_dash_page(again, session, page, OWNER, "restart-shared", marker=DASH_MARKER)
        usage = again.svc("GET", f"dashboards/{OWNER}/restart-shared/usage", OWNER).json()
        assert (usage["deployments"], usage["opens"], usage["running_now"]) == (2, 2, 1)
        assert (
            usage["recent"][1]["started"]
            == before["restart-shared"]["usage"]["recent"][0]["started"]
        )
    finally:
        stop_hub(again)

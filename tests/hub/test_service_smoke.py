"""The service's core path on every supported hub: publish, share with a group, open.

Marked ``smoke`` so CI also runs it on JupyterHub 5.5.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from ..conftest import Hub

pytestmark = [pytest.mark.hub, pytest.mark.smoke]


def test_group_member_opens_a_published_dashboard(hub: Hub) -> None:
    author, member, outsider = "smoke-author", "smoke-member", "smoke-outsider"
    for name in (author, member, outsider):
        hub.ensure_user(name)
    assert hub.api("POST", "/groups/smoke-course").status_code in (201, 409)
    r = hub.api("POST", "/groups/smoke-course/users", json={"users": [member]})
    assert r.status_code == 200, r.text

    r = hub.svc(
        "POST",
        "dashboards",
        author,
        json={
            "title": "Smoke sales",
            "slug": "smoke-sales",
            "entry": "dash/app.py",
            "visibility": "groups",
            "share_groups": ["smoke-course"],
        },
    )
    assert r.status_code == 201, r.text
    try:
        assert hub.svc("GET", f"dashboards/{author}/smoke-sales", outsider).status_code == 404
        r = hub.svc("POST", f"dashboards/{author}/smoke-sales/open", member)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "ready":
            hub.wait(author, "smoke-sales")
            r = hub.svc("POST", f"dashboards/{author}/smoke-sales/open", member)
            body = r.json()
        assert body["status"] == "ready", body

        # The one-time link opens the page without any hub login.
        page = requests.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200
        # the example's own Dash page, served under this server's prefix
        assert "<title>Dash example</title>" in page.text
        config = re.search(
            r'<script id="_dash-config" type="application/json"[^>]*>(.*?)'
            r"</script>",
            page.text,
            re.S,
        )
        assert config, page.text[:500]
        prefix = json.loads(config.group(1))["requests_pathname_prefix"]
        assert prefix.endswith(f"/user/{author}/smoke-sales/"), prefix

        # The hub's sharing API now grants the group access to the server.
        shares = hub.api("GET", f"/shares/{author}/smoke-sales").json()["items"]
        assert [s["group"]["name"] for s in shares if s.get("group")] == ["smoke-course"]
    finally:
        r = hub.svc("DELETE", f"dashboards/{author}/smoke-sales", author)
        assert r.status_code == 204, r.text
    assert "smoke-sales" not in hub.api("GET", f"/users/{author}").json()["servers"]

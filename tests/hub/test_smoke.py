"""The smoke subset: Voilà and Dash through the hub, also run on JupyterHub 5.5."""

from __future__ import annotations

import pytest

from ..examples import EXAMPLES

pytestmark = [pytest.mark.hub, pytest.mark.smoke]


@pytest.mark.parametrize("name", ["voila-example", "dash-example"])
def test_start_and_open_through_the_hub(hub, name):
    spec, expected = EXAMPLES[name]
    server = f"smoke-{name}"[:30]
    r = hub.start("carol", server, spec)
    assert r.status_code in (201, 202), r.text
    assert hub.wait("carol", server).get("ready")
    session = hub.login("carol")
    path = "" if name == "voila-example" else "_dash-layout"
    page = session.get(hub.at(f"/user/carol/{server}/{path}"), timeout=60)
    assert page.status_code == 200
    assert expected in page.text
    hub.stop("carol", server)
    assert server not in hub.api("GET", "/users/carol").json()["servers"]

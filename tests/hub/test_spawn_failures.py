"""Bad specs and crashing apps fail fast, readably, and leave the hub healthy."""

from __future__ import annotations

import html

import pytest
import requests

pytestmark = pytest.mark.hub

BAD_SPECS = [
    (
        "bad-framework",
        {"framework": "matplotlib", "entry": "dash/app.py"},
        "Unknown framework 'matplotlib'; allowed: voila, dash",
    ),
    ("bad-missing", {"framework": "dash", "entry": "dash/nope.py"}, "does not exist"),
    (
        "bad-escape",
        {"framework": "dash", "entry": "../../etc/passwd"},
        "must stay inside the dashboards folder",
    ),
    (
        "bad-option",
        {"framework": "voila", "entry": "--help"},
        "not starting with '-' or '.'",
    ),
    (
        "bad-mode",
        {"framework": "notebook", "entry": "notebook/analysis.ipynb", "mode": "shared"},
        "only in mode(s): per-viewer",
    ),
]


@pytest.mark.smoke
@pytest.mark.parametrize(("server", "spec", "message"), BAD_SPECS)
def test_bad_spec_fails_fast_with_a_readable_message(hub, server, spec, message):
    r = hub.start("alice", server, spec)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert str(hub.root) not in r.text, "server paths must not leak"
    pending = html.unescape(hub.spawn_message("alice", server))
    assert message in pending
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200
    hub.stop("alice", server)


def test_server_without_spec_or_preset_is_refused(hub):
    r = hub.start("alice", "nothing-here", {})
    assert r.status_code == 400
    assert "No dashboard is defined for server 'nothing-here'" in r.json()["message"]
    hub.stop("alice", "nothing-here")


@pytest.mark.smoke
def test_app_crashing_at_startup_is_a_failed_spawn_with_the_reason(hub):
    r = hub.start("alice", "crashing", {"framework": "dash", "entry": "broken/crash.py"})
    assert r.status_code in (201, 202, 400, 500), r.text
    assert hub.wait("alice", "crashing") == {}, "the failed server must not stay"
    page = html.unescape(hub.spawn_message("alice", "crashing"))
    assert "The Dash dashboard failed to start" in page
    assert "the data file sales.csv is missing" in page, "the owner sees the app's error"
    # another user learns nothing about alice's failed server
    other = hub.login("bob").get(f"{hub.url}/hub/spawn-pending/alice/crashing", timeout=30)
    assert "sales.csv" not in other.text
    # and the hub still starts good dashboards afterwards
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200
    hub.stop("alice", "crashing")

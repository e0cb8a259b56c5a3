"""hub_viz's part of the hub's start-up, in JupyterHub's own start-up sequence: an
in-process ``MockHub`` (pytest-jupyterhub's fixture) initialised from a configuration
made by ``configure()``, with settings changed after it. Nothing is started (no
proxy, no service): ``initialize()`` alone makes the proxy object, where
:func:`hub_viz.hubstart.prepare_service` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.hubproxy import DashboardProxy
from hub_viz.settings import SERVICE_CONFIG_ENV

pytest.importorskip("pytest_jupyterhub")

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _default_http_client() -> Any:
    """The hub picks tornado's curl client where pycurl exists: not for later tests."""
    from tornado.httpclient import AsyncHTTPClient

    yield
    AsyncHTTPClient.configure(None)


def passed_to_service(app: Any) -> dict[str, Any]:
    [spec] = [s for s in app.services if s["name"] == "hub-viz"]
    return json.loads(spec["environment"][SERVICE_CONFIG_ENV])


async def test_the_hubs_start_passes_late_settings_and_makes_the_keys(
    configured_mockhub_instance: Any,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    c = Config()
    configure(c, state_dir=str(state), cull_idle=False)
    # set after configure(), the way the configuration reference shows
    c.DashboardSettings.extra_frameworks = {"vizro": {"command": ["{python}", "{entry}"]}}
    c.DashboardSettings.allowed_frameworks = ["dash", "vizro"]
    assert not state.exists()  # configure() wrote nothing
    app = configured_mockhub_instance(c)
    await app.initialize([])
    assert isinstance(app.proxy, DashboardProxy)
    shared = passed_to_service(app)["DashboardSettings"]
    assert shared["allowed_frameworks"] == ["dash", "vizro"]
    assert "vizro" in shared["extra_frameworks"]
    assert sorted(p.name for p in state.iterdir()) == [
        "hub_viz_signing_key.pem",
        "hub_viz_signing_key.pub",
    ]
    # a spawner the hub makes reads the same settings and the key the hub made
    spawner = app.spawner_class(config=app.config)
    assert spawner.allowed_frameworks == ["dash", "vizro"]
    assert "vizro" in spawner.frameworks
    assert spawner.service_public_key == (state / "hub_viz_signing_key.pub").read_text()

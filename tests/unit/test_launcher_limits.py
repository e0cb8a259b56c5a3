"""What bounds a launcher's memory: the spawner's limits reach it, bodies are told apart."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from hub_viz.launcher.app import parse_args
from hub_viz.launcher.proxy import has_body

from .test_git_instances import GIT_SPEC, local_spawner

pytestmark = pytest.mark.unit


async def test_the_spawners_limits_reach_the_launcher(tmp_path):
    (tmp_path / "prof" / "lecture").mkdir(parents=True)
    (tmp_path / "prof" / "lecture" / "app.py").write_text("app = None\n")
    spec = {k: v for k, v in GIT_SPEC.items() if k != "git"}
    spawner = local_spawner(tmp_path, spec, launcher_max_body_size=10 * 1024 * 1024,
                            launcher_body_timeout=45, launcher_idle_timeout=90)
    spawner._dashboard = await spawner.resolve_dashboard()
    options = parse_args(spawner.get_args())
    assert (options.max_body_size, options.body_timeout, options.idle_timeout) == (
        10 * 1024 * 1024, 45, 90)


def test_the_launchers_defaults_bound_bodies_and_idle_connections():
    options = parse_args(["--entry=app.py"])
    assert (options.max_body_size, options.body_timeout, options.idle_timeout) == (
        64 * 1024 * 1024, 300, 300)


@pytest.mark.parametrize("headers, expected", [
    ({}, False),
    ({"Content-Length": "0"}, False),
    ({"Content-Length": "12"}, True),
    ({"Transfer-Encoding": "chunked"}, True),
])
def test_has_body(headers: dict, expected: bool):
    assert has_body(HTTPHeaders(headers)) is expected

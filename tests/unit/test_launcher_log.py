"""The launcher's access log: successful answers at debug (as Jupyter servers log them),
redirects at info, refusals as warnings and errors; the spawner's ``debug`` shows them all."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from hub_viz.launcher.app import log_request, parse_args

from .test_git_instances import path_source_args

pytestmark = pytest.mark.unit


def handler(status: int, path: str = "/user/prof/sales/_dash-layout") -> SimpleNamespace:
    request = SimpleNamespace(
        method="GET", path=path, remote_ip="127.0.0.1", request_time=lambda: 0.0012
    )
    return SimpleNamespace(get_status=lambda: status, request=request, settings={})


@pytest.mark.parametrize(
    "status, at_info, at_debug",
    [
        (200, None, logging.DEBUG),
        (204, None, logging.DEBUG),
        (304, None, logging.DEBUG),
        (302, logging.INFO, logging.INFO),
        (403, logging.WARNING, logging.WARNING),
        (404, logging.WARNING, logging.WARNING),
        (502, logging.ERROR, logging.ERROR),
    ],
)
def test_each_answer_is_logged_at_its_level(caplog, status, at_info, at_debug):
    for level, expected in ((logging.INFO, at_info), (logging.DEBUG, at_debug)):
        caplog.clear()
        with caplog.at_level(level, logger="tornado.access"):
            log_request(handler(status))  # type: ignore[arg-type]
        records = [r for r in caplog.records if r.name == "tornado.access"]
        if expected is None:
            assert records == []
        else:
            assert [r.levelno for r in records] == [expected]
            assert records[0].getMessage() == (
                f"{status} GET /user/prof/sales/_dash-layout (127.0.0.1) 1.20ms"
            )


async def test_the_spawners_debug_makes_the_launcher_log_at_debug(tmp_path):
    assert parse_args(await path_source_args(tmp_path)).debug is False
    assert parse_args(await path_source_args(tmp_path, debug=True)).debug is True

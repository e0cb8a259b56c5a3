"""The launcher's access log: successful answers at debug (as Jupyter servers log them),
redirects at info, refusals as warnings and errors; the spawner's ``debug`` shows them all."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from hub_viz.launcher.app import access_log, log_request, parse_args

from .test_git_instances import path_source_args

pytestmark = pytest.mark.unit


def handler(status: int, path: str = "/user/prof/sales/_dash-layout") -> SimpleNamespace:
    request = SimpleNamespace(
        method="GET", path=path, remote_ip="127.0.0.1", request_time=lambda: 0.0012
    )
    return SimpleNamespace(get_status=lambda: status, request=request, settings={})


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logged(status: int, level: int) -> list[logging.LogRecord]:
    """What :func:`log_request` writes with tornado's access logger at ``level``.

    The handler sits on the logger object itself: JupyterHub (a hub test run before
    this one in the same process) renames tornado's loggers and parents them to its
    own, so neither the name nor propagation to the root can be relied on."""
    capture = Capture()
    saved = access_log.level, access_log.disabled
    access_log.addHandler(capture)
    access_log.setLevel(level)
    access_log.disabled = False
    try:
        log_request(handler(status))  # type: ignore[arg-type]
    finally:
        access_log.removeHandler(capture)
        access_log.setLevel(saved[0])
        access_log.disabled = saved[1]
    return capture.records


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
def test_each_answer_is_logged_at_its_level(status, at_info, at_debug):
    for level, expected in ((logging.INFO, at_info), (logging.DEBUG, at_debug)):
        records = logged(status, level)
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

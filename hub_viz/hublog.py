"""The hub's request log without the service's routine polls.

The hub_viz service lists the running servers every few seconds
(``GET /hub/api/users?state=active…``, to close the records of servers that
stopped without it), and the idle culler every minute (``?state=ready``):
JupyterHub would log each at INFO, burying what a person reads the log for. :func:`log_request` logs those successful listings at
DEBUG and everything else as JupyterHub does (``configure()`` sets it as the
hub's ``log_function``).
"""

from __future__ import annotations

import logging
from typing import Any

from jupyterhub.log import log_request as hub_log_request


def is_routine_poll(handler: Any) -> bool:
    """A successful listing of users by server state (the service's, the culler's)."""
    request = handler.request
    return (
        handler.get_status() < 300
        and request.method == "GET"
        and request.path.rstrip("/").endswith("/api/users")
        and "state=" in (request.query or "")
    )


def log_request(handler: Any) -> None:
    if is_routine_poll(handler):
        logger = logging.getLogger("tornado.access")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %.2fms",
                handler.get_status(),
                handler.request.uri,
                1000.0 * handler.request.request_time(),
            )
        return
    hub_log_request(handler)

"""The service's access log and request summaries, without secrets.

A query value is logged only for the parameters in :data:`KEEP` (none of them
secret); every other one, and the token of an embed link, is written as
``[secret]``. The open flow sends its XSRF token in a header, never in a
URL; this is the second line of defence (the OAuth callback's ``code`` and
``state``, an old page, a script that puts a token in a query).
"""

from __future__ import annotations

import re
from typing import Any

from tornado.log import access_log

KEEP = frozenset({"q", "mine", "days", "v"})  # search, filters, static file versions
SECRET = "[secret]"
EMBED_TOKEN = re.compile(r"(/embed/)[^/?#]+")


def scrub_uri(uri: str) -> str:
    """``uri`` with embed tokens and the values of query parameters not in KEEP hidden."""
    path, sep, query = uri.partition("?")
    path = EMBED_TOKEN.sub(r"\g<1>" + SECRET, path)
    if not sep:
        return path
    parts = []
    for part in query.split("&"):
        key, eq, _value = part.partition("=")
        if key in KEEP:
            parts.append(part)
        elif part:
            parts.append(f"{key}={SECRET}" if eq else SECRET)
    return f"{path}?{'&'.join(parts)}"


def request_summary(handler: Any) -> str:
    request = handler.request
    return f"{request.method} {scrub_uri(request.uri or '')} ({request.remote_ip})"


# what launchers and open pages ask again and again: logged at debug level when it works,
# so that an idle hub's log is not a wall of polls (a class's pings, every launcher's
# look at its embed origins every 10 s)
ROUTINE = re.compile(
    r"/(api/embed-origins/|api/viewer-access|api/dashboards/[^/]+/[^/]+/ping$"
    r"|embed/[^/]+/ping$)"
)


def log_request(handler: Any) -> None:
    """Tornado's access log line (status, method, URI, address, time), URI scrubbed."""
    status = handler.get_status()
    if status < 300 and ROUTINE.search(handler.request.path):
        log = access_log.debug
    elif status < 400:
        log = access_log.info
    elif status < 500:
        log = access_log.warning
    else:
        log = access_log.error
    log("%d %s %.2fms", status, request_summary(handler), 1000.0 * handler.request.request_time())

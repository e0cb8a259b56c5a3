"""What an app's response may carry to the viewer: its own cookies, public redirects.

Pure functions, used by the proxy (:mod:`hub_viz.launcher.proxy`) on every
response header the app sends:

- a ``Set-Cookie`` passes only when it is the app's own: not named like a
  hub, service or hub_viz cookie, without ``Domain`` (so host-only) and with
  no ``Path`` outside the server's prefix. Anything else could toss a cookie
  onto the hub, the service or another dashboard;
- a ``Location``, ``Content-Location`` or ``Refresh`` URL that points at the
  app's internal address (``http://127.0.0.1:<port>/…``) becomes the public
  path under the server's prefix, so the port never reaches a browser.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Cookie names the app may never set, nor ever receive (checked without a
# __Host-/__Secure- prefix): the hub's (jupyterhub-*, including every HubOAuth
# cookie of a user's server), the hub's services' OAuth cookies (service-<name>),
# XSRF cookies and hub_viz's own viewer cookies.
RESERVED_COOKIE_PREFIXES = ("jupyterhub-", "service-", "_xsrf", "hub-viz")
_NAME_PREFIXES = ("__host-", "__secure-")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_REFRESH = re.compile(r"^(\s*[0-9.]+\s*[;,]\s*(?:url\s*=\s*)?)(['\"]?)(.*?)\2\s*$", re.IGNORECASE)


def is_reserved_cookie(name: str) -> bool:
    """A cookie that belongs to the hub, a hub service or hub_viz, not to the app."""
    lower = name.strip().lower()
    for prefix in _NAME_PREFIXES:
        if lower.startswith(prefix):
            lower = lower[len(prefix) :]
    return lower.startswith(RESERVED_COOKIE_PREFIXES)


def set_cookie_refusal(value: str, prefix: str) -> tuple[str, str]:
    """(cookie name, why it is refused) for a ``Set-Cookie`` value; why is "" when it may pass."""
    pieces = value.split(";")
    name, sep, _ = pieces[0].partition("=")
    name = name.strip()
    if not sep or not name:
        return name, "it is not a cookie"
    if is_reserved_cookie(name):
        return name, "it names a hub, service or hub_viz cookie"
    path = ""
    for attribute in pieces[1:]:
        key, _, attr_value = attribute.partition("=")
        key = key.strip().lower()
        if key == "domain":
            return name, "it carries a Domain"
        if key == "path":
            path = attr_value.strip()  # the last Path counts (RFC 6265)
    if path and not path_inside(path, prefix):
        return name, f"its Path is outside {prefix}"
    return name, ""


def path_inside(path: str, prefix: str) -> bool:
    """Is a cookie ``path`` the server's ``prefix`` or below it?"""
    return path == prefix.rstrip("/") or path.startswith(prefix) and "/../" not in path + "/"


def public_url(value: str, app_port: int, prefix: str) -> str:
    """``value`` with the app's internal origin replaced by the server's public path.

    ``http://127.0.0.1:<port>/user/a/x/page?q`` becomes ``/user/a/x/page?q``; a
    path outside the prefix is put under it. Other URLs are left as they are.
    """
    parts = urlsplit(value.strip())
    if not parts.netloc or parts.scheme not in ("", "http", "https", "ws", "wss"):
        return value
    host, _, port = parts.netloc.rpartition("@")[2].lower().rpartition(":")
    if host not in LOOPBACK_HOSTS or port != str(app_port):
        return value
    path = parts.path or "/"
    if not (path.startswith(prefix) or path == prefix.rstrip("/")):
        path = prefix + path.lstrip("/")
    return urlunsplit(("", "", path, parts.query, parts.fragment))


def public_refresh(value: str, app_port: int, prefix: str) -> str:
    """A ``Refresh`` header (``5; url=…``) whose URL is made public by :func:`public_url`."""
    match = _REFRESH.match(value)
    if not match:
        return value
    lead, quote, url = match.groups()
    return f"{lead}{quote}{public_url(url, app_port, prefix)}{quote}"

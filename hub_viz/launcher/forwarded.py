"""Who asked, and over which scheme: what the launcher trusts of a request's origin.

Viewers reach the launcher through the hub's proxy, which appends the address
and scheme it saw to ``X-Forwarded-For`` and ``X-Forwarded-Proto``. A viewer
can send those headers too (and ``X-Scheme``, ``X-Real-IP``, which tornado's
own ``xheaders`` would prefer): the proxy passes them on with its entry last.
So the launcher reads the request's origin itself, once, before any handler
runs (:class:`TrustedOrigin`):

- the **scheme** comes from configuration when there is any: the server's
  public URL (``HUB_VIZ_PUBLIC_URL``, the isolated layout), the hub's
  (``JUPYTERHUB_PUBLIC_URL``/``JUPYTERHUB_PUBLIC_HUB_URL``, set with
  ``JupyterHub.public_url``) or the service's open page
  (``HUB_VIZ_OPEN_URL``). Only without any does the proxy's entry (the last
  of ``X-Forwarded-Proto``) count. It decides the viewer cookie's name and
  ``Secure`` (``__Host-`` on HTTPS) and the scheme the app is told;
- the **address** is the proxy's last ``X-Forwarded-For`` entry (for logs and
  the app's ``X-Forwarded-For``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from tornado import httputil
from tornado.netutil import is_valid_ip

SCHEMES = ("http", "https")
# The environment that names the public URL, most specific first.
PUBLIC_URL_VARIABLES = (
    "HUB_VIZ_PUBLIC_URL",
    "JUPYTERHUB_PUBLIC_URL",
    "JUPYTERHUB_PUBLIC_HUB_URL",
    "HUB_VIZ_OPEN_URL",
)


def configured_scheme(env: Mapping[str, str] = os.environ) -> str:
    """The public scheme the spawner's configuration names ("" when none does)."""
    for name in PUBLIC_URL_VARIABLES:
        scheme = urlsplit(env.get(name, "")).scheme.lower()
        if scheme in SCHEMES:
            return scheme
    return ""


def viewer_address_and_scheme(
    headers: httputil.HTTPHeaders, peer_ip: str, peer_protocol: str
) -> tuple[str, str]:
    """The viewer's address and scheme as the hub's proxy in front of the launcher says.

    That proxy appends the address and scheme it saw to ``X-Forwarded-For`` and
    ``X-Forwarded-Proto``: the last entries count. ``X-Real-IP`` and ``X-Scheme``,
    which tornado would prefer and a viewer can send through the proxy untouched,
    count for nothing. Without the headers: the connection's own.
    """
    hops = headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    proto = headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return (
        hops if is_valid_ip(hops) else peer_ip,
        proto if proto in SCHEMES else peer_protocol,
    )


class TrustedOrigin:
    """Sets a request's ``protocol`` and ``remote_ip`` to what the launcher trusts."""

    def __init__(self, scheme: str = "") -> None:
        self.scheme = scheme if scheme in SCHEMES else ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TrustedOrigin:
        return cls(configured_scheme(env))

    def apply(self, request: httputil.HTTPServerRequest) -> None:
        ip, proxied = viewer_address_and_scheme(
            request.headers, request.remote_ip or "", request.protocol
        )
        request.remote_ip = ip
        request.protocol = self.scheme or proxied
        request.origin_trusted = True  # type: ignore[attr-defined]

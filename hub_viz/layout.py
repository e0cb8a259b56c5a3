"""Where a browser finds the hub, the service and each user's servers.

Two layouts:

- *isolated* (``JupyterHub.subdomain_host`` set, e.g. ``http://hub.localhost:8000``):
  the hub at that host, the service at ``hub-viz--service.<host>``, a user's
  default server at ``<user>.<host>`` (names encoded as JupyterHub's default
  ``idna`` subdomain hook does), and every named server -- each dashboard
  instance -- at a host of its own, ``<server>--<8 hex>.<host>``. A
  dashboard's script then runs on an origin where its viewer holds no
  credential for the hub, the service, their own servers or any other
  dashboard. (JupyterHub gives hosts to users; the spawner's ``proxy_spec``
  moves each named server's route to its own host.)
- *path-based* (no ``subdomain_host``): everything on the hub's origin; URLs
  are paths, and origins are ``""``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from jupyterhub.utils import subdomain_hook_idna, url_escape_path


@dataclass(frozen=True)
class Layout:
    """The public origins of one hub (pure: no I/O)."""

    subdomain_host: str = ""
    service_name: str = "hub-viz"
    base_url: str = "/"

    @property
    def isolated(self) -> bool:
        return bool(self.subdomain_host)

    def _origin(self, host: str) -> str:
        parts = urlsplit(self.subdomain_host)
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")

    @property
    def domain(self) -> str:
        """The hub's host name (``""`` on the path-based layout)."""
        return urlsplit(self.subdomain_host).hostname or "" if self.isolated else ""

    @property
    def hub_origin(self) -> str:
        return self._origin(self.domain) if self.isolated else ""

    def user_host(self, user: str) -> str:
        """Host name of ``user``'s servers (``""`` on the path-based layout)."""
        return subdomain_hook_idna(user, self.domain, "user") if self.isolated else ""

    def user_origin(self, user: str) -> str:
        return self._origin(self.user_host(user)) if self.isolated else ""

    @property
    def service_origin(self) -> str:
        if not self.isolated:
            return ""
        return self._origin(subdomain_hook_idna(self.service_name, self.domain, "service"))

    @property
    def service_url(self) -> str:
        """The service's public prefix: absolute on the isolated layout."""
        return f"{self.service_origin}{self.base_url}services/{quote(self.service_name)}/"

    def server_host(self, owner: str, name: str) -> str:
        """Host name of one server: the user's for the default server, else its own.

        ``<server>--<8 hex of owner/server>``: server names are ``[a-z0-9-]`` without
        ``--``, so this never equals a user's label (plain ``[a-z0-9]``, or hashed
        as ``u-<7>--<7 hex>``) or a service's (``<name>--service``).
        """
        if not self.isolated:
            return ""
        if not name:
            return self.user_host(owner)
        digest = hashlib.sha256(f"{owner}/{name}".encode()).hexdigest()[:8]
        return f"{name}--{digest}.{self.domain}"

    def server_path(self, owner: str, name: str) -> str:
        # escaped as the hub does ('+' in 'pat+viz@example.org'), or the link is a 404
        server = f"{url_escape_path(name)}/" if name else ""
        return f"{self.base_url}user/{url_escape_path(owner)}/{server}"

    def server_url(self, owner: str, name: str) -> str:
        """A server's public URL: absolute on the isolated layout."""
        host = self.server_host(owner, name)
        return (self._origin(host) if host else "") + self.server_path(owner, name)

    def server_proxy_spec(self, owner: str, name: str) -> str:
        """configurable-http-proxy's route for a server (host first when isolated)."""
        return self.server_host(owner, name) + self.server_path(owner, name)

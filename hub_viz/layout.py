"""Where a browser finds the hub, the service and each user's servers.

Two layouts:

- *isolated* (``JupyterHub.subdomain_host`` set, e.g. ``http://hub.localhost:8000``):
  the hub at that host, the service at ``hub-viz--service.<host>`` and each
  user's servers at ``<user>.<host>``, names encoded as JupyterHub's default
  ``idna`` subdomain hook does. A dashboard's script then runs on an origin
  where its viewer holds no credential for the hub or the service.
- *path-based* (no ``subdomain_host``): everything on the hub's origin; URLs
  are paths, and origins are ``""``.
"""

from __future__ import annotations

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

    def server_path(self, owner: str, name: str) -> str:
        # escaped as the hub does ('+' in 'pat+viz@example.org'), or the link is a 404
        return f"{self.base_url}user/{url_escape_path(owner)}/{url_escape_path(name)}/"

    def server_url(self, owner: str, name: str) -> str:
        """A server's public URL: absolute on the isolated layout."""
        return self.user_origin(owner) + self.server_path(owner, name)

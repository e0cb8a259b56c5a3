"""A small client of the hub_viz service API (standard library only).

Used by the ``hub-viz`` command line: every call authenticates with a hub API
token (``Authorization: token <token>``) and answers decoded JSON. Problems
raise :class:`APIError` with a message a person can act on: the service's own
JSON ``message`` when it gave one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import __version__
from .layout import Layout

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
DEFAULT_SERVICE = "hub-viz"
USER_AGENT = f"hub-viz-cli/{__version__}"


class APIError(Exception):
    """The service (or the way to it) answered with a problem; ``status`` 0: no answer."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect from an API call means a login page or a wrong URL: report it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def split_ref(ref: str) -> tuple[str, str]:
    """``owner/slug`` as (owner, slug); ValueError when it is not of that form."""
    owner, sep, slug = ref.partition("/")
    if not sep or not owner or not slug or "/" in slug:
        raise ValueError(f"expected OWNER/SLUG, e.g. alice/sales; got {ref!r}")
    return owner, slug


class Client:
    """Calls ``<hub_url>/services/<service>/api/...`` with a hub token."""

    def __init__(
        self,
        hub_url: str = DEFAULT_HUB_URL,
        token: str | None = None,
        service: str = DEFAULT_SERVICE,
        timeout: float = 60,
        service_url: str | None = None,
    ) -> None:
        if not token:
            raise APIError(
                "No hub API token: pass --token or set JUPYTERHUB_API_TOKEN "
                "(create one on the hub's Token page, /hub/token)."
            )
        self.hub_url = hub_url.rstrip("/") + "/"
        self.token = token
        self.service = service.strip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)
        # On the isolated layout the service has a host of its own; found on the first
        # call (the hub redirects its path) unless given.
        self.service_url = (
            service_url.rstrip("/") + "/"
            if service_url
            else f"{self.hub_url}services/{_quote(self.service)}/"
        )
        self._service_found = bool(service_url)

    @property
    def api_url(self) -> str:
        return f"{self.service_url}api/"

    def absolute(self, path: str) -> str:
        """A URL the service gave as a path (``/services/hub-viz/open/...``) made absolute;
        absolute ones (the isolated layout) stay as they are."""
        return urllib.parse.urljoin(self.service_url, path)

    # -- transport ------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """Call ``api/<path>``; the decoded JSON answer (None when there is no body)."""
        if not self._service_found:
            self._find_service()
        return self._request(method, path, body, query)

    def _find_service(self) -> None:
        """Where the service answers: a GET of its public API description on the hub's
        path, which the hub redirects into its own ``/hub/services/`` when the service
        has a host of its own (the isolated layout)."""
        self._service_found = True
        req = urllib.request.Request(
            self.api_url + "openapi.yaml", headers={"User-Agent": USER_AGENT}
        )
        try:
            self._opener.open(req, timeout=self.timeout).close()
        except urllib.error.HTTPError as e:
            location = e.headers.get("Location", "") if e.headers else ""
            if e.code in (301, 302, 303, 307, 308) and "/hub/services/" in location:
                hub = urllib.parse.urlsplit(self.hub_url)
                self.service_url = Layout(f"{hub.scheme}://{hub.netloc}", self.service).service_url
            e.close()
        except (OSError, ValueError):  # the call itself reports an unreachable hub
            pass

    def _request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        url = self.api_url + path
        if query:
            params = {k: v for k, v in query.items() if v is not None and v != ""}
            if params:
                url += "?" + urllib.parse.urlencode(params)
        return self._call(method, url, body)

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        data = None
        headers = {
            "Authorization": f"token {self.token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as e:
            raise self._error(e, url) from None
        except urllib.error.URLError as e:
            raise APIError(f"Cannot reach the hub at {self.hub_url}: {e.reason}") from None
        except (OSError, ValueError) as e:  # timeouts, resets, malformed URLs
            raise APIError(f"Cannot reach the hub at {self.hub_url}: {e}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise APIError(
                f"The answer from {url} (HTTP {status}) is not JSON; "
                f"is --hub-url ({self.hub_url}) the hub's public URL and "
                f"--service ({self.service}) right?",
                status,
            ) from None

    def _error(self, e: urllib.error.HTTPError, url: str) -> APIError:
        try:
            raw = e.read()
        except OSError:
            raw = b""
        finally:
            e.close()
        message = ""
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
        if 300 <= e.code < 400:
            where = e.headers.get("Location", "")
            message = (
                f"The hub redirected {url} to {where or 'another page'}; "
                "check --hub-url and --service, and that the token is valid."
            )
        elif not message:
            reason = e.reason if isinstance(e.reason, str) else ""
            message = f"HTTP {e.code} {reason}".strip() + f" from {url}"
            if e.code == 404:
                message += f"; is the service {self.service!r} running on this hub?"
        return APIError(message, e.code)

    # -- the API ------------------------------------------------------------------

    def lti_registration_url(self) -> dict[str, Any]:
        """A single-use LTI Dynamic Registration URL (the hub's, not the service's API;
        needs ``admin:users`` and ``tokens`` on all users: an admin's token)."""
        return self._call("POST", f"{self.hub_url}hub/lti13/registrations", {})

    def lti_platforms(self) -> list[dict[str, Any]]:
        """The platforms registered by Dynamic Registration (hub API; an admin's token)."""
        answer = self._call("GET", f"{self.hub_url}hub/lti13/registrations")
        return list(answer.get("platforms", [])) if isinstance(answer, dict) else []

    def lti_set_deployments(
        self, issuer: str, client_id: str, deployments: list[str]
    ) -> dict[str, Any]:
        """Which deployments of a registered platform may launch (empty: any)."""
        return self._call(
            "PATCH",
            f"{self.hub_url}hub/lti13/registrations",
            {"issuer": issuer, "client_id": client_id, "deployments": deployments},
        )

    def lti_rotate_key(self, *, immediately: bool = False) -> dict[str, Any]:
        """Rotate the tool's LTI signing key (hub API; an admin's token, as above)."""
        return self._call("POST", f"{self.hub_url}hub/lti13/keys", {"immediately": immediately})

    def info(self) -> dict[str, Any]:
        return self.request("GET", "info")

    def dashboards(self, *, mine: bool = False, search: str = "") -> list[dict[str, Any]]:
        data = self.request("GET", "dashboards", query={"mine": "1" if mine else None, "q": search})
        return list(data.get("items", [])) if isinstance(data, dict) else []

    def dashboard(self, owner: str, slug: str) -> dict[str, Any]:
        return self.request("GET", f"dashboards/{_quote(owner)}/{_quote(slug)}")

    def publish(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "dashboards", body=fields)

    def unpublish(self, owner: str, slug: str) -> None:
        self.request("DELETE", f"dashboards/{_quote(owner)}/{_quote(slug)}")

    def usage(self, owner: str, slug: str, *, days: int = 30) -> dict[str, Any]:
        return self.request(
            "GET", f"dashboards/{_quote(owner)}/{_quote(slug)}/usage", query={"days": days}
        )

    def all_usage(self, *, days: int = 30) -> dict[str, Any]:
        return self.request("GET", "usage", query={"days": days})

    def _versions(self, owner: str, slug: str) -> str:
        return f"dashboards/{_quote(owner)}/{_quote(slug)}/versions"

    def versions(self, owner: str, slug: str) -> dict[str, Any]:
        return self.request("GET", self._versions(owner, slug))

    def make_current(self, owner: str, slug: str, number: int) -> dict[str, Any]:
        return self.request("POST", f"{self._versions(owner, slug)}/{number}/current")

    def preview(self, owner: str, slug: str, number: int) -> dict[str, Any]:
        return self.request("POST", f"{self._versions(owner, slug)}/{number}/preview")

    def new_version(self, owner: str, slug: str, *, current: bool = True) -> dict[str, Any]:
        body = {"new_version": True, "make_current": current}
        return self.request("PATCH", f"dashboards/{_quote(owner)}/{_quote(slug)}", body=body)

    def webhook(self, owner: str, slug: str) -> dict[str, Any]:
        return self.request("POST", f"dashboards/{_quote(owner)}/{_quote(slug)}/webhook")

    def open_url(self, dashboard: dict[str, Any]) -> str:
        """The full URL that opens ``dashboard`` (an API dashboard object)."""
        return self.absolute(dashboard["open_url"])

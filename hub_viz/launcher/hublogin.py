"""Hub login for the launcher, loaded only when a request needs it.

``jupyterhub.services.auth`` (``HubOAuth``) pulls in JupyterHub's scopes
module, its ORM and SQLAlchemy: about 45 MB of memory and 0.6 s of imports
in every dashboard instance. Most viewers never need it: the service's open
flow admits them with a one-time grant and the launcher's own cookie
(:mod:`hub_viz.launcher.grants`). So the launcher imports it on the first
request that carries hub credentials (an API token, or the hub cookie of
this server), or that must log in through the hub (no service to send the
viewer to). Everything hub-specific is still JupyterHub's own code:
``HubOAuth.get_user`` and ``check_scopes`` decide, and the OAuth dance runs in
JupyterHub's ``HubOAuthenticated`` and ``HubOAuthCallbackHandler``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tornado import routing, web

LOGIN_PATH = "_hub_viz/login"


class HubLogin:
    """The server's ``HubOAuth``, created on first use, and the checks around it."""

    def __init__(
        self,
        api_token: str,
        prefix: str,
        cookie_name: str | None = None,
        cache_max_age: float = 60,
    ) -> None:
        self.api_token = api_token
        self.prefix = prefix
        # how long the hub's answer about a viewer (and so their scopes) is reused:
        # a share removed on the hub shuts them out within this many seconds
        self.cache_max_age = max(1, int(cache_max_age))
        # HubOAuth's cookie is named after the OAuth client id (``__Host-`` in front
        # on https); its presence is what tells a hub-logged-in viewer from anyone.
        self.cookie_name = cookie_name or os.environ.get("JUPYTERHUB_CLIENT_ID", "")
        self._auth: Any = None

    @property
    def auth(self) -> Any:
        """``HubOAuth.instance()`` with this server's token (the handlers' singleton too)."""
        if self._auth is None:
            from jupyterhub.services.auth import HubOAuth

            self._auth = HubOAuth.instance(
                api_token=self.api_token, cache_max_age=self.cache_max_age
            )
        return self._auth

    @property
    def loaded(self) -> bool:
        return self._auth is not None

    def may_carry_credentials(self, handler: web.RequestHandler) -> bool:
        """Does the request bring anything HubOAuth could accept? (No: skip the import.)"""
        scheme = handler.request.headers.get("Authorization", "").partition(" ")[0].lower()
        if scheme in ("token", "bearer"):
            return True
        if "token" in handler.request.query_arguments:  # the hub's token-in-URL form
            return True
        cookies = handler.request.cookies
        return bool(self.cookie_name) and (
            self.cookie_name in cookies or f"__Host-{self.cookie_name}" in cookies
        )

    async def user(self, handler: web.RequestHandler) -> dict[str, Any] | None:
        """The hub user or service behind the request if it may use this server.

        None when nobody is logged in; 403 when the hub knows them but they
        lack this server's ``access:servers`` scope.
        """
        if not self.may_carry_credentials(handler):
            return None
        auth = self.auth
        model = await auth.get_user(handler, sync=False)
        if not model:
            return None
        model.setdefault("kind", "user")
        if not auth.check_scopes(auth.access_scopes, model):
            raise web.HTTPError(
                403,
                "%s %s is not allowed to use this dashboard.",
                model["kind"].capitalize(),
                model["name"],
            )
        return model

    def login_url(self, next_url: str) -> str:
        """Where a viewer goes to log in through the hub, coming back to ``next_url``."""
        return f"{self.prefix}{LOGIN_PATH}?{urlencode({'next': next_url})}"

    def safe_next(self, next_url: str) -> str:
        """``next_url`` if it stays on this server, else the server's root."""
        if next_url.startswith(self.prefix) and "//" not in next_url and "\\" not in next_url:
            return next_url
        return self.prefix


class LazyRoute(routing.Router):
    """A route whose handler class is built (and its modules imported) on the first request."""

    def __init__(self, load: Callable[[], type[web.RequestHandler]]) -> None:
        self.load = load
        self.application: web.Application | None = None
        self._handler: type[web.RequestHandler] | None = None

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        assert self.application is not None, "bind() the route to its application first"
        if self._handler is None:
            self._handler = self.load()
        return self.application.get_handler_delegate(request, self._handler)

    def bind(self, application: web.Application) -> None:
        self.application = application


def login_handler(hub_login: HubLogin) -> type[web.RequestHandler]:
    """``P _hub_viz/login?next=…``: JupyterHub's OAuth login, then back to ``next``."""
    hub_login.auth  # noqa: B018 - the HubOAuth singleton, made with this server's token
    from jupyterhub.services.auth import HubOAuthenticated

    class LoginHandler(HubOAuthenticated, web.RequestHandler):
        @web.authenticated
        def get(self) -> None:
            self.redirect(hub_login.safe_next(self.get_argument("next", "")))

    return LoginHandler


def callback_handler(hub_login: HubLogin) -> type[web.RequestHandler]:
    """``P oauth_callback``: JupyterHub's own OAuth callback handler."""
    hub_login.auth  # noqa: B018
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    return HubOAuthCallbackHandler

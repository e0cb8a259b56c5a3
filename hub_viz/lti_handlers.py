"""The hub pages of hub_viz's LTI login (see :mod:`hub_viz.lti`).

ltiauthenticator's handlers, changed where a launch would otherwise dead-end:
inside a frame, a page with an "Open in a new tab" button; a callback
without the state cookie, the same page instead of "OAuth state missing";
redirects only to the verified launch's link. The authenticator's methods
(``first_use``, ``hold``, ``release``) keep what must outlive one request.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import get_browser_protocol, url_path_join
from ltiauthenticator.lti11.handlers import LTI11AuthenticateHandler
from ltiauthenticator.lti13.handlers import (
    LTI13CallbackHandler,
    LTI13LoginInitHandler,
    _deserialize_state,
    _serialize_state,
)
from ltiauthenticator.utils import convert_request_to_dict
from tornado.web import HTTPError

TEMPLATE = "hub-viz-lti.html"
# What the OIDC login initiation may carry; a restart link repeats exactly these.
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id",
                "lti_deployment_id")


def in_frame(handler: BaseHandler) -> bool:
    """Is this request loading a frame (a Canvas module item, an assignment)?"""
    return handler.request.headers.get("Sec-Fetch-Dest", "").lower() in ("iframe", "frame")


async def new_tab_page(handler: BaseHandler, status: int, heading: str, message: str,
                       url: str | None = None) -> None:
    """A page that may show inside the platform's frame, with an "Open in a new tab" button.

    The hub's pages refuse frames (frame-ancestors 'none'); this one holds no
    action but a link that opens in a new tab, so any site may frame it.
    """
    handler.set_status(status)
    handler.set_header("Content-Security-Policy", "frame-ancestors *")
    handler.set_header("Cache-Control", "no-store")
    handler.finish(await handler.render_template(TEMPLATE, heading=heading, message=message,
                                                 new_tab_url=url))


# -- LTI 1.3 ------------------------------------------------------------------------


class LoginInitHandler(LTI13LoginInitHandler):
    """OIDC login initiation: refuses strangers, breaks out of frames, keeps the restart link."""

    async def post(self) -> None:
        args = convert_request_to_dict(self.request.arguments)
        if not args.get("iss") or not args.get("login_hint"):
            raise HTTPError(400, "Sign in by opening this hub from its link in your course: "
                            "the login needs the course site's launch.")
        if args["iss"] != self.authenticator.issuer:
            raise HTTPError(400, "This hub accepts launches from %s only.",
                            self.authenticator.issuer)
        if in_frame(self):
            await new_tab_page(
                self, 200, "Open the dashboards in a new tab",
                "This hub opens in its own tab: inside the course page the browser would "
                "block its sign-in.", restart_url(self, args),
            )
            return
        super().post()

    get = post

    def get_state(self) -> str:
        """A random id plus the login parameters, to restart from the callback.

        No ``next_url``: where to go comes from the verified id_token only.
        """
        if self._state is None:
            args = convert_request_to_dict(self.request.arguments)
            self._state = _serialize_state({
                "state_id": uuid.uuid4().hex,
                "login": {k: args[k] for k in LOGIN_PARAMS if args.get(k)},
            })
        return self._state

    def _set_oauth_cookie(self, key: str, value: str) -> None:
        # The callback is a cross-site POST from the platform: on HTTPS, say so
        # explicitly instead of relying on browsers' lax-by-default grace period.
        https = get_browser_protocol(self.request) == "https"
        extra = {"samesite": "None", "secure": True} if https else {}
        self._set_cookie(key, value, expires_days=1, httponly=True, encrypted=True, **extra)


def restart_url(handler: BaseHandler, params: dict[str, Any]) -> str | None:
    """A GET of the login initiation with the same parameters, or None if they are not ours."""
    login = {k: params[k] for k in LOGIN_PARAMS if isinstance(params.get(k), str)
             and 0 < len(params[k]) <= 4096}
    if login.get("iss") != handler.authenticator.issuer or "login_hint" not in login:
        return None
    return handler.authenticator.login_url(handler.hub.base_url) + "?" + urlencode(login)


class CallbackHandler(LTI13CallbackHandler):
    """The platform's form post: a page instead of "OAuth state missing", replays refused."""

    async def post(self) -> None:
        error = self.get_argument("error", "")
        if error:
            code = error if error.replace("_", "").isalnum() and len(error) < 64 else "error"
            await new_tab_page(
                self, 400, "The course site did not finish the sign-in",
                f"It answered {code!r}. Go back to the course and open the link again.",
            )
            return
        if not self._get_state_cookie() or not self._get_nonce_state_cookie():
            raw = self.get_argument("state", "")
            state = _deserialize_state(raw) if raw else {}
            login = state.get("login") if isinstance(state, dict) else None
            await new_tab_page(
                self, 400, "Open the dashboards in a new tab",
                "The browser did not keep this hub's sign-in cookie (browsers block them "
                "inside other sites' pages). Open the hub in a new tab to sign in there.",
                restart_url(self, login) if isinstance(login, dict) else None,
            )
            return
        await super().post()

    def decode_and_validate_launch_request(self) -> dict[str, Any]:
        token = super().decode_and_validate_launch_request()
        if not self.authenticator.first_use(str(token.get("nonce")), token.get("exp")):
            raise HTTPError(400, "This launch was used already; open the link in your course again.")
        return token

    def get_next_url(self, user: Any = None) -> str:
        # Only the verified id_token's link counts, never the unsigned state's.
        return getattr(self, "hub_viz_next", None) or BaseHandler.get_next_url(self, user)


class JWKSHandler(BaseHandler):
    """An empty key set: Canvas wants a key set URL, and this tool signs nothing."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"keys": []}))



# -- LTI 1.1 ------------------------------------------------------------------------


class LaunchHandler(LTI11AuthenticateHandler):
    """The signed launch: redirect to the validated deep link; in a frame, a one-time link."""

    async def post(self) -> None:
        if in_frame(self):
            try:
                authenticated = await self.authenticate(None)
            except HTTPError as e:  # the hub's error page would not show in the frame
                message = (e.log_message % e.args) if e.log_message else "The launch is not valid."
                await new_tab_page(self, e.status_code, "This link did not open", message)
                return
            if not authenticated:
                raise HTTPError(403, "You may not use this hub.")
            token = self.authenticator.hold(authenticated, getattr(self, "hub_viz_next", None))
            await new_tab_page(
                self, 200, "Open the dashboards in a new tab",
                "This hub opens in its own tab: inside the course page the browser would "
                "block its sign-in. The button works once, for two minutes.",
                url_path_join(self.hub.base_url, "lti/continue") + "?" + urlencode({"token": token}),
            )
            return
        user = await self.login_user()
        if user is None:
            raise HTTPError(403, "You may not use this hub.")
        self.redirect(getattr(self, "hub_viz_next", None) or self.get_next_url(user))


class ContinueHandler(BaseHandler):
    """The new tab of a framed LTI 1.1 launch: log in with the held launch, once."""

    async def get(self) -> None:
        held = self.authenticator.release(self.get_argument("token", ""))
        if held is None:  # a page, not an HTTPError: its log line would carry the token
            await new_tab_page(self, 400, "This link was used already or has expired",
                               "Open the link in your course again.")
            return
        authenticated, next_url = held
        user = await self.auth_to_user(authenticated)
        self.set_login_cookie(user)
        self.log.info("User logged in: %s (LTI 1.1, new tab)", user.name)
        self.redirect(next_url or self.get_next_url(user))

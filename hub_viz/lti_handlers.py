"""The hub pages of hub_viz's LTI login (see :mod:`hub_viz.lti`).

ltiauthenticator's handlers, changed where a launch would otherwise dead-end:
inside a frame, a page with an "Open in a new tab" button; a callback
without the state cookie, the same page instead of "OAuth state missing";
redirects only to the verified launch's link. The authenticator's methods
(``first_use``, ``hold``, ``release``) keep what must outlive one request.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import get_browser_protocol, url_path_join
from ltiauthenticator.lti11.handlers import LTI11AuthenticateHandler
from ltiauthenticator.lti13.error import InvalidAudienceError, ValidationError
from ltiauthenticator.lti13.handlers import (
    LTI13CallbackHandler,
    LTI13LoginInitHandler,
    _deserialize_state,
    _serialize_state,
)
from ltiauthenticator.utils import convert_request_to_dict
from tornado.web import HTTPError

from .lti_claims import CLAIM, DEEP_LINKING, PICK_PATH
from .lti_keys import key_set

AGAIN = "Open the link from your course again"
# What a missing claim means to the person launching (the library names the claim only).
CLAIM_WORDS = {
    "context": "which course it came from", "roles": "your role in the course",
    "deployment_id": "which installation of the tool it is for",
    "resource_link": "which link you opened", "target_link_uri": "where to go",
    "version": "its LTI version", "message_type": "what kind of launch it is",
    "deep_linking_settings": "where to send the links back", "nonce": "its one-time number",
    "tool_platform": "which site it came from", "launch_presentation": "how it is shown",
    "sub": "who you are", "azp": "which tool it is for",
    "resource_link_id": "which link you opened", "lti_message_type": "what kind of launch it is",
    "lti_version": "its LTI version", "oauth_consumer_key": "which tool it is for",
}
TEMPLATE = "hub-viz-lti.html"
# What the OIDC login initiation may carry; a restart link repeats exactly these.
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id",
                "lti_deployment_id")


def plain_refusal(e: ValidationError) -> HTTPError:
    """ltiauthenticator's refusal of a launch in words a student understands.

    Its messages ("Not enough segments", "Unable to find a signing key that
    matches…", "Required LTI 1.3 arg … not in request") name the library's
    view; the log keeps them, the page says what happened and what to do.
    """
    text = str(e)
    missing = re.search(r"arg (\S+) (?:not in request|needs a value)", text)
    if isinstance(e, InvalidAudienceError):
        return HTTPError(401, "This launch was meant for another tool: its audience is not this "
                         "hub's client id. Tell the hub's admin (the client id in the hub's "
                         "settings must be the Canvas developer key's).")
    if missing:
        claim = missing.group(1).rsplit("/", 1)[-1]
        what = CLAIM_WORDS.get(claim, "something the hub needs")
        return HTTPError(400, "The course site's launch did not say %s (%s). %s; if this keeps "
                         "happening, tell the hub's admin.", what, claim, AGAIN)
    if "expired" in text.lower() or "too long ago" in text:
        return HTTPError(400, "This launch has expired: it was opened too long ago. %s.", AGAIN)
    return HTTPError(400, "This launch could not be checked: it is not signed by the course "
                     "site this hub trusts, or it was damaged on the way. %s; if this keeps "
                     "happening, tell the hub's admin.", AGAIN)


def plain_refusal_11(e: HTTPError) -> HTTPError:
    """ltiauthenticator's LTI 1.1 refusals ("Invalid oauth_signature", "Required oauth
    arg … not included in request") in words a student understands."""
    text = (e.log_message % e.args) if e.log_message and e.args else str(e.log_message or "")
    missing = re.search(r"arg (?:arg )?(\S+) (?:not included|does not have a value)", text)
    if "already used" in text:
        return HTTPError(401, "This launch was used already; open the link in your course "
                         "again.")
    if "imestamp" in text:
        return HTTPError(401, "This launch has expired (or the course site's clock is off). "
                         "%s.", AGAIN)
    if missing:
        return HTTPError(400, "The course site's launch did not say %s (%s). %s; if this keeps "
                         "happening, tell the hub's admin.",
                         CLAIM_WORDS.get(missing.group(1), "something the hub needs"),
                         missing.group(1), AGAIN)
    if "oauth_signature" in text or "consumer_key" in text:
        return HTTPError(401, "This launch could not be checked: it is not signed with a "
                         "consumer key and secret this hub knows, or it was damaged on the "
                         "way. %s; if this keeps happening, tell the hub's admin.", AGAIN)
    return e


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
        if in_frame(self) and not self.picking():
            await new_tab_page(
                self, 200, "Open the dashboards in a new tab",
                "This hub opens in its own tab: inside the course page the browser would "
                "block its sign-in.", restart_url(self, args),
            )
            return
        super().post()

    get = post

    def picking(self) -> bool:
        """Is this the login of a Deep Linking request (the selection placements' target)?

        Its picker stays in the platform's frame, where the browser may drop
        this hub's cookies: the callback then checks the nonce against the
        ones noted here instead, and logs nobody in.
        """
        target = self.get_argument("target_link_uri", "")
        return urlsplit(target).path == url_path_join(self.hub.base_url, PICK_PATH)

    def get_state(self) -> str:
        """A random id plus the login parameters, to restart from the callback.

        No ``next_url``: where to go comes from the verified id_token only.
        """
        if self._state is None:
            args = convert_request_to_dict(self.request.arguments)
            state: dict[str, Any] = {
                "state_id": uuid.uuid4().hex,
                "login": {k: args[k] for k in LOGIN_PARAMS if args.get(k)},
            }
            if self.picking():
                state["pick"] = True
            self._state = _serialize_state(state)
        return self._state

    def generate_nonce(self) -> str:
        nonce = super().generate_nonce()
        if self.picking():
            self.authenticator.expect_pick(nonce)
        return nonce

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
        raw = self.get_argument("state", "")
        state = _deserialize_state(raw) if raw else {}
        state = state if isinstance(state, dict) else {}
        if state.get("pick") is True:
            await self.pick()
            return
        if not self._get_state_cookie() or not self._get_nonce_state_cookie():
            login = state.get("login")
            await new_tab_page(
                self, 400, "Open the dashboards in a new tab",
                "The browser did not keep this hub's sign-in cookie (browsers block them "
                "inside other sites' pages). Open the hub in a new tab to sign in there.",
                restart_url(self, login) if isinstance(login, dict) else None,
            )
            return
        await super().post()

    async def pick(self) -> None:
        """A Deep Linking request: verify it, then send the frame to the service's picker.

        Nobody is logged in here (the cookies that would bind the launch to
        this browser may be missing in a frame); the user and their course
        groups are brought up to date for the picker. Refusals show in the frame.
        """
        self.hub_viz_picking = True
        try:
            token = self.decode_and_validate_launch_request()
            if token.get(CLAIM + "message_type") != DEEP_LINKING:
                raise HTTPError(400, "This address is for adding dashboards to a course; to open "
                                "one, use its link in your course.")
            authenticated = await self.authenticate(token)
            if not authenticated:
                raise HTTPError(403, "You may not use this hub.")
            user = await self.auth_to_user(authenticated)
            url = await self.authenticator.open_picker(self, user, token)
        except HTTPError as e:
            message = (e.log_message % e.args) if e.log_message and e.args else (
                e.log_message or "The request is not valid.")
            await new_tab_page(self, e.status_code, "The dashboard picker did not open", message)
            return
        self.redirect(url)

    def check_state(self) -> None:
        if getattr(self, "hub_viz_picking", False):
            # The frame may send no cookie, or a stale one of an abandoned login: the
            # nonce noted at login initiation binds the answer instead (check_nonce).
            return
        super().check_state()

    def check_nonce(self, id_token: dict[str, Any]) -> None:
        if getattr(self, "hub_viz_picking", False):
            if not self.authenticator.take_pick(str(id_token.get("nonce"))):
                raise HTTPError(400, "This request is not one this hub started, or it has "
                                "expired; choose the tool again in your course.")
            return
        super().check_nonce(id_token)

    def decode_and_validate_launch_request(self) -> dict[str, Any]:
        try:
            token = super().decode_and_validate_launch_request()
        except ValidationError as e:
            self.log.info("LTI 1.3 launch refused: %s", e)
            raise plain_refusal(e) from None
        if not self.authenticator.first_use(str(token.get("nonce")), token.get("exp")):
            raise HTTPError(400, "This launch was used already; open the link in your course again.")
        return token

    def get_next_url(self, user: Any = None) -> str:
        # Only the verified id_token's link counts, never the unsigned state's.
        return getattr(self, "hub_viz_next", None) or BaseHandler.get_next_url(self, user)


class JWKSHandler(BaseHandler):
    """The public key the tool signs Deep Linking responses with (empty without a key file)."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "max-age=300")
        self.finish(json.dumps(key_set(getattr(self.authenticator, "key_file", ""))))



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

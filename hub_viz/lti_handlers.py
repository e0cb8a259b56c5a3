"""The hub pages of hub_viz's LTI login (see :mod:`hub_viz.lti`).

ltiauthenticator's handlers, changed where a launch would otherwise dead-end:
inside a frame, a page with an "Open in a new tab" button; a callback
without the state cookie, the same page instead of "OAuth state missing";
redirects only to the verified launch's link. The authenticator's methods
(``first_use``, ``hold``, ``release``) keep what must outlive one request.
LTI 1.3 launches are checked against the platform they name, among those the
authenticator trusts (the configured one and those registered by Dynamic
Registration: :class:`RegistrationsHandler`, :class:`RegisterHandler`). The
tool's signing keys: :class:`JWKSHandler` (public), :class:`KeysHandler` (admins
rotate them).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import Scope
from jupyterhub.utils import get_browser_protocol, url_path_join
from ltiauthenticator.lti11.handlers import LTI11AuthenticateHandler
from ltiauthenticator.lti13.error import InvalidAudienceError, ValidationError
from ltiauthenticator.lti13.handlers import (
    NONCE_STATE_COOKIE_NAME,
    STATE_COOKIE_NAME,
    LTI13CallbackHandler,
    LTI13LoginInitHandler,
    _deserialize_state,
    _serialize_state,
)
from ltiauthenticator.lti13.validator import LTI13LaunchValidator
from ltiauthenticator.utils import convert_request_to_dict
from tornado.httputil import url_concat
from tornado.web import HTTPError

from .lti_claims import CLAIM, DEEP_LINKING, PICK_PATH, canvas_developer_key
from .lti_keys import JWKS_MAX_AGE, key_set, key_status, rotate
from .lti_registration import (
    PLATFORM_CONFIG,
    PendingRegistration,
    RegistrationError,
    read_configuration,
    registration_request,
    submit,
    summary,
)

AGAIN = "Open the link from your course again"
# What a missing claim means to the person launching (the library names the claim only).
CLAIM_WORDS = {
    "context": "which course it came from",
    "roles": "your role in the course",
    "deployment_id": "which installation of the tool it is for",
    "resource_link": "which link you opened",
    "target_link_uri": "where to go",
    "version": "its LTI version",
    "message_type": "what kind of launch it is",
    "deep_linking_settings": "where to send the links back",
    "nonce": "its one-time number",
    "tool_platform": "which site it came from",
    "launch_presentation": "how it is shown",
    "sub": "who you are",
    "azp": "which tool it is for",
    "resource_link_id": "which link you opened",
    "lti_message_type": "what kind of launch it is",
    "lti_version": "its LTI version",
    "oauth_consumer_key": "which tool it is for",
    "id_token": "who you are",
    "state": "which sign-in it belongs to",
    "login_hint": "who you are",
}
TEMPLATE = "hub-viz-lti.html"
CONFIRM_TEMPLATE = "hub-viz-lti-register.html"
# What the OIDC login initiation may carry; a restart link repeats exactly these.
LOGIN_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
)


def plain_refusal(e: ValidationError) -> HTTPError:
    """ltiauthenticator's refusal of a launch in words a student understands.

    Its messages ("Not enough segments", "Unable to find a signing key that
    matches…", "Required LTI 1.3 arg … not in request") name the library's
    view; the log keeps them, the page says what happened and what to do.
    """
    text = str(e)
    missing = re.search(r"arg (\S+) (?:not in request|needs a value)", text)
    if isinstance(e, InvalidAudienceError):
        return HTTPError(
            401,
            "This launch was meant for another tool: its audience is not this "
            "hub's client id. Tell the hub's admin (the client id in the hub's "
            "settings must be the Canvas developer key's).",
        )
    if missing:
        claim = missing.group(1).rsplit("/", 1)[-1]
        what = CLAIM_WORDS.get(claim, "something the hub needs")
        return HTTPError(
            400,
            "The course site's launch did not say %s (%s). %s; if this keeps "
            "happening, tell the hub's admin.",
            what,
            claim,
            AGAIN,
        )
    if "expired" in text.lower() or "too long ago" in text:
        return HTTPError(400, "This launch has expired: it was opened too long ago. %s.", AGAIN)
    return HTTPError(
        400,
        "This launch could not be checked: it is not signed by the course "
        "site this hub trusts, or it was damaged on the way. %s; if this keeps "
        "happening, tell the hub's admin.",
        AGAIN,
    )


# ltiauthenticator's refusals of the callback's browser binding, in words for a student.
BINDING_WORDS = {
    "OAuth state mismatch": "This sign-in is not the one this browser started last (was "
    "another link from the course opened meanwhile?).",
    "OAuth nonce mismatch": "This launch does not belong to the sign-in this browser started.",
    "Missing nonce state cookie": "The browser did not keep this hub's sign-in cookie.",
    "OAuth state missing from cookies": "The browser did not keep this hub's sign-in cookie.",
    "OAuth state missing from URL": "The course site's answer did not say which sign-in it "
    "belongs to.",
}


def plain_binding(e: HTTPError) -> HTTPError:
    """A refusal of the callback's state or nonce check, in plain words (the log keeps
    the library's)."""
    words = BINDING_WORDS.get(str(e.log_message))
    return HTTPError(e.status_code, "%s %s.", words, AGAIN) if words else e


def plain_refusal_11(e: HTTPError) -> HTTPError:
    """ltiauthenticator's LTI 1.1 refusals ("Invalid oauth_signature", "Required oauth
    arg … not included in request") in words a student understands."""
    text = (e.log_message % e.args) if e.log_message and e.args else str(e.log_message or "")
    missing = re.search(r"arg (?:arg )?(\S+) (?:not included|does not have a value)", text)
    if "already used" in text:
        return HTTPError(401, "This launch was used already; open the link in your course again.")
    if "imestamp" in text:
        return HTTPError(
            401, "This launch has expired (or the course site's clock is off). %s.", AGAIN
        )
    if missing:
        return HTTPError(
            400,
            "The course site's launch did not say %s (%s). %s; if this keeps "
            "happening, tell the hub's admin.",
            CLAIM_WORDS.get(missing.group(1), "something the hub needs"),
            missing.group(1),
            AGAIN,
        )
    if "oauth_signature" in text or "consumer_key" in text:
        return HTTPError(
            401,
            "This launch could not be checked: it is not signed with a "
            "consumer key and secret this hub knows, or it was damaged on the "
            "way. %s; if this keeps happening, tell the hub's admin.",
            AGAIN,
        )
    return e


def in_frame(handler: BaseHandler) -> bool:
    """Is this request loading a frame (a Canvas module item, an assignment)?"""
    return handler.request.headers.get("Sec-Fetch-Dest", "").lower() in ("iframe", "frame")


async def new_tab_page(
    handler: BaseHandler, status: int, heading: str, message: str, url: str | None = None
) -> None:
    """A page that may show inside the platform's frame, with an "Open in a new tab" button.

    The hub's pages refuse frames (frame-ancestors 'none'); this one holds no
    action but a link that opens in a new tab, so any site may frame it.
    """
    handler.set_status(status)
    handler.set_header("Content-Security-Policy", "frame-ancestors *")
    handler.set_header("Cache-Control", "no-store")
    handler.finish(
        await handler.render_template(TEMPLATE, heading=heading, message=message, new_tab_url=url)
    )


# -- LTI 1.3 ------------------------------------------------------------------------


class LoginInitHandler(LTI13LoginInitHandler):
    """OIDC login initiation: refuses strangers, breaks out of frames, keeps the restart link."""

    _state: str | None  # the base class's, None until get_state makes it

    async def post(self) -> None:
        args = convert_request_to_dict(self.request.arguments)
        if not args.get("iss") or not args.get("login_hint"):
            raise HTTPError(
                400,
                "Sign in by opening this hub from its link in your course: "
                "the login needs the course site's launch.",
            )
        platform = self.authenticator.platform_for(args["iss"], args.get("client_id"))
        if platform is None:
            if args.get("client_id") and args["iss"] in self.authenticator.issuers():
                raise HTTPError(
                    400,
                    "This hub is not installed with this course site's client "
                    "id %s. Ask the hub's admin to register the hub with the "
                    "course site.",
                    str(args["client_id"])[:100],
                )
            raise HTTPError(
                400,
                "This hub accepts launches from %s only.",
                " and ".join(self.authenticator.issuers()) or "no course site yet",
            )
        self.hub_viz_platform = platform
        if in_frame(self) and not self.picking():
            await new_tab_page(
                self,
                200,
                "Open the dashboards in a new tab",
                "This hub opens in its own tab: inside the course page the browser would "
                "block its sign-in.",
                restart_url(self, args),
            )
            return
        try:
            LTI13LaunchValidator(parent=self.app).validate_login_request(args)
        except ValidationError as e:
            self.log.info("LTI 1.3 login initiation refused: %s", e)
            raise plain_refusal(e) from None
        super().post()

    get = post

    def authorize_redirect(
        self,
        redirect_uri: str,
        login_hint: str,
        nonce: str,
        client_id: str | None,
        state: str,
        lti_message_hint: str | None = None,
    ) -> None:
        """The authentication request, to the endpoint of the platform the login came from."""
        platform = self.hub_viz_platform
        args = {
            "response_type": "id_token",
            "scope": "openid",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": client_id or sorted(platform.client_ids)[0],
            "redirect_uri": redirect_uri,
            "login_hint": login_hint,
            "nonce": nonce,
            "state": state,
        }
        if lti_message_hint is not None:
            args["lti_message_hint"] = lti_message_hint
        self.redirect(url_concat(platform.authorize_url, args))

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
    login = {
        k: params[k]
        for k in LOGIN_PARAMS
        if isinstance(params.get(k), str) and 0 < len(params[k]) <= 4096
    }
    if handler.authenticator.platform_for(login.get("iss"), login.get("client_id")) is None or (
        "login_hint" not in login
    ):
        return None
    return handler.authenticator.login_url(handler.hub.base_url) + "?" + urlencode(login)


class CallbackHandler(LTI13CallbackHandler):
    """The platform's form post: a page instead of "OAuth state missing", replays refused."""

    async def post(self) -> None:
        error = self.get_argument("error", "")
        if error:
            code = error if error.replace("_", "").isalnum() and len(error) < 64 else "error"
            await new_tab_page(
                self,
                400,
                "The course site did not finish the sign-in",
                f"It answered {code!r}. Go back to the course and open the link again.",
            )
            return
        raw = self.get_argument("state", "")
        try:
            state = _deserialize_state(raw) if raw else {}
        except ValueError:  # not ASCII: not a state this hub made
            state = {}
        state = state if isinstance(state, dict) else {}
        if state.get("pick") is True:
            await self.pick()
            return
        if not self._get_state_cookie() or not self._get_nonce_state_cookie():
            login = state.get("login")
            await new_tab_page(
                self,
                400,
                "Open the dashboards in a new tab",
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
                raise HTTPError(
                    400,
                    "This address is for adding dashboards to a course; to open "
                    "one, use its link in your course.",
                )
            authenticated = await self.authenticate(token)
            if not authenticated:
                raise HTTPError(403, "You may not use this hub.")
            user = await self.auth_to_user(authenticated)
            url = await self.authenticator.open_picker(self, user, token)
        except HTTPError as e:
            message = (
                (e.log_message % e.args)
                if e.log_message and e.args
                else (e.log_message or "The request is not valid.")
            )
            await new_tab_page(self, e.status_code, "The dashboard picker did not open", message)
            return
        self.redirect(url)

    def check_state(self) -> None:
        if getattr(self, "hub_viz_picking", False):
            # The frame may send no cookie, or a stale one of an abandoned login: the
            # nonce noted at login initiation binds the answer instead (check_nonce).
            return
        try:
            super().check_state()
        except HTTPError as e:
            self.log.info("LTI 1.3 launch refused: %s", e.log_message)
            raise plain_binding(e) from None

    def check_nonce(self, id_token: dict[str, Any]) -> None:
        if getattr(self, "hub_viz_picking", False):
            if not self.authenticator.take_pick(str(id_token.get("nonce"))):
                raise HTTPError(
                    400,
                    "This request is not one this hub started, or it has "
                    "expired; choose the tool again in your course.",
                )
            return
        try:
            super().check_nonce(id_token)
        except HTTPError as e:
            self.log.info("LTI 1.3 launch refused: %s", e.log_message)
            raise plain_binding(e) from None
        self.clear_cookie(STATE_COOKIE_NAME)
        self.clear_cookie(NONCE_STATE_COOKIE_NAME)

    def _get_oauth_cookie(self, name: str) -> str:
        # Kept until a launch passes the checks (check_nonce clears them): the answer
        # to a sign-in overtaken by another one in this browser must not spoil that one.
        return (self.get_secure_cookie(name) or b"").decode("utf8", "replace")

    def verify(self) -> dict[str, Any]:
        """ltiauthenticator's checks of the id_token, against the platform it names.

        The unverified ``iss`` and ``aud`` only choose which trusted platform's key
        set, issuer and client ids the signature and claims are checked with.
        """
        validator = LTI13LaunchValidator(parent=self.app)
        args = convert_request_to_dict(self.request.arguments)
        validator.validate_auth_response(args)
        self.check_state()
        try:
            claims = jwt.decode(args["id_token"], options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
        aud = claims.get("aud") if isinstance(claims, dict) else None
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        authenticator = self.authenticator
        iss = claims.get("iss") if isinstance(claims, dict) else None
        platform = next((p for a in auds if (p := authenticator.platform_for(iss, a))), None)
        platform = (
            platform or authenticator.platform_for(iss) or next(iter(authenticator.trusted()), None)
        )
        if platform is None:
            raise HTTPError(
                400, "This hub is not installed in any course site yet. Tell the hub's admin."
            )
        id_token = validator.verify_and_decode_jwt(
            encoded_jwt=args.get("id_token"),
            issuer=platform.issuer,
            audience=set(platform.client_ids),
            jwks_endpoint=platform.jwks_url,
            jwks_algorithms=authenticator.jwks_algorithms,
        )
        validator.validate_id_token(id_token)
        validator.validate_azp_claim(id_token, platform.client_ids)
        self.check_nonce(id_token)
        return id_token

    def decode_and_validate_launch_request(self) -> dict[str, Any]:
        try:
            token = self.verify()
        except ValidationError as e:
            self.log.info("LTI 1.3 launch refused: %s", e)
            raise plain_refusal(e) from None
        if not self.authenticator.first_use(str(token.get("nonce")), token.get("exp")):
            raise HTTPError(
                400, "This launch was used already; open the link in your course again."
            )
        return token

    def get_next_url(self, user: Any = None) -> str:
        # Only the verified id_token's link counts, never the unsigned state's.
        return getattr(self, "hub_viz_next", None) or BaseHandler.get_next_url(self, user)


class JWKSHandler(BaseHandler):
    """The public keys the tool signs Deep Linking responses with (empty without a key
    file): the signing key, and during a rotation the other one (:mod:`hub_viz.lti_keys`)."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", f"max-age={JWKS_MAX_AGE}")
        self.finish(json.dumps(key_set(getattr(self.authenticator, "key_file", ""))))


def check_admin(handler: APIHandler, what: str) -> None:
    """Refuse ``handler``'s request unless its token has REGISTER_SCOPES on all users."""
    if handler.current_user is None:
        raise HTTPError(403, "%s are for the hub's admins: send an admin's API token.", what)
    if not all(handler.parsed_scopes.get(s) == Scope.ALL for s in REGISTER_SCOPES):
        raise HTTPError(
            403,
            "%s need the scopes %s on all users (an admin's token).",
            what,
            " and ".join(REGISTER_SCOPES),
        )


class KeysHandler(APIHandler):
    """The tool's signing keys, for admins: ``GET`` which are published and which signs;
    ``POST {"immediately": false}``: rotate (a new key that signs after
    ``key_publish_delay``; with ``immediately``, at once and without the old key)."""

    def _path(self) -> str:
        check_admin(self, "The tool's signing keys")
        path = getattr(self.authenticator, "key_file", "")
        if not path:
            raise HTTPError(
                400,
                "This hub has no LTI signing key: configure(lti=...) with the hub_viz service on.",
            )
        return path

    def get(self) -> None:
        self.finish(key_status(self._path()))

    def post(self) -> None:
        path = self._path()
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("immediately", False), bool):
            raise HTTPError(400, 'Send JSON {"immediately": true or false}.')
        authenticator = self.authenticator
        try:
            done = rotate(
                path,
                publish_delay=authenticator.key_publish_delay,
                keep_previous=authenticator.previous_key_ttl,
                immediately=body.get("immediately", False),
            )
        except ValueError as e:
            raise HTTPError(409, "%s", str(e)) from None
        self.log.info(
            "LTI signing key rotated by %s%s: new kid %s",
            self.current_user.name,
            " immediately" if body.get("immediately") else "",
            done["kid"],
        )
        self.set_status(201)
        self.finish(done)


# -- LTI 1.3 Dynamic Registration ---------------------------------------------------

# A registered platform may log in as anyone; minting a registration URL needs the
# scopes that already give that power (create users, and tokens for any user).
REGISTER_SCOPES = ("admin:users", "tokens")
CLOSE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{heading}</title></head><body style="font-family: sans-serif; margin: 2rem">
<h1>{heading}</h1><p>{message} You may close this window.</p>
<script nonce="{nonce}">(window.opener || window.parent).postMessage(
{{subject: "org.imsglobal.lti.close"}}, "*");</script></body></html>"""


def close_page(handler: BaseHandler, heading: str, message: str) -> None:
    """A page that tells the platform's window the registration is over
    (``org.imsglobal.lti.close``), its one script allowed by a nonce."""
    nonce = secrets.token_urlsafe(16)
    handler.set_header(
        "Content-Security-Policy",
        "frame-ancestors *; default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'unsafe-inline'",
    )
    handler.set_header("Cache-Control", "no-store")
    handler.finish(CLOSE_PAGE.format(heading=escape(heading), message=escape(message), nonce=nonce))


class RegistrationsHandler(APIHandler):
    """``POST``: a registration URL with a fresh single-use secret; ``GET``: the
    registered platforms; ``PATCH {issuer, client_id, deployments}``: which of a
    platform's deployments may launch (empty: any); ``DELETE ?issuer=…&client_id=…``:
    forget one. All need ``admin:users`` and ``tokens`` on all users."""

    def _check(self) -> None:
        if self.current_user is None:
            raise HTTPError(
                403, "Registration URLs are for the hub's admins: send an admin's API token."
            )
        if not all(self.parsed_scopes.get(s) == Scope.ALL for s in REGISTER_SCOPES):
            raise HTTPError(
                403,
                "A registration URL lets a course site log in as any user, so "
                "minting one needs the scopes %s on all users (an admin's token).",
                " and ".join(REGISTER_SCOPES),
            )
        if not self.authenticator.registrations_file:
            raise HTTPError(
                400,
                "Dynamic Registration needs the hub_viz service's state "
                "folder: configure(lti=...) with the service on.",
            )

    def post(self) -> None:
        self._check()
        timeout = self.authenticator.registration_timeout
        secret = self.authenticator.registration_secrets.mint(timeout)
        origin = f"{get_browser_protocol(self.request)}://{self.request.host}"
        url = origin + url_path_join(self.hub.base_url, "lti13/register", secret)
        self.log.info("LTI registration URL minted by %s", self.current_user.name)
        self.set_status(201)
        self.finish({"url": url, "expires_in": int(timeout)})

    def get(self) -> None:
        self._check()
        self.finish(
            {
                "platforms": [
                    {
                        "issuer": r.issuer,
                        "client_id": r.client_id,
                        "deployment_id": r.deployment_id,
                        "deployments": list(r.deployments),
                        "product": r.product,
                        "registered_at": r.registered_at,
                    }
                    for r in self.authenticator.registrations()
                ]
            }
        )

    def patch(self) -> None:
        self._check()
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        deployments = body.get("deployments") if isinstance(body, dict) else None
        if not isinstance(deployments, list) or not all(
            isinstance(d, str) and d.strip() and len(d) <= 200 for d in deployments
        ):
            raise HTTPError(
                400,
                'Send JSON {"issuer": …, "client_id": …, "deployments": [deployment ids]} '
                "(an empty list accepts any deployment).",
            )
        issuer, client_id = str(body.get("issuer", "")), str(body.get("client_id", ""))
        wanted = [d.strip() for d in deployments]
        if not self.authenticator.set_deployments(issuer, client_id, wanted):
            raise HTTPError(404, "No platform is registered with that issuer and client id.")
        self.log.info(
            "LTI platform %s, client id %s: deployments %s, set by %s",
            issuer,
            client_id,
            wanted or "any",
            self.current_user.name,
        )
        self.finish({"issuer": issuer, "client_id": client_id, "deployments": wanted})

    def delete(self) -> None:
        self._check()
        issuer, client_id = self.get_argument("issuer", ""), self.get_argument("client_id", "")
        if not self.authenticator.unregister(issuer, client_id):
            raise HTTPError(404, "No platform is registered with that issuer and client id.")
        self.log.info(
            "LTI platform %s, client id %s, removed by %s",
            issuer,
            client_id,
            self.current_user.name,
        )
        self.set_status(204)
        self.finish()


class RegisterHandler(BaseHandler):
    """The registration URL the platform opens (in its frame) with
    ``openid_configuration`` and ``registration_token``.

    ``GET``: the secret in the path is used up by the first request, whatever
    comes of it; the platform's configuration is read and checked, and the admin
    is shown what the tool will ask for, with Register and Cancel. ``POST``
    (that form, with its single-use confirmation code): register, or not, and
    tell the platform's window to close.
    """

    def check_xsrf_cookie(self) -> None:
        # Inside the platform's frame the hub's cookies may be dropped; the form's
        # single-use confirmation code, which only the page's reader has, guards the POST.
        return None

    async def get(self, secret: str | None = None) -> None:
        state = self.authenticator.registration_secrets.take(secret or "")
        if state != "ok":
            await self.refuse(
                403,
                "This registration URL is not valid: "
                + (
                    "it has expired."
                    if state == "expired"
                    else "it was used already, or it was never made by this hub."
                )
                + " Ask the hub's admin for a new one "
                "(hub-viz lti-register).",
            )
            return
        config_url = self.get_argument("openid_configuration", "")
        if not config_url:
            await self.refuse(
                400,
                "Paste this URL into the course site's LTI registration "
                "(Canvas: Developer Keys → + LTI Registration); opened "
                "elsewhere it has no openid_configuration. Ask the hub's admin "
                "for a new one.",
            )
            return
        authenticator = self.authenticator
        token = self.get_argument("registration_token", "")
        try:
            key = canvas_developer_key(
                self.request.host,
                title=authenticator.tool_title,
                base_url=self.base_url,
                privacy_level=authenticator.privacy_level,
                scheme=get_browser_protocol(self.request),
            )
            request = registration_request(key)
            config = await read_configuration(config_url, token)
        except (RegistrationError, ValueError) as e:
            await self.failed(e)
            return
        code = authenticator.registration_pending.keep(
            PendingRegistration(config, token, request), authenticator.confirm_timeout
        )
        platform = config.get(PLATFORM_CONFIG, {})
        self.set_header("Content-Security-Policy", "frame-ancestors *; form-action 'self'")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            await self.render_template(
                CONFIRM_TEMPLATE,
                tool=summary(request),
                issuer=config["issuer"],
                product=str(platform.get("product_family_code") or "")[:100],
                action=url_path_join(self.hub.base_url, "lti13/register"),
                confirm=code,
                minutes=max(1, int(authenticator.confirm_timeout // 60)),
            )
        )

    async def post(self, secret: str | None = None) -> None:
        pending = self.authenticator.registration_pending.take(
            self.get_body_argument("confirm", "")
        )
        if pending is None:
            await self.refuse(
                400,
                "This confirmation has expired or was answered already. Ask the "
                "hub's admin for a new registration URL to try again.",
            )
            return
        if self.get_body_argument("action", "") != "register":
            self.log.info("LTI registration with %s cancelled", pending.config["issuer"])
            close_page(
                self,
                "Not registered",
                "The hub was not registered with this course site; to install it "
                "later, ask the hub's admin for a new registration URL.",
            )
            return
        authenticator = self.authenticator
        try:
            registration = await submit(
                pending.config,
                pending.token,
                pending.request,
                pin_deployment=authenticator.pin_registered_deployment,
            )
        except RegistrationError as e:
            await self.failed(e)
            return
        authenticator.register(registration)
        self.log.info(
            "LTI platform registered: %s, client id %s, deployments %s",
            registration.issuer,
            registration.client_id,
            list(registration.deployments) or "any",
        )
        close_page(
            self,
            f"{authenticator.tool_title} is registered",
            f"Client id {registration.client_id}.",
        )

    async def failed(self, e: RegistrationError | ValueError) -> None:
        message = e.message if isinstance(e, RegistrationError) else str(e)
        self.log.warning("LTI registration refused: %s", message)
        await self.refuse(
            getattr(e, "status", 400),
            message + " Ask the hub's admin for a new registration URL to try again.",
        )

    async def refuse(self, status: int, message: str) -> None:
        await new_tab_page(self, status, "The hub was not registered", message)


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
                self,
                200,
                "Open the dashboards in a new tab",
                "This hub opens in its own tab: inside the course page the browser would "
                "block its sign-in. The button works once, for two minutes.",
                url_path_join(self.hub.base_url, "lti/continue")
                + "?"
                + urlencode({"token": token}),
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
            await new_tab_page(
                self,
                400,
                "This link was used already or has expired",
                "Open the link in your course again.",
            )
            return
        authenticated, next_url = held
        user = await self.auth_to_user(authenticated)
        self.set_login_cookie(user)
        self.log.info("User logged in: %s (LTI 1.1, new tab)", user.name)
        self.redirect(next_url or self.get_next_url(user))

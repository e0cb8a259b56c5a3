"""Log in from Canvas (or any LTI platform): LTI 1.3 and 1.1 on top of ltiauthenticator.

``configure(c, lti={...})`` calls :func:`configure_lti`, which picks
:class:`HubVizLTI13Authenticator` (default) or :class:`HubVizLTI11Authenticator`.
Both add to ltiauthenticator's checks:

- course roles become hub groups (``manage_groups``), see :mod:`hub_viz.lti_claims`;
- a deep link (``dashboard=owner/slug`` or a link to a dashboard's open page)
  lands on that dashboard after login, and only links on this hub are followed;
- before the user is created, the hub_viz service answers whether the user
  (with the groups the launch gives) may see the linked dashboard: a
  ``POST <service>/api/lti/can-view`` authenticated by a secret that
  ``configure()`` keeps in the state folder and gives to both sides;
- inside a frame (Canvas module items and assignments), where the browser may
  drop the hub's cookies and the hub's pages refuse to be framed, the launch
  answers a page with an "Open in a new tab" button instead of a dead end
  (the handlers are in :mod:`hub_viz.lti_handlers`);
- LTI 1.3 Deep Linking: an instructor's ``LtiDeepLinkingRequest`` (the
  selection placements send it to ``hub/lti13/pick``) opens the service's
  picker in the frame (:mod:`hub_viz.service.lti_picker`), which answers the
  platform with links signed by the tool's key (:mod:`hub_viz.lti_keys`);
- launches from outside a course are refused (``allow_without_course``), and
  launches from installs (deployments) other than the allowed ones: the
  configured platform's ``deployments``, each registered platform's own list;
- LTI 1.3 Dynamic Registration (:mod:`hub_viz.lti_registration`): platforms
  registered from a one-time registration URL are trusted beside the
  configured one, read from the state folder at each login (no restart).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import get_browser_protocol, url_path_join
from ltiauthenticator.lti11.auth import LTI11Authenticator
from ltiauthenticator.lti11.handlers import LTI11ConfigHandler
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.utils import convert_request_to_dict
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.web import HTTPError
from traitlets import Bool, Float, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .errors import LaunchError
from .layout import Layout
from .lti_claims import (
    Launch,
    context_groups,
    course_groups,
    history_groups,
    launch_11,
    launch_13,
    merge_groups,
    platform_url_ok,
    resolve_target,
)
from .lti_handlers import (
    CallbackHandler,
    ContinueHandler,
    JWKSHandler,
    KeysHandler,
    LaunchHandler,
    LoginInitHandler,
    RegisterHandler,
    RegistrationsHandler,
    plain_refusal_11,
)
from .lti_keys import JWKS_MAX_AGE
from .lti_registration import Pending, Registration, RegistrationSecrets, RegistrationStore

CANVAS_ISSUER = "https://canvas.instructure.com"
CANVAS_JWKS = "https://sso.canvaslms.com/api/lti/security/jwks"
CANVAS_AUTHORIZE = "https://sso.canvaslms.com/api/lti/authorize_redirect"
SECRET_FILE = "hub_viz_lti_secret"
KEY_FILE = "hub_viz_lti_key.pem"
PLATFORMS_FILE = "hub_viz_lti_platforms.json"  # platforms registered by Dynamic Registration
SETTINGS_13 = {
    "version",
    "issuer",
    "client_id",
    "jwks_url",
    "authorize_url",
    "username_key",
    "auth_state",
    "deployments",
    "allow_without_course",
}
SETTINGS_11 = {"version", "consumers", "username_key", "auth_state", "allow_without_course"}


# -- configuration ------------------------------------------------------------------


def configure_lti(
    c: Any,
    *,
    state_dir: str | Path | None = None,
    service_url: str = "",
    service_name: str = "hub-viz",
    **settings: Any,
) -> dict[str, str]:
    """Make an LTI authenticator the hub's; return the service settings it needs.

    ``settings``: ``version`` ("1.3", default, or "1.1"); for 1.3 ``client_id``
    (required without ``state_dir``; with it, platforms may register instead, see
    :mod:`hub_viz.lti_registration`), ``issuer``, ``jwks_url``, ``authorize_url`` (Canvas cloud's by
    default); for 1.1 ``consumers`` ({key: secret}, required); for both
    ``username_key`` (1.3: "sub", 1.1: "user_id" by default: stable and not an
    e-mail the student can change), ``auth_state`` (default True: keep the
    launch's claims, encrypted, which needs ``JUPYTERHUB_CRYPT_KEY``) and
    ``allow_without_course`` (default False: launches from outside a course are
    refused); for 1.3 ``deployments`` (the deployment ids that may launch; empty:
    any).
    Raises ValueError naming what to fix.
    """
    settings = dict(settings)
    version = str(settings.pop("version", "1.3"))
    if version not in ("1.3", "1.1"):
        raise ValueError(f"configure(lti=...): 'version' must be '1.3' or '1.1', not {version!r}.")
    allowed = SETTINGS_13 if version == "1.3" else SETTINGS_11
    unknown = set(settings) - allowed
    if unknown:
        raise ValueError(
            f"configure(lti=...): unknown setting(s) {sorted(unknown)} for LTI "
            f"{version}; allowed: {sorted(allowed - {'version'})}."
        )
    auth_state = settings.pop("auth_state", True)
    if not isinstance(auth_state, bool):
        raise ValueError("configure(lti=...): 'auth_state' must be True or False.")
    if auth_state and not os.environ.get("JUPYTERHUB_CRYPT_KEY") and "keys" not in c.CryptKeeper:
        raise ValueError(
            "configure(lti=...): auth_state=True keeps each launch's claims in the hub's "
            "database, encrypted, and needs the JUPYTERHUB_CRYPT_KEY environment variable "
            "(e.g. export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)); or pass auth_state=False."
        )
    if version == "1.3":
        cls = HubVizLTI13Authenticator
        section = c.HubVizLTI13Authenticator
        if state_dir is None or "client_id" in settings:  # else: registered platforms only
            section.client_id = _client_ids(settings.get("client_id"))
        if state_dir is not None:
            section.registrations_file = str(Path(state_dir).resolve() / PLATFORMS_FILE)
        section.issuer = _url(settings, "issuer", CANVAS_ISSUER)
        section.jwks_endpoint = _url(settings, "jwks_url", CANVAS_JWKS)
        section.authorize_url = _url(settings, "authorize_url", CANVAS_AUTHORIZE)
        if "deployments" in settings:
            section.deployments = _deployments(settings["deployments"])
    else:
        cls = HubVizLTI11Authenticator
        section = c.HubVizLTI11Authenticator
        section.consumers = _consumers(settings.get("consumers"))
    username_key = settings.get("username_key", "sub" if version == "1.3" else "user_id")
    if not isinstance(username_key, str) or not username_key.strip():
        raise ValueError("configure(lti=...): 'username_key' must name a claim, e.g. 'sub'.")
    section.username_key = username_key.strip()
    if "allow_without_course" in settings:
        if not isinstance(settings["allow_without_course"], bool):
            raise ValueError("configure(lti=...): 'allow_without_course' must be True or False.")
        section.allow_without_course = settings["allow_without_course"]
    # The platform's signature is the admission check: every signed launch may log in.
    section.allow_all = True
    section.manage_groups = True
    section.service_name = service_name
    c.JupyterHub.authenticator_class = f"{cls.__module__}.{cls.__qualname__}"
    c.Authenticator.enable_auth_state = auth_state
    if state_dir is None:
        return {}
    service: dict[str, str] = {}
    if version == "1.3":  # the key its Deep Linking responses are signed with
        # made when the hub starts (hub_viz.hubstart): loading the config writes nothing
        key = Path(state_dir).resolve() / KEY_FILE
        section.key_file = service["lti_key_file"] = str(key)
    if not service_url:
        return {}
    secret = Path(state_dir).resolve() / SECRET_FILE
    section.service_url = service_url
    section.service_secret_file = str(secret)
    return {**service, "lti_secret_file": str(secret)}


def _client_ids(value: Any) -> set[str]:
    ids = [value] if isinstance(value, (str, int)) else value
    if (
        not ids
        or not isinstance(ids, (list, tuple, set))
        or not all(isinstance(i, (str, int)) and str(i).strip() for i in ids)
    ):
        raise ValueError(
            "configure(lti=...): 'client_id' is required for LTI 1.3: the Client ID of the "
            "Canvas developer key (Admin → Developer Keys, the number under Details), "
            "e.g. lti={'client_id': '10000000000123'}; a list for several keys. With the "
            "hub_viz service, leave it out to install by Dynamic Registration instead."
        )
    return {str(i).strip() for i in ids}


def _deployments(value: Any) -> list[str]:
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, (list, tuple, set)) or not all(
        isinstance(i, str) and i.strip() for i in ids
    ):
        raise ValueError(
            "configure(lti=...): 'deployments' must list the deployment ids that may launch "
            "(Canvas: Settings → Apps → the tool's gear → Deployment Id), e.g. "
            "['42:5a9e7b0c3d']; leave it out to accept any."
        )
    return [i.strip() for i in ids]


def _url(settings: dict[str, Any], key: str, fallback: str) -> str:
    value = settings.get(key, fallback)
    if not platform_url_ok(value):
        raise ValueError(
            f"configure(lti=...): {key!r} must be an https URL, e.g. {fallback}; got {value!r}."
        )
    return value


def _consumers(value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or not value
        or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items())
    ):
        raise ValueError(
            "configure(lti={'version': '1.1', ...}): 'consumers' is required: "
            "{consumer key: shared secret}, as entered in Canvas (Settings → Apps → + App)."
        )
    return dict(value)


# -- what both authenticators share -------------------------------------------------


class LTIAdmission(LoggingConfigurable):
    """Groups, deep link and the service's can-view answer for a verified launch."""

    if TYPE_CHECKING:  # JupyterHub's Authenticator, which this is mixed into, provides them
        admin_users: set[str]

        def normalize_username(self, username: str) -> str: ...

    service_url = Unicode(
        "",
        config=True,
        help="""The hub_viz service's URL as the hub reaches it, e.g.
        http://127.0.0.1:10101/services/hub-viz/ (set by configure()). Empty: deep
        links to dashboards are refused.""",
    )
    service_secret_file = Unicode(
        "",
        config=True,
        help="File holding the secret the service expects on api/lti/can-view (set by configure()).",
    )
    service_name = Unicode(
        "hub-viz",
        config=True,
        help="Name of the hub_viz service: its pages are under <base_url>services/<name>/.",
    )
    check_timeout = Float(
        10,
        config=True,
        help="Seconds to wait for the service's can-view answer.",
    )
    allow_without_course = Bool(
        False,
        config=True,
        help="""Let launches without a course (no context claim, or one without an id)
        log in, with no course groups. Every placement of the Canvas developer key is
        inside a course, so such a launch comes from elsewhere: refused by default.""",
    )
    label_groups = Bool(
        True,
        config=True,
        help="""Store the course's label and title as properties of its groups
        (lti_context_label, lti_context_title), for admins reading group lists.""",
    )

    @default("manage_groups")
    def _manage_groups(self) -> bool:
        return True

    @default("allow_all")
    def _allow_all(self) -> bool:
        return True

    async def admit(self, handler: BaseHandler, model: dict[str, Any], launch: Launch) -> dict:
        """The auth model with the user's groups, after checking the deep link.

        Raises HTTPError 400 for a bad link and 403 for a dashboard this user
        may not see; both before any user exists.
        """
        if not launch.context_id and not self.allow_without_course:
            raise HTTPError(
                403,
                "This hub opens from inside a course: open it from your "
                "course's navigation, modules or assignments (this launch came "
                "from outside a course).",
            )
        name = self.normalize_username(model["name"])
        existing = handler.find_user(name)
        groups = merge_groups([g.name for g in existing.groups] if existing else [], launch)
        prefix = url_path_join(handler.base_url, "services", self.service_name) + "/"
        try:
            layout = Layout(
                handler.settings.get("subdomain_host") or "", self.service_name, handler.base_url
            )
            target = resolve_target(
                launch,
                host=handler.request.host,
                scheme=get_browser_protocol(handler.request),
                base_url=handler.base_url,
                service_prefix=prefix,
                service_origin=layout.service_origin,
            )
        except LaunchError as e:
            raise HTTPError(400, "%s", e.message) from None
        if target.dashboard:
            admin = bool(existing.admin) if existing else name in self.admin_users
            if not await self.can_view(name, groups, admin, target.dashboard):
                owner, slug = target.dashboard
                self.log.info(
                    "LTI launch of %s to %s/%s refused: may not see it", name, owner, slug
                )
                raise HTTPError(
                    403,
                    "This link opens the dashboard %s/%s, which you may not "
                    "see (or which does not exist). Ask your instructor to share "
                    "it with the course.",
                    owner,
                    slug,
                )
        handler.hub_viz_next = target.path
        if self.label_groups:
            self._label(handler.db, launch)
        return {"name": name, "groups": groups, "auth_state": model.get("auth_state")}

    async def can_view(
        self, name: str, groups: list[str], admin: bool, dashboard: tuple[str, str]
    ) -> bool:
        """Ask the service whether ``name`` with ``groups`` may see ``dashboard``."""
        if not self.service_url or not self.service_secret_file:
            raise HTTPError(
                400,
                "Links to dashboards need the hub_viz service, which is not set up on this hub.",
            )
        request = HTTPRequest(
            self.service_url.rstrip("/") + "/api/lti/can-view",
            method="POST",
            headers={
                "Authorization": f"Bearer {self._secret()}",
                "Content-Type": "application/json",
            },
            body=json.dumps(
                {
                    "username": name,
                    "groups": groups,
                    "admin": admin,
                    "dashboard": "/".join(dashboard),
                }
            ),
            request_timeout=self.check_timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
            return json.loads(response.body).get("allowed") is True
        except (HTTPClientError, OSError, ValueError) as e:
            self.log.warning("The hub_viz service did not answer can-view: %s", e)
            raise HTTPError(
                503, "The dashboard service did not answer; open the link again in a minute."
            ) from None

    def _secret(self) -> str:
        if not getattr(self, "_secret_value", None):
            self._secret_value = Path(self.service_secret_file).read_text().strip()
        return self._secret_value

    def _label(self, db: Any, launch: Launch) -> None:
        """Course groups created with (or updated to) the course's label and title."""
        props = {
            "lti_context_label": launch.context_label,
            "lti_context_title": launch.context_title,
        }
        for name in course_groups(launch):
            group = orm.Group.find(db, name)
            if group is None:
                db.add(orm.Group(name=name, properties=props))
            elif any((group.properties or {}).get(k) != v for k, v in props.items()):
                group.properties = {**(group.properties or {}), **props}
        db.commit()


# -- LTI 1.3 ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trusted:
    """A platform the hub accepts LTI 1.3 launches from: the configured one or a registered one."""

    issuer: str
    client_ids: frozenset[str]
    jwks_url: str
    authorize_url: str
    configured: bool = False  # from configure(lti=...), not from Dynamic Registration
    deployments: frozenset[str] = frozenset()  # the deployment ids that may launch; empty: any


class HubVizLTI13Authenticator(LTIAdmission, LTI13Authenticator):
    """LTI 1.3 (default): course groups, deep links to dashboards, frame fallback, replay
    check, and the Deep Linking picker for instructors."""

    login_handler = LoginInitHandler
    callback_handler = CallbackHandler

    key_file = Unicode(
        "",
        config=True,
        help="""The tool's RSA key (PEM, mode 0600) that signs Deep Linking responses; its
        public half is served at hub/lti13/jwks (configure() keeps it in the state folder).""",
    )
    key_publish_delay = Float(
        2 * JWKS_MAX_AGE,
        config=True,
        help="""After a rotation of the signing key (hub-viz lti-rotate-key), seconds the
        new key is published before it signs: longer than platforms may cache the key set
        (its max-age, 300 s), so they know it when its first response arrives.""",
    )
    previous_key_ttl = Float(
        86400,
        config=True,
        help="""After a rotation, seconds the old key stays in the key set once the new one
        signs, so responses it signed (pickers answered just before) still verify.""",
    )
    deployments = List(
        Unicode(),
        config=True,
        help="""The deployment ids (the lti_deployment_id of each install of the tool in
        Canvas) that may launch from the configured platform; empty: any deployment of
        its client id. Registered platforms keep their own list.""",
    )
    pick_timeout = Float(
        600,
        config=True,
        help="Seconds between a Deep Linking login initiation and the platform's answer.",
    )
    registrations_file = Unicode(
        "",
        config=True,
        help="""JSON file of the platforms registered by LTI Dynamic Registration (set by
        configure() in the state folder); read at each login. Empty: registration is off.""",
    )
    registration_timeout = Float(
        3600,
        config=True,
        help="Seconds a registration URL (its single-use secret) stays valid.",
    )
    confirm_timeout = Float(
        900,
        config=True,
        help="""Seconds the admin has to answer the registration's confirmation page
        (Register / Cancel) in the platform's window.""",
    )
    pin_registered_deployment = Bool(
        True,
        config=True,
        help="""When a platform names the deployment it made for the tool in its answer to
        Dynamic Registration, accept launches from that deployment only (an admin may
        list others: PATCH hub/lti13/registrations). False: any deployment of the
        registered client id.""",
    )
    tool_title = Unicode(
        "Dashboards",
        config=True,
        help="The tool's name in a platform that installs it by Dynamic Registration.",
    )
    privacy_level = Unicode(
        "name_only",
        config=True,
        help="""What a platform that installs the tool by Dynamic Registration shares about
        its users: anonymous, name_only, email_only or public (Canvas's privacy levels).""",
    )

    @default("username_key")
    def _username_key(self) -> str:
        return "sub"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nonces: dict[str, float] = {}
        self._pick_nonces: dict[str, float] = {}
        self.registration_secrets = RegistrationSecrets()
        self.registration_pending = Pending()

    def get_handlers(self, app: Any) -> list:
        return [
            *super().get_handlers(app),
            ("/lti13/jwks", JWKSHandler),
            ("/lti13/keys", KeysHandler),
            ("/lti13/registrations", RegistrationsHandler),
            ("/lti13/register(?:/([^/]*))?", RegisterHandler),
        ]

    # -- the platforms it trusts: the configured one and the registered ones --

    def registrations(self) -> list[Registration]:
        """The platforms registered so far (read from the state folder each time)."""
        if not self.registrations_file:
            return []
        try:
            return RegistrationStore(self.registrations_file).load()
        except (OSError, ValueError, TypeError) as e:
            self.log.error(
                "Cannot read the LTI registrations in %s: %s", self.registrations_file, e
            )
            return []

    def trusted(self) -> list[Trusted]:
        configured = (
            [
                Trusted(
                    self.issuer,
                    frozenset(self.client_id),
                    self.jwks_endpoint,
                    self.authorize_url,
                    True,
                    frozenset(self.deployments),
                )
            ]
            if self.client_id
            else []
        )
        return configured + [
            Trusted(
                r.issuer,
                frozenset({r.client_id}),
                r.jwks_url,
                r.authorize_url,
                deployments=frozenset(r.deployments),
            )
            for r in self.registrations()
        ]

    def platform_for(self, issuer: Any, client_id: Any = None) -> Trusted | None:
        """The trusted platform of ``issuer`` (and ``client_id``, if given), or None."""
        for platform in self.trusted():
            if platform.issuer == issuer and (
                client_id is None or client_id in platform.client_ids
            ):
                return platform
        return None

    def issuers(self) -> list[str]:
        return list(dict.fromkeys(p.issuer for p in self.trusted()))

    def register(self, registration: Registration) -> None:
        if not self.registrations_file:
            raise ValueError("Dynamic Registration needs registrations_file (configure() sets it).")
        RegistrationStore(self.registrations_file).add(registration)

    def set_deployments(self, issuer: str, client_id: str, deployments: list[str]) -> bool:
        """Set which deployments of a registered platform may launch (empty: any);
        False if it is not registered."""
        if not self.registrations_file:
            return False
        store = RegistrationStore(self.registrations_file)
        found = store.find(issuer, client_id)
        if found is None:
            return False
        store.add(replace(found, deployments=tuple(dict.fromkeys(deployments))))
        return True

    def unregister(self, issuer: str, client_id: str) -> bool:
        """Forget a registered platform (its launches are refused from the next one)."""
        return bool(self.registrations_file) and RegistrationStore(self.registrations_file).remove(
            issuer, client_id
        )

    async def authenticate(self, handler: Any, data: dict | None = None) -> dict:
        model = await super().authenticate(handler, data)
        try:
            launch = launch_13(data or {})
        except LaunchError as e:
            raise HTTPError(400, "%s", e.message) from None
        aud = (data or {}).get("aud")
        client = aud if isinstance(aud, str) else (data or {}).get("azp")
        platform = self.platform_for((data or {}).get("iss"), client)
        allowed = platform.deployments if platform else frozenset(self.deployments)
        if allowed and launch.deployment_id not in allowed:
            self.log.info(
                "LTI launch from deployment %r refused: not in %s",
                launch.deployment_id,
                sorted(allowed),
            )
            raise HTTPError(
                403,
                "This hub does not accept launches from this installation of "
                "the tool in your course site. Tell your instructor or the hub's "
                "admin (the deployment id is %s).",
                launch.deployment_id[:100],
            )
        if launch.picking:
            if not getattr(handler, "hub_viz_picking", False):
                raise HTTPError(
                    400,
                    "The course site asked this tool for links, but the tool's "
                    "developer key sends that request to the wrong address. Ask the "
                    "Canvas admin to update the key (hub-viz lti-config prints it).",
                )
            if not launch.staff:
                raise HTTPError(
                    403,
                    "Only the course's instructors can add dashboards to it. "
                    "To open a dashboard, use its link in your course.",
                )
            if not launch.context_id:
                raise HTTPError(
                    400,
                    "Dashboards can be added from inside a course only: open "
                    "the tool from a course's modules or assignments.",
                )
            launch = replace(launch, dashboard="", target="")  # a picker, not a link
        return await self.admit(handler, model, launch)

    def expect_pick(self, nonce: str) -> None:
        """Note a Deep Linking login's nonce: its answer may come without cookies."""
        now = time.time()
        self._pick_nonces = {n: t for n, t in self._pick_nonces.items() if t > now}
        if len(self._pick_nonces) >= 10000:
            self._pick_nonces.pop(next(iter(self._pick_nonces)))
        self._pick_nonces[nonce] = now + self.pick_timeout

    def take_pick(self, nonce: str) -> bool:
        """Was this nonce given to a Deep Linking login, recently and not used yet?"""
        return self._pick_nonces.pop(nonce, 0.0) > time.time()

    async def open_picker(self, handler: Any, user: Any, token: dict[str, Any]) -> str:
        """Ask the service for the picker page of this verified Deep Linking request."""
        launch = launch_13(token)
        settings = launch.deep_linking or {}
        types = settings.get("accept_types")
        if isinstance(types, list) and "ltiResourceLink" not in types:
            raise HTTPError(
                400,
                "This place in the course accepts no tool links (it asked "
                "for %s); add dashboards from a module or an assignment.",
                ", ".join(str(t) for t in types[:5]),
            )
        aud = token.get("aud")
        client_id = aud if isinstance(aud, str) else str(token.get("azp") or "")
        if not self.service_url or not self.service_secret_file:
            raise HTTPError(
                400, "Adding dashboards needs the hub_viz service, which is not set up on this hub."
            )
        body = {
            "username": user.name,
            "groups": [g.name for g in user.groups],
            "course_group": context_groups(launch.context_id)[0],
            "history_groups": history_groups(launch),
            "course_title": launch.context_title or launch.context_label,
            "return_url": settings["deep_link_return_url"],
            "data": settings.get("data"),
            "accept_multiple": settings.get("accept_multiple", True) is not False,
            "targets": settings.get("accept_presentation_document_targets"),
            "issuer": str(token.get("iss")),
            "client_id": client_id,
            "deployment_id": launch.deployment_id,
            "hub_origin": f"{get_browser_protocol(handler.request)}://{handler.request.host}",
        }
        request = HTTPRequest(
            self.service_url.rstrip("/") + "/api/lti/pick",
            method="POST",
            headers={
                "Authorization": f"Bearer {self._secret()}",
                "Content-Type": "application/json",
            },
            body=json.dumps(body),
            request_timeout=self.check_timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
            return str(json.loads(response.body)["url"])
        except (HTTPClientError, OSError, ValueError, KeyError) as e:
            self.log.warning("The hub_viz service did not open a picker: %s", e)
            raise HTTPError(
                503, "The dashboard service did not answer; choose the tool again in a minute."
            ) from None

    def first_use(self, nonce: str, exp: Any) -> bool:
        """Record an id_token's nonce; False when it was seen before (a replay)."""
        now = time.time()
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        if nonce in self._nonces:
            return False
        keep = float(exp) if isinstance(exp, (int, float)) else now + 3600
        self._nonces[nonce] = max(keep, now) + 600  # past the validator's max_age as well
        return True


# -- LTI 1.1 ------------------------------------------------------------------------


class HubVizLTI11Authenticator(LTIAdmission, LTI11Authenticator):
    """LTI 1.1: course groups, deep links (``custom_dashboard``, ``custom_next``), frame fallback."""

    continue_timeout = Float(
        120,
        config=True,
        help="Seconds the one-time 'Open in a new tab' link of a framed launch stays valid.",
    )

    @default("username_key")
    def _username_key(self) -> str:
        return "user_id"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._held: dict[str, tuple[float, dict, str | None]] = {}

    def get_handlers(self, app: Any) -> list:
        return [
            ("/lti/launch", LaunchHandler),
            ("/lti/continue", ContinueHandler),
            ("/lti11/config", LTI11ConfigHandler),
        ]

    async def authenticate(self, handler: Any, data: dict | None = None) -> dict | None:
        try:
            model = await super().authenticate(handler, data)
        except HTTPError as e:
            self.log.info("LTI 1.1 launch refused: %s", e)
            raise plain_refusal_11(e) from None
        if not model:
            return None
        launch = launch_11(convert_request_to_dict(handler.request.arguments))
        return await self.admit(handler, model, launch)

    def hold(self, authenticated: dict, next_url: str | None) -> str:
        """Keep a verified launch for the new tab; the token is single-use."""
        now = time.time()
        self._held = {k: v for k, v in self._held.items() if v[0] > now}
        if len(self._held) >= 10000:
            self._held.pop(next(iter(self._held)))
        token = secrets.token_urlsafe(32)
        self._held[token] = (now + self.continue_timeout, authenticated, next_url)
        return token

    def release(self, token: str) -> tuple[dict, str | None] | None:
        expires, authenticated, next_url = self._held.pop(token, (0.0, {}, None))
        return (authenticated, next_url) if expires > time.time() else None


__all__ = [
    "CANVAS_AUTHORIZE",
    "CANVAS_ISSUER",
    "CANVAS_JWKS",
    "HubVizLTI11Authenticator",
    "HubVizLTI13Authenticator",
    "configure_lti",
]

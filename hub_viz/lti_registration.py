"""LTI 1.3 Dynamic Registration: a platform installs the tool from one URL, no restart.

The IMS "LTI Dynamic Registration" flow, as Canvas runs it: an admin pastes
the tool's registration URL; the platform opens it (in a frame) with
``openid_configuration`` and ``registration_token``; the tool reads the
platform's OpenID configuration, POSTs its client registration (the same
placements and claims as the developer key JSON of
:func:`hub_viz.lti_claims.canvas_developer_key`) with the token as bearer,
keeps the returned client id and the platform's endpoints, and answers a page
that tells the platform it is done (``org.imsglobal.lti.close``). Between
reading the configuration and registering, the admin sees what the tool asks
for (:func:`summary`) and confirms or cancels: the pending registration waits
under a single-use confirmation code (:class:`Pending`).

A platform that names the deployment it made for the tool (Moodle does; the
answer's ``deployment_id``) accepts launches from that deployment only
(``Registration.deployments``), until an admin lists others.

A registered platform asserts who its users are, so registering one gives
the power to log in as anyone. The registration URL therefore holds a
single-use, short-lived secret that only a holder of the hub's ``admin:users``
and ``tokens`` scopes on all users can mint (they may already act as anyone:
no power is handed out). Secrets live in the hub's memory, as hashes; the
registrations in a JSON file in the state folder (0600), read at each login.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .filemodes import make_private
from .lti_claims import DEEP_LINKING, platform_url_ok

TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CANVAS = "https://canvas.instructure.com/lti/"
REQUIRED = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "registration_endpoint",
)
# The claims each Canvas privacy level shares (the developer key's privacy_level).
PRIVACY_CLAIMS = {
    "anonymous": ["iss", "sub"],
    "name_only": ["iss", "sub", "name", "given_name", "family_name"],
    "email_only": ["iss", "sub", "email"],
    "public": ["iss", "sub", "name", "given_name", "family_name", "email", "picture"],
}
MAX_BODY = 256 * 1024


class RegistrationError(Exception):
    """A registration that cannot go on: ``message`` says why, in words for an admin."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Registration:
    """A platform that registered the tool: who it is and where its endpoints are."""

    issuer: str
    client_id: str
    authorize_url: str
    jwks_url: str
    token_url: str
    deployment_id: str = ""
    product: str = ""
    registered_at: float = 0.0
    deployments: tuple[str, ...] = ()  # the deployment ids that may launch; empty: any


# -- the registrations, kept in the state folder ------------------------------------


class RegistrationStore:
    """The registered platforms: a JSON file (0600), replaced whole on each change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> list[Registration]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        return [_registration(item) for item in data.get("platforms", [])]

    def find(self, issuer: str, client_id: str) -> Registration | None:
        return next(
            (r for r in self.load() if (r.issuer, r.client_id) == (issuer, client_id)), None
        )

    def add(self, registration: Registration) -> None:
        """Keep ``registration``, replacing one with the same issuer and client id."""
        kept = [
            r
            for r in self.load()
            if (r.issuer, r.client_id) != (registration.issuer, registration.client_id)
        ]
        self._write([*kept, registration])

    def remove(self, issuer: str, client_id: str) -> bool:
        """Forget a platform; False if it was not registered."""
        platforms = self.load()
        kept = [r for r in platforms if (r.issuer, r.client_id) != (issuer, client_id)]
        if len(kept) == len(platforms):
            return False
        self._write(kept)
        return True

    def _write(self, platforms: list[Registration]) -> None:
        items = [{**asdict(r), "deployments": list(r.deployments)} for r in platforms]
        body = json.dumps({"platforms": items}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body)
        os.replace(tmp, self.path)
        make_private(self.path)


def _registration(item: dict[str, Any]) -> Registration:
    fields: dict[str, Any] = {
        k: v for k, v in item.items() if k in Registration.__dataclass_fields__
    }
    fields["deployments"] = tuple(str(d) for d in fields.get("deployments") or ())
    return Registration(**fields)


class RegistrationSecrets:
    """Single-use, short-lived registration secrets, kept as hashes in memory."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    @staticmethod
    def _hash(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def mint(self, ttl: float) -> str:
        now = time.time()
        self._expiry = {h: t for h, t in self._expiry.items() if t > now}
        if len(self._expiry) >= 1000:
            self._expiry.pop(next(iter(self._expiry)))
        secret = secrets.token_urlsafe(32)
        self._expiry[self._hash(secret)] = now + ttl
        return secret

    def take(self, secret: str) -> str:
        """Use ``secret``: "ok", "expired" or "unknown" (never seen, or used already)."""
        digest = self._hash(secret)
        for known in list(self._expiry):
            if hmac.compare_digest(known, digest):
                expires = self._expiry.pop(known)
                return "ok" if expires > time.time() else "expired"
        return "unknown"


@dataclass(frozen=True)
class PendingRegistration:
    """A registration the admin has not confirmed yet: the platform's checked
    configuration, its registration token, and the request the tool will send."""

    config: dict[str, Any]
    token: str
    request: dict[str, Any]


class Pending:
    """Registrations waiting for the admin's answer, under single-use confirmation codes."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[float, PendingRegistration]] = {}

    def keep(self, pending: PendingRegistration, ttl: float) -> str:
        now = time.time()
        self._waiting = {k: v for k, v in self._waiting.items() if v[0] > now}
        if len(self._waiting) >= 1000:
            self._waiting.pop(next(iter(self._waiting)))
        code = secrets.token_urlsafe(32)
        self._waiting[RegistrationSecrets._hash(code)] = (now + ttl, pending)
        return code

    def take(self, code: str) -> PendingRegistration | None:
        """The pending registration of ``code`` (used up), or None (unknown, used, expired)."""
        expires, pending = self._waiting.pop(RegistrationSecrets._hash(code), (0.0, None))
        return pending if expires > time.time() else None


# -- the tool's registration request ------------------------------------------------


def registration_request(key: dict[str, Any]) -> dict[str, Any]:
    """The client registration for a developer key JSON (:func:`canvas_developer_key`).

    Same login, redirect and key set URLs, custom fields, claims (from the
    privacy level) and placements; one message per placement.
    """
    extension = key["extensions"][0]
    settings = extension["settings"]
    messages = []
    for placement in settings["placements"]:
        message: dict[str, Any] = {
            "type": placement["message_type"],
            "target_link_uri": placement["target_link_uri"],
            "label": placement["text"],
            "placements": [placement["placement"]],
        }
        if placement["message_type"] == DEEP_LINKING:
            message["supported_types"] = ["ltiResourceLink"]
        if placement.get("windowTarget") == "_blank":
            message[CANVAS + "display_type"] = "new_window"
        messages.append(message)
    privacy = extension["privacy_level"]
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": key["oidc_initiation_url"],
        "redirect_uris": list(key["redirect_uris"]),
        "client_name": key["title"],
        "jwks_uri": key["public_jwk_url"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(key["scopes"]),
        TOOL_CONFIG: {
            "domain": extension["domain"],
            "description": key["description"],
            "target_link_uri": key["target_link_uri"],
            "custom_parameters": dict(key["custom_fields"]),
            "claims": PRIVACY_CLAIMS[privacy],
            "messages": messages,
            CANVAS + "privacy_level": privacy,
        },
    }


def summary(request: dict[str, Any]) -> dict[str, Any]:
    """What the platform is asked to give the tool, for the admin's confirmation page."""
    tool = request[TOOL_CONFIG]
    return {
        "name": request["client_name"],
        "placements": [
            {
                "label": m.get("label", ""),
                "placement": ", ".join(m.get("placements", [])),
                "picker": m["type"] == DEEP_LINKING,
            }
            for m in tool["messages"]
        ],
        "claims": list(tool["claims"]),
        "scopes": request["scope"].split(),
        "custom": dict(tool.get("custom_parameters") or {}),
        "privacy": tool.get(CANVAS + "privacy_level", ""),
        "domain": tool["domain"],
    }


# -- the platform's side ------------------------------------------------------------


def _endpoint(value: Any, name: str) -> str:
    if not platform_url_ok(value):
        raise RegistrationError(
            f"The platform's OpenID configuration gives no https URL for "
            f"{name} (got {str(value)[:200]!r})."
        )
    return value


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def check_configuration(config: Any, config_url: str) -> dict[str, Any]:
    """The platform's OpenID configuration, checked: required fields, https endpoints,
    and the configuration URL on the issuer's host."""
    if not isinstance(config, dict):
        raise RegistrationError("The platform's OpenID configuration is not a JSON object.")
    missing = [k for k in REQUIRED if not config.get(k)]
    if missing or not isinstance(config.get(PLATFORM_CONFIG), dict):
        missing += [] if isinstance(config.get(PLATFORM_CONFIG), dict) else [PLATFORM_CONFIG]
        raise RegistrationError(
            "The platform's OpenID configuration lacks "
            f"{', '.join(missing)}: it does not support LTI Dynamic "
            "Registration."
        )
    for name in REQUIRED:
        _endpoint(config[name], name)
    issuer = urlsplit(config["issuer"])
    if issuer.query or issuer.fragment:
        raise RegistrationError("The platform's issuer must be a URL without query or fragment.")
    where = urlsplit(config_url)
    if (where.hostname, _port(where)) != (issuer.hostname, _port(issuer)):
        raise RegistrationError(
            f"The OpenID configuration URL is on {where.hostname}, not on the issuer's host "
            f"({issuer.hostname}): the registration is refused."
        )
    algs = config.get("id_token_signing_alg_values_supported")
    if isinstance(algs, list) and "RS256" not in algs:
        raise RegistrationError("The platform does not sign id_tokens with RS256.")
    return config


async def _fetch(request: HTTPRequest, what: str) -> Any:
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        if e.code == 599:  # a timeout or a dropped connection: no answer at all
            raise RegistrationError(f"The platform did not answer {what} in time.", 502) from None
        raise RegistrationError(
            f"The platform refused {what} (HTTP {e.code}): "
            f"{_their_words(e.response.body if e.response else b'')}"
        ) from None
    except OSError as e:
        raise RegistrationError(
            f"The platform could not be reached for {what}: {e}.", 502
        ) from None
    if len(response.body) > MAX_BODY:
        raise RegistrationError(f"The platform's answer to {what} is too large.")
    try:
        return json.loads(response.body)
    except ValueError:
        raise RegistrationError(f"The platform's answer to {what} is not JSON.") from None


def _their_words(body: bytes) -> str:
    """A platform's error answer, short: its error_description/error, else its text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        words = data.get("error_description") or data.get("error") or data.get("message")
        if words:
            return str(words)[:500]
    return text.strip()[:500] or "no reason given"


async def read_configuration(config_url: str, token: str, timeout: float = 20) -> dict[str, Any]:
    """The platform's OpenID configuration, fetched with the registration token and
    checked (:func:`check_configuration`). Raises :class:`RegistrationError`."""
    _endpoint(config_url, "openid_configuration")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return check_configuration(
        await _fetch(
            HTTPRequest(
                config_url,
                headers={"Accept": "application/json", **auth},
                request_timeout=timeout,
                follow_redirects=False,
            ),
            "its OpenID configuration",
        ),
        config_url,
    )


async def submit(
    config: dict[str, Any],
    token: str,
    request: dict[str, Any],
    timeout: float = 20,
    *,
    pin_deployment: bool = True,
) -> Registration:
    """Register with the platform of a checked ``config``; return what the hub keeps.

    With ``pin_deployment``, a deployment the platform names is the only one
    that may launch. Raises :class:`RegistrationError`.
    """
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await _fetch(
        HTTPRequest(
            config["registration_endpoint"],
            method="POST",
            body=json.dumps(request),
            headers={"Content-Type": "application/json", "Accept": "application/json", **auth},
            request_timeout=timeout,
            follow_redirects=False,
        ),
        "the registration",
    )
    client_id = answer.get("client_id") if isinstance(answer, dict) else None
    if not isinstance(client_id, (str, int)) or not str(client_id).strip():
        raise RegistrationError("The platform's answer to the registration has no client_id.")
    tool = answer.get(TOOL_CONFIG) if isinstance(answer.get(TOOL_CONFIG), dict) else {}
    platform = config[PLATFORM_CONFIG]
    deployment = str(tool.get("deployment_id") or "")[:200]
    return Registration(
        issuer=config["issuer"],
        client_id=str(client_id).strip(),
        authorize_url=config["authorization_endpoint"],
        jwks_url=config["jwks_uri"],
        token_url=config["token_endpoint"],
        deployment_id=deployment,
        product=str(platform.get("product_family_code") or "")[:100],
        registered_at=time.time(),
        deployments=(deployment,) if deployment and pin_deployment else (),
    )


async def register(
    config_url: str, token: str, request: dict[str, Any], timeout: float = 20
) -> Registration:
    """Read the platform's configuration and register at once (no confirmation step)."""
    config = await read_configuration(config_url, token, timeout)
    return await submit(config, token, request, timeout)


__all__ = [
    "Pending",
    "PendingRegistration",
    "Registration",
    "RegistrationError",
    "RegistrationSecrets",
    "RegistrationStore",
    "check_configuration",
    "read_configuration",
    "register",
    "registration_request",
    "submit",
    "summary",
]

"""Log in from an LMS: real signed LTI 1.3 and 1.1 launches against a real hub.

The test plays the platform. LTI 1.3: an RSA key made here, its key set
served from a loopback HTTP server, the OIDC login initiation, then the
form post of an id_token with Canvas's claims. LTI 1.1: parameters as Canvas
sends them, signed with oauthlib (HMAC-SHA1). Nothing of the authenticator
is mocked.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client

from ..conftest import BROWSER_UA, SERVICE, Hub, free_port, start_hub, stop_hub

pytestmark = [pytest.mark.hub, pytest.mark.smoke]  # also on JupyterHub 5.5 in CI

ISSUER = "https://canvas.test.example"
AUTHORIZE = "/authorize"  # the platform's authentication endpoint, on its loopback server
CLIENT_ID = "10000000000042"
DEPLOYMENT = "42:5a9e7b0c3d"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER = [
    LIS + "institution/person#Student",
    LIS + "membership#Learner",
    LIS + "system/person#User",
]
TEACHER_ROLES = [
    LIS + "institution/person#Instructor",
    LIS + "membership#Instructor",
    LIS + "system/person#User",
]
CTX = "4dde05e8ca1973bcca9bffc13e1548820eee93a3"
OTHER_CTX = "0b3c7d4e1f2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c"
COPY_CTX = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"  # a copy of CTX (next term)
TEACHER = "lti-teacher"  # owns the published dashboards; also launches as an instructor
COLLEAGUE = "lti-colleague"  # shares a dashboard with the teacher only
SHARED = "course-sales"
PRIVATE = "secret-sales"
LAB = "lab-results"  # private until the teacher picks it for the course
NOTES = "colleague-notes"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CONSUMER_KEY, CONSUMER_SECRET = "canvas-key", "canvas-shared-secret"
BROWSER = {"User-Agent": BROWSER_UA}


def publish_list() -> list[dict[str, Any]]:
    return [
        {
            "owner": TEACHER,
            "slug": SHARED,
            "title": "Course sales",
            "entry": "dash/app.py",
            "visibility": "groups",
            "share_groups": [f"course-{CTX}"],
        },
        {"owner": TEACHER, "slug": PRIVATE, "title": "Secret sales", "entry": "dash/app.py"},
        {
            "owner": TEACHER,
            "slug": LAB,
            "title": "Lab results",
            "entry": "dash/app.py",
            "description": "Week 2 measurements",
        },
        {
            "owner": COLLEAGUE,
            "slug": NOTES,
            "title": "Colleague notes",
            "entry": "dash/app.py",
            "visibility": "users",
            "share_users": [TEACHER],
        },
    ]


# -- the platform -----------------------------------------------------------------------


def auto_post(url: str, fields: dict[str, str]) -> bytes:
    """A page that posts ``fields`` to ``url`` as soon as it loads (as Canvas's pages do)."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    return (
        f'<!doctype html><form method="post" action="{escape(url)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    ).encode()


class Platform:
    """An LTI 1.3 platform: a key pair and its key set on a loopback HTTP server.

    For Deep Linking it also serves, on the same server: a course page that frames
    the tool (``/course?hub=…&hint=…``), the frame's login initiation (``/launch``),
    the authentication endpoint answering with a signed id_token (``/authorize``),
    and the ``deep_link_return_url`` (``/deep_links``) that keeps each response.

    For Dynamic Registration: its OpenID configuration
    (``/.well-known/openid-configuration``) and registration endpoint (``/register``),
    both requiring the registration token as bearer, as Canvas's do. ``issuer=None``
    makes the platform's issuer its own origin (the configuration is on the issuer's
    host); ``config_issuer`` makes the configuration claim another issuer;
    ``refuse`` makes the registration endpoint refuse with that message.
    """

    def __init__(
        self,
        issuer: str | None = ISSUER,
        client_id: str = CLIENT_ID,
        *,
        config_issuer: str | None = None,
        refuse: str | None = None,
    ) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="test-key", alg="RS256", use="sig")
        body = json.dumps({"keys": [jwk]}).encode()
        self.responses: list[str] = []  # the JWTs posted to the deep_link_return_url
        self.client_id = client_id
        self.registration_token = "reg-" + uuid.uuid4().hex
        self.registrations: list[dict[str, Any]] = []  # the tool's registration requests
        self.config_issuer, self.refuse = config_issuer, refuse
        platform = self

        class Pages(BaseHTTPRequestHandler):
            def _send(self, status: int, content: bytes, kind: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(content)

            def _bearer(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {platform.registration_token}":
                    return True
                self._send(401, b'{"error": "invalid_token"}', "application/json")
                return False

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                args = {k: v[0] for k, v in parse_qs(query).items()}
                if path == "/jwks":
                    self._send(200, body, "application/json")
                elif path == "/.well-known/openid-configuration":
                    if self._bearer():
                        self._send(
                            200,
                            json.dumps(platform.openid_configuration()).encode(),
                            "application/json",
                        )
                elif path == "/course":  # the module's "add item" dialog frames the tool
                    frame = "/launch?" + urlencode(args)
                    self._send(
                        200,
                        f'<!doctype html><h1>Calculus</h1><iframe id="tool" '
                        f'src="{escape(frame)}" width="1000" height="700">'
                        "</iframe>".encode(),
                    )
                elif path == "/register-tool":  # "+ LTI Registration" frames the tool's URL
                    src = (
                        args["url"]
                        + "?"
                        + urlencode(
                            {
                                "openid_configuration": platform.config_url,
                                "registration_token": platform.registration_token,
                            }
                        )
                    )
                    self._send(
                        200,
                        (
                            f'<!doctype html><h1>Register a tool</h1><iframe id="tool" '
                            f'src="{escape(src)}" width="800" height="400"></iframe><script>'
                            'window.addEventListener("message", (e) => {'
                            ' const frame = document.getElementById("tool").contentWindow;'
                            " if (e.source === frame && e.data"
                            ' && e.data.subject === "org.imsglobal.lti.close") {'
                            '  const p = document.createElement("p"); p.id = "closed";'
                            '  p.textContent = "closed"; document.body.append(p); } });'
                            "</script>"
                        ).encode(),
                    )
                elif path == "/launch":  # Canvas's frame posts the login initiation
                    self._send(
                        200,
                        auto_post(
                            args["hub"] + "/hub/lti13/oauth_login",
                            {
                                "iss": platform.issuer,
                                "login_hint": args["sub"],
                                "target_link_uri": args["hub"] + "/hub/lti13/pick",
                                "lti_message_hint": args["hint"],
                                "client_id": platform.client_id,
                                "lti_deployment_id": DEPLOYMENT,
                            },
                        ),
                    )
                elif path == "/authorize":  # the user is who the hint says: sign for them
                    hint = json.loads(base64.urlsafe_b64decode(args["lti_message_hint"]))
                    token = platform.id_token(
                        nonce=args["nonce"],
                        sub=args["login_hint"],
                        roles=hint["roles"],
                        target=hint["target"],
                        message_type="LtiDeepLinkingRequest",
                        deep_linking=platform.deep_linking_settings(),
                    )
                    self._send(
                        200,
                        auto_post(
                            args["redirect_uri"], {"id_token": token, "state": args["state"]}
                        ),
                    )
                else:
                    self._send(404, b"not here")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if self.path == "/register":
                    if not self._bearer():
                        return
                    if platform.refuse:
                        self._send(
                            400,
                            json.dumps(
                                {
                                    "error": "invalid_client_metadata",
                                    "error_description": platform.refuse,
                                }
                            ).encode(),
                            "application/json",
                        )
                        return
                    request = json.loads(raw)
                    platform.registrations.append(request)
                    tool = request[TOOL_CONFIG]
                    self._send(
                        200,
                        json.dumps(
                            {
                                **request,
                                "client_id": platform.client_id,
                                TOOL_CONFIG: {**tool, "deployment_id": DEPLOYMENT},
                            }
                        ).encode(),
                        "application/json",
                    )
                    return
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if self.path != "/deep_links" or "JWT" not in form:
                    self._send(400, b"no JWT")
                    return
                platform.responses.append(form["JWT"])
                self._send(
                    200,
                    f'<!doctype html><p id="added">Received response '
                    f"{len(platform.responses)}</p>".encode(),
                )

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Pages)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.jwks_url = f"{self.origin}/jwks"
        self.issuer = issuer or self.origin
        self.config_url = f"{self.origin}/.well-known/openid-configuration"

    def openid_configuration(self) -> dict[str, Any]:
        """What Canvas's OpenID configuration holds (the parts a tool reads)."""
        return {
            "issuer": self.config_issuer or self.issuer,
            "authorization_endpoint": self.origin + AUTHORIZE,
            "registration_endpoint": self.origin + "/register",
            "jwks_uri": self.jwks_url,
            "token_endpoint": self.origin + "/login/oauth2/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name"],
            "subject_types_supported": ["public"],
            "authorization_server": self.origin.removeprefix("http://"),
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "canvas",
                "version": "OpenSource",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
                    {
                        "type": "LtiDeepLinkingRequest",
                        "placements": ["link_selection", "assignment_selection", "editor_button"],
                    },
                ],
            },
        }

    def deep_linking_settings(self) -> dict[str, Any]:
        return {
            "deep_link_return_url": f"{self.origin}/deep_links",
            "accept_types": ["link", "file", "html", "ltiResourceLink", "image"],
            "accept_presentation_document_targets": ["embed", "iframe", "window"],
            "accept_media_types": "image/*,text/html",
            "accept_multiple": True,
            "auto_create": False,
            "data": "canvas-opaque-data-7f3a",
        }

    def pem(self, key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def id_token(
        self,
        *,
        nonce: str,
        sub: str,
        roles: list[str],
        target: str,
        context: str | None = CTX,
        context_claim: dict | None = None,
        custom: dict | None = None,
        aud: str | None = None,
        age: int = 0,
        drop: tuple[str, ...] = (),
        other_key: bool = False,
        message_type: str = "LtiResourceLinkRequest",
        deep_linking: dict | None = None,
        deployment: str = DEPLOYMENT,
    ) -> str:
        now = int(time.time()) - age
        aud = aud or self.client_id
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": aud,
            "azp": aud,
            "sub": sub,
            "nonce": nonce,
            "iat": now,
            "exp": now + 300,
            "name": "Ada Lovelace",
            "locale": "en",
            CLAIM + "message_type": message_type,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": deployment,
            CLAIM + "target_link_uri": target,
            CLAIM + "resource_link": {"id": "5e7a0c3d-link", "title": "Sales"},
            CLAIM + "roles": roles,
            CLAIM + "custom": custom or {},
            CLAIM + "tool_platform": {
                "guid": "canvas-guid",
                "name": "Test U",
                "product_family_code": "canvas",
                "version": "cloud",
            },
            CLAIM + "launch_presentation": {
                "document_target": "iframe",
                "return_url": ISSUER + "/courses/1/external_content",
            },
            CLAIM + "lti1p1": {"user_id": "a" * 40},
        }
        if context:
            claims[CLAIM + "context"] = {
                "id": context,
                "label": "MATH101",
                "title": "Calculus",
                "type": [LIS.replace("v2/", "v2/course#CourseOffering")],
            }
        if context_claim is not None:
            claims[CLAIM + "context"] = context_claim
        if deep_linking is not None:  # a Deep Linking request has no resource link
            claims.pop(CLAIM + "resource_link")
            claims[DL + "deep_linking_settings"] = deep_linking
        for key in drop:
            claims.pop(key, None)
        key = self.other_key if other_key else self.key
        return jwt.encode(claims, self.pem(key), algorithm="RS256", headers={"kid": "test-key"})

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    p = Platform()
    yield p
    p.close()


def _start(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    lti: dict,
    cls: str,
    isolated: bool = False,
    extra: str = "",
) -> Hub:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTERHUB_CRYPT_KEY", "ab" * 32)
        hub = start_hub(
            tmp_path_factory.mktemp(name),
            publish=publish_list(),
            configure_kwargs={"lti": lti},
            # the shared test config sets the password authenticator after configure()
            extra_config=f"c.JupyterHub.authenticator_class = {cls!r}\n" + extra,
            isolated=isolated,
        )
    hub.ensure_user(TEACHER)
    hub.ensure_user(COLLEAGUE)
    return hub


@pytest.fixture(scope="module")
def hub13(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> Iterator[Hub]:
    hub = _start(
        tmp_path_factory,
        "lti13",
        {
            "client_id": CLIENT_ID,
            "issuer": ISSUER,
            "jwks_url": platform.jwks_url,
            "authorize_url": platform.origin + AUTHORIZE,
            "deployments": [DEPLOYMENT, "42:another-install"],
        },
        "hub_viz.lti.HubVizLTI13Authenticator",
        isolated=True,
    )
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def hub11(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = _start(
        tmp_path_factory,
        "lti11",
        {
            "version": "1.1",
            "consumers": {CONSUMER_KEY: CONSUMER_SECRET},
        },
        "hub_viz.lti.HubVizLTI11Authenticator",
        isolated=True,
    )
    yield hub
    stop_hub(hub)


# -- helpers ------------------------------------------------------------------------------


def login_init(
    hub: Hub,
    s: requests.Session,
    sub: str,
    target: str,
    *,
    iss: str = ISSUER,
    client_id: str = CLIENT_ID,
    **headers: str,
):
    return s.post(
        f"{hub.url}/hub/lti13/oauth_login",
        data={
            "iss": iss,
            "login_hint": sub,
            "target_link_uri": target,
            "lti_message_hint": "eyJ0eXAiOiJKV1QifQ.hint.sig",
            "client_id": client_id,
            "lti_deployment_id": DEPLOYMENT,
        },
        headers={**BROWSER, **headers},
        allow_redirects=False,
        timeout=30,
    )


def auth_request(response: requests.Response) -> dict[str, str]:
    """The authentication request the hub sent the browser to the platform with."""
    assert response.status_code == 302, (response.status_code, response.text[-500:])
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert (parts.hostname, parts.path) == ("127.0.0.1", AUTHORIZE), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def launch13(
    hub: Hub,
    platform: Platform,
    sub: str,
    roles: list[str],
    *,
    target: str | None = None,
    session: requests.Session | None = None,
    **token: Any,
) -> tuple[requests.Session, requests.Response]:
    """The whole LTI 1.3 flow: login initiation, then the platform's form post."""
    s = session or requests.Session()
    target = target or f"{hub.url}/hub/home"
    request = auth_request(
        login_init(hub, s, sub, target, iss=platform.issuer, client_id=platform.client_id)
    )
    assert request["client_id"] == platform.client_id and request["response_mode"] == "form_post"
    assert request["redirect_uri"] == f"{hub.url}/hub/lti13/oauth_callback"
    id_token = platform.id_token(
        nonce=request["nonce"], sub=sub, roles=roles, target=target, **token
    )
    r = s.post(
        request["redirect_uri"],
        data={"id_token": id_token, "state": request["state"]},
        headers=BROWSER,
        allow_redirects=False,
        timeout=60,
    )
    return s, r


def user(hub: Hub, name: str) -> dict | None:
    r = hub.api("GET", f"/users/{name}")
    return r.json() if r.status_code == 200 else None


def open_path(slug: str, owner: str = TEACHER, hub: Hub | None = None) -> str:
    """A dashboard's open page as the hub sends a launch there: a path on the hub's
    host, or on the isolated layout the absolute URL on the service's host."""
    prefix = hub.service_url if hub is not None and hub.layout.isolated else SERVICE
    return f"{prefix}open/{owner}/{slug}"


def assert_open_page(hub: Hub, s: requests.Session, location: str, title: str) -> None:
    """The deep link's open page renders for the session the launch logged in."""
    page = s.get(urljoin(hub.url, location), headers=BROWSER, timeout=60)
    assert page.status_code == 200, page.text[-500:]
    assert urlsplit(page.url).path == urlsplit(location).path
    assert title in page.text


def open_until_ready(hub: Hub, viewer: str, slug: str) -> dict:
    r = hub.svc("POST", f"dashboards/{TEACHER}/{slug}/open", viewer)
    assert r.status_code == 200, r.text
    if r.json()["status"] != "ready":
        hub.wait(TEACHER, slug)
        r = hub.svc("POST", f"dashboards/{TEACHER}/{slug}/open", viewer)
    assert r.json()["status"] == "ready", r.text
    return r.json()


def refused(r: requests.Response, status: int, text: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[-800:])
    assert text in r.text, r.text[-800:]
    assert "Traceback" not in r.text


# -- LTI 1.3 ------------------------------------------------------------------------------


def test_learner_deep_link_lands_on_the_dashboard(hub13: Hub, platform: Platform) -> None:
    name = "lti13-learner"
    s, r = launch13(hub13, platform, name, LEARNER, custom={"dashboard": f"{TEACHER}/{SHARED}"})
    assert r.status_code == 302, r.text[-800:]
    assert r.headers["Location"] == open_path(SHARED, hub=hub13)
    assert user(hub13, name)["groups"] == [f"course-{CTX}"]
    assert_open_page(hub13, s, open_path(SHARED, hub=hub13), "Course sales")
    try:
        body = open_until_ready(hub13, name, SHARED)
        page = requests.get(urljoin(hub13.url, body["url"]), headers=BROWSER, timeout=60)
        assert page.status_code == 200
    finally:
        hub13.stop(TEACHER, SHARED)


def test_target_link_to_an_open_page_is_a_deep_link(hub13: Hub, platform: Platform) -> None:
    name = "lti13-linked"
    target = open_path(SHARED, hub=hub13)
    s, r = launch13(hub13, platform, name, LEARNER, target=target)
    assert r.status_code == 302 and r.headers["Location"] == open_path(SHARED, hub=hub13), r.text[
        -500:
    ]
    assert_open_page(hub13, s, open_path(SHARED, hub=hub13), "Course sales")


def test_instructor_gets_both_groups_and_publishes_to_the_course(
    hub13: Hub, platform: Platform
) -> None:
    s, r = launch13(hub13, platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302 and r.headers["Location"] == "/hub/home", r.text[-500:]
    groups = user(hub13, TEACHER)["groups"]
    assert sorted(groups) == [f"course-{CTX}", f"course-{CTX}-instructors"]
    home = s.get(hub13.url + "/hub/home", headers=BROWSER, timeout=30)
    assert home.status_code == 200 and urlsplit(home.url).path == "/hub/home"
    # the publish form offers the author's groups: the course is one of them
    info = hub13.svc("GET", "info", TEACHER).json()
    assert f"course-{CTX}" in info["groups"]
    # ... by the course's title, not only its opaque id
    assert info["group_titles"] == {
        f"course-{CTX}": "Calculus",
        f"course-{CTX}-instructors": "Calculus (instructors)",
    }
    r = hub13.svc(
        "POST",
        "dashboards",
        TEACHER,
        json={
            "title": "Week 3",
            "slug": "week-3",
            "entry": "dash/app.py",
            "visibility": "groups",
            "share_groups": [f"course-{CTX}"],
        },
    )
    assert r.status_code == 201, r.text
    try:
        learner = "lti13-classmate"
        launch13(hub13, platform, learner, LEARNER)
        slugs = [d["slug"] for d in hub13.svc("GET", "dashboards", learner).json()["items"]]
        assert "week-3" in slugs and PRIVATE not in slugs
        # a learner of the course may not publish to the whole class
        r = hub13.svc(
            "POST",
            "dashboards",
            learner,
            json={
                "title": "Spam",
                "entry": "dash/app.py",
                "visibility": "groups",
                "share_groups": [f"course-{CTX}"],
            },
        )
        assert r.status_code == 403, r.text
        assert r.json()["message"] == (
            f"Only the instructors of a course may share with its group 'course-{CTX}'."
        )
        outsider = "lti13-outsider"
        launch13(hub13, platform, outsider, LEARNER, context=OTHER_CTX)
        slugs = [d["slug"] for d in hub13.svc("GET", "dashboards", outsider).json()["items"]]
        assert "week-3" not in slugs
    finally:
        assert hub13.svc("DELETE", f"dashboards/{TEACHER}/week-3", TEACHER).status_code == 204


def test_course_groups_follow_each_launch(hub13: Hub, platform: Platform) -> None:
    name = "lti13-ta"
    hub13.ensure_user(name)
    assert hub13.api("POST", "/groups/lab").status_code in (201, 409)
    assert hub13.api("POST", "/groups/lab/users", json={"users": [name]}).status_code == 200
    ta = [LIS + "membership/Instructor#TeachingAssistant"]
    launch13(hub13, platform, name, ta)
    assert sorted(user(hub13, name)["groups"]) == sorted(
        ["lab", f"course-{CTX}", f"course-{CTX}-instructors"]
    )
    launch13(hub13, platform, name, LEARNER)  # no longer a TA in this course
    assert sorted(user(hub13, name)["groups"]) == sorted(["lab", f"course-{CTX}"])
    launch13(hub13, platform, name, LEARNER, context=OTHER_CTX)  # another course adds its group
    assert sorted(user(hub13, name)["groups"]) == sorted(
        ["lab", f"course-{CTX}", f"course-{OTHER_CTX}"]
    )
    group = hub13.api("GET", f"/groups/course-{CTX}").json()
    assert group["properties"]["lti_context_label"] == "MATH101"
    assert group["properties"]["lti_context_title"] == "Calculus"


@pytest.mark.parametrize(
    ("case", "token", "status", "text"),
    [
        (
            "bad-signature",
            {"other_key": True},
            400,
            "it is not signed by the course site this hub trusts",
        ),
        ("wrong-audience", {"aud": "someone-else"}, 401, "This launch was meant for another tool"),
        ("expired", {"age": 900}, 400, "This launch has expired"),
        (
            "no-roles",
            {"drop": (CLAIM + "roles",)},
            400,
            "did not say your role in the course (roles). Open the link from your course again",
        ),
        (
            "no-deployment",
            {"drop": (CLAIM + "deployment_id",)},
            400,
            "which installation of the tool it is for (deployment_id)",
        ),
        (
            "no-resource-link",
            {"drop": (CLAIM + "resource_link",)},
            400,
            "which link you opened (resource_link)",
        ),
        ("no-course", {"context": None}, 403, "This hub opens from inside a course"),
        (
            "course-without-id",
            {"context": None, "context_claim": {"label": "MATH101", "title": "Calculus"}},
            403,
            "This hub opens from inside a course",
        ),
        (
            "other-deployment",
            {"deployment": "77:somewhere-else"},
            403,
            "does not accept launches from this installation of the tool",
        ),
        ("other-host-dashboard", {"custom": {"dashboard": "//evil.example/x"}}, 400, "OWNER/SLUG"),
        (
            "private-dashboard",
            {"custom": {"dashboard": f"{TEACHER}/{PRIVATE}"}},
            403,
            "which you may not see",
        ),
        (
            "missing-dashboard",
            {"custom": {"dashboard": f"{TEACHER}/nothing-here"}},
            403,
            "which you may not see",
        ),
    ],
)
def test_bad_launches_are_refused_and_create_no_user(
    hub13: Hub, platform: Platform, case: str, token: dict, status: int, text: str
) -> None:
    name = f"lti13-bad-{case}"
    _, r = launch13(hub13, platform, name, LEARNER, **token)
    refused(r, status, text)
    assert user(hub13, name) is None


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/services/hub-viz/open/a/b",
        "//evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
    ],
)
def test_links_to_other_hosts_are_refused(hub13: Hub, platform: Platform, target: str) -> None:
    name = "lti13-evil-" + uuid.uuid4().hex[:6]
    _, r = launch13(hub13, platform, name, LEARNER, target=target)
    refused(r, 400, "only links to this hub")
    assert user(hub13, name) is None


def test_replayed_launches_are_refused(hub13: Hub, platform: Platform) -> None:
    name = "lti13-replay"
    s = requests.Session()
    request = auth_request(login_init(hub13, s, name, f"{hub13.url}/hub/home"))
    cookies = s.cookies.get_dict()
    post = {
        "id_token": platform.id_token(
            nonce=request["nonce"], sub=name, roles=LEARNER, target=f"{hub13.url}/hub/home"
        ),
        "state": request["state"],
    }
    url = request["redirect_uri"]
    r = s.post(url, data=post, headers=BROWSER, allow_redirects=False, timeout=60)
    assert r.status_code == 302
    # the same post with the same cookies (say, captured): the nonce was used
    r = requests.post(
        url, data=post, cookies=cookies, headers=BROWSER, allow_redirects=False, timeout=60
    )
    refused(r, 400, "used already")
    # a fresh login's cookies with an old id_token: its nonce is not this login's
    s2 = requests.Session()
    fresh = auth_request(login_init(hub13, s2, name, f"{hub13.url}/hub/home"))
    r = s2.post(
        url,
        data={**post, "state": fresh["state"]},
        headers=BROWSER,
        allow_redirects=False,
        timeout=60,
    )
    refused(r, 400, "This launch does not belong to the sign-in this browser started")
    assert "nonce mismatch" not in r.text and "Open the link from your course again" in r.text


def test_a_launch_overtaken_by_another_says_so(hub13: Hub, platform: Platform) -> None:
    """Two links opened in one browser: the first one's answer arrives after the second
    sign-in began (its state cookie replaced). Plain words, no user; the second works."""
    name, target = "lti13-two-tabs", f"{hub13.url}/hub/home"
    s = requests.Session()
    first, second = (auth_request(login_init(hub13, s, name, target)) for _ in range(2))
    for request, expected in ((first, 400), (second, 302)):
        r = s.post(
            request["redirect_uri"],
            data={
                "id_token": platform.id_token(
                    nonce=request["nonce"], sub=name, roles=LEARNER, target=target
                ),
                "state": request["state"],
            },
            headers=BROWSER,
            allow_redirects=False,
            timeout=60,
        )
        if expected == 400:
            refused(r, 400, "This sign-in is not the one this browser started last")
            assert "OAuth state" not in r.text and "Open the link from your course again" in r.text
            assert user(hub13, name) is None
        else:
            assert r.status_code == 302, r.text[-500:]
    assert user(hub13, name) is not None


def test_odd_logins_and_answers_get_plain_words(hub13: Hub) -> None:
    r = requests.post(
        f"{hub13.url}/hub/lti13/oauth_login",
        data={"iss": ISSUER, "login_hint": "x", "client_id": CLIENT_ID},
        headers=BROWSER,
        allow_redirects=False,
        timeout=30,
    )
    refused(r, 400, "did not say where to go (target_link_uri)")
    assert "Required LTI 1.3 arg" not in r.text
    s = requests.Session()
    request = auth_request(login_init(hub13, s, "lti13-odd", f"{hub13.url}/hub/home"))
    for data, words in (
        ({"id_token": "x.y.z", "state": "é"}, "not the one this browser started last"),
        ({"id_token": "x.y.z"}, "which sign-in it belongs to (state)"),
        ({"state": request["state"]}, "who you are (id_token)"),
    ):
        r = s.post(
            request["redirect_uri"],
            data=data,
            headers=BROWSER,
            allow_redirects=False,
            timeout=30,
        )
        refused(r, 400, words)
        assert "Required LTI 1.3 arg" not in r.text and "OAuth" not in r.text


def test_missing_state_cookie_offers_a_new_tab(hub13: Hub, platform: Platform) -> None:
    """What a third-party frame without cookies sees: a 4xx page with a button, no traceback."""
    name = "lti13-no-cookie"
    request = auth_request(login_init(hub13, requests.Session(), name, f"{hub13.url}/hub/home"))
    id_token = platform.id_token(
        nonce=request["nonce"], sub=name, roles=LEARNER, target=f"{hub13.url}/hub/home"
    )
    r = requests.post(
        request["redirect_uri"],
        data={"id_token": id_token, "state": request["state"]},
        headers={**BROWSER, "Sec-Fetch-Dest": "iframe"},
        allow_redirects=False,
        timeout=60,
    )
    refused(r, 400, "Open in a new tab")
    assert r.headers["Content-Security-Policy"] == "frame-ancestors *"
    link = re.search(r'href="([^"]+)" target="_blank"', r.text).group(1).replace("&amp;", "&")
    assert link.startswith("/hub/lti13/oauth_login?")
    assert parse_qs(urlsplit(link).query)["login_hint"] == [name]
    assert user(hub13, name) is None


def test_framed_launch_breaks_out_to_a_new_tab(hub13: Hub, platform: Platform) -> None:
    name = "lti13-framed"
    target = open_path(SHARED, hub=hub13)
    r = login_init(hub13, requests.Session(), name, target, **{"Sec-Fetch-Dest": "iframe"})
    assert r.status_code == 200, r.text[-500:]
    assert r.headers["Content-Security-Policy"] == "frame-ancestors *"
    assert "Open in a new tab" in r.text
    link = re.search(r'href="([^"]+)" target="_blank"', r.text).group(1).replace("&amp;", "&")
    # the new tab: a top-level GET of the same login initiation, then the usual flow
    tab = requests.Session()
    request = auth_request(
        tab.get(
            urljoin(hub13.url, link),
            headers={**BROWSER, "Sec-Fetch-Dest": "document"},
            allow_redirects=False,
            timeout=30,
        )
    )
    id_token = platform.id_token(nonce=request["nonce"], sub=name, roles=LEARNER, target=target)
    r = tab.post(
        request["redirect_uri"],
        data={"id_token": id_token, "state": request["state"]},
        headers=BROWSER,
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 302 and r.headers["Location"] == open_path(SHARED, hub=hub13), r.text[
        -500:
    ]
    assert_open_page(hub13, tab, open_path(SHARED, hub=hub13), "Course sales")


@pytest.mark.parametrize(
    ("id_token", "hidden"),
    [
        ("not-a-jwt", "Not enough segments"),
        (jwt.encode({"a": 1}, "k" * 32, algorithm="HS256"), "Unable to find a signing key"),
    ],
)
def test_unreadable_launches_get_plain_words(hub13: Hub, id_token: str, hidden: str) -> None:
    s = requests.Session()
    request = auth_request(login_init(hub13, s, "lti13-garbled", f"{hub13.url}/hub/home"))
    r = s.post(
        request["redirect_uri"],
        data={"id_token": id_token, "state": request["state"]},
        headers=BROWSER,
        allow_redirects=False,
        timeout=60,
    )
    refused(r, 400, "not signed by the course site this hub trusts, or it was damaged")
    assert hidden not in r.text and "Open the link from your course again" in r.text


def test_platform_errors_and_strangers_get_clear_pages(hub13: Hub) -> None:
    r = requests.post(
        f"{hub13.url}/hub/lti13/oauth_callback",
        data={"error": "launch_no_longer_valid", "state": "x"},
        headers=BROWSER,
        allow_redirects=False,
        timeout=30,
    )
    refused(r, 400, "launch_no_longer_valid")
    r = requests.get(f"{hub13.url}/hub/lti13/oauth_login", headers=BROWSER, timeout=30)
    refused(r, 400, "Sign in by opening this hub from its link in your course")
    r = requests.post(
        f"{hub13.url}/hub/lti13/oauth_login",
        headers=BROWSER,
        timeout=30,
        data={"iss": "https://other.example", "login_hint": "x", "target_link_uri": hub13.url},
        allow_redirects=False,
    )
    refused(r, 400, f"accepts launches from {ISSUER} only")


def test_can_view_answers_the_hub_only(hub13: Hub) -> None:
    body = {"username": "x", "groups": [f"course-{CTX}"], "dashboard": f"{TEACHER}/{SHARED}"}
    # through the public proxy: not there
    r = requests.post(f"{hub13.service_url}api/lti/can-view", json=body, timeout=30)
    assert r.status_code == 404
    config = (hub13.log.parent / "jupyterhub_config.py").read_text()
    port = re.search(r"service_port=(\d+)", config).group(1)
    direct = f"http://127.0.0.1:{port}{SERVICE}api/lti/can-view"
    assert requests.post(direct, json=body, timeout=30).status_code == 403
    secret = (hub13.log.parent / "hub_viz_lti_secret").read_text().strip()
    auth = {"Authorization": f"Bearer {secret}"}
    r = requests.post(direct, json=body, headers=auth, timeout=30)
    assert r.json() == {"allowed": True}
    r = requests.post(direct, json={**body, "groups": []}, headers=auth, timeout=30)
    assert r.json() == {"allowed": False}
    r = requests.post(direct, json={**body, "dashboard": "nope"}, headers=auth, timeout=30)
    assert r.status_code == 400
    assert secret not in hub13.log.read_text()


def test_links_copied_with_a_course_keep_opening(hub13: Hub, platform: Platform) -> None:
    """Canvas copies the module item (its custom claim) into the new course and sends the
    copy history in the custom field the developer key asks for."""
    link = {"dashboard": f"{TEACHER}/{SHARED}"}  # shared with CTX only
    name = "lti13-copy-student"
    s, r = launch13(
        hub13, platform, name, LEARNER, context=COPY_CTX, custom={**link, "context_history": CTX}
    )
    assert r.status_code == 302, r.text[-500:]
    assert r.headers["Location"] == open_path(SHARED, hub=hub13)
    assert sorted(user(hub13, name)["groups"]) == sorted([f"course-{COPY_CTX}", f"course-{CTX}"])
    assert_open_page(hub13, s, r.headers["Location"], "Course sales")
    # a course that is no copy of it, or a platform that does not fill the variable in
    for student, custom in (
        ("lti13-unrelated", link),
        ("lti13-unfilled", {**link, "context_history": "$Context.id.history"}),
    ):
        _, r = launch13(hub13, platform, student, LEARNER, context=OTHER_CTX, custom=custom)
        refused(r, 403, "which you may not see")
        assert user(hub13, student) is None


# -- Deep Linking -------------------------------------------------------------------------


def message_hint(roles: list[str], target: str) -> str:
    """The platform's opaque lti_message_hint: here, whom /authorize signs for."""
    return base64.urlsafe_b64encode(
        json.dumps({"roles": roles, "target": target}).encode()
    ).decode()


def verify_response(hub: Hub, token: str) -> dict[str, Any]:
    """What the platform does with a Deep Linking response: check it against the tool's key set."""
    keys = requests.get(f"{hub.url}/hub/lti13/jwks", timeout=30).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys if k["kid"] == kid)
    return jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=CLIENT_ID,
        options={"require": ["exp", "iat", "nonce"]},
    )


def pick_launch(
    hub: Hub,
    platform: Platform,
    sub: str,
    roles: list[str],
    *,
    target: str | None = None,
    **token: Any,
) -> requests.Response:
    """A Deep Linking request as it arrives from a frame: the callback without cookies."""
    target = target or f"{hub.url}/hub/lti13/pick"
    frame = {**BROWSER, "Sec-Fetch-Dest": "iframe"}
    r = requests.post(
        f"{hub.url}/hub/lti13/oauth_login",
        data={
            "iss": platform.issuer,
            "login_hint": sub,
            "target_link_uri": target,
            "client_id": platform.client_id,
            "lti_deployment_id": DEPLOYMENT,
        },
        headers=frame,
        allow_redirects=False,
        timeout=30,
    )
    request = auth_request(r)
    token = {
        "message_type": "LtiDeepLinkingRequest",
        "deep_linking": platform.deep_linking_settings(),
        **token,
    }
    id_token = platform.id_token(
        nonce=request["nonce"], sub=sub, roles=roles, target=target, **token
    )
    post = {"id_token": id_token, "state": request["state"]}
    r = requests.post(
        request["redirect_uri"], data=post, headers=frame, allow_redirects=False, timeout=60
    )
    r.sent = post  # type: ignore[attr-defined]
    return r


def test_the_tool_serves_its_signing_key(hub13: Hub) -> None:
    r = requests.get(f"{hub13.url}/hub/lti13/jwks", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    (key,) = r.json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig") and key["kid"]
    assert "d" not in key and "p" not in key  # the public half only
    pem = hub13.log.parent / "hub_viz_lti_key.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_instructor_picks_two_dashboards_in_the_frame(
    hub13: Hub, platform: Platform, browser: Any
) -> None:
    """Canvas's module dialog frames the tool; the teacher picks two dashboards; Canvas
    verifies the signed answer; students open both links."""
    seen = len(platform.responses)
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    thumbs: list[tuple[str, int, str]] = []
    context.on(
        "response",
        lambda r: (
            thumbs.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/thumb/" in r.url
            else None
        ),
    )
    page = context.new_page()
    try:
        page.goto(
            f"{platform.origin}/course?"
            + urlencode(
                {
                    "hub": hub13.url,
                    "sub": TEACHER,
                    "hint": message_hint(TEACHER_ROLES, f"{hub13.url}/hub/lti13/pick"),
                }
            )
        )
        tool = page.frame_locator("#tool")
        tool.locator("#hub-viz-picker").wait_for()
        assert tool.locator("#pick-course").inner_text() == "Calculus"

        def card(owner: str, slug: str) -> Any:
            return tool.locator(f'.pick-card[data-dashboard="{owner}/{slug}"]')

        assert "The course sees it" in card(TEACHER, SHARED).inner_text()
        assert "Picking it shares it with this course" in card(TEACHER, LAB).inner_text()
        notes = card(COLLEAGUE, NOTES)
        assert "only its owner (lti-colleague) can share it" in notes.inner_text()
        assert notes.locator("input").is_disabled()
        # searchable
        tool.locator('input[name="q"]').fill("week 2")
        tool.get_by_role("button", name="Search").click()
        tool.locator(".pick-card").first.wait_for()
        assert tool.locator(".pick-card").count() == 1 and card(TEACHER, LAB).count() == 1
        tool.locator('input[name="q"]').fill("")
        tool.get_by_role("button", name="Search").click()
        card(TEACHER, SHARED).wait_for()
        picker_url = next(f.url for f in page.frames if "/lti/pick/" in f.url)
        card(TEACHER, SHARED).locator("input").check()
        card(TEACHER, LAB).locator("input").check()
        tool.locator("#pick-submit").click()
        tool.locator("#added").wait_for()
        assert any(
            status == 200 and kind.startswith("image/") and f"/{LAB}" in url
            for url, status, kind in thumbs
        ), thumbs
    finally:
        context.close()
    assert len(platform.responses) == seen + 1
    claims = verify_response(hub13, platform.responses[-1])
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == DEPLOYMENT
    assert claims[DL + "data"] == "canvas-opaque-data-7f3a"
    items = claims[DL + "content_items"]
    assert [(i["type"], i["title"], i["custom"], i["window"]) for i in items] == [
        (
            "ltiResourceLink",
            "Course sales",
            {"dashboard": f"{TEACHER}/{SHARED}"},
            {"targetName": "_blank"},
        ),
        (
            "ltiResourceLink",
            "Lab results",
            {"dashboard": f"{TEACHER}/{LAB}"},
            {"targetName": "_blank"},
        ),
    ]
    assert items[1]["url"] == open_path(LAB, hub=hub13)
    # the picker works once
    again = requests.post(
        picker_url, data={"dashboard": f"{TEACHER}/{LAB}"}, headers=BROWSER, timeout=30
    )
    refused(again, 404, "used already or has expired")
    # picking shared the private one with the course's group
    lab = hub13.svc("GET", f"dashboards/{TEACHER}/{LAB}", TEACHER).json()
    assert (lab["visibility"], lab["share_groups"]) == ("groups", [f"course-{CTX}"])
    try:
        for item, slug, title in zip(
            items, (SHARED, LAB), ("Course sales", "Lab results"), strict=True
        ):
            s, r = launch13(
                hub13,
                platform,
                "lti13-dl-student",
                LEARNER,
                target=item["url"],
                custom=item["custom"],
            )
            assert r.status_code == 302, r.text[-500:]
            assert r.headers["Location"] == open_path(slug, hub=hub13)
            assert_open_page(hub13, s, r.headers["Location"], title)
    finally:
        r = hub13.svc(
            "PATCH",
            f"dashboards/{TEACHER}/{LAB}",
            TEACHER,
            json={"visibility": "private", "share_groups": []},
        )
        assert r.status_code == 200, r.text


def test_the_publish_form_names_course_groups_by_title(
    hub13: Hub, platform: Platform, browser: Any
) -> None:
    s, r = launch13(hub13, platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302, r.text[-500:]
    context = browser.new_context(user_agent=BROWSER_UA)
    context.set_default_timeout(60_000)
    host = urlsplit(hub13.url).hostname
    context.add_cookies(
        [{"name": c.name, "value": c.value, "domain": host, "path": c.path} for c in s.cookies]
    )
    try:
        page = context.new_page()
        page.goto(f"{hub13.service_url}publish")  # through the hub's OAuth with that login
        hint = page.locator("#my-groups-hint")
        hint.filter(has_text="Calculus").wait_for(state="attached")  # shown with "Groups"
        assert f"Calculus (course-{CTX})" in hint.inner_text()
        assert f"Calculus (instructors) (course-{CTX}-instructors)" in hint.inner_text()
        option = page.locator(f'#my-groups option[value="course-{CTX}"]')
        assert option.get_attribute("label") == "Calculus"
    finally:
        context.close()


def test_the_manage_page_names_course_groups_by_title(hub13: Hub, platform: Platform) -> None:
    s, r = launch13(hub13, platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302, r.text[-500:]
    page = s.get(f"{hub13.service_url}d/{TEACHER}/{SHARED}", headers=BROWSER, timeout=60)
    assert page.status_code == 200 and urlsplit(page.url).path.endswith(f"/d/{TEACHER}/{SHARED}")
    shared = re.search(r'<span id="share-groups">([^<]*)</span>', page.text)
    assert shared and shared.group(1) == f"Calculus (course-{CTX})", page.text[-800:]


def test_learners_get_no_picker(hub13: Hub, platform: Platform) -> None:
    name = "lti13-dl-learner"
    r = pick_launch(hub13, platform, name, LEARNER)
    refused(r, 403, "instructors can add dashboards to it. To open a dashboard, use its link")
    assert r.headers["Content-Security-Policy"] == "frame-ancestors *"  # shows in the frame
    assert "/lti/pick/" not in r.text and user(hub13, name) is None
    # the same request again: no picker either
    r = requests.post(
        f"{hub13.url}/hub/lti13/oauth_callback",
        data=r.sent,
        headers=BROWSER,
        allow_redirects=False,
        timeout=30,
    )
    refused(r, 400, "choose the tool again in your course")
    assert user(hub13, name) is None


def test_an_instructors_picker_opens_without_a_login(hub13: Hub, platform: Platform) -> None:
    r = pick_launch(hub13, platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302, r.text[-500:]
    assert r.headers["Location"].startswith(f"{hub13.service_url}lti/pick/")
    assert "jupyterhub-hub-login" not in r.headers.get("Set-Cookie", "")
    page = requests.get(r.headers["Location"], headers=BROWSER, timeout=30)
    assert page.status_code == 200 and "Add dashboards" in page.text
    assert page.headers["Content-Security-Policy"] == f"frame-ancestors {platform.origin}"
    refused(
        requests.post(r.headers["Location"], data={}, headers=BROWSER, timeout=30),
        400,
        "Pick at least one dashboard.",
    )


def test_two_pickers_open_in_one_browser(hub13: Hub, platform: Platform) -> None:
    """The second login initiation replaces the first one's state cookie; both pickers open."""
    s, target = requests.Session(), f"{hub13.url}/hub/lti13/pick"
    requests_ = [auth_request(login_init(hub13, s, TEACHER, target)) for _ in range(2)]
    for request in requests_:
        id_token = platform.id_token(
            nonce=request["nonce"],
            sub=TEACHER,
            roles=TEACHER_ROLES,
            target=target,
            message_type="LtiDeepLinkingRequest",
            deep_linking=platform.deep_linking_settings(),
        )
        r = s.post(
            request["redirect_uri"],
            data={"id_token": id_token, "state": request["state"]},
            headers=BROWSER,
            allow_redirects=False,
            timeout=60,
        )
        assert r.status_code == 302, r.text[-500:]
        assert r.headers["Location"].startswith(f"{hub13.service_url}lti/pick/")


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "text"),
    [
        (
            "resource-link-to-the-picker",
            {"message_type": "LtiResourceLinkRequest", "deep_linking": None},
            400,
            "This address is for adding dashboards to a course",
        ),
        ("old-developer-key", {"target": "/hub/home"}, 400, "update the key"),
        ("no-course", {"context": None}, 400, "which course it came from (context)"),
        (
            "no-links-accepted",
            {
                "deep_linking": {
                    "deep_link_return_url": "http://127.0.0.1:9/deep_links",
                    "accept_types": ["file"],
                }
            },
            400,
            "accepts no tool links",
        ),
        (
            "return-url-not-https",
            {"deep_linking": {"deep_link_return_url": "http://evil.example/x"}},
            400,
            "not an https URL",
        ),
    ],
)
def test_bad_deep_linking_requests_say_why(
    hub13: Hub, platform: Platform, case: str, kwargs: dict, status: int, text: str
) -> None:
    if kwargs.get("target") == "/hub/home":
        kwargs = {**kwargs, "target": f"{hub13.url}/hub/home"}
    if case == "old-developer-key":  # a key from before: selection placements target home
        s = requests.Session()
        request = auth_request(login_init(hub13, s, TEACHER, kwargs["target"]))
        id_token = platform.id_token(
            nonce=request["nonce"],
            sub=TEACHER,
            roles=TEACHER_ROLES,
            target=kwargs["target"],
            message_type="LtiDeepLinkingRequest",
            deep_linking=platform.deep_linking_settings(),
        )
        r = s.post(
            request["redirect_uri"],
            data={"id_token": id_token, "state": request["state"]},
            headers=BROWSER,
            allow_redirects=False,
            timeout=60,
        )
    else:
        r = pick_launch(hub13, platform, TEACHER, TEACHER_ROLES, **kwargs)
    refused(r, status, text)


# -- LTI 1.1 ------------------------------------------------------------------------------


def launch11(
    hub: Hub,
    user_id: str,
    roles: str,
    *,
    secret: str = CONSUMER_SECRET,
    session: requests.Session | None = None,
    headers: dict | None = None,
    **extra: str,
) -> tuple[requests.Session, requests.Response, str, dict]:
    """A Canvas-like LTI 1.1 launch, signed with oauthlib (HMAC-SHA1, parameters in the body)."""
    url = f"{hub.url}/hub/lti/launch"
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "d3a2504bba5184799a38f141e8df2335cfa8206d",
        "resource_link_title": "Sales",
        "user_id": user_id,
        "roles": roles,
        "context_id": CTX,
        "context_label": "MATH101",
        "context_title": "Calculus",
        "lis_person_name_full": "Ada Lovelace",
        "custom_canvas_user_id": "7",
        "custom_canvas_course_id": "12",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": ISSUER + "/courses/12/external_content/success",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_instance_guid": "canvas-guid",
        **extra,
    }
    client = Client(CONSUMER_KEY, client_secret=secret, signature_type=SIGNATURE_TYPE_BODY)
    _, signed_headers, body = client.sign(
        url,
        http_method="POST",
        body=params,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    s = session or requests.Session()
    r = s.post(
        url,
        data=body,
        headers={**BROWSER, **signed_headers, **(headers or {})},
        allow_redirects=False,
        timeout=60,
    )
    return s, r, url, {**BROWSER, **signed_headers, "body": body}


def test_lti11_learner_deep_link(hub11: Hub) -> None:
    name = "lti11-learner"
    s, r, _, _ = launch11(hub11, name, "Learner", custom_dashboard=f"{TEACHER}/{SHARED}")
    assert r.status_code == 302, r.text[-800:]
    assert r.headers["Location"] == open_path(SHARED, hub=hub11)
    assert user(hub11, name)["groups"] == [f"course-{CTX}"]
    assert_open_page(hub11, s, open_path(SHARED, hub=hub11), "Course sales")


def test_lti11_instructor_and_ta_roles(hub11: Hub) -> None:
    name = "lti11-ta"
    _, r, _, _ = launch11(
        hub11, name, "Instructor,urn:lti:role:ims/lis/TeachingAssistant", custom_next="/hub/home"
    )
    assert r.status_code == 302 and r.headers["Location"] == "/hub/home"
    assert sorted(user(hub11, name)["groups"]) == [f"course-{CTX}", f"course-{CTX}-instructors"]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "text"),
    [
        (
            "bad-signature",
            {"secret": "not-the-secret"},
            401,
            "not signed with a consumer key and secret this hub knows",
        ),
        (
            "no-resource-link",
            {"resource_link_id": ""},
            400,
            "did not say which link you opened (resource_link_id)",
        ),
        ("other-host", {"custom_next": "https://evil.example/"}, 400, "only links to this hub"),
        ("scheme-relative", {"custom_next": "//evil.example/x"}, 400, "only links to this hub"),
        ("backslash", {"custom_next": "/\\evil.example"}, 400, "only links to this hub"),
        (
            "private-dashboard",
            {"custom_dashboard": f"{TEACHER}/{PRIVATE}"},
            403,
            "which you may not see",
        ),
        ("no-course", {"context_id": ""}, 403, "This hub opens from inside a course"),
    ],
)
def test_lti11_bad_launches_create_no_user(
    hub11: Hub, case: str, kwargs: dict, status: int, text: str
) -> None:
    name = f"lti11-bad-{case}"
    _, r, _, _ = launch11(hub11, name, "Learner", **kwargs)
    refused(r, status, text)
    assert user(hub11, name) is None


def test_lti11_framed_refusal_shows_in_the_frame(hub11: Hub) -> None:
    name = "lti11-framed-private"
    _, r, _, _ = launch11(
        hub11,
        name,
        "Learner",
        custom_dashboard=f"{TEACHER}/{PRIVATE}",
        headers={"Sec-Fetch-Dest": "iframe"},
    )
    refused(r, 403, "which you may not see")
    assert r.headers["Content-Security-Policy"] == "frame-ancestors *"
    assert "Open in a new tab" not in r.text
    assert user(hub11, name) is None


def test_lti11_replay_is_refused(hub11: Hub) -> None:
    _, r, url, sent = launch11(hub11, "lti11-replay", "Learner")
    assert r.status_code == 302
    body = sent.pop("body")
    r = requests.post(url, data=body, headers=sent, allow_redirects=False, timeout=60)
    refused(r, 401, "This launch was used already; open the link in your course again.")


def test_lti11_framed_launch_continues_in_a_new_tab(hub11: Hub) -> None:
    name = "lti11-framed"
    _, r, _, _ = launch11(
        hub11,
        name,
        "Learner",
        custom_dashboard=f"{TEACHER}/{SHARED}",
        headers={"Sec-Fetch-Dest": "iframe"},
    )
    assert r.status_code == 200, r.text[-500:]
    assert r.headers["Content-Security-Policy"] == "frame-ancestors *"
    link = re.search(r'href="([^"]+)" target="_blank"', r.text).group(1).replace("&amp;", "&")
    assert link.startswith("/hub/lti/continue?token=")
    assert user(hub11, name) is None  # not before the new tab
    tab = requests.Session()
    r = tab.get(hub11.url + link, headers=BROWSER, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == open_path(SHARED, hub=hub11), r.text[
        -500:
    ]
    assert user(hub11, name)["groups"] == [f"course-{CTX}"]
    assert_open_page(hub11, tab, open_path(SHARED, hub=hub11), "Course sales")
    again = requests.get(hub11.url + link, headers=BROWSER, allow_redirects=False, timeout=30)
    refused(again, 400, "used already or has expired")
    assert parse_qs(urlsplit(link).query)["token"][0] not in hub11.log.read_text()

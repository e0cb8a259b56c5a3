"""LTI 1.3 Dynamic Registration against a real hub: a Canvas-shaped platform installs
the tool from a registration URL an admin minted, after the admin confirms what the
tool asks for, and its launches log in (no restart).

The platforms are tests/hub/test_lti.py's (a key pair, key set, OpenID configuration
and registration endpoint on loopback); the hub also keeps a configured platform,
so both kinds are trusted at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import urlencode, urljoin, urlsplit

import jwt
import pytest
import requests

from hub_viz.cli import run
from hub_viz.lti_claims import canvas_developer_key

from ..conftest import BROWSER_UA, Hub, stop_hub
from .test_lti import (
    AUTHORIZE,
    BROWSER,
    CLIENT_ID,
    CTX,
    DEPLOYMENT,
    ISSUER,
    LEARNER,
    SHARED,
    TEACHER,
    TEACHER_ROLES,
    TOOL_CONFIG,
    Platform,
    _start,
    auth_request,
    launch13,
    login_init,
    pick_launch,
    refused,
    user,
)

pytestmark = [pytest.mark.hub, pytest.mark.smoke]  # also on JupyterHub 5.5 in CI

EXPIRY = 15  # seconds a registration URL stays valid on this hub
PUBLISH_DELAY = 4  # seconds a rotated signing key is published before it signs


@pytest.fixture(scope="module")
def configured() -> Iterator[Platform]:
    p = Platform()
    yield p
    p.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, configured: Platform) -> Iterator[Hub]:
    hub = _start(
        tmp_path_factory,
        "ltireg",
        {
            "client_id": CLIENT_ID,
            "issuer": ISSUER,
            "jwks_url": configured.jwks_url,
            "authorize_url": configured.origin + AUTHORIZE,
            "deployments": [DEPLOYMENT],
        },
        "hub_viz.lti.HubVizLTI13Authenticator",
        extra=f"c.HubVizLTI13Authenticator.registration_timeout = {EXPIRY}\n"
        f"c.HubVizLTI13Authenticator.key_publish_delay = {PUBLISH_DELAY}\n",
    )
    yield hub
    stop_hub(hub)


@pytest.fixture
def new_platform() -> Iterator[Platform]:
    """A platform whose issuer is its own origin (its configuration on the issuer's host)."""
    p = Platform(issuer=None, client_id=f"1000000000{int(time.time() * 1000) % 10**5:05d}")
    yield p
    p.close()


def mint(hub: Hub, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"token {token or hub.token}"} if token != "" else {}
    return requests.post(f"{hub.url}/hub/lti13/registrations", json={}, headers=headers, timeout=30)


def registration_url(hub: Hub) -> str:
    r = mint(hub)
    assert r.status_code == 201, r.text
    assert r.json()["expires_in"] == EXPIRY
    return r.json()["url"]


def confirmation(url: str, platform: Platform, config_url: str | None = None):
    """What the platform does with a registration URL: open it (in its frame) with its
    OpenID configuration and a registration token; the tool answers its confirmation page."""
    return requests.get(
        url,
        params={
            "openid_configuration": config_url or platform.config_url,
            "registration_token": platform.registration_token,
        },
        headers={**BROWSER, "Sec-Fetch-Dest": "iframe"},
        timeout=60,
    )


def answer(hub: Hub, page: requests.Response, action: str = "register") -> requests.Response:
    """The admin's click on the confirmation page: its form, posted without cookies."""
    assert page.status_code == 200, page.text[-800:]
    form_action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    code = re.search(r'name="confirm" value="([^"]+)"', page.text)
    assert form_action and code, page.text[-800:]
    return requests.post(
        urljoin(hub.url, unescape(form_action.group(1))),
        data={"confirm": unescape(code.group(1)), "action": action},
        headers={**BROWSER, "Sec-Fetch-Dest": "iframe"},
        timeout=60,
    )


def run_registration(hub: Hub, url: str, platform: Platform) -> requests.Response:
    """Open the registration URL and, when the confirmation page shows, register."""
    page = confirmation(url, platform)
    return answer(hub, page) if "hub-viz-register" in page.text else page


def set_deployments(hub: Hub, platform: Platform, deployments: object, token: str = ""):
    return requests.patch(
        f"{hub.url}/hub/lti13/registrations",
        json={
            "issuer": platform.issuer,
            "client_id": platform.client_id,
            "deployments": deployments,
        },
        headers={"Authorization": f"token {token or hub.token}"},
        timeout=30,
    )


def registered(hub: Hub) -> list[tuple[str, str]]:
    r = requests.get(
        f"{hub.url}/hub/lti13/registrations",
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return [(p["issuer"], p["client_id"]) for p in r.json()["platforms"]]


def test_registration_installs_the_tool_and_its_launches_log_in(
    hub: Hub,
    configured: Platform,
    new_platform: Platform,
    capsys: pytest.CaptureFixture,
) -> None:
    url = registration_url(hub)
    assert urlsplit(url).path.startswith("/hub/lti13/register/")
    # before: the platform is a stranger
    refused(
        login_init(
            hub,
            requests.Session(),
            "reg-student",
            f"{hub.url}/hub/home",
            iss=new_platform.issuer,
            client_id=new_platform.client_id,
        ),
        400,
        "accepts launches from",
    )

    # the admin first sees what the tool asks for; nothing is registered yet
    page = confirmation(url, new_platform)
    assert page.status_code == 200, page.text[-800:]
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    text = unescape(page.text)
    assert new_platform.issuer in text and "Dashboards" in text
    for shown in ("course_navigation", "link_selection", "assignment_selection", "name"):
        assert shown in text, shown
    assert "none: the hub calls no API" in text  # the scopes
    assert 'id="hub-viz-register"' in page.text and 'id="hub-viz-cancel"' in page.text
    assert new_platform.registrations == []
    assert (new_platform.issuer, new_platform.client_id) not in registered(hub)

    r = answer(hub, page)
    assert r.status_code == 200, r.text[-800:]
    assert "org.imsglobal.lti.close" in r.text and new_platform.client_id in r.text
    assert "frame-ancestors *" in r.headers["Content-Security-Policy"]
    assert (new_platform.issuer, new_platform.client_id) in registered(hub)

    # the registration carries the developer key's URLs, placements and claims
    [request] = new_platform.registrations
    hub_root = f"{hub.url}/hub/"
    assert request["redirect_uris"] == [hub_root + "lti13/oauth_callback"]
    assert request["initiate_login_uri"] == hub_root + "lti13/oauth_login"
    assert request["jwks_uri"] == hub_root + "lti13/jwks"
    tool = request[TOOL_CONFIG]
    key = canvas_developer_key(urlsplit(hub.url).netloc, scheme="http")
    assert tool["target_link_uri"] == key["target_link_uri"] == hub_root + "home"
    assert tool["custom_parameters"] == key["custom_fields"]
    assert {"sub", "iss", "name"} <= set(tool["claims"]) and "email" not in tool["claims"]
    wanted = {
        (p["placement"], p["message_type"], p["target_link_uri"])
        for p in key["extensions"][0]["settings"]["placements"]
    }
    assert {
        (m["placements"][0], m["type"], m["target_link_uri"]) for m in tool["messages"]
    } == wanted

    # a student of the newly registered platform logs in, without a restart, from the
    # deployment the platform named in its answer
    _, r = launch13(hub, new_platform, "reg-student", LEARNER)
    assert r.status_code == 302, r.text[-800:]
    assert urlsplit(r.headers["Location"]).path == "/hub/home"
    info = user(hub, "reg-student")
    assert info is not None and f"course-{CTX}" in info["groups"]
    # the configured platform keeps working beside it, with its allowlist
    _, r = launch13(hub, configured, "conf-student", LEARNER)
    assert r.status_code == 302, r.text[-800:]
    assert user(hub, "conf-student") is not None
    _, r = launch13(hub, configured, "conf-other", LEARNER, deployment="42:elsewhere")
    refused(r, 403, "does not accept launches from this installation")

    # each registered platform keeps its own deployment list: other installs are refused
    # (and no user is made) until an admin lists them
    _, r = launch13(hub, new_platform, "reg-other", LEARNER, deployment="42:elsewhere")
    refused(r, 403, "does not accept launches from this installation")
    assert user(hub, "reg-other") is None
    [entry] = [
        p
        for p in requests.get(
            f"{hub.url}/hub/lti13/registrations",
            headers={"Authorization": f"token {hub.token}"},
            timeout=30,
        ).json()["platforms"]
        if p["client_id"] == new_platform.client_id
    ]
    assert entry["deployments"] == [DEPLOYMENT] and entry["deployment_id"] == DEPLOYMENT
    platform_args = ["--issuer", new_platform.issuer, "--client-id", new_platform.client_id]
    cli = ["lti-platforms", "--hub-url", hub.url, "--token", hub.token, *platform_args]
    assert run([*cli, "--deployments", DEPLOYMENT, "42:elsewhere"]) == 0
    assert f"deployments: {DEPLOYMENT}, 42:elsewhere" in capsys.readouterr().out
    _, r = launch13(hub, new_platform, "reg-other", LEARNER, deployment="42:elsewhere")
    assert r.status_code == 302, r.text[-800:]
    _, r = launch13(hub, new_platform, "reg-third", LEARNER, deployment="42:third")
    refused(r, 403, "does not accept launches from this installation")
    assert run([*cli, "--deployments"]) == 0  # none listed: any
    assert "deployments: any" in capsys.readouterr().out
    _, r = launch13(hub, new_platform, "reg-third", LEARNER, deployment="42:third")
    assert r.status_code == 302, r.text[-800:]

    # the URL worked once
    again = confirmation(url, new_platform)
    refused(again, 403, "used already")
    assert len(new_platform.registrations) == 1

    # an admin removes the platform: its next launch is refused
    forget = {"issuer": new_platform.issuer, "client_id": new_platform.client_id}
    r = requests.delete(
        f"{hub.url}/hub/lti13/registrations",
        params=forget,
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    assert r.status_code == 204, r.text
    assert (new_platform.issuer, new_platform.client_id) not in registered(hub)
    refused(
        login_init(
            hub,
            requests.Session(),
            "reg-student",
            f"{hub.url}/hub/home",
            iss=new_platform.issuer,
            client_id=new_platform.client_id,
        ),
        400,
        "accepts launches from",
    )
    r = requests.delete(
        f"{hub.url}/hub/lti13/registrations",
        params=forget,
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    refused(r, 404, "No platform is registered")
    refused(set_deployments(hub, new_platform, []), 404, "No platform is registered")


def test_cancelling_registers_nothing(hub: Hub, new_platform: Platform) -> None:
    page = confirmation(registration_url(hub), new_platform)
    r = answer(hub, page, "cancel")
    assert r.status_code == 200, r.text[-800:]
    assert "Not registered" in r.text and "org.imsglobal.lti.close" in r.text
    assert new_platform.registrations == []
    assert (new_platform.issuer, new_platform.client_id) not in registered(hub)
    # the confirmation works once: registering after cancelling is refused
    refused(answer(hub, page), 400, "expired or was answered already")
    assert new_platform.registrations == []


def test_a_forged_confirmation_is_refused(hub: Hub, new_platform: Platform) -> None:
    r = requests.post(
        f"{hub.url}/hub/lti13/register",
        data={"confirm": "made-up", "action": "register"},
        headers=BROWSER,
        timeout=30,
    )
    refused(r, 400, "expired or was answered already")
    assert new_platform.registrations == []


def test_deployment_lists_are_for_admins_and_checked(
    hub: Hub, new_platform: Platform, capsys: pytest.CaptureFixture
) -> None:
    assert run_registration(hub, registration_url(hub), new_platform).status_code == 200
    hub.ensure_user("reg-nobody2")
    r = hub.api("POST", "/users/reg-nobody2/tokens", json={"note": "no admin"})
    refused(set_deployments(hub, new_platform, [], token=r.json()["token"]), 403, "admin:users")
    for bad in ("42:one", [""], [42], None):
        refused(set_deployments(hub, new_platform, bad), 400, "deployments")
    cli = ["lti-platforms", "--hub-url", hub.url, "--token", hub.token]
    assert run([*cli, "--deployments", "42:one"]) == 1
    assert "needs --issuer and --client-id" in capsys.readouterr().err
    unknown = ["--issuer", new_platform.issuer, "--client-id", "1000000000404"]
    assert run([*cli, *unknown, "--deployments", "42:one"]) == 1
    assert "No platform is registered" in capsys.readouterr().err


def test_the_cli_prints_a_registration_url(hub: Hub, capsys: pytest.CaptureFixture) -> None:
    assert run(["lti-register", "--hub-url", hub.url, "--token", hub.token]) == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert url.startswith(f"{hub.url}/hub/lti13/register/") and "works once" in err
    # a fresh secret each time
    assert run(["lti-register", "--hub-url", hub.url, "--token", hub.token]) == 0
    assert capsys.readouterr().out.strip() != url


def test_only_admins_mint_registration_urls(hub: Hub, capsys: pytest.CaptureFixture) -> None:
    hub.ensure_user("reg-nobody")
    r = hub.api("POST", "/users/reg-nobody/tokens", json={"note": "no admin"})
    assert r.status_code == 201, r.text
    plain = r.json()["token"]
    refused(mint(hub, plain), 403, "admin:users and tokens")
    refused(mint(hub, ""), 403, "admin")
    for method in ("GET", "DELETE"):
        r = requests.request(
            method,
            f"{hub.url}/hub/lti13/registrations",
            params={"issuer": ISSUER, "client_id": CLIENT_ID},
            headers={"Authorization": f"token {plain}"},
            timeout=30,
        )
        refused(r, 403, "admin:users and tokens")
    assert run(["lti-register", "--hub-url", hub.url, "--token", plain]) == 1
    assert "admin:users and tokens" in capsys.readouterr().err


@pytest.mark.parametrize("secret", ["", "/", "/not-a-secret-the-hub-made"])
def test_registration_needs_a_secret(hub: Hub, new_platform: Platform, secret: str) -> None:
    r = confirmation(f"{hub.url}/hub/lti13/register{secret}", new_platform)
    refused(r, 403, "This registration URL is not valid")
    assert new_platform.registrations == []


def test_an_expired_registration_url_is_refused(hub: Hub, new_platform: Platform) -> None:
    url = registration_url(hub)
    minted = time.time()
    while time.time() < minted + EXPIRY + 1:
        time.sleep(0.5)
    refused(confirmation(url, new_platform), 403, "it has expired")
    assert new_platform.registrations == []
    assert (new_platform.issuer, new_platform.client_id) not in registered(hub)


def test_a_configuration_off_the_issuers_host_is_refused(hub: Hub) -> None:
    p = Platform(
        issuer=None, client_id="1000000000777", config_issuer="https://canvas.other.example"
    )
    try:
        r = confirmation(registration_url(hub), p)
        refused(r, 400, "not on the issuer")
        assert p.registrations == []
        assert "canvas.other.example" not in str(registered(hub))
    finally:
        p.close()


def test_a_url_without_configuration_says_where_to_paste_it(hub: Hub) -> None:
    r = requests.get(registration_url(hub), headers=BROWSER, timeout=30)
    refused(r, 400, "Paste this URL into the course site")


def test_a_platform_refusing_the_registration_is_shown(hub: Hub) -> None:
    p = Platform(
        issuer=None,
        client_id="1000000000888",
        refuse="Dynamic Registration is turned off for this account",
    )
    try:
        r = run_registration(hub, registration_url(hub), p)
        refused(r, 400, "Dynamic Registration is turned off for this account")
        assert "refused the registration" in r.text
        assert (p.issuer, p.client_id) not in registered(hub)
        # the registration token is the platform's: a wrong one is refused there, and said
        r = requests.get(
            registration_url(hub),
            params={"openid_configuration": p.config_url, "registration_token": "forged"},
            headers=BROWSER,
            timeout=30,
        )
        refused(r, 400, "refused its OpenID configuration (HTTP 401)")
    finally:
        p.close()


def test_launches_from_an_unregistered_client_id_are_refused(
    hub: Hub,
    new_platform: Platform,
) -> None:
    assert run_registration(hub, registration_url(hub), new_platform).status_code == 200
    s = requests.Session()
    # the login initiation of another client id of that platform
    refused(
        login_init(
            hub,
            s,
            "reg-stranger",
            f"{hub.url}/hub/home",
            iss=new_platform.issuer,
            client_id="1000000000999",
        ),
        400,
        "not installed with this course site",
    )
    # an id_token for another client id, after a login the hub did start
    request = auth_request(
        login_init(
            hub,
            s,
            "reg-stranger",
            f"{hub.url}/hub/home",
            iss=new_platform.issuer,
            client_id=new_platform.client_id,
        )
    )
    token = new_platform.id_token(
        nonce=request["nonce"],
        sub="reg-stranger",
        roles=LEARNER,
        target=f"{hub.url}/hub/home",
        aud="1000000000999",
    )
    r = s.post(
        request["redirect_uri"],
        data={"id_token": token, "state": request["state"]},
        headers=BROWSER,
        allow_redirects=False,
        timeout=60,
    )
    refused(r, 401, "meant for another tool")
    assert user(hub, "reg-stranger") is None


def test_a_registered_platforms_instructor_opens_the_picker(
    hub: Hub,
    new_platform: Platform,
) -> None:
    assert run_registration(hub, registration_url(hub), new_platform).status_code == 200
    r = pick_launch(hub, new_platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302, r.text[-500:]
    location = urljoin(hub.url, r.headers["Location"])
    assert location.startswith(f"{hub.service_url}lti/pick/"), location
    page = requests.get(location, headers=BROWSER, timeout=30)
    assert page.status_code == 200 and "Add dashboards" in page.text


def test_the_platforms_dialog_closes_after_registering(
    hub: Hub,
    new_platform: Platform,
    browser,
) -> None:
    """In Chromium: the platform frames the registration URL, the admin clicks Register
    in the frame, and the platform hears the close message."""
    url = registration_url(hub)
    page = browser.new_page(user_agent=BROWSER_UA)
    try:
        page.goto(f"{new_platform.origin}/register-tool?" + urlencode({"url": url}))
        frame = page.frame_locator("#tool")
        frame.locator("#hub-viz-registration").wait_for(timeout=30000)
        assert new_platform.registrations == []  # not before the admin says so
        frame.locator("#hub-viz-register").click()
        page.wait_for_selector("#closed", timeout=30000)
        assert new_platform.client_id in frame.locator("body").inner_text()
    finally:
        page.close()
    assert (new_platform.issuer, new_platform.client_id) in registered(hub)


# -- the tool's signing key rotated, with pickers in flight --------------------------------


def open_picker(hub: Hub, platform: Platform) -> str:
    r = pick_launch(hub, platform, TEACHER, TEACHER_ROLES)
    assert r.status_code == 302, r.text[-500:]
    return urljoin(hub.url, r.headers["Location"])


def answer_picker(picker: str) -> str:
    """The instructor picks a dashboard: the signed response the frame posts to the platform."""
    page = requests.post(
        picker, data={"dashboard": f"{TEACHER}/{SHARED}"}, headers=BROWSER, timeout=60
    )
    assert page.status_code == 200, page.text[-500:]
    found = re.search(r'name="JWT" value="([^"]+)"', page.text)
    assert found, page.text[-500:]
    return unescape(found.group(1))


def kids(hub: Hub) -> list[str]:
    return [k["kid"] for k in requests.get(f"{hub.url}/hub/lti13/jwks", timeout=30).json()["keys"]]


def platform_accepts(hub: Hub, platform: Platform, token: str) -> bool:
    """The platform's check of a response against the tool's key set, fetched now."""
    keys = requests.get(f"{hub.url}/hub/lti13/jwks", timeout=30).json()["keys"]
    jwk = next((k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]), None)
    if jwk is None:
        return False
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=platform.issuer,
        issuer=platform.client_id,
    )
    return claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == (
        "LtiDeepLinkingResponse"
    )


def test_rotating_the_signing_key_keeps_pickers_in_flight_working(
    hub: Hub, new_platform: Platform, capsys: pytest.CaptureFixture
) -> None:
    assert run_registration(hub, registration_url(hub), new_platform).status_code == 200
    answered_before = answer_picker(open_picker(hub, new_platform))
    open_before = open_picker(hub, new_platform)
    [old] = kids(hub)

    cli = ["--hub-url", hub.url, "--token", hub.token]
    assert run(["lti-rotate-key", *cli]) == 0
    out, err = capsys.readouterr()
    new = out.strip()
    assert new != old and "signs in" in err
    assert set(kids(hub)) == {old, new}  # published at once
    # a picker opened before the rotation is answered after it: signed by the old key
    # (platforms may not know the new one yet), and both responses verify
    answered_after = answer_picker(open_before)
    assert jwt.get_unverified_header(answered_after)["kid"] == old
    assert platform_accepts(hub, new_platform, answered_before)
    assert platform_accepts(hub, new_platform, answered_after)
    # a second rotation would drop the key that signs: refused until the new one signs
    assert run(["lti-rotate-key", *cli]) == 1
    assert "does not sign yet" in capsys.readouterr().err

    admin = {"Authorization": f"token {hub.token}"}
    deadline = time.time() + 60
    while True:
        status = requests.get(f"{hub.url}/hub/lti13/keys", headers=admin, timeout=30).json()
        if {"kid": new, "signs": True} in status["keys"] or time.time() > deadline:
            break
        time.sleep(0.5)
    assert {"kid": new, "signs": True} in status["keys"], status
    answered_later = answer_picker(open_picker(hub, new_platform))
    assert jwt.get_unverified_header(answered_later)["kid"] == new
    assert set(kids(hub)) == {old, new}  # the old key stays published a while
    for token in (answered_before, answered_after, answered_later):
        assert platform_accepts(hub, new_platform, token)

    # a leaked key: the new one signs at once, the others are no longer published
    assert run(["lti-rotate-key", "--immediately", *cli]) == 0
    newest = capsys.readouterr().out.strip()
    assert kids(hub) == [newest]
    assert not platform_accepts(hub, new_platform, answered_later)
    assert platform_accepts(hub, new_platform, answer_picker(open_picker(hub, new_platform)))


def test_only_admins_see_or_rotate_the_signing_keys(hub: Hub) -> None:
    hub.ensure_user("key-nobody")
    r = hub.api("POST", "/users/key-nobody/tokens", json={"note": "no admin"})
    plain = {"Authorization": f"token {r.json()['token']}"}
    before = kids(hub)
    for method in ("GET", "POST"):
        r = requests.request(
            method, f"{hub.url}/hub/lti13/keys", json={}, headers=plain, timeout=30
        )
        refused(r, 403, "admin:users and tokens")
        refused(requests.request(method, f"{hub.url}/hub/lti13/keys", timeout=30), 403, "admin")
    r = requests.post(
        f"{hub.url}/hub/lti13/keys",
        json={"immediately": "yes"},
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    refused(r, 400, "immediately")
    assert kids(hub) == before

"""LTI 1.3 Dynamic Registration against a real hub: a Canvas-shaped platform installs
the tool from a registration URL an admin minted, and its launches log in (no restart).

The platforms are tests/hub/test_lti.py's (a key pair, key set, OpenID configuration
and registration endpoint on loopback); the hub also keeps a configured platform,
so both kinds are trusted at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode, urljoin, urlsplit

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

pytestmark = pytest.mark.hub

EXPIRY = 15  # seconds a registration URL stays valid on this hub


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
        extra=f"c.HubVizLTI13Authenticator.registration_timeout = {EXPIRY}\n",
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


def run_registration(url: str, platform: Platform, config_url: str | None = None):
    """What the platform does with a registration URL: open it (in its frame) with its
    OpenID configuration and a registration token."""
    return requests.get(
        url,
        params={
            "openid_configuration": config_url or platform.config_url,
            "registration_token": platform.registration_token,
        },
        headers={**BROWSER, "Sec-Fetch-Dest": "iframe"},
        timeout=60,
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

    r = run_registration(url, new_platform)
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

    # a student of the newly registered platform logs in, without a restart; the
    # deployment allowlist is the configured platform's only
    _, r = launch13(hub, new_platform, "reg-student", LEARNER, deployment="42:elsewhere")
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

    # the URL worked once
    again = run_registration(url, new_platform)
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
    r = run_registration(f"{hub.url}/hub/lti13/register{secret}", new_platform)
    refused(r, 403, "This registration URL is not valid")
    assert new_platform.registrations == []


def test_an_expired_registration_url_is_refused(hub: Hub, new_platform: Platform) -> None:
    url = registration_url(hub)
    minted = time.time()
    while time.time() < minted + EXPIRY + 1:
        time.sleep(0.5)
    refused(run_registration(url, new_platform), 403, "it has expired")
    assert new_platform.registrations == []
    assert (new_platform.issuer, new_platform.client_id) not in registered(hub)


def test_a_configuration_off_the_issuers_host_is_refused(hub: Hub) -> None:
    p = Platform(
        issuer=None, client_id="1000000000777", config_issuer="https://canvas.other.example"
    )
    try:
        r = run_registration(registration_url(hub), p)
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
        r = run_registration(registration_url(hub), p)
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
    assert run_registration(registration_url(hub), new_platform).status_code == 200
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
    assert run_registration(registration_url(hub), new_platform).status_code == 200
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
    """In Chromium: the platform frames the registration URL and hears the close message."""
    url = registration_url(hub)
    page = browser.new_page(user_agent=BROWSER_UA)
    try:
        page.goto(f"{new_platform.origin}/register-tool?" + urlencode({"url": url}))
        page.wait_for_selector("#closed", timeout=30000)
        frame = page.frame_locator("#tool")
        assert new_platform.client_id in frame.locator("body").inner_text()
    finally:
        page.close()
    assert (new_platform.issuer, new_platform.client_id) in registered(hub)

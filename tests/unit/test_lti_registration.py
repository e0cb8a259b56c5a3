"""Dynamic Registration's pure parts: the configuration checks, secrets, store, request."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from hub_viz.lti import HubVizLTI13Authenticator, configure_lti
from hub_viz.lti_claims import canvas_developer_key
from hub_viz.lti_registration import (
    PLATFORM_CONFIG,
    TOOL_CONFIG,
    Pending,
    PendingRegistration,
    Registration,
    RegistrationError,
    RegistrationSecrets,
    RegistrationStore,
    check_configuration,
    registration_request,
    summary,
)

ISSUER = "https://canvas.example.edu"
CONFIG_URL = ISSUER + "/api/lti/security/openid-configuration"


def configuration(**changes: object) -> dict:
    config = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/api/lti/authorize_redirect",
        "token_endpoint": ISSUER + "/login/oauth2/token",
        "jwks_uri": ISSUER + "/api/lti/security/jwks",
        "registration_endpoint": ISSUER + "/api/lti/registrations",
        "id_token_signing_alg_values_supported": ["RS256"],
        PLATFORM_CONFIG: {"product_family_code": "canvas"},
    }
    config.update(changes)
    return {k: v for k, v in config.items() if v is not None}


def test_a_good_configuration_passes() -> None:
    assert check_configuration(configuration(), CONFIG_URL)["issuer"] == ISSUER
    explicit_port = "https://canvas.example.edu:443/api/lti/security/openid-configuration"
    assert check_configuration(configuration(), explicit_port)
    loopback = configuration(issuer="http://127.0.0.1:8443")
    assert check_configuration(loopback, "http://127.0.0.1:8443/.well-known/openid-configuration")


@pytest.mark.parametrize(
    ("changes", "url", "message"),
    [
        ({"registration_endpoint": None}, CONFIG_URL, "lacks registration_endpoint"),
        ({PLATFORM_CONFIG: None}, CONFIG_URL, "lacks " + PLATFORM_CONFIG),
        ({"jwks_uri": "http://canvas.example.edu/jwks"}, CONFIG_URL, "no https URL for jwks_uri"),
        ({"issuer": "http://canvas.example.edu"}, CONFIG_URL, "no https URL for issuer"),
        ({}, "https://evil.example/openid-configuration", "not on the issuer's host"),
        ({}, "https://canvas.example.edu:8443/openid-configuration", "not on the issuer's host"),
        ({"issuer": ISSUER + "?x=1"}, CONFIG_URL, "without query"),
        ({"id_token_signing_alg_values_supported": ["HS256"]}, CONFIG_URL, "RS256"),
    ],
)
def test_bad_configurations_are_refused(changes: dict, url: str, message: str) -> None:
    with pytest.raises(RegistrationError, match=message.replace("?", r"\?")):
        check_configuration(configuration(**changes), url)
    with pytest.raises(RegistrationError, match="not a JSON object"):
        check_configuration([], CONFIG_URL)


def test_secrets_work_once_and_expire() -> None:
    secrets = RegistrationSecrets()
    secret = secrets.mint(60)
    assert secrets.take("x" + secret) == "unknown"
    assert secrets.take(secret) == "ok"
    assert secrets.take(secret) == "unknown"
    old = secrets.mint(-1)
    assert secrets.take(old) == "expired"
    assert secrets.take(old) == "unknown"
    assert secret not in repr(vars(secrets))  # only hashes are kept


def test_the_store_keeps_one_entry_per_client_and_is_private(tmp_path: Path) -> None:
    store = RegistrationStore(tmp_path / "state" / "platforms.json")
    assert store.load() == []
    first = Registration(ISSUER, "1", "https://a/auth", "https://a/jwks", "https://a/token")
    store.add(first)
    store.add(Registration(ISSUER, "2", "https://b/auth", "https://b/jwks", "https://b/token"))
    store.add(Registration(ISSUER, "1", "https://c/auth", "https://c/jwks", "https://c/token"))
    assert [(r.client_id, r.authorize_url) for r in store.load()] == [
        ("2", "https://b/auth"),
        ("1", "https://c/auth"),
    ]
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.remove(ISSUER, "2") and not store.remove(ISSUER, "2")
    assert [r.client_id for r in store.load()] == ["1"]


def test_the_request_matches_the_developer_key() -> None:
    key = canvas_developer_key("hub.example.edu", title="Sales", privacy_level="email_only")
    request = registration_request(key)
    assert request["redirect_uris"] == ["https://hub.example.edu/hub/lti13/oauth_callback"]
    assert request["initiate_login_uri"] == "https://hub.example.edu/hub/lti13/oauth_login"
    assert request["jwks_uri"] == "https://hub.example.edu/hub/lti13/jwks"
    assert request["client_name"] == "Sales" and request["scope"] == ""
    tool = request[TOOL_CONFIG]
    assert tool["claims"] == ["iss", "sub", "email"]
    assert tool["domain"] == "hub.example.edu"
    by_placement = {m["placements"][0]: m for m in tool["messages"]}
    assert set(by_placement) == {
        "course_navigation",
        "link_selection",
        "assignment_selection",
        "editor_button",
    }
    assert by_placement["course_navigation"]["type"] == "LtiResourceLinkRequest"
    assert by_placement["link_selection"]["target_link_uri"].endswith("/hub/lti13/pick")
    assert by_placement["link_selection"]["supported_types"] == ["ltiResourceLink"]


def test_without_a_client_id_only_registered_platforms_log_in(tmp_path: Path) -> None:
    c = Config()
    configure_lti(c, state_dir=tmp_path, auth_state=False)
    section = c.HubVizLTI13Authenticator
    assert section.registrations_file == str(tmp_path.resolve() / "hub_viz_lti_platforms.json")
    auth = HubVizLTI13Authenticator(config=c)
    assert auth.trusted() == [] and auth.platform_for(ISSUER) is None
    auth.register(Registration(ISSUER, "7", ISSUER + "/auth", ISSUER + "/jwks", ISSUER + "/t"))
    platform = auth.platform_for(ISSUER, "7")
    assert platform is not None and not platform.configured
    assert platform.jwks_url == ISSUER + "/jwks"
    assert auth.platform_for(ISSUER, "8") is None
    with pytest.raises(ValueError, match="'client_id' is required"):
        configure_lti(Config(), auth_state=False)  # no state folder: nowhere to keep registrations


def test_the_configured_platform_comes_first(tmp_path: Path) -> None:
    c = Config()
    configure_lti(c, state_dir=tmp_path, client_id="1", auth_state=False)
    auth = HubVizLTI13Authenticator(config=c)
    auth.register(
        Registration(
            "https://canvas.instructure.com", "2", "https://x/auth", "https://x/jwks", "https://x/t"
        )
    )
    assert auth.platform_for("https://canvas.instructure.com").configured
    assert not auth.platform_for("https://canvas.instructure.com", "2").configured
    assert auth.issuers() == ["https://canvas.instructure.com"]


def test_pending_registrations_work_once_and_expire() -> None:
    pending = Pending()
    waiting = PendingRegistration(configuration(), "token", {"client_name": "x"})
    code = pending.keep(waiting, 60)
    assert pending.take("x" + code) is None
    assert pending.take(code) == waiting
    assert pending.take(code) is None
    assert pending.take(pending.keep(waiting, -1)) is None
    assert code not in repr(vars(pending))  # only hashes are kept


def test_the_summary_names_what_the_tool_asks_for() -> None:
    shown = summary(registration_request(canvas_developer_key("hub.example.edu", title="Sales")))
    assert shown["name"] == "Sales" and shown["scopes"] == []
    assert shown["claims"] == ["iss", "sub", "name", "given_name", "family_name"]
    assert {p["placement"]: p["picker"] for p in shown["placements"]} == {
        "course_navigation": False,
        "link_selection": True,
        "assignment_selection": True,
        "editor_button": True,
    }


def test_each_registration_keeps_its_deployments(tmp_path: Path) -> None:
    c = Config()
    configure_lti(c, state_dir=tmp_path, client_id="1", deployments=["1:conf"], auth_state=False)
    auth = HubVizLTI13Authenticator(config=c)
    auth.register(
        Registration(ISSUER, "2", ISSUER + "/a", ISSUER + "/j", ISSUER + "/t", deployments=("2:a",))
    )
    assert auth.platform_for("https://canvas.instructure.com", "1").deployments == {"1:conf"}
    assert auth.platform_for(ISSUER, "2").deployments == {"2:a"}
    assert auth.set_deployments(ISSUER, "2", ["2:a", "2:b", "2:a"])
    assert RegistrationStore(auth.registrations_file).find(ISSUER, "2").deployments == (
        "2:a",
        "2:b",
    )
    assert auth.set_deployments(ISSUER, "2", [])
    assert auth.platform_for(ISSUER, "2").deployments == frozenset()
    assert not auth.set_deployments(ISSUER, "3", [])

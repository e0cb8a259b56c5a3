"""LTI launches as hub_viz reads them: roles, course groups, deep links, settings, Canvas JSON."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest
from ltiauthenticator.lti13.error import (
    InvalidAudienceError,
    MissingRequiredArgumentError,
    TokenError,
)
from tornado.web import HTTPError
from traitlets.config import Config

from hub_viz.cli import run
from hub_viz.config import configure
from hub_viz.errors import LaunchError
from hub_viz.hubstart import ensure_service_files, prepare_service
from hub_viz.lti import (
    CANVAS_AUTHORIZE,
    CANVAS_ISSUER,
    CANVAS_JWKS,
    HubVizLTI11Authenticator,
    HubVizLTI13Authenticator,
    configure_lti,
)
from hub_viz.lti_claims import (
    Launch,
    canvas_developer_key,
    context_groups,
    course_groups,
    history_groups,
    is_staff,
    launch_11,
    launch_13,
    merge_groups,
    parse_dashboard,
    resolve_target,
    role_name,
    safe_path,
)
from hub_viz.lti_handlers import plain_refusal, plain_refusal_11
from hub_viz.lti_keys import ensure_rsa_key, key_set, key_status, rotate, sign

pytestmark = pytest.mark.unit

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CTX = "4dde05e8ca1973bcca9bffc13e1548820eee93a3"  # a Canvas context id


@pytest.fixture(autouse=True)
def _crypt_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "00" * 32)
    monkeypatch.chdir(tmp_path)


# -- roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "name", "staff"),
    [
        (LIS + "membership#Instructor", "instructor", True),
        (LIS + "membership#Learner", "learner", False),
        (LIS + "membership#ContentDeveloper", "contentdeveloper", True),
        (LIS + "membership/Instructor#TeachingAssistant", "instructor", True),
        (LIS + "membership/Learner#Instructor", "learner", False),
        (LIS + "membership#Mentor", "mentor", False),
        (LIS + "institution/person#Instructor", None, False),  # not a course role
        (LIS + "system/person#Administrator", None, False),
        ("Instructor", "instructor", True),
        ("TeachingAssistant", "teachingassistant", True),
        ("Learner", "learner", False),
        ("urn:lti:role:ims/lis/Instructor", "instructor", True),
        ("urn:lti:role:ims/lis/TeachingAssistant", "teachingassistant", True),
        ("urn:lti:role:ims/lis/Instructor/TeachingAssistant", "instructor", True),
        ("urn:lti:role:ims/lis/ContentDeveloper", "contentdeveloper", True),
        ("urn:lti:role:ims/lis/Learner", "learner", False),
        ("urn:lti:instrole:ims/lis/Instructor", None, False),
        ("urn:lti:sysrole:ims/lis/SysAdmin", None, False),
        ("", None, False),
    ],
)
def test_course_roles(role: str, name: str | None, staff: bool) -> None:
    assert role_name(role) == name
    assert is_staff([role]) is staff


def test_canvas_teacher_and_ta_launches_are_staff() -> None:
    teacher = [
        LIS + "institution/person#Instructor",
        LIS + "membership#Instructor",
        LIS + "system/person#User",
    ]
    student = [
        LIS + "institution/person#Student",
        LIS + "membership#Learner",
        LIS + "system/person#User",
    ]
    assert is_staff(teacher) and not is_staff(student)
    assert is_staff(launch_11({"roles": "Instructor,urn:lti:role:ims/lis/TeachingAssistant"}).roles)
    assert not is_staff(launch_11({"roles": "Learner,urn:lti:instrole:ims/lis/Instructor"}).roles)


# -- groups -----------------------------------------------------------------------------


def test_course_groups_use_the_context_id() -> None:
    learner = Launch(context_id=CTX, context_label="MATH101", roles=("Learner",))
    teacher = Launch(context_id=CTX, context_label="MATH101", roles=("Instructor",))
    assert course_groups(learner) == [f"course-{CTX}"]
    assert course_groups(teacher) == [f"course-{CTX}", f"course-{CTX}-instructors"]
    assert course_groups(Launch(roles=("Instructor",))) == []  # no course, no group


@pytest.mark.parametrize("context_id", ["a/b", "x" * 65, "dé", "a b", "..%2f"])
def test_unsafe_context_ids_are_hashed(context_id: str) -> None:
    group, instructors = context_groups(context_id)
    assert group.startswith("course-") and len(group) == len("course-") + 32
    assert all(ch.isalnum() or ch == "-" for ch in group)
    assert instructors == group + "-instructors"
    assert context_groups(context_id + "!") != (group, instructors)


def test_merge_replaces_only_this_courses_groups() -> None:
    current = ["lab", f"course-{CTX}", f"course-{CTX}-instructors", "course-other"]
    demoted = merge_groups(current, Launch(context_id=CTX, roles=("Learner",)))
    assert demoted == ["lab", "course-other", f"course-{CTX}"]
    promoted = merge_groups(demoted, Launch(context_id=CTX, roles=("Instructor",)))
    assert sorted(promoted) == sorted(current)
    assert merge_groups(["lab"], Launch(context_id="new", roles=("Learner",))) == [
        "lab",
        "course-new",
    ]
    assert merge_groups(["lab", "lab"], Launch()) == ["lab"]


def test_members_of_a_copy_join_the_originals_course_group() -> None:
    copy = launch_13(
        {
            CLAIM + "context": {"id": "copy", "label": "M"},
            CLAIM + "roles": [LIS + "membership#Instructor"],
            CLAIM + "custom": {
                "context_history": "term2, term1,copy",
                "previous_context_ids": "term1,term0",
            },
        }
    )
    assert copy.history == ("term2", "term1", "term0")
    assert history_groups(copy) == ["course-term2", "course-term1", "course-term0"]
    # the original's course group only: teaching the copy gives no say over the original
    assert merge_groups(["lab"], copy) == [
        "lab",
        "course-copy",
        "course-copy-instructors",
        "course-term2",
        "course-term1",
        "course-term0",
    ]


@pytest.mark.parametrize(
    "custom",
    [
        {},
        {"context_history": "$Context.id.history"},
        {"previous_context_ids": "$Canvas.course.previousContextIds.recursive"},
        {"context_history": ""},
        {"context_history": 7},
        {"context_history": " , ,"},
    ],
)
def test_no_history_when_the_platform_sends_none(custom: dict) -> None:
    launch = launch_13({CLAIM + "context": {"id": "c", "label": "M"}, CLAIM + "custom": custom})
    assert launch.history == () and history_groups(launch) == []


def test_lti11_reads_the_history_from_custom_parameters() -> None:
    launch = launch_11({"context_id": "copy", "custom_context_history": "orig"})
    assert merge_groups([], launch) == ["course-copy", "course-orig"]


# -- launches -----------------------------------------------------------------------------


def test_launch_13_reads_canvas_claims() -> None:
    launch = launch_13(
        {
            CLAIM + "context": {"id": CTX, "label": "MATH101", "title": "Calculus"},
            CLAIM + "roles": [LIS + "membership#Instructor", 7],
            CLAIM + "custom": {"dashboard": " alice/sales "},
            CLAIM + "target_link_uri": "https://hub.example.edu/hub/home",
        }
    )
    assert launch == Launch(
        CTX,
        "MATH101",
        "Calculus",
        (LIS + "membership#Instructor",),
        "alice/sales",
        "https://hub.example.edu/hub/home",
    )
    with pytest.raises(LaunchError):
        launch_13({CLAIM + "roles": "Instructor"})
    with pytest.raises(LaunchError):
        launch_13({CLAIM + "custom": ["dashboard"]})


def test_launch_11_reads_canvas_parameters() -> None:
    launch = launch_11(
        {
            "context_id": CTX,
            "context_label": "MATH101",
            "context_title": "Calculus",
            "roles": "Instructor, urn:lti:role:ims/lis/TeachingAssistant",
            "custom_dashboard": "alice/sales",
            "custom_next": "/hub/home",
        }
    )
    assert launch.roles == ("Instructor", "urn:lti:role:ims/lis/TeachingAssistant")
    assert (launch.dashboard, launch.target, launch.staff) == ("alice/sales", "/hub/home", True)


# -- deep links -----------------------------------------------------------------------------

HOST = "hub.example.edu"


@pytest.mark.parametrize(
    ("link", "path"),
    [
        ("/services/hub-viz/open/alice/sales", "/services/hub-viz/open/alice/sales"),
        ("https://hub.example.edu/hub/home", "/hub/home"),
        ("https://HUB.example.edu:443/hub/home?x=1#top", "/hub/home?x=1"),
        ("/user/alice/sales/", "/user/alice/sales/"),
    ],
)
def test_links_on_this_hub_become_paths(link: str, path: str) -> None:
    assert safe_path(link, HOST) == path


@pytest.mark.parametrize(
    "link",
    [
        "//evil.example/x",
        "https://evil.example/x",
        "http://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%2F%2Fevil.example",
        "/%2f/evil.example",
        "/%252F%252Fevil.example",
        "%2F%2Fevil.example",
        "https:evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "data:text/html,x",
        "\t//evil.example",
        " //evil.example",
        "/x\n//evil",
        "https://hub.example.edu@evil.example/",
        "https://hub.example.edu.evil.example/",
        "https://hub.example.edu:8443/",
        "ftp://hub.example.edu/",
        "evil.example",
        "/a/../../evil",
        "/%2e%2e/x",
        "",
        "/" + "a" * 3000,
    ],
)
def test_links_elsewhere_are_refused(link: str) -> None:
    with pytest.raises(LaunchError, match="only links to this hub"):
        safe_path(link, HOST)


def _target(**launch: str):
    return resolve_target(
        Launch(**launch),
        host=HOST,
        scheme="https",
        base_url="/",
        service_prefix="/services/hub-viz/",
    )


def test_deep_links_name_dashboards() -> None:
    assert _target(dashboard="alice/sales").dashboard == ("alice", "sales")
    assert _target(dashboard="alice/sales").path == "/services/hub-viz/open/alice/sales"
    # the custom parameter wins over the link
    assert _target(dashboard="bob/x", target="https://hub.example.edu/hub/home").dashboard == (
        "bob",
        "x",
    )
    by_link = _target(target="https://hub.example.edu/services/hub-viz/open/al%20ice/sales/")
    assert by_link.dashboard == ("al ice", "sales")
    assert by_link.path == "/services/hub-viz/open/al%20ice/sales"
    assert _target(target="/hub/spawn").path == "/hub/spawn"
    assert _target(target="/hub/spawn").dashboard is None
    for home in ("https://hub.example.edu/", "https://hub.example.edu/hub", "/hub/", ""):
        assert _target(target=home).path is None


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "alice/",
        "/sales",
        "alice/Sales",
        "alice/sales/x",
        "alice/-x",
        "a?b/s",
        "alice/sales-",
        "a\\b/s",
        "alice/a--b",
        "../x",
    ],
)
def test_malformed_dashboard_parameters_are_refused(value: str) -> None:
    with pytest.raises(LaunchError, match="OWNER/SLUG"):
        parse_dashboard(value)


def test_open_links_with_a_bad_dashboard_are_refused() -> None:
    with pytest.raises(LaunchError):
        _target(target="/services/hub-viz/open/alice")
    with pytest.raises(LaunchError):
        _target(target="https://evil.example/services/hub-viz/open/alice/sales")


SERVICE_ORIGIN = "https://hub-viz--service.hub.example.edu"


def _isolated(**launch: str):
    return resolve_target(
        Launch(**launch),
        host=HOST,
        scheme="https",
        base_url="/",
        service_prefix="/services/hub-viz/",
        service_origin=SERVICE_ORIGIN,
    )


def test_on_the_isolated_layout_deep_links_land_on_the_services_host() -> None:
    opened = f"{SERVICE_ORIGIN}/services/hub-viz/open/alice/sales"
    assert _isolated(dashboard="alice/sales").path == opened
    # the open link instructors copy (on the service's host) and the hub-path form
    for link in (opened + "/", "https://hub.example.edu/services/hub-viz/open/alice/sales"):
        target = _isolated(target=link)
        assert (target.path, target.dashboard) == (opened, ("alice", "sales"))
    assert _isolated(target="https://hub.example.edu/hub/spawn").path == "/hub/spawn"


@pytest.mark.parametrize(
    "link",
    [
        f"{SERVICE_ORIGIN}/services/hub-viz/api/dashboards",  # only open pages there
        f"{SERVICE_ORIGIN}/hub/admin",
        "http://hub-viz--service.hub.example.edu/services/hub-viz/open/alice/sales",  # scheme
        "https://sales--0123abcd.hub.example.edu/user/alice/sales/",  # a dashboard's own host
        "https://hub-viz--service.hub.example.edu.evil.org/services/hub-viz/open/alice/sales",
    ],
)
def test_on_the_isolated_layout_other_hosts_and_pages_are_refused(link: str) -> None:
    with pytest.raises(LaunchError):
        _isolated(target=link)


def test_links_outside_the_base_url_are_refused() -> None:
    with pytest.raises(LaunchError, match="base URL"):
        resolve_target(
            Launch(target="/other/x"),
            host=HOST,
            scheme="https",
            base_url="/jh/",
            service_prefix="/jh/services/hub-viz/",
        )


# -- settings ---------------------------------------------------------------------------------


def test_lti13_defaults_to_canvas_cloud(tmp_path: Path) -> None:
    c = Config()
    extra = configure_lti(
        c,
        state_dir=tmp_path,
        service_url="http://127.0.0.1:1/services/hub-viz/",
        client_id="10000000000123",
    )
    cfg = c.HubVizLTI13Authenticator
    assert c.JupyterHub.authenticator_class == "hub_viz.lti.HubVizLTI13Authenticator"
    assert (cfg.issuer, cfg.jwks_endpoint, cfg.authorize_url) == (
        CANVAS_ISSUER,
        CANVAS_JWKS,
        CANVAS_AUTHORIZE,
    )
    assert cfg.client_id == {"10000000000123"}
    assert cfg.username_key == "sub"
    assert cfg.allow_all is True and cfg.manage_groups is True
    assert c.Authenticator.enable_auth_state is True
    secret = Path(extra["lti_secret_file"])
    assert not secret.exists()  # made when the hub starts (hub_viz.hubstart), not here
    ensure_service_files(extra)
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text()) >= 40
    assert cfg.service_secret_file == str(secret)
    # the secret is passed as a file, never as a value in the config
    assert secret.read_text() not in json.dumps(c, default=str)


def test_lti11_settings(tmp_path: Path) -> None:
    c = Config()
    configure_lti(c, version="1.1", consumers={"key": "secret"}, auth_state=False)
    assert c.JupyterHub.authenticator_class == "hub_viz.lti.HubVizLTI11Authenticator"
    assert c.HubVizLTI11Authenticator.consumers == {"key": "secret"}
    assert c.HubVizLTI11Authenticator.username_key == "user_id"
    assert c.Authenticator.enable_auth_state is False


def test_deployments_and_courseless_launches_are_settings() -> None:
    c = Config()
    configure_lti(c, client_id="1", deployments=["42:a", " 42:b "], allow_without_course=True)
    assert c.HubVizLTI13Authenticator.deployments == ["42:a", "42:b"]
    assert c.HubVizLTI13Authenticator.allow_without_course is True
    assert HubVizLTI13Authenticator().allow_without_course is False  # refused by default
    assert HubVizLTI13Authenticator().deployments == []  # any deployment by default
    with pytest.raises(ValueError, match="'deployments' must list the deployment ids"):
        configure_lti(Config(), client_id="1", deployments=[""])
    with pytest.raises(ValueError, match="'allow_without_course' must be True or False"):
        configure_lti(Config(), client_id="1", allow_without_course="yes")
    with pytest.raises(ValueError, match="unknown setting"):
        configure_lti(Config(), version="1.1", consumers={"k": "s"}, deployments=["x"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "'client_id' is required"),
        ({"client_id": ""}, "'client_id' is required"),
        ({"client_id": []}, "'client_id' is required"),
        (
            {"client_id": "1", "issuer": "http://canvas.example.edu"},
            "'issuer' must be an https URL",
        ),
        ({"client_id": "1", "jwks_url": "ftp://x/jwks"}, "'jwks_url' must be an https URL"),
        ({"client_id": "1", "authorize_url": "not a url"}, "'authorize_url' must be an https"),
        ({"client_id": "1", "consumers": {"k": "s"}}, "unknown setting"),
        ({"client_id": "1", "username_key": ""}, "'username_key'"),
        ({"client_id": "1", "auth_state": "yes"}, "'auth_state'"),
        ({"version": "2"}, "'version' must be"),
        ({"version": "1.1"}, "'consumers' is required"),
        ({"version": "1.1", "consumers": {"k": ""}}, "'consumers' is required"),
        ({"version": "1.1", "consumers": {"k": "s"}, "client_id": "1"}, "unknown setting"),
    ],
)
def test_bad_settings_say_what_to_fix(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_lti(Config(), **settings)


def test_auth_state_needs_the_crypt_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    with pytest.raises(ValueError, match="JUPYTERHUB_CRYPT_KEY"):
        configure_lti(Config(), client_id="1")
    configure_lti(Config(), client_id="1", auth_state=False)
    c = Config()
    c.CryptKeeper.keys = ["00" * 32]
    configure_lti(c, client_id="1")


def test_loopback_http_urls_are_allowed_for_tests() -> None:
    c = Config()
    configure_lti(
        c,
        client_id=["1", 2],
        issuer="https://platform.test",
        jwks_url="http://127.0.0.1:9999/jwks",
        authorize_url="https://platform.test/auth",
    )
    assert c.HubVizLTI13Authenticator.client_id == {"1", "2"}


def test_configure_passes_the_secret_to_the_service(tmp_path: Path) -> None:
    c = Config()
    c.JupyterHub.ip, c.JupyterHub.port = "127.0.0.1", 8000
    configure(c, state_dir=str(tmp_path), lti={"client_id": "1"})
    [service] = [s for s in c.JupyterHub.services if s["name"] == "hub-viz"]
    settings = json.loads(service["environment"]["HUB_VIZ_SERVICE_CONFIG"])["DashboardService"]
    assert settings["lti_secret_file"] == str(tmp_path / "hub_viz_lti_secret")
    key = tmp_path / "hub_viz_lti_key.pem"
    assert settings["lti_key_file"] == c.HubVizLTI13Authenticator.key_file == str(key)
    assert list(tmp_path.iterdir()) == []  # loading the config writes nothing
    prepare_service(c, c.JupyterHub.services)  # the hub starts
    assert (tmp_path / "hub_viz_lti_secret").is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert c.HubVizLTI13Authenticator.service_url == "http://127.0.0.1:10101/services/hub-viz/"
    assert c.HubVizLTI13Authenticator.service_name == "hub-viz"
    # without the service: login only
    c = Config()
    configure(c, service=False, lti={"client_id": "1"})
    assert "service_url" not in c.HubVizLTI13Authenticator


def test_authenticator_defaults() -> None:
    for cls, key in ((HubVizLTI13Authenticator, "sub"), (HubVizLTI11Authenticator, "user_id")):
        auth = cls()
        assert (auth.username_key, auth.allow_all, auth.manage_groups) == (key, True, True)


def test_lti11_held_launches_work_once() -> None:
    auth = HubVizLTI11Authenticator()
    token = auth.hold({"name": "u"}, "/hub/home")
    assert auth.release(token) == ({"name": "u"}, "/hub/home")
    assert auth.release(token) is None
    auth.continue_timeout = -1
    assert auth.release(auth.hold({"name": "u"}, None)) is None
    assert auth.release("guess") is None


def test_lti13_nonces_are_single_use() -> None:
    auth = HubVizLTI13Authenticator()
    assert auth.first_use("n1", 2_000_000_000)
    assert not auth.first_use("n1", 2_000_000_000)
    assert auth.first_use("n2", None)


# -- Canvas --------------------------------------------------------------------------------


def test_canvas_developer_key() -> None:
    key = canvas_developer_key("Hub.Example.edu", title="Sales")
    assert key["oidc_initiation_url"] == "https://hub.example.edu/hub/lti13/oauth_login"
    assert key["redirect_uris"] == ["https://hub.example.edu/hub/lti13/oauth_callback"]
    assert key["target_link_uri"] == "https://hub.example.edu/hub/home"
    assert key["public_jwk_url"] == "https://hub.example.edu/hub/lti13/jwks"
    assert key["scopes"] == []
    assert key["custom_fields"] == {
        "context_history": "$Context.id.history",
        "previous_context_ids": "$Canvas.course.previousContextIds.recursive",
    }
    [ext] = key["extensions"]
    assert ext["platform"] == "canvas.instructure.com" and ext["domain"] == "hub.example.edu"
    assert ext["privacy_level"] == "name_only"
    placements = {p["placement"]: p for p in ext["settings"]["placements"]}
    assert set(placements) == {
        "course_navigation",
        "link_selection",
        "assignment_selection",
        "editor_button",
    }
    assert placements["course_navigation"]["windowTarget"] == "_blank"
    assert placements["course_navigation"]["message_type"] == "LtiResourceLinkRequest"
    for name in ("link_selection", "assignment_selection", "editor_button"):
        assert placements[name]["message_type"] == "LtiDeepLinkingRequest"
        assert placements[name]["target_link_uri"] == "https://hub.example.edu/hub/lti13/pick"
    based = canvas_developer_key("hub.example.edu", base_url="/jh")
    assert based["oidc_initiation_url"] == "https://hub.example.edu/jh/hub/lti13/oauth_login"
    for bad in ("https://hub.example.edu", "hub.example.edu/x", "", "-x.edu"):
        with pytest.raises(ValueError, match="--domain"):
            canvas_developer_key(bad)


def test_lti_config_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lti-config", "--domain", "hub.example.edu", "--title", "Sales"]) == 0
    key = json.loads(capsys.readouterr().out)
    assert key["title"] == "Sales"
    assert run(["lti-config", "--domain", "evil/x"]) == 1
    assert "--domain must be" in capsys.readouterr().err


# -- Deep Linking ----------------------------------------------------------------------------


def test_the_signing_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = ensure_rsa_key(tmp_path / "k.pem")
    first = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert ensure_rsa_key(path).read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (jwk,) = key_set(path)["keys"]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # nothing private
    token = sign({"iss": "tool", "aud": "platform"}, path)
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="platform")
    assert key_set(tmp_path / "none.pem") == {"keys": []}


def verify(token: str, path: Path, now: float) -> dict:
    """A platform's check of a response: the key of its ``kid`` in the tool's key set."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next((k for k in key_set(path, now)["keys"] if k["kid"] == kid), None)
    assert jwk is not None, "the key that signed is not in the key set"
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="platform")


def test_a_rotation_keeps_responses_in_flight_verifiable(tmp_path: Path) -> None:
    path = ensure_rsa_key(tmp_path / "k.pem")
    t0 = 1_000_000.0
    claims = {"iss": "tool", "aud": "platform"}
    old = sign(claims, path, now=t0)
    (old_kid,) = (k["kid"] for k in key_set(path, t0)["keys"])
    done = rotate(path, publish_delay=600, keep_previous=3600, now=t0)
    assert done["kid"] != old_kid and done["signs_from"] == t0 + 600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.previous.pem").stat().st_mode) == 0o600
    # published at once, both keys; the old one still signs while platforms catch up
    assert {k["kid"] for k in key_set(path, t0 + 1)["keys"]} == {old_kid, done["kid"]}
    during = sign(claims, path, now=t0 + 1)
    assert jwt.get_unverified_header(during)["kid"] == old_kid
    assert key_status(path, t0 + 1)["keys"] == [
        {"kid": done["kid"], "signs": False},
        {"kid": old_kid, "signs": True},
    ]
    with pytest.raises(ValueError, match="does not sign yet"):
        rotate(path, now=t0 + 2)
    # then the new key signs; what the old one signed still verifies
    after = sign(claims, path, now=t0 + 601)
    assert jwt.get_unverified_header(after)["kid"] == done["kid"]
    for token in (old, during, after):
        assert verify(token, path, t0 + 601)["iss"] == "tool"
    # until the old key is dropped from the key set
    assert [k["kid"] for k in key_set(path, t0 + 600 + 3601)["keys"]] == [done["kid"]]


def test_an_immediate_rotation_drops_the_old_key(tmp_path: Path) -> None:
    path = ensure_rsa_key(tmp_path / "k.pem")
    t0 = 1_000_000.0
    rotate(path, publish_delay=600, now=t0)
    leaked = sign({"iss": "tool", "aud": "platform"}, path, now=t0 + 1)
    done = rotate(path, immediately=True, now=t0 + 2)  # allowed during a rotation
    assert [k["kid"] for k in key_set(path, t0 + 3)["keys"]] == [done["kid"]]
    assert not (tmp_path / "k.previous.pem").exists()
    with pytest.raises(AssertionError, match="not in the key set"):
        verify(leaked, path, t0 + 3)
    token = sign({"iss": "tool", "aud": "platform"}, path, now=t0 + 3)
    assert verify(token, path, t0 + 3)["iss"] == "tool"
    with pytest.raises(ValueError, match="does not exist"):
        rotate(tmp_path / "none.pem")


def test_launch_13_reads_a_deep_linking_request() -> None:
    settings = {
        "deep_link_return_url": "https://canvas.example.edu/courses/1/deep_linking_response",
        "data": "opaque",
    }
    launch = launch_13(
        {
            CLAIM + "message_type": "LtiDeepLinkingRequest",
            CLAIM + "deployment_id": "42:abc",
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": settings,
        }
    )
    assert launch.picking and launch.deep_linking == settings and launch.deployment_id == "42:abc"
    assert not launch_13({CLAIM + "message_type": "LtiResourceLinkRequest"}).picking


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (None, "sent no deep-linking settings"),
        ({"deep_link_return_url": "http://canvas.example.edu/x"}, "not an https URL"),
        ({"deep_link_return_url": "javascript:alert(1)"}, "not an https URL"),
    ],
)
def test_bad_deep_linking_settings_are_refused(settings: dict | None, message: str) -> None:
    with pytest.raises(LaunchError, match=message):
        launch_13(
            {
                CLAIM + "message_type": "LtiDeepLinkingRequest",
                "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": settings,
            }
        )


def test_picker_nonces_work_once() -> None:
    auth = HubVizLTI13Authenticator()
    auth.expect_pick("n1")
    assert auth.take_pick("n1") and not auth.take_pick("n1") and not auth.take_pick("other")
    auth.pick_timeout = -1
    auth.expect_pick("n2")
    assert not auth.take_pick("n2")


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (TokenError("Not enough segments"), 400, "not signed by the course site this hub trusts"),
        (
            TokenError('Unable to find a signing key that matches: "None"'),
            400,
            "not signed by the course site",
        ),
        (
            MissingRequiredArgumentError(
                "Required LTI 1.3 arg https://purl.imsglobal.org/spec/lti/claim/roles not in request"
            ),
            400,
            "did not say your role in the course (roles)",
        ),
        (TokenError("Signature has expired"), 400, "This launch has expired"),
        (InvalidAudienceError("Audience doesn't match"), 401, "meant for another tool"),
    ],
)
def test_library_refusals_become_plain_words(error: Exception, status: int, words: str) -> None:
    e = plain_refusal(error)
    message = e.log_message % e.args
    assert e.status_code == status and words in message
    assert "Not enough segments" not in message and "Required LTI" not in message


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (HTTPError(401, "Invalid oauth_signature"), 401, "consumer key and secret this hub knows"),
        (HTTPError(401, "unknown oauth_consumer_key"), 401, "consumer key and secret"),
        (HTTPError(401, "oauth_nonce + oauth_timestamp already used"), 401, "used already"),
        (
            HTTPError(401, "Timestamp given is invalid, differ from allowed 30 sec"),
            401,
            "This launch has expired",
        ),
        (
            HTTPError(400, "Required LTI 1.1 arg arg resource_link_id not included in request"),
            400,
            "did not say which link you opened (resource_link_id)",
        ),
        (
            HTTPError(400, "Required oauth arg oauth_nonce does not have a value"),
            400,
            "something the hub needs (oauth_nonce)",
        ),
    ],
)
def test_lti11_refusals_become_plain_words(raw: HTTPError, status: int, words: str) -> None:
    e = plain_refusal_11(raw)
    message = e.log_message % e.args if e.args else e.log_message
    assert e.status_code == status and words in message and "Required" not in message

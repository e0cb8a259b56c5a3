"""Who may publish beyond 'private' when dashboards share the hub's origin (path-based)."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.service.app import DashboardService
from hub_viz.service.dashboards import VISIBILITIES
from hub_viz.service.publishers import LIMIT, NotAPublisher, Publishers

BEYOND_PRIVATE = [v for v in VISIBILITIES if v != "private"]
STUDENT = {"name": "sam", "admin": False, "groups": ["course-101"]}
PUBLISHERS = Publishers.parse(["ines", " group:teachers "])


def test_the_limit_names_every_visibility_but_private() -> None:
    assert BEYOND_PRIVATE == ["users", "groups", "all", "public"]


@pytest.mark.parametrize("visibility", BEYOND_PRIVATE)
def test_a_user_who_is_no_publisher_is_refused_beyond_private(visibility: str) -> None:
    with pytest.raises(NotAPublisher) as refused:
        PUBLISHERS.check(STUDENT, visibility)
    assert refused.value.status_code == 403
    assert refused.value.message == LIMIT
    # the sentence says why and what the operator can do
    assert "hub's own address" in LIMIT and "configure(c, publishers=[...])" in LIMIT
    assert "subdomain_host" in LIMIT and LIMIT.endswith(".")


def test_everyone_may_publish_private() -> None:
    PUBLISHERS.check(STUDENT, "private")
    Publishers().check({"name": "anyone"}, "private")


@pytest.mark.parametrize(
    "user",
    [
        {"name": "root", "admin": True, "groups": []},  # a hub admin
        {"name": "ines", "admin": False, "groups": []},  # a named publisher
        {"name": "tom", "admin": False, "groups": ["course-101", "teachers"]},  # in a named group
    ],
    ids=["admin", "named-user", "group-member"],
)
@pytest.mark.parametrize("visibility", BEYOND_PRIVATE)
def test_admins_publishers_and_their_groups_may_share(user: dict, visibility: str) -> None:
    PUBLISHERS.check(user, visibility)
    assert PUBLISHERS.limit_for(user) == ""


def test_a_group_name_is_not_a_user_name_nor_the_other_way_round() -> None:
    with pytest.raises(NotAPublisher):
        PUBLISHERS.check({"name": "teachers", "groups": []}, "all")
    with pytest.raises(NotAPublisher):
        PUBLISHERS.check({"name": "sam", "groups": ["ines"]}, "all")


@pytest.mark.parametrize("visibility", BEYOND_PRIVATE)
def test_dashboards_on_hosts_of_their_own_lift_the_limit(visibility: str) -> None:
    isolated = Publishers.parse([], isolated=True)
    isolated.check(STUDENT, visibility)
    assert isolated.limit_for(STUDENT) == ""
    assert isolated.startup_warning() == ""


def test_the_startup_warning_says_the_layout_and_who_may_publish() -> None:
    warning = PUBLISHERS.startup_warning()
    assert warning.startswith("Path-based layout: JupyterHub.subdomain_host is not set")
    assert "ines, group:teachers." in warning
    assert "nobody else" in Publishers().startup_warning()


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ("alice", "must be a list of names, e.g. ['alice']"),
        (["group:"], "names no group"),
        ([""], "is not a user name"),
        ([7], "is not a user name"),
    ],
)
def test_bad_publisher_entries_say_what_to_write(entries, fragment) -> None:
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Publishers.parse(entries)
    with pytest.raises(ValueError, match=r"configure\(publishers=\.\.\.\)"):
        configure(Config(), publishers=entries)


def service_settings(c: Config) -> dict:
    [service] = [s for s in c.JupyterHub.services if s["name"] == "hub-viz"]
    return json.loads(service["environment"]["HUB_VIZ_SERVICE_CONFIG"])["DashboardService"]


def test_configure_passes_publishers_and_the_layout_to_the_service() -> None:
    c = Config()
    configure(c, publishers=["ines", "group:teachers"])
    settings = service_settings(c)
    assert settings["publishers"] == ["ines", "group:teachers"]
    assert settings["subdomain_host"] == ""
    assert service_settings(configure_into(Config()))["publishers"] == []


def configure_into(c: Config, **kwargs) -> Config:
    configure(c, **kwargs)
    return c


@pytest.mark.parametrize(
    ("subdomain_host", "isolated"),
    [
        ("https://hub.example.edu", True),
        ("", False),
    ],
)
def test_the_publishing_limit_follows_subdomain_host(subdomain_host: str, isolated: bool) -> None:
    c = Config()
    c.JupyterHub.subdomain_host = subdomain_host
    settings = service_settings(configure_into(c, publishers=["ines"]))
    assert settings["subdomain_host"] == subdomain_host
    # only the layout decides whether the publishers list limits anyone
    service = DashboardService(config=Config({"DashboardService": settings}))
    assert service.policy().publishers == Publishers.parse(["ines"], isolated=isolated)


def test_the_service_reads_both_settings_into_its_policy() -> None:
    service = DashboardService(
        config=Config(
            {
                "DashboardService": {
                    "publishers": ["ines", "group:teachers"],
                    "subdomain_host": "",
                }
            }
        )
    )
    assert service.policy().publishers == PUBLISHERS
    assert DashboardService().policy().publishers == Publishers()
    for name in ("publishers", "subdomain_host"):
        assert DashboardService.class_traits()[name].help

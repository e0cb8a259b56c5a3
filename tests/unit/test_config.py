"""configure(): one call wires hub_viz into a JupyterHub config object."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from hub_viz.config import SPAWNERS, TEMPLATES, configure, example_cards

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """configure() keeps the service's key and store in the working directory by default."""
    monkeypatch.chdir(tmp_path)

DASHBOARDS = {
    "sales": {
        "framework": "dash",
        "entry": "sales/app.py",
        "title": "Sales",
        "description": "Monthly sales by region",
    },
    "weather": {"entry": "weather.ipynb"},
}


@pytest.mark.parametrize(
    ("spawner", "module", "class_name"),
    [
        ("local", "hub_viz.spawner", "DashboardLocalSpawner"),
        ("kube", "hub_viz.kubespawner", "DashboardKubeSpawner"),
    ],
)
def test_configure_sets_hub_options(spawner: str, module: str, class_name: str) -> None:
    c = Config()
    configure(c, spawner=spawner, dashboards_root="/srv/dashboards", dashboards=DASHBOARDS)
    assert c.JupyterHub.spawner_class == f"{module}.{class_name}"
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.redirect_to_server is False
    assert c.JupyterHub.template_paths == [str(TEMPLATES)]
    assert c.Spawner.start_timeout == 180
    assert c.Spawner.http_timeout == 60
    spawner_config = c[class_name]
    assert spawner_config.dashboards_root == "/srv/dashboards"
    assert spawner_config.predefined_dashboards == {
        "sales": {"framework": "dash", "entry": "sales/app.py", "title": "Sales"},
        "weather": {"entry": "weather.ipynb"},
    }


def test_template_path_holds_the_home_page() -> None:
    c = Config()
    configure(c)
    (path,) = c.JupyterHub.template_paths
    assert Path(path).is_dir()
    assert (Path(path) / "home.html").is_file()


def test_template_vars_hold_dashboard_cards() -> None:
    c = Config()
    configure(c, dashboards=DASHBOARDS)
    assert c.JupyterHub.template_vars == {
        "hub_viz_dashboards": [
            {"name": "sales", "title": "Sales", "framework": "dash",
             "description": "Monthly sales by region"},
            {"name": "weather", "title": "weather", "framework": "", "description": ""},
        ],
        "hub_viz_service_prefix": "services/hub-viz/",
    }


def test_example_cards_keep_order() -> None:
    cards = example_cards({"b": {}, "a": {"title": "A"}})
    assert [card["name"] for card in cards] == ["b", "a"]
    assert cards[1]["title"] == "A"


def test_configure_does_not_mutate_the_callers_dashboards() -> None:
    dashboards = copy.deepcopy(DASHBOARDS)
    configure(Config(), dashboards=dashboards)
    assert dashboards == DASHBOARDS


def test_defaults_leave_optional_traits_unset() -> None:
    c = Config()
    configure(c)
    local = c.DashboardLocalSpawner
    assert local.predefined_dashboards == {}
    assert local.run_as_hub_user is False
    assert "dashboards_root" not in local
    assert "allowed_frameworks" not in local
    assert c.JupyterHub.template_vars == {
        "hub_viz_dashboards": [],
        "hub_viz_service_prefix": "services/hub-viz/",
    }


def test_optional_traits_are_set_when_given() -> None:
    c = Config()
    configure(c, allowed_frameworks=["voila", "dash"], run_as_hub_user=True)
    assert c.DashboardLocalSpawner.allowed_frameworks == ["voila", "dash"]
    assert c.DashboardLocalSpawner.run_as_hub_user is True


def test_kube_has_no_run_as_hub_user() -> None:
    c = Config()
    configure(c, spawner="kube", run_as_hub_user=True)
    assert "run_as_hub_user" not in c.DashboardKubeSpawner
    assert "DashboardLocalSpawner" not in c


def test_configure_keeps_unrelated_settings() -> None:
    c = Config()
    c.JupyterHub.port = 8123
    c.Authenticator.admin_users = {"teacher"}
    configure(c)
    assert c.JupyterHub.port == 8123
    assert c.Authenticator.admin_users == {"teacher"}


@pytest.mark.parametrize("spawner", ["Local", "kubernetes", "", "docker"])
def test_unknown_spawner_raises(spawner: str) -> None:
    c = Config()
    with pytest.raises(ValueError, match=r"use one of \['kube', 'local'\]"):
        configure(c, spawner=spawner)
    assert "spawner_class" not in c.JupyterHub


@pytest.mark.parametrize("spawner", sorted(SPAWNERS))
def test_spawner_names_point_at_classes_with_the_configured_traits(spawner: str) -> None:
    cls = import_item(SPAWNERS[spawner])
    if cls is None:
        pytest.skip("the kubernetes extra is not installed")
    c = Config()
    configure(
        c, spawner=spawner, dashboards_root="/x", allowed_frameworks=["voila"], dashboards={}
    )
    traits = set(cls.class_trait_names(config=True))
    assert cls.__name__ in c
    assert set(c[cls.__name__]) <= traits
    assert {"start_timeout", "http_timeout"} <= traits

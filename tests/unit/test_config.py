"""configure(): one call wires hub_viz into a JupyterHub config object."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from jupyterhub.proxy import ConfigurableHTTPProxy
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from hub_viz.config import CULLER, CULLER_SCOPES, SPAWNERS, TEMPLATES, configure, example_cards
from hub_viz.hubproxy import DashboardProxy, without_server_activity

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
    # locally the first start of a dashboard with its own environment waits for its build
    assert c.Spawner.start_timeout == (300 + 120 if spawner == "local" else 180)
    assert c.Spawner.http_timeout == 60
    spawner_config = c[class_name]
    assert c.DashboardSettings.dashboards_root == "/srv/dashboards"
    assert "dashboards_root" not in spawner_config
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
            {
                "name": "sales",
                "title": "Sales",
                "framework": "dash",
                "description": "Monthly sales by region",
            },
            {"name": "weather", "title": "weather", "framework": "", "description": ""},
        ],
        "hub_viz_service_prefix": "services/hub-viz/",
        "hub_viz_service_origin": "",
    }


def test_isolated_layout_moves_the_gallery_script_and_robots_route() -> None:
    c = Config()
    configure(c, subdomain_host="http://hub.localhost:8000")
    assert c.JupyterHub.subdomain_host == "http://hub.localhost:8000"
    assert c.JupyterHub.template_vars["hub_viz_service_origin"] == (
        "http://hub-viz--service.hub.localhost:8000"
    )
    # the proxy needs a host on every route of the isolated layout
    assert set(c.Proxy.extra_routes) == {"hub.localhost/robots.txt"}
    settings = json.loads(c.JupyterHub.services[-1]["environment"]["HUB_VIZ_SERVICE_CONFIG"])
    assert settings["DashboardService"]["subdomain_host"] == "http://hub.localhost:8000"


def test_isolated_layout_on_https_names_the_hub_and_service_logins_host_only() -> None:
    prefix = "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"
    c = Config()
    configure(c, subdomain_host="https://hub.example.edu")
    assert c.JupyterHub.cookie_host_prefix_enabled is True
    # the hub tells its servers, not its services: the service is told here, or its
    # hub login loops (it would look for a cookie the hub's OAuth never names)
    assert c.JupyterHub.services[-1]["environment"][prefix] == "1"
    # not on plain HTTP (browsers keep Secure cookies from HTTPS only) nor the path layout
    for host in ("http://hub.localhost:8000", None):
        c = Config()
        configure(c, subdomain_host=host)
        assert "cookie_host_prefix_enabled" not in c.JupyterHub
        assert prefix not in c.JupyterHub.services[-1]["environment"]
    # an operator's own choice stands, and the service follows it
    c = Config()
    c.JupyterHub.cookie_host_prefix_enabled = False
    configure(c, subdomain_host="https://hub.example.edu")
    assert c.JupyterHub.cookie_host_prefix_enabled is False
    assert prefix not in c.JupyterHub.services[-1]["environment"]


def test_isolated_layout_routes_only_the_hubs_host_to_the_hub() -> None:
    c = Config()
    configure(c, subdomain_host="https://hub.example.edu")
    assert c.JupyterHub.hub_routespec == "hub.example.edu/"
    c = Config()
    configure(c)  # path-based: JupyterHub's default (every path of the one host)
    assert "hub_routespec" not in c.JupyterHub
    c = Config()
    c.JupyterHub.hub_routespec = "/"  # an operator's own choice stands
    configure(c, subdomain_host="https://hub.example.edu")
    assert c.JupyterHub.hub_routespec == "/"


def test_isolated_layout_needs_the_default_subdomain_hook() -> None:
    c = Config()
    c.JupyterHub.subdomain_hook = "legacy"
    with pytest.raises(ValueError, match="subdomain_hook='legacy'.*idna"):
        configure(c, subdomain_host="http://hub.localhost:8000")


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
    assert "dashboards_root" not in c.DashboardSettings
    assert "allowed_frameworks" not in c.DashboardSettings
    assert c.JupyterHub.template_vars == {
        "hub_viz_dashboards": [],
        "hub_viz_service_prefix": "services/hub-viz/",
        "hub_viz_service_origin": "",
    }


def test_optional_traits_are_set_when_given() -> None:
    c = Config()
    configure(c, allowed_frameworks=["voila", "dash"], run_as_hub_user=True)
    assert c.DashboardSettings.allowed_frameworks == ["voila", "dash"]
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
    configure(c, spawner=spawner, dashboards_root="/x", allowed_frameworks=["voila"], dashboards={})
    traits = set(cls.class_trait_names(config=True))
    assert cls.__name__ in c
    assert set(c[cls.__name__]) <= traits
    assert {"start_timeout", "http_timeout"} <= traits


# -- idle culling ---------------------------------------------------------------------------


def service_named(c: Config, name: str) -> dict:
    [service] = [s for s in c.JupyterHub.services if s["name"] == name]
    return service


def service_config(c: Config) -> dict:
    env = service_named(c, "hub-viz")["environment"]
    return json.loads(env["HUB_VIZ_SERVICE_CONFIG"])


def service_settings(c: Config) -> dict:
    """The service's own settings and the shared ones, as the service will read them."""
    config = service_config(c)
    return {**config["DashboardService"], **config["DashboardSettings"]}


def test_the_idle_culler_runs_as_a_service_with_exactly_its_scopes() -> None:
    c = Config()
    configure(c)
    culler = service_named(c, CULLER)
    assert culler["command"] == [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        "--timeout=1800",
        "--cull-every=300",
        "--remove-named-servers=False",
        "--cull-users=False",
    ]
    assert "url" not in culler and culler["display"] is False
    [role] = [r for r in c.JupyterHub.load_roles if CULLER in r.get("services", [])]
    assert role["name"] == CULLER
    assert role["scopes"] == ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    assert list(CULLER_SCOPES) == role["scopes"]
    # the dashboard service learns the timeout, to name stop reasons
    assert service_settings(c)["cull_timeout"] == 1800


def test_the_culler_command_parses_with_the_values_given() -> None:
    from jupyterhub_idle_culler import IdleCuller

    c = Config()
    configure(c, cull_timeout=20, cull_every=5)
    argv = service_named(c, CULLER)["command"][3:]
    # culler 2.x exits on a bare boolean flag: every option carries its value
    assert all(arg.startswith("--") and "=" in arg for arg in argv)
    culler = IdleCuller()
    culler.parse_command_line(argv)
    assert (culler.timeout, culler.cull_every) == (20, 5)
    assert culler.remove_named_servers is False  # a culled dashboard's server is kept
    assert culler.cull_users is False
    assert service_settings(c)["cull_timeout"] == 20


def test_without_culling_there_is_no_culler_and_no_timeout() -> None:
    c = Config()
    configure(c, cull_idle=False)
    assert [s["name"] for s in c.JupyterHub.services] == ["hub-viz"]
    assert not any(r["name"] == CULLER for r in c.JupyterHub.load_roles)
    assert service_settings(c)["cull_timeout"] == 0


def test_the_culler_does_not_need_the_dashboard_service() -> None:
    c = Config()
    configure(c, service=False)
    assert [s["name"] for s in c.JupyterHub.services] == [CULLER]


def test_configuring_twice_keeps_one_culler_with_the_last_settings() -> None:
    c = Config()
    configure(c)
    configure(c, cull_timeout=600, cull_every=60)
    assert [s["name"] for s in c.JupyterHub.services].count(CULLER) == 1
    assert [r["name"] for r in c.JupyterHub.load_roles].count(CULLER) == 1
    assert "--timeout=600" in service_named(c, CULLER)["command"]


@pytest.mark.parametrize(("timeout", "every"), [(0, 300), (1800, 0), (-5, 300)])
def test_culling_needs_positive_durations(timeout: int, every: int) -> None:
    with pytest.raises(ValueError, match=r"cull_timeout=.*cull_every=.*positive seconds"):
        configure(Config(), cull_timeout=timeout, cull_every=every)


# -- the proxy's own activity does not count -------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "hub_viz.hubproxy.DashboardProxy"),
        ("configurable-http-proxy", "hub_viz.hubproxy.DashboardProxy"),
        ("default", "hub_viz.hubproxy.DashboardProxy"),
        ("jupyterhub.proxy.ConfigurableHTTPProxy", "hub_viz.hubproxy.DashboardProxy"),
        (ConfigurableHTTPProxy, "hub_viz.hubproxy.DashboardProxy"),
        ("traefik_file", "traefik_file"),  # another proxy is the operator's choice
    ],
)
def test_proxy_class(before: object, after: str) -> None:
    c = Config()
    if before is not None:
        c.JupyterHub.proxy_class = before
    configure(c)
    assert c.JupyterHub.proxy_class == after


def test_dashboard_proxy_drops_activity_of_user_servers_only() -> None:
    routes = {
        "/user/alice/sales/": {
            "routespec": "/user/alice/sales/",
            "target": "http://x",
            "data": {
                "user": "alice",
                "server_name": "sales",
                "last_activity": "2024-03-01T12:00:00.000Z",
            },
        },
        "/services/hub-viz/": {
            "routespec": "/services/hub-viz/",
            "target": "http://y",
            "data": {"service": "hub-viz", "last_activity": "2024-03-01T12:00:00.000Z"},
        },
        "/": {"routespec": "/", "target": "http://hub", "data": {"hub": True}},
    }
    out = without_server_activity(copy.deepcopy(routes))
    assert out["/user/alice/sales/"]["data"] == {"user": "alice", "server_name": "sales"}
    assert out["/services/hub-viz/"] == routes["/services/hub-viz/"]
    assert out["/"] == routes["/"]


def test_dashboard_proxy_reads_the_configurable_http_proxy_options() -> None:
    c = Config()
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8123"
    c.ConfigurableHTTPProxy.should_start = False  # an external proxy, as on Kubernetes
    c.ConfigurableHTTPProxy.auth_token = "secret"
    proxy = DashboardProxy(config=c)
    assert isinstance(proxy, ConfigurableHTTPProxy)
    assert (proxy.api_url, proxy.should_start, proxy.auth_token) == (
        "http://127.0.0.1:8123",
        False,
        "secret",
    )


def test_the_service_gets_the_hubs_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    c = Config()
    configure(c)
    assert service_named(c, "hub-viz")["environment"]["TZ"] == "Europe/Berlin"
    monkeypatch.delenv("TZ")
    configure(c)
    assert "TZ" not in service_named(c, "hub-viz")["environment"]


def test_extra_service_config_is_merged_on_top() -> None:
    c = Config()
    configure(
        c, cull_timeout=20, extra_service_config={"reconcile_interval": 2, "cull_timeout": 25}
    )
    settings = service_settings(c)
    assert (settings["reconcile_interval"], settings["cull_timeout"]) == (2, 25)
    assert "check_files" in settings


def test_warm_pools_add_one_filtered_scope_and_refuse_the_pool_users_login() -> None:
    from hub_viz.service.hubapi import SERVICE_SCOPES

    def service_scopes(c: Config) -> list[str]:
        [role] = [r for r in c.JupyterHub.load_roles if "hub-viz" in r.get("services", [])]
        return role["scopes"]

    off = Config()
    configure(off)
    assert service_scopes(off) == list(SERVICE_SCOPES)
    assert "post_auth_hook" not in off.Authenticator
    assert service_settings(off)["warm_pool_ceiling"] == 0

    earlier = []
    on = Config()
    on.Authenticator.post_auth_hook = lambda a, h, auth: earlier.append(auth["name"]) or auth
    configure(on, warm_pool_ceiling=5, max_warm_kernels=20)
    assert service_scopes(on) == [*SERVICE_SCOPES, "admin:users!user=hub-viz-pool"]
    settings = service_settings(on)
    assert (
        settings["warm_pool_ceiling"],
        settings["warm_pool_user"],
        settings["max_warm_kernels"],
    ) == (5, "hub-viz-pool", 20)
    assert on.DashboardSettings.max_warm_kernels == 20
    hook = on.Authenticator.post_auth_hook

    class Authenticator:
        class log:
            @staticmethod
            def warning(*args: object) -> None:
                pass

    assert hook(Authenticator, None, {"name": "hub-viz-pool"}) is None
    assert hook(Authenticator, None, {"name": "alice"}) == {"name": "alice"}
    assert earlier == ["alice"]  # the operator's own hook still runs for everyone else


def test_activity_intervals_stay_well_below_the_cull_timeout() -> None:
    # defaults follow the timeout: a third of it when that is below a minute
    c = Config()
    configure(c, cull_timeout=30, cull_every=10)
    assert c.DashboardSettings.activity_interval == 10
    assert service_settings(c)["activity_interval"] == 10
    c = Config()
    configure(c)
    assert c.DashboardSettings.activity_interval == 60
    assert service_settings(c)["activity_interval"] == 60
    # what the operator sets is kept when it is well below, refused otherwise
    c = Config()
    configure(c, cull_timeout=600, activity_interval=120)
    assert c.DashboardSettings.activity_interval == 120
    with pytest.raises(
        ValueError,
        match=r"activity_interval=90 s is not well below "
        r"cull_timeout=120 s.*at most 40 s",
    ):
        configure(Config(), cull_timeout=120, activity_interval=90)
    c = Config()
    c.DashboardLocalSpawner.activity_interval = 60
    with pytest.raises(ValueError, match=r"c\.DashboardLocalSpawner\.activity_interval=60 s"):
        configure(c, cull_timeout=120)
    c = Config()
    c.DashboardSettings.activity_interval = 45
    with pytest.raises(ValueError, match=r"c\.DashboardSettings\.activity_interval=45 s"):
        configure(c, cull_timeout=120)
    # a shared setting in extra_service_config (deprecated) moves to DashboardSettings
    with (
        pytest.warns(DeprecationWarning, match="c.DashboardSettings.activity_interval"),
        pytest.raises(ValueError, match=r"c\.DashboardSettings\.activity_interval=50 s"),
    ):
        configure(Config(), cull_timeout=120, extra_service_config={"activity_interval": 50})
    with pytest.raises(ValueError, match="must be positive seconds"):
        configure(Config(), activity_interval=0)
    # without a culler there is nothing to stay below
    c = Config()
    configure(c, cull_idle=False, activity_interval=600)
    assert c.DashboardSettings.activity_interval == 600


def test_environment_settings_reach_the_builder_and_the_service() -> None:
    c = Config()
    configure(
        c,
        state_dir="/srv/hub",
        environments={"index_url": "https://mirror.example.org/simple", "build_timeout": 900},
    )
    assert c.EnvironmentBuilder.index_url == "https://mirror.example.org/simple"
    assert c.EnvironmentBuilder.root == "/srv/hub/environments"
    assert c.Spawner.start_timeout == 900 + 120
    [svc] = [s for s in c.JupyterHub.services if s["name"] == "hub-viz"]
    service = json.loads(svc["environment"]["HUB_VIZ_SERVICE_CONFIG"])
    assert service["DashboardService"]["environments"] == {
        "enabled": True,
        "root": "/srv/hub/environments",
        "allow_requirement_urls": False,
        "local": True,
        # for its builds at publish time
        "builder": {"index_url": "https://mirror.example.org/simple", "build_timeout": 900},
    }
    kube = Config()
    configure(kube, spawner="kube", service=False)
    assert kube.EnvironmentBuilder.enabled is False  # pods run in their image


def test_local_instances_take_turns_to_start_and_kubernetes_ones_do_not(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    local = Config()
    configure(local)
    assert service_settings(local)["max_starting"] == 4
    monkeypatch.setattr("os.cpu_count", lambda: None)  # unknown: the smallest machine's
    one = Config()
    configure(one)
    assert service_settings(one)["max_starting"] == 2
    kube = Config()
    configure(kube, spawner="kube", run_as_hub_user=True)
    assert "max_starting" not in service_settings(kube)  # the service's default: no limit
    mine = Config()
    configure(mine, extra_service_config={"max_starting": 0})  # the operator's choice stays
    assert service_settings(mine)["max_starting"] == 0

"""helm-values.yaml: valid for the Zero-to-JupyterHub chart, and the hub it configures.

No helm binary or cluster runs here. Helm merges a release's values over the
chart's defaults and validates the result against the chart's JSON schema; the
same is done with the chart's own files in ``tests/data/z2jh/chart`` (4.4.0). Then the
hub's configuration is built the way the chart's ``jupyterhub_config.py`` builds
it (the parts that matter here, read from the chart's source), including
running each ``hub.extraConfig`` snippet with ``exec``, and checked.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from jupyterhub.proxy import ConfigurableHTTPProxy
from traitlets.config import Config

from hub_viz.hubproxy import DashboardProxy

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "helm-values.yaml"
# The chart the project targets, carried in the repository (see its README)
Z2JH = REPO / "tests" / "data" / "z2jh" / "chart"

SERVICE_SCOPES = [
    "servers",
    "list:users",
    "shares",
    "read:users:name",
    "read:groups",
    "read:users:groups",
    "users:activity",
]
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
ACCESS = "access:services!service=hub-viz"


def load_yaml(path: Path) -> Any:
    assert path.exists(), f"{path} is missing from the repository"
    return yaml.safe_load(path.read_text())


def helm_merge(defaults: Any, overrides: Any) -> Any:
    """Helm's merge of values: dicts merge key by key, a null removes the key, lists replace."""
    if not (isinstance(defaults, dict) and isinstance(overrides, dict)):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(load_yaml(Z2JH / "values.schema.yaml"))
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    ]


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    return load_yaml(VALUES)


@pytest.fixture(scope="module")
def merged(ours: dict[str, Any]) -> dict[str, Any]:
    return helm_merge(load_yaml(Z2JH / "values.yaml"), ours)


def dig(values: dict[str, Any], key: str, default: Any = None) -> Any:
    """``z2jh.get_config``: a dotted key into the values, ``default`` where a level is missing."""
    value: Any = values
    for level in key.split("."):
        if not isinstance(value, dict) or level not in value:
            return default
        value = value[level]
    return value


# -- the chart's schema -------------------------------------------------------------


def test_the_chart_defaults_pass_the_chart_schema() -> None:
    assert schema_errors(load_yaml(Z2JH / "values.yaml")) == []


def test_helm_values_merged_over_the_defaults_pass_the_chart_schema(
    merged: dict[str, Any],
) -> None:
    assert schema_errors(merged) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hub.extraConfg", {"x.py": "pass"}),  # a typo of a real key
        ("hub.service.extraPort", []),
        ("singleuser.networkPolicy.egres", []),
        ("cull.enable", False),
        ("hubViz", {}),  # our settings belong under custom
    ],
)
def test_an_unknown_key_fails_the_schema(merged: dict[str, Any], key: str, value: Any) -> None:
    bad = copy.deepcopy(merged)
    *parents, last = key.split(".")
    node = bad
    for level in parents:
        node = node[level]
    node[last] = value
    errors = schema_errors(bad)
    assert errors and any("Additional properties are not allowed" in e for e in errors), errors


def test_a_value_of_the_wrong_type_fails_the_schema(merged: dict[str, Any]) -> None:
    bad = copy.deepcopy(merged)
    bad["hub"]["service"]["extraPorts"] = {"port": 10101}
    assert schema_errors(bad)


def test_helm_merge_follows_helm() -> None:
    defaults = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert helm_merge(defaults, {"a": {"c": [3]}, "d": None, "e": 2}) == {
        "a": {"b": 1, "c": [3]},
        "e": 2,
    }
    assert defaults == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


# -- what the values say to Kubernetes ------------------------------------------------


def test_the_chart_culler_is_off_and_named_servers_on(merged: dict[str, Any]) -> None:
    # The chart's culler passes bare boolean flags, which jupyterhub-idle-culler 2.x refuses.
    assert merged["cull"]["enabled"] is False
    assert merged["hub"]["allowNamedServers"] is True


def test_images_are_ours_and_pods_run_the_launcher(merged: dict[str, Any]) -> None:
    assert merged["hub"]["image"]["name"].endswith("/hub-viz/hub")
    assert merged["singleuser"]["image"]["name"].endswith("/hub-viz/dashboard")
    assert merged["singleuser"]["cmd"] == "hub-viz-launch"
    assert (merged["singleuser"]["uid"], merged["singleuser"]["fsGid"]) == (1000, 100)


def test_the_hub_database_stays_on_the_hub_volume(merged: dict[str, Any]) -> None:
    assert merged["hub"]["db"]["type"] == "sqlite-pvc"
    # unset: the chart upgrades an SQLite database at start, after backing it up
    assert merged["hub"]["db"].get("upgrade") is None
    assert merged["custom"]["hubViz"]["state_dir"] == "/srv/jupyterhub"


def _allows(rules: list[dict[str, Any]], port: int, selector: dict[str, str]) -> bool:
    """Does a NetworkPolicy rule list open ``port`` to/from pods labelled ``selector``?"""
    for rule in rules:
        peers = rule.get("from", rule.get("to", []))
        ports = [p.get("port") for p in rule.get("ports", [])]
        if port in ports and any(
            p.get("podSelector", {}).get("matchLabels") == selector for p in peers
        ):
            return True
    return False


def test_dashboard_pods_and_the_proxy_reach_the_service_port(merged: dict[str, Any]) -> None:
    port = merged["custom"]["hubViz"]["service_port"]
    hub = merged["hub"]
    assert {"name": "hub-viz", "port": port, "targetPort": port} in hub["service"]["extraPorts"]
    # singleuser pods and the proxy pod carry the chart's hub-access label
    access = {"hub.jupyter.org/network-access-hub": "true"}
    assert merged["singleuser"]["extraLabels"]["hub.jupyter.org/network-access-hub"] == "true"
    # the hub pod's own processes call the service (and the hub) through the hub Service
    assert hub["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert _allows(hub["networkPolicy"]["ingress"], port, access)
    # user pods may not reach private IPs by default; the proxy keeps its own rule too
    assert merged["singleuser"]["networkPolicy"]["egressAllowRules"]["privateIPs"] is False
    assert _allows(merged["singleuser"]["networkPolicy"]["egress"], port, {"component": "hub"})
    assert _allows(merged["proxy"]["chp"]["networkPolicy"]["egress"], port, {"component": "hub"})
    # the metadata server stays blocked by the policy, not by a privileged init container
    assert merged["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    assert merged["singleuser"]["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False


def test_dashboards_get_hosts_of_their_own_behind_a_wildcard_certificate(
    merged: dict[str, Any],
) -> None:
    host = urlsplit(merged["hub"]["config"]["JupyterHub"]["subdomain_host"])
    assert host.scheme == "https" and host.hostname == "dashboards.example.edu"
    # TLS at the ingress, for the hub's name and every name below it
    assert merged["proxy"]["https"]["enabled"] is False
    ingress = merged["ingress"]
    assert ingress["enabled"] is True
    names = {host.hostname, f"*.{host.hostname}"}
    assert set(ingress["hosts"]) == names
    (tls,) = ingress["tls"]
    assert set(tls["hosts"]) == names and tls["secretName"]


# -- the hub's configuration, built as the chart builds it ----------------------------


def chart_hub_config(values: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Config:
    """The hub's config as the chart's jupyterhub_config.py builds it from ``values``.

    Only the parts hub_viz meets are reproduced, in the chart's order: its
    spawner, proxy and hub addresses, hub.* and singleuser.* settings, its own
    culler when cull.enabled, hub.services and hub.loadRoles, singleuser.cmd,
    CryptKeeper keys from its Secret, hub.config, then every hub.extraConfig
    snippet sorted by key and run with exec, where ``get_config`` is z2jh's.
    """
    values = copy.deepcopy(values)

    def get_config(key: str, default: Any = None) -> Any:
        return copy.deepcopy(dig(values, key, default))

    z2jh = types.ModuleType("z2jh")
    z2jh.get_config = get_config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "z2jh", z2jh)

    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
    c.ConfigurableHTTPProxy.should_start = False
    c.JupyterHub.cleanup_servers = False
    if get_config("hub.db.type") == "sqlite-pvc":
        c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
    for trait, key in (
        ("concurrent_spawn_limit", "concurrentSpawnLimit"),
        ("base_url", "baseUrl"),
        ("allow_named_servers", "allowNamedServers"),
        ("named_server_limit_per_user", "namedServerLimitPerUser"),
        ("redirect_to_server", "redirectToServer"),
    ):
        if get_config("hub." + key) is not None:
            c.JupyterHub[trait] = get_config("hub." + key)
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = "http://hub:8081"
    for trait, key in (
        ("start_timeout", "startTimeout"),
        ("uid", "uid"),
        ("fs_gid", "fsGid"),
        ("mem_limit", "memory.limit"),
        ("mem_guarantee", "memory.guarantee"),
        ("cpu_limit", "cpu.limit"),
        ("cpu_guarantee", "cpu.guarantee"),
        ("extra_labels", "extraLabels"),
        ("profile_list", "profileList"),
    ):
        if get_config("singleuser." + key) is not None:
            c.KubeSpawner[trait] = get_config("singleuser." + key)
    image = get_config("singleuser.image")
    c.KubeSpawner.image = f"{image['name']}:{image['tag']}"
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    if get_config("cull.enabled"):
        c.JupyterHub.services.append(
            {
                "name": "jupyterhub-idle-culler",
                "command": [
                    "python3",
                    "-m",
                    "jupyterhub_idle_culler",
                    "--url=http://localhost:8081/hub/api",
                    f"--timeout={get_config('cull.timeout')}",
                    f"--cull-every={get_config('cull.every')}",
                ],
            }
        )
        c.JupyterHub.load_roles.append(
            {
                "name": "jupyterhub-idle-culler",
                "scopes": list(CULLER_SCOPES),
                "services": ["jupyterhub-idle-culler"],
            }
        )
    for key, service in get_config("hub.services", {}).items():
        c.JupyterHub.services.append({"name": key, **service})
    for key, role in get_config("hub.loadRoles", {}).items():
        c.JupyterHub.load_roles.append({"name": key, **role})
    c.Spawner.cmd = get_config("singleuser.cmd")
    # The chart generates these into its hub Secret when hub.config does not set them.
    c.CryptKeeper.keys = get_config("hub.config.CryptKeeper.keys") or [secrets.token_hex(32)]
    for section, settings in get_config("hub.config", {}).items():
        if section == "CryptKeeper":
            settings.pop("keys", None)
        c[section].update(settings)
    for key, snippet in sorted(get_config("hub.extraConfig", {}).items()):
        exec(compile(snippet, key, "exec"), {"c": c, "get_config": get_config})
    return c


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "srv-jupyterhub"


def with_state_dir(values: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    """The values with the service's state in a temporary folder instead of the hub volume."""
    values = copy.deepcopy(values)
    values["custom"]["hubViz"]["state_dir"] = str(state_dir)
    return values


@pytest.fixture
def hub(merged: dict[str, Any], state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv("TZ", raising=False)
    return chart_hub_config(with_state_dir(merged, state_dir), monkeypatch)


def services(c: Config) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in c.JupyterHub.services}


def settings_of(hub: Config) -> dict[str, Any]:
    """The service's settings, as configure() hands them over."""
    environment = services(hub)["hub-viz"]["environment"]
    return json.loads(environment["HUB_VIZ_SERVICE_CONFIG"])["DashboardService"]


def test_the_hub_spawns_dashboard_pods_that_run_the_launcher(hub: Config) -> None:
    assert hub.JupyterHub.spawner_class == "hub_viz.kubespawner.DashboardKubeSpawner"
    assert hub.DashboardKubeSpawner.cmd == ["hub-viz-launch"]
    assert hub.Spawner.cmd == "hub-viz-launch"  # the chart's own setting agrees
    assert hub.JupyterHub.allow_named_servers is True
    assert hub.JupyterHub.redirect_to_server is False


def test_the_service_is_reached_through_the_hubs_kubernetes_service(
    hub: Config,
    merged: dict[str, Any],
    state_dir: Path,
) -> None:
    assert set(services(hub)) == {"hub-viz", "hub-viz-culler"}
    service = services(hub)["hub-viz"]
    port = merged["custom"]["hubViz"]["service_port"]
    assert service["url"] == f"http://hub:{port}"
    assert urlsplit(service["url"]).port in [
        p["port"] for p in merged["hub"]["service"]["extraPorts"]
    ]
    assert hub.DashboardKubeSpawner.service_url == f"http://hub:{port}/services/hub-viz/"
    # the isolated layout: the route names the hub's host
    assert hub.Proxy.extra_routes == {"dashboards.example.edu/robots.txt": f"http://hub:{port}"}
    assert settings_of(hub)["subdomain_host"] == "https://dashboards.example.edu"
    # HTTPS: login cookies a dashboard on a sibling host cannot toss, hub and service
    assert hub.JupyterHub.cookie_host_prefix_enabled is True
    assert service["environment"]["JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"] == "1"
    passed = json.loads(service["environment"]["HUB_VIZ_SERVICE_CONFIG"])
    settings = {**passed["DashboardService"], **passed["DashboardSettings"]}
    assert settings["ip"] == "0.0.0.0"
    assert settings["db_url"] == f"sqlite:///{state_dir.resolve() / 'hub_viz.sqlite'}"
    assert Path(settings["signing_key_file"]).parent == state_dir.resolve()
    assert settings["check_files"] is False
    assert settings["cull_timeout"] == merged["custom"]["hubViz"]["cull_timeout"]
    assert settings["git_schemes"] == ["https"]
    # no host in proxy.https yet: proxy-public is configurable-http-proxy itself
    assert settings["proxy_url"] == "http://proxy-public"


def test_behind_letsencrypt_the_service_skips_traefiks_https_redirect(
    merged: dict[str, Any],
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = with_state_dir(merged, state_dir)
    values["proxy"]["https"].update(
        enabled=True, type="letsencrypt", hosts=["dashboards.example.edu"]
    )
    assert schema_errors(values) == []
    c = chart_hub_config(values, monkeypatch)
    settings = json.loads(services(c)["hub-viz"]["environment"]["HUB_VIZ_SERVICE_CONFIG"])
    assert settings["DashboardService"]["proxy_url"] == "http://proxy-http:8000"


def test_the_culler_is_hub_vizs_with_valued_boolean_flags(
    hub: Config,
    merged: dict[str, Any],
) -> None:
    from jupyterhub_idle_culler import IdleCuller

    culler = services(hub)["hub-viz-culler"]
    module_at = culler["command"].index("jupyterhub_idle_culler")
    argv = culler["command"][module_at + 1 :]
    assert all(re.fullmatch(r"--[a-z-]+=\S+", arg) for arg in argv), argv
    assert {"--remove-named-servers=False", "--cull-users=False"} <= set(argv)
    settings = merged["custom"]["hubViz"]
    assert {
        f"--timeout={settings['cull_timeout']}",
        f"--cull-every={settings['cull_every']}",
    } <= set(argv)
    parsed = IdleCuller()
    parsed.parse_command_line(argv)
    assert (parsed.timeout, parsed.cull_every) == (settings["cull_timeout"], settings["cull_every"])
    assert parsed.remove_named_servers is False and parsed.cull_users is False


def test_roles_hold_exactly_the_scopes_needed(hub: Config) -> None:
    roles = {r["name"]: r for r in hub.JupyterHub.load_roles}
    assert roles["hub-viz-service"]["scopes"] == SERVICE_SCOPES
    assert roles["hub-viz-service"]["services"] == ["hub-viz"]
    assert roles["hub-viz-culler"]["scopes"] == CULLER_SCOPES
    assert roles["hub-viz-culler"]["services"] == ["hub-viz-culler"]
    # users may use the service: JupyterHub 6 through extra_user_scopes, 5.x (the
    # chart's hub image) through the user role
    assert set(roles) <= {"hub-viz-service", "hub-viz-culler", "user"}
    if "user" in roles:
        assert roles["user"]["scopes"] == ["self", ACCESS]
    else:
        assert hub.JupyterHub.extra_user_scopes == {ACCESS}


def test_profiles_and_ceiling_reach_the_spawner_and_the_service(
    hub: Config,
    merged: dict[str, Any],
) -> None:
    settings = merged["custom"]["hubViz"]
    # one block both read: the spawner from the hub's config, the service from the hub
    assert hub.DashboardSettings.profiles == settings["profiles"]
    assert hub.DashboardSettings.resource_ceiling == settings["resource_ceiling"]
    service = json.loads(services(hub)["hub-viz"]["environment"]["HUB_VIZ_SERVICE_CONFIG"])
    assert service["DashboardSettings"]["profiles"] == settings["profiles"]
    assert service["DashboardSettings"]["resource_ceiling"] == settings["resource_ceiling"]
    assert "profiles" not in service["DashboardService"]


def test_the_proxy_class_keeps_the_charts_proxy_settings(hub: Config) -> None:
    assert hub.JupyterHub.proxy_class == "hub_viz.hubproxy.DashboardProxy"
    # (Proxy.extra_routes is validated against the running hub, so only the chart's
    # ConfigurableHTTPProxy section goes to this proxy)
    chp = Config({"ConfigurableHTTPProxy": hub.ConfigurableHTTPProxy})
    chp.ConfigurableHTTPProxy.auth_token = "from-the-chart-secret"
    proxy = DashboardProxy(config=chp)
    assert isinstance(proxy, ConfigurableHTTPProxy)
    assert (proxy.api_url, proxy.should_start) == ("http://proxy-api:8001", False)


def commented_lti_block() -> dict[str, Any]:
    """The LTI settings helm-values.yaml carries commented out, as an operator uncomments them."""
    lines = VALUES.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# lti:")
    indent = lines[start].index("#")
    block = [lines[start][indent + 2 :]]
    for line in lines[start + 1 :]:
        if not line.startswith(" " * indent + "#   "):
            break
        block.append(line[indent + 2 :])
    return yaml.safe_load("\n".join(block))["lti"]


def test_the_commented_lti_block_logs_in_from_canvas_with_the_charts_crypt_keys(
    merged: dict[str, Any],
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lti = commented_lti_block()
    assert lti["version"] == "1.3" and lti["issuer"] == "https://canvas.instructure.com"
    values = with_state_dir(merged, state_dir)
    values["custom"]["hubViz"]["lti"] = lti
    assert schema_errors(values) == []
    # No JUPYTERHUB_CRYPT_KEY: the chart's CryptKeeper keys keep the launch claims.
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    c = chart_hub_config(values, monkeypatch)
    assert c.JupyterHub.authenticator_class == "hub_viz.lti.HubVizLTI13Authenticator"
    section = c.HubVizLTI13Authenticator
    assert section.client_id == {lti["client_id"]}
    assert (section.issuer, section.jwks_endpoint, section.authorize_url) == (
        lti["issuer"],
        lti["jwks_url"],
        lti["authorize_url"],
    )
    # the hub asks the service in its own pod over loopback, whatever the network policy
    assert section.service_url == "http://127.0.0.1:10101/services/hub-viz/"
    assert c.Authenticator.enable_auth_state is True
    assert set(services(c)) == {"hub-viz", "hub-viz-culler"}


def commented_block(text: str, first: str) -> dict[str, Any]:
    """The YAML of a commented-out block of helm-values.yaml: the line ``first`` (e.g.
    ``# environments:``) and the commented lines indented below it, comment marks removed."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == first)
    mark = lines[start][: lines[start].index("#") + 2]
    block = [lines[start][len(mark) :]]
    for line in lines[start + 1 :]:
        if not line.startswith(mark + " "):
            break
        block.append(line[len(mark) :])
    return yaml.safe_load("\n".join(block))


def test_the_environments_block_turned_on_is_valid_and_mounts_the_shared_volume(
    merged: dict[str, Any], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALUES.read_text()
    environments = commented_block(text, "# environments:")["environments"]
    volumes = commented_block(text, "# extraVolumes:")
    volumes.update(commented_block(text, "# extraVolumeMounts:"))
    values = copy.deepcopy(merged)
    values["custom"]["hubViz"]["environments"] = environments
    values["hub"].update(volumes)
    assert schema_errors(values) == []
    (mount,) = values["hub"]["extraVolumeMounts"]
    (volume,) = values["hub"]["extraVolumes"]
    # the hub mounts the claim at the builder's root
    assert mount["mountPath"] == environments["root"] and mount["name"] == volume["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == environments["claim"]

    c = chart_hub_config(with_state_dir(values, state_dir), monkeypatch)
    assert c.DashboardKubeSpawner.environments_claim == environments["claim"]
    assert c.DashboardKubeSpawner.environments_mount_path == environments["mount_path"]
    assert c.EnvironmentBuilder.root == environments["root"]
    assert c.EnvironmentBuilder.index_url == environments["index_url"]
    assert c.Spawner.start_timeout >= environments["build_timeout"]  # a first start waits
    assert settings_of(c)["environments"]["enabled"] is True
    # without the block (the file as shipped) dashboards run in their image
    shipped = chart_hub_config(with_state_dir(merged, state_dir), monkeypatch)
    assert shipped.EnvironmentBuilder.enabled is False

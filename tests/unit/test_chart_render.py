"""The real Zero-to-JupyterHub chart (tests/data/z2jh, 4.4.0) rendered with
``helm-values.yaml`` by Helm's own engine (PyPI's ``helm-python-sdk``), every object
validated strictly, and the chart's ``jupyterhub_config.py`` loaded the way the hub
pod loads it: its ConfigMap and Secret as the files the pod mounts, the environment
its Deployment and the cluster's Services give it."""

from __future__ import annotations

import base64
import sys
import types
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

from hub_viz.config import CULLER, CULLER_SCOPES
from hub_viz.service.hubapi import SERVICE_SCOPES

helm_python = pytest.importorskip("helm_python")

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "tests" / "data" / "z2jh" / "chart"
VALUES = REPO / "helm-values.yaml"
ETC = "/usr/local/etc/jupyterhub"
K8S_VERSION = kubernetes_validate.latest_version()


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders from ``values`` (its defaults merged under them)."""
    chart = helm_python.Chart.load(str(CHART))
    rendered = chart.render(
        values, name="hub-viz", namespace="hub-viz", revision=1, is_install=True
    )
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def objects(values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(values)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_license_of_the_chart_is_kept_beside_it() -> None:
    assert "BSD 3-Clause" in (CHART.parent / "LICENSE").read_text()
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["version"] == "4.4.0"


def test_every_rendered_object_is_valid_for_kubernetes(objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "NetworkPolicy", "Secret", "ConfigMap", "Ingress"} <= kinds
    for o in objects:
        assert K8S_VERSION.startswith(kubernetes_validate.validate(o, K8S_VERSION, strict=True)), o[
            "metadata"
        ]["name"]


def test_strict_validation_catches_a_misspelt_field(objects: list[dict[str, Any]]) -> None:
    hub = find(objects, "Deployment", "hub")
    bad = {**hub, "spec": {**hub["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_the_service_port_is_open_on_the_hub_service_and_its_policies(
    objects: list[dict[str, Any]],
    values: dict[str, Any],
) -> None:
    port = values["custom"]["hubViz"]["service_port"]
    service = find(objects, "Service", "hub")
    assert {"port": port, "targetPort": port} in [
        {k: p.get(k) for k in ("port", "targetPort")} for p in service["spec"]["ports"]
    ]
    # the hub pod admits dashboard pods and the proxy on it
    ingress = find(objects, "NetworkPolicy", "hub")["spec"]["ingress"]
    assert any(
        port in [p.get("port") for p in rule.get("ports", [])]
        and {"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}
        in rule.get("from", [])
        for rule in ingress
    )
    # dashboard pods and the proxy may send to it
    for name in ("singleuser", "proxy"):
        egress = find(objects, "NetworkPolicy", name)["spec"]["egress"]
        assert any(
            port in [p.get("port") for p in rule.get("ports", [])]
            and any(
                t.get("podSelector", {}).get("matchLabels", {}).get("component") == "hub"
                for t in rule.get("to", [])
            )
            for rule in egress
        ), name
    # the hub pod carries the label that lets the services beside the hub call its API
    labels = find(objects, "Deployment", "hub")["spec"]["template"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true"


# -- the hub pod's jupyterhub_config.py ------------------------------------------------


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return data | dict(secret.get("stringData") or {})


def mount_files(objects: list[dict[str, Any]], root: Path) -> dict[str, str]:
    """The hub container's ConfigMap and Secret mounts as files under ``root`` (the
    pod's paths, with ``/usr/local/etc/jupyterhub`` at ``root/etc``); its environment."""
    pod = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "hub"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    sources = {}
    for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
        for v in volumes.values():
            if key in v:
                name = v[key].get("name") or v[key].get("secretName")
                obj = find(objects, kind, name)
                sources[v["name"]] = obj["data"] if kind == "ConfigMap" else secret_data(obj)

    def local(path: str) -> Path:
        assert path.startswith((ETC, "/srv/jupyterhub")), path
        return root / ("etc" + path[len(ETC) :] if path.startswith(ETC) else path.lstrip("/"))

    for mount in container["volumeMounts"]:
        target = local(mount["mountPath"])
        files = sources.get(mount["name"])
        if files is None:  # the hub's database volume: an empty folder
            target.mkdir(parents=True, exist_ok=True)
        elif "subPath" in mount:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[mount["subPath"]].replace(ETC, str(root / "etc")))
        else:
            target.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (target / name).write_text(text)
    env = {"POD_NAMESPACE": "hub-viz"}
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            env[item["name"]] = secret_data(find(objects, "Secret", ref["name"]))[ref["key"]]
        elif "value" in item:
            env[item["name"]] = item["value"]
    # what Kubernetes tells every pod about the namespace's Services
    for i, service in enumerate(o for o in objects if o["kind"] == "Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = f"10.0.0.{i + 1}"
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    return env


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def load_hub_config(
    objects: list[dict[str, Any]], root: Path, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """The hub's configuration as ``jupyterhub --config .../jupyterhub_config.py`` in the
    hub pod loads it (its working directory the hub volume)."""
    env = mount_files(objects, root)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TZ", raising=False)
    # the hub image has pycurl (the file picks tornado's curl client; nothing here
    # makes a request): a stand-in whose every name is a placeholder class
    pycurl = types.ModuleType("pycurl")
    pycurl.__getattr__ = lambda name: type(name, (), {})  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "pycurl", pycurl)
    monkeypatch.delitem(sys.modules, "tornado.curl_httpclient", raising=False)
    monkeypatch.delitem(sys.modules, "z2jh", raising=False)
    monkeypatch.syspath_prepend(str(root / "etc"))
    state = root / "srv" / "jupyterhub"
    monkeypatch.chdir(state)
    from tornado.httpclient import AsyncHTTPClient

    volume = Path("/srv/jupyterhub")  # custom.hubViz.state_dir, as the values name it
    before = (tree(root), volume.exists() and tree(volume))
    try:
        loader = PyFileConfigLoader("jupyterhub_config.py", path=str(root / "etc"))
        config = loader.load_config()
    finally:  # nothing of the stand-in stays for later tests (nor JupyterHub's curl check)
        AsyncHTTPClient.configure(None)
        sys.modules.pop("tornado.curl_httpclient", None)
    assert (tree(root), volume.exists() and tree(volume)) == before, (
        "loading the hub's config wrote files"
    )
    return config


@pytest.fixture
def hub(objects: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    return load_hub_config(objects, tmp_path, monkeypatch)


def services(c: Config) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in c.JupyterHub.services}


def roles(c: Config) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in c.JupyterHub.load_roles}


def test_the_hub_runs_dashboards_and_the_service(hub: Config, values: dict[str, Any]) -> None:
    settings = values["custom"]["hubViz"]
    assert hub.JupyterHub.spawner_class == "hub_viz.kubespawner.DashboardKubeSpawner"
    assert hub.DashboardKubeSpawner.cmd == ["hub-viz-launch"]  # over the chart's Spawner.cmd
    assert hub.JupyterHub.proxy_class == "hub_viz.hubproxy.DashboardProxy"
    assert hub.JupyterHub.allow_named_servers is True
    service = services(hub)["hub-viz"]
    assert service["url"] == f"http://hub:{settings['service_port']}"
    assert service["command"][1:] == ["-m", "hub_viz.service"]
    assert hub.DashboardKubeSpawner.service_url == (
        f"http://hub:{settings['service_port']}/services/hub-viz/"
    )
    assert hub.DashboardSettings.profiles == settings["profiles"]
    assert hub.DashboardSettings.check_files is False
    # the chart's own culler is off; hub_viz's runs with values after every boolean flag
    assert "jupyterhub-idle-culler" not in services(hub)
    assert services(hub)[CULLER]["command"][1:] == [
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={settings['cull_timeout']}",
        f"--cull-every={settings['cull_every']}",
        "--remove-named-servers=False",
        "--cull-users=False",
    ]


def test_the_services_roles_are_exactly_their_scopes(hub: Config) -> None:
    by_name = roles(hub)
    assert by_name["hub-viz-service"]["scopes"] == list(SERVICE_SCOPES)
    assert by_name["hub-viz-service"]["services"] == ["hub-viz"]
    assert by_name[CULLER]["scopes"] == list(CULLER_SCOPES)
    assert hub.JupyterHub.extra_user_scopes == {"access:services!service=hub-viz"}


def test_the_chart_culler_passes_no_bare_boolean_flag_unless_it_culls_users(
    values: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What docs/operate/kubernetes.md says of the chart's own culler (hub_viz keeps it off)."""

    def culler(cull: dict[str, Any], where: Path) -> list[str]:
        objects = render({**values, "cull": {**values["cull"], **cull}})
        with monkeypatch.context() as m:
            hub = load_hub_config(objects, where, m)
        return services(hub)["jupyterhub-idle-culler"]["command"]

    defaults = culler({"enabled": True}, tmp_path / "a")
    flags = [a for a in defaults if a.startswith("--")]
    assert flags and all("=" in a for a in flags), flags
    assert "--cull-users" in culler({"enabled": True, "users": True}, tmp_path / "b")
    assert "--remove-named-servers" in culler(
        {"enabled": True, "removeNamedServers": True}, tmp_path / "c"
    )

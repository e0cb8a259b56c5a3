"""Dashboard environments on Kubernetes, with a real hub against the API test double.

The environments live on a shared volume (a PVC of the double, which the hub
mounts at ``EnvironmentBuilder.root``, here the PVC's host folder). A build pod
per dashboard source builds from a local wheel folder; instance pods mount only
their environment, read-only, and never build. Two dashboards whose
requirements resolve to the same lock share one environment; a restart makes no
build pod; a broken requirement fails with the resolver's message to the author
and a plain message to viewers.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import kubernetes_validate
import pytest

from ..conftest import start_hub, stop_hub
from ..wheels import version_package
from .test_kube_hub import fetch, kube_config

pytestmark = pytest.mark.hub

OWNER, VIEWER = "k8s-envprof", "k8s-envstudent"
CLAIM = "hub-viz-environments"
MOUNT = "/opt/hub-viz-envs"
DASH_APP = """
import dash
import hvtoy
from dash import html

app = dash.Dash(__name__)
server = app.server
app.layout = html.Div([html.P(f"{hvtoy.greet()} in a pod", id="version")])
"""
DASHBOARDS = {  # slug: requirements.txt
    "k8s-env-a": "hvtoy==2.0\n",
    "k8s-env-b": "hvtoy>=1.5  # resolves to the same lock as k8s-env-a\n",
    "k8s-env-bad": "hvtoy==9.9\n",
}


def pvc(double, name: str, mode: str) -> None:
    r = double.request(
        "POST",
        double.path("persistentvolumeclaims"),
        json={
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    assert r.status_code in (201, 409), r.text


@pytest.fixture(scope="module")
def env_hub(tmp_path_factory, k8s_double):
    pvc(k8s_double, CLAIM, "ReadWriteMany")
    pvc(k8s_double, "claim-" + OWNER, "ReadWriteOnce")
    source = k8s_double.pvc_dir("claim-" + OWNER)
    for slug, requirements in DASHBOARDS.items():
        (source / slug).mkdir(exist_ok=True)
        (source / slug / "app.py").write_text(DASH_APP)
        (source / slug / "requirements.txt").write_text(requirements)
    state = tmp_path_factory.mktemp("kube-env-hub")
    version_package(state / "wheels", "hvtoy", ("1.0", "2.0"))
    root = k8s_double.pvc_dir(CLAIM)  # the hub's mount of the shared volume
    hub = start_hub(
        state,
        extra_config=kube_config(k8s_double)
        + 'c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n',
        publish=[
            {
                "owner": OWNER,
                "slug": slug,
                "title": slug,
                "entry": f"{slug}/app.py",
                "framework": "dash",
                "visibility": "users",
                "share_users": [VIEWER],
            }
            for slug in DASHBOARDS
        ],
        configure_kwargs={
            "spawner": "kube",
            "service_host": "127.0.0.1",
            "environments": {
                "claim": CLAIM,
                "mount_path": MOUNT,
                "root": str(root),
                "no_index": True,
                "find_links": [str(state / "wheels")],
                "build_timeout": 120,
            },
        },
        env={"KUBECONFIG": str(k8s_double.kubeconfig)},
        isolated=True,
    )
    for name in (OWNER, VIEWER):
        hub.ensure_user(name)
    hub.root_dir = root
    yield hub
    for name in (OWNER, VIEWER):
        for server in hub.api("GET", f"/users/{name}").json().get("servers", {}):
            hub.stop(name, server)
    stop_hub(hub)
    shutil.rmtree(root, ignore_errors=True)


def build_pods(double) -> list[dict]:
    return [m for m in double.manifests() if m["metadata"]["name"].startswith("hub-viz-env-")]


def instance_manifest(double, slug: str) -> dict:
    pods = double.pods(f"hub-viz/owner={OWNER},hub-viz/dashboard={slug}")
    assert len(pods) == 1, pods
    name = pods[0]["metadata"]["name"]
    # the latest body of that name (a restarted instance's pod has the same name)
    manifest = [m for m in double.manifests() if m["metadata"]["name"] == name][-1]
    return manifest


def open_events(hub, slug: str, user: str) -> list[dict]:
    """Open as ``user`` and follow the start's progress to its end."""
    r = hub.svc("POST", f"dashboards/{OWNER}/{slug}/open", user)
    assert r.status_code in (200, 502), r.text
    if r.status_code == 502 or r.json()["status"] == "ready":
        return [{"message": r.json().get("message", ""), "failed": r.status_code == 502}]
    stream = hub.svc("GET", f"dashboards/{OWNER}/{slug}/progress", user, stream=True)
    assert stream.status_code == 200, stream.text
    return [
        json.loads(line[5:])
        for line in stream.iter_lines(decode_unicode=True)
        if line and line.startswith("data:")
    ]


def layout_text(hub, slug: str, user: str) -> str:
    body = hub.open_ready(OWNER, slug, user)
    page = fetch(hub, user, body["url"])
    assert page.status_code == 200, page.text[:300]
    r = hub.login(user).get(page.url.split("?", 1)[0] + "_dash-layout", timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.text


def environment(hub, slug: str) -> dict:
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/logs", OWNER)
    assert r.status_code == 200, r.text
    return r.json()["environment"]


def test_built_once_by_a_build_pod_mounted_read_only_and_shared(env_hub, k8s_double):
    hub = env_hub
    with pytest.raises(ImportError):
        __import__("hvtoy")  # not in the hub's (nor the "image's") environment
    events = open_events(hub, "k8s-env-a", VIEWER)
    text = "\n".join(e.get("message", "") for e in events)
    assert "Preparing this dashboard's environment…" in text, text
    assert events[-1].get("ready"), events
    assert "hello from hvtoy 2.0 in a pod" in layout_text(hub, "k8s-env-a", VIEWER)

    (build,) = build_pods(k8s_double)
    version = kubernetes_validate.latest_version()
    assert kubernetes_validate.validate(build, version, strict=True)
    assert build["spec"]["activeDeadlineSeconds"] == 120
    assert build["spec"]["automountServiceAccountToken"] is False
    assert not k8s_double.pod(build["metadata"]["name"]), "the finished build pod is removed"

    manifest = instance_manifest(k8s_double, "k8s-env-a")
    assert kubernetes_validate.validate(manifest, version, strict=True)
    env = environment(hub, "k8s-env-a")
    assert env["state"] == "ready" and env["built_now"] is True, env
    key = env["env"]
    assert manifest["metadata"]["labels"]["hub-viz/env"] == key
    volume = next(v for v in manifest["spec"]["volumes"] if v["name"] == "hub-viz-envs")
    assert volume["persistentVolumeClaim"] == {"claimName": CLAIM, "readOnly": True}
    (container,) = manifest["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "hub-viz-envs"]
    assert mount == {
        "name": "hub-viz-envs",
        "mountPath": f"{MOUNT}/envs/{key}",
        "subPath": f"envs/{key}",
        "readOnly": True,
    }
    assert f"--python={MOUNT}/envs/{key}/bin/python" in container["args"]

    # old environments go after a build, unless a pod runs in one
    envs = hub.root_dir / "envs"
    unused = envs / ("0" * 32)
    unused.mkdir()
    month_ago = time.time() - 30 * 86400
    for path in (unused, envs / key / ".hub-viz-last-used"):
        os.utime(path, (month_ago, month_ago))

    # another dashboard whose requirements resolve to the same lock: its build pod only
    # resolves, the environment is not built again, and its instance mounts the same one
    assert "hello from hvtoy 2.0 in a pod" in layout_text(hub, "k8s-env-b", OWNER)
    assert not unused.exists() and (envs / key / ".hub-viz-complete").exists()
    second = environment(hub, "k8s-env-b")
    assert second["env"] == key and second["built_now"] is False, second
    assert any("same lock, built before" in line for line in second["log"]), second["log"]
    assert [p.name for p in (hub.root_dir / "envs").iterdir() if p.is_dir()] == [key]
    assert instance_manifest(k8s_double, "k8s-env-b")["metadata"]["labels"]["hub-viz/env"] == key

    # a restart reads the build's result: no build pod, the same environment
    builds = len(build_pods(k8s_double))
    for user in (OWNER, VIEWER):
        for server in hub.api("GET", f"/users/{user}").json().get("servers", {}):
            if server == "k8s-env-a":
                hub.stop(user, server)
    assert not k8s_double.pods("hub-viz/dashboard=k8s-env-a")
    assert "hello from hvtoy 2.0 in a pod" in layout_text(hub, "k8s-env-a", VIEWER)
    assert len(build_pods(k8s_double)) == builds
    assert instance_manifest(k8s_double, "k8s-env-a")["metadata"]["labels"]["hub-viz/env"] == key


def test_a_broken_requirement_fails_with_the_resolvers_message_to_the_author(env_hub, k8s_double):
    hub = env_hub
    events = open_events(hub, "k8s-env-bad", VIEWER)
    assert events[-1].get("failed"), events
    viewer_text = " ".join(e.get("message", "") for e in events)
    assert "could not start" in viewer_text, viewer_text
    assert "No solution found" not in viewer_text and "9.9" not in viewer_text

    events = open_events(hub, "k8s-env-bad", OWNER)
    assert events[-1].get("failed"), events
    assert "No solution found" in events[-1]["message"], events
    build = environment(hub, "k8s-env-bad")
    assert build["state"] == "failed" and "hvtoy==9.9" in build["message"], build
    # each start tried anew (the author may fix the file): two build pods, none left
    bad = [
        p
        for p in build_pods(k8s_double)
        if p["metadata"]["annotations"]["hub-viz/dashboard"] == f"{OWNER}/k8s-env-bad"
    ]
    assert len(bad) == 2 and not k8s_double.pod(bad[0]["metadata"]["name"])
    assert not k8s_double.pods("hub-viz/dashboard=k8s-env-bad")

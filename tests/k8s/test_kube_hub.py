"""A real JupyterHub with DashboardKubeSpawner, against the Kubernetes API test double.

The hub, proxy, service and apps are real; only the cluster is the double
(:mod:`tests.k8s_double`), which runs each pod's command as a local process
on its own loopback address. Dashboards are opened through the service and
fetched through the proxy; stopping deletes the pods; a restarted hub finds
its running pods again; a spec beyond the operator's ceiling never reaches
the cluster.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import requests

from ..conftest import EXAMPLES as EXAMPLES_DIR
from ..conftest import start_hub, stop_hub
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

OWNER, STUDENTS = "k8s-prof", ("k8s-ann", "k8s-bob")
VOILA, DASH = "k8s-voila", "k8s-dash"
PROFILE = {
    "display_name": "Small",
    "cpu_request": 0.1,
    "cpu_limit": 1,
    "mem_request": "128M",
    "mem_limit": "1G",
}
PUBLISH = [
    {
        "owner": OWNER,
        "slug": VOILA,
        "title": "Squares (Voilà on Kubernetes)",
        "visibility": "all",
        "profile": "small",
        **EXAMPLES["voila-example"][0],
    },
    {
        "owner": OWNER,
        "slug": DASH,
        "title": "Squares (Dash per viewer)",
        "visibility": "all",
        "mode": "per-viewer",
        **EXAMPLES["dash-example"][0],
    },
]


def kube_config(double: Any) -> str:
    return f"""
c.KubeSpawner.namespace = {double.namespace!r}
c.KubeSpawner.image = "registry.example.edu/hub-viz/dashboard:test"
c.KubeSpawner.start_timeout = 120
c.DashboardKubeSpawner.app_ready_timeout = 60
c.DashboardSettings.activity_interval = 2
# a restarted hub must find the pods still running
c.JupyterHub.cleanup_servers = False
"""


def launch_hub(state: Path, double: Any, port: int | None = None, token: str | None = None):
    return start_hub(
        state,
        extra_config=kube_config(double),
        publish=PUBLISH,
        port=port,
        token=token,
        configure_kwargs={
            "spawner": "kube",
            "service_host": "127.0.0.1",  # no 'hub' Service name to resolve here
            "profiles": {"small": PROFILE},
            "resource_ceiling": {"cpu": 2, "memory": "2G"},
        },
        env={"KUBECONFIG": str(double.kubeconfig)},
        isolated=True,
    )


@pytest.fixture(scope="module")
def kube_hub(tmp_path_factory, k8s_double):
    # the owner's storage (their home PVC, as the chart makes it) holds the sources
    r = k8s_double.request(
        "POST",
        k8s_double.path("persistentvolumeclaims"),
        json={
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "claim-" + OWNER},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert r.status_code in (201, 409), r.text
    shutil.copytree(EXAMPLES_DIR, k8s_double.pvc_dir("claim-" + OWNER), dirs_exist_ok=True)
    state = tmp_path_factory.mktemp("kube-hub")
    hub = launch_hub(state, k8s_double)
    for name in (OWNER, *STUDENTS):
        hub.ensure_user(name)
    hub.state = state
    yield hub
    for name in (OWNER, *STUDENTS):
        for server in hub.api("GET", f"/users/{name}").json().get("servers", {}):
            hub.stop(name, server)
    stop_hub(hub)


def open_dashboard(hub: Any, owner: str, slug: str, user: str) -> str:
    """Open through the service as ``user``; the enter link once the instance is ready."""
    r = hub.svc("POST", f"dashboards/{owner}/{slug}/open", user)
    assert r.status_code == 200, r.text
    body = r.json()
    deadline = time.monotonic() + 150
    while body["status"] != "ready":
        assert time.monotonic() < deadline, body
        assert body["status"] == "pending", body
        time.sleep(0.5)
        body = hub.svc("POST", f"dashboards/{owner}/{slug}/open", user).json()
    return body["url"]


def fetch(hub: Any, user: str, url: str) -> requests.Response:
    return hub.login(user).get(hub.public(url), timeout=60)


def pod_of(double: Any, selector: str) -> dict:
    pods = double.pods(selector)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_shared_voila_dashboard_runs_in_a_pod_and_renders_through_the_proxy(kube_hub, k8s_double):
    url = open_dashboard(kube_hub, OWNER, VOILA, STUDENTS[0])
    page = fetch(kube_hub, STUDENTS[0], url)
    assert page.status_code == 200, page.text[:500]
    assert page.url == kube_hub.server_url(OWNER, VOILA)  # on the dashboard's own host
    assert EXAMPLES["voila-example"][1] in page.text
    assert "range(1, 101)" not in page.text  # sources stay stripped in a pod too

    pod = pod_of(k8s_double, f"hub-viz/owner={OWNER},hub-viz/dashboard={VOILA}")
    assert pod["metadata"]["labels"]["hub-viz/mode"] == "shared"
    assert pod["metadata"]["labels"]["hub-viz/framework"] == "voila"
    assert pod["status"]["phase"] == "Running"
    # the pod the hub created is what the spawner's manifest tests validate
    (manifest,) = [
        m for m in k8s_double.manifests() if m["metadata"]["name"] == pod["metadata"]["name"]
    ]
    assert kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    container = manifest["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": 1, "memory": 10**9}  # the profile
    assert manifest["spec"]["automountServiceAccountToken"] is False
    assert all(
        "persistentVolumeClaim" not in v or v["persistentVolumeClaim"]["readOnly"]
        for v in manifest["spec"]["volumes"]
    )

    # a second viewer shares the same pod
    assert fetch(kube_hub, STUDENTS[1], open_dashboard(kube_hub, OWNER, VOILA, STUDENTS[1])).ok
    assert len(k8s_double.pods(f"hub-viz/dashboard={VOILA}")) == 1


def test_progress_speaks_the_students_language(kube_hub, k8s_double):
    """While the pod starts, viewers read what happens in plain words, not Kubernetes events."""
    kube_hub.svc("POST", f"dashboards/{OWNER}/{VOILA}/stop", OWNER)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        opening = pool.submit(kube_hub.svc, "POST", f"dashboards/{OWNER}/{VOILA}/open", STUDENTS[0])
        deadline = time.monotonic() + 30
        while (
            kube_hub.api("GET", f"/users/{OWNER}").json()["servers"].get(VOILA, {}).get("pending")
            != "spawn"
        ):
            assert time.monotonic() < deadline, "the spawn did not begin"
            time.sleep(0.05)
        stream = kube_hub.svc(
            "GET", f"dashboards/{OWNER}/{VOILA}/progress", STUDENTS[0], stream=True
        )
        events = [
            json.loads(line[5:])
            for line in stream.iter_lines(decode_unicode=True)
            if line.startswith("data:")
        ]
        assert opening.result().status_code == 200
    text = "\n".join(e.get("message", "") for e in events)
    assert events[-1].get("ready") is True, events
    assert "Running notebook…" in text, text
    assert "A machine was found for the dashboard." in text, text
    assert "[Normal]" not in text and "Successfully assigned" not in text, text


def test_per_viewer_dash_gets_one_pod_per_student(kube_hub, k8s_double):
    urls = {s: open_dashboard(kube_hub, OWNER, DASH, s) for s in STUDENTS}
    for student, url in urls.items():
        assert urlsplit(url).path.startswith(f"/user/{student}/"), url
        assert urlsplit(url).hostname not in {
            urlsplit(u).hostname for u in urls.values() if u != url
        }  # one host per instance
        page = fetch(kube_hub, student, url)
        assert page.status_code == 200 and '<script id="_dash-config"' in page.text
        layout = kube_hub.login(student).get(page.url + "_dash-layout", timeout=60)
        assert EXAMPLES["dash-example"][1] in layout.text
    pods = k8s_double.pods(f"hub-viz/owner={OWNER},hub-viz/dashboard={DASH}")
    assert sorted(p["metadata"]["annotations"]["hub.jupyter.org/username"] for p in pods) == sorted(
        STUDENTS
    )
    for pod in pods:
        assert pod["metadata"]["labels"]["hub-viz/mode"] == "per-viewer"
        volumes = {v["name"] for v in pod["spec"]["volumes"]}
        assert volumes == {"dashboard-source", "viewer-scratch"}  # no PVC of its own
    # a student who goes to another's instance is sent to the open page for their own
    other = fetch(kube_hub, STUDENTS[1], urls[STUDENTS[0]].split("_hub_viz")[0])
    assert other.url == kube_hub.open_location(OWNER, DASH), other.url
    assert "_dash-config" not in other.text


def test_stopping_deletes_the_pods(kube_hub, k8s_double):
    selector = f"hub-viz/owner={OWNER},hub-viz/dashboard={DASH}"
    assert k8s_double.pods(selector), "the per-viewer pods run"
    for student in STUDENTS:
        servers = kube_hub.api("GET", f"/users/{student}").json()["servers"]
        for server in servers:
            kube_hub.stop(student, server)
    deadline = time.monotonic() + 30
    while k8s_double.pods(selector):
        assert time.monotonic() < deadline, k8s_double.pods(selector)
        time.sleep(0.2)


def test_a_restarted_hub_finds_its_running_pods(kube_hub, k8s_double):
    url = open_dashboard(kube_hub, OWNER, VOILA, STUDENTS[0])
    before = pod_of(k8s_double, f"hub-viz/dashboard={VOILA}")["metadata"]["uid"]
    stop_hub(kube_hub)
    hub = launch_hub(
        kube_hub.state, k8s_double, port=int(kube_hub.url.rsplit(":", 1)[1]), token=kube_hub.token
    )
    kube_hub.proc = hub.proc
    kube_hub.sessions.clear()
    kube_hub.tokens.clear()
    model = kube_hub.api("GET", f"/users/{OWNER}").json()["servers"][VOILA]
    assert model["ready"] is True
    assert pod_of(k8s_double, f"hub-viz/dashboard={VOILA}")["metadata"]["uid"] == before
    page = fetch(kube_hub, STUDENTS[0], open_dashboard(kube_hub, OWNER, VOILA, STUDENTS[0]))
    assert page.status_code == 200 and EXAMPLES["voila-example"][1] in page.text, (
        page.url,
        [(h.status_code, h.url, h.headers.get("Location")) for h in page.history],
    )
    assert url


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"resources": {"memory": "8G"}},
            "This dashboard asks for 8G of memory; this hub allows at most 2G per dashboard.",
        ),
        ({"profile": "gpu"}, "Unknown profile 'gpu'; known profiles: small."),
    ],
)
def test_a_spec_beyond_the_ceiling_never_reaches_the_cluster(
    kube_hub, k8s_double, options, message
):
    created = len(k8s_double.manifests())
    spec = {**EXAMPLES["dash-example"][0], **options}
    r = kube_hub.start(OWNER, "too-big", spec)
    if r.status_code == 202:  # the hub reports the refusal once the spawn ends
        kube_hub.wait(OWNER, "too-big", timeout=60)
        shown = kube_hub.spawn_message(OWNER, "too-big")
    else:
        shown = r.json()["message"]
    assert message in shown, shown
    assert len(k8s_double.manifests()) == created
    assert not k8s_double.pods("hub.jupyter.org/servername=too-big")


def test_an_owner_without_storage_gets_a_readable_refusal_and_no_pod(kube_hub, k8s_double):
    created = len(k8s_double.manifests())
    stranger = "k8s-newcomer"
    r = kube_hub.start(stranger, "first", EXAMPLES["dash-example"][0])
    if r.status_code == 202:
        kube_hub.wait(stranger, "first", timeout=60)
        shown = kube_hub.spawn_message(stranger, "first")
    else:
        shown = r.json()["message"]
    assert "owner's files are not available yet" in shown, shown
    assert len(k8s_double.manifests()) == created


def test_k8s_manifest_prints_the_pod_the_hub_creates(kube_hub, k8s_double):
    """`hub-viz k8s-manifest` beside the hub shows what the spawner sends the cluster."""
    # a pod made with this hub's config (a restarted test hub has new ports)
    kube_hub.svc("POST", f"dashboards/{OWNER}/{VOILA}/stop", OWNER)
    deadline = time.monotonic() + 30
    while k8s_double.pods(f"hub-viz/owner={OWNER},hub-viz/dashboard={VOILA}"):
        assert time.monotonic() < deadline, "the pod was not deleted"
        time.sleep(0.2)
    open_dashboard(kube_hub, OWNER, VOILA, STUDENTS[0])
    pod = pod_of(k8s_double, f"hub-viz/owner={OWNER},hub-viz/dashboard={VOILA}")
    (created,) = [
        m for m in k8s_double.manifests() if m["metadata"]["name"] == pod["metadata"]["name"]
    ][-1:]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub_viz.cli",
            "k8s-manifest",
            f"{OWNER}/{VOILA}",
            "--json",
            "--config",
            str(kube_hub.state / "jupyterhub_config.py"),
        ],
        cwd=kube_hub.state,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(k8s_double.kubeconfig)},
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)

    def comparable(manifest: dict) -> dict:
        container = manifest["spec"]["containers"][0]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        for secret in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"):
            env.pop(secret)  # the hub makes a new one at each start; the CLI shows a placeholder
        return {
            "labels": manifest["metadata"]["labels"],
            "args": container["args"],
            "resources": container["resources"],
            "image": container["image"],
            "env": env,
            "volumes": manifest["spec"]["volumes"],
            "probe": container["readinessProbe"],
        }

    mine, hubs = comparable(printed), comparable(created)
    assert {k: v for k, v in mine["env"].items() if hubs["env"].get(k) != v} == {}
    assert mine == hubs
    tokens = [
        e["value"]
        for e in printed["spec"]["containers"][0]["env"]
        if e["name"] == "JUPYTERHUB_API_TOKEN"
    ]
    assert tokens == ["<generated by the hub at start>"]

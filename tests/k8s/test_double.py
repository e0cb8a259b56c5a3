"""The Kubernetes API test double, through kubernetes_asyncio and KubeSpawner's own code.

Replies must deserialise into kubernetes_asyncio's typed models, so these tests
also check that the double's objects are schema-valid where clients need them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import sys
import time

import pytest
import requests
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import kube_config

from tests.k8s_double.kubelet import expand

pytestmark = pytest.mark.hub

SERVE = ["python", "-m", "http.server", "--bind", "$(POD_IP)"]
POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
PROBE = {"httpGet": {"path": "/", "port": 8888}, "periodSeconds": 1}
SLEEP = ["python", "-c", "import time; time.sleep(120)"]


def pod_body(
    name: str,
    args: list[str],
    *,
    labels: dict | None = None,
    restart: str = "Never",
    image: str = "python:3.11-slim",
    probe: dict | None = None,
    **spec,
) -> dict:
    container = {"name": "main", "image": image, "args": args, "env": [POD_IP]}
    if probe:
        container["readinessProbe"] = probe
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"test": name}},
        "spec": {"restartPolicy": restart, "containers": [container], **spec},
    }


@pytest.fixture
async def core(k8s_double):
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(k8s_double.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


async def watch_pods(core, namespace, check, timeout=30, **kwargs):
    """The first pod watch event for which ``check(event)`` is true."""
    w = watch.Watch()
    async with w.stream(
        core.list_namespaced_pod, namespace, timeout_seconds=timeout, **kwargs
    ) as stream:
        async for event in stream:
            if check(event):
                return event
    raise AssertionError("the watch ended first")


def running_and_ready(event) -> bool:
    pod = event["object"]
    return pod.status.phase == "Running" and all(c.ready for c in pod.status.container_statuses)


def gone(pod: dict | None) -> bool:
    return pod is None


async def test_pod_runs_serves_and_is_deleted(core, k8s_double):
    ns = k8s_double.namespace
    body = pod_body(
        "web", [*SERVE, "8888"], image="k8s-double/web:1", probe=PROBE, restart="OnFailure"
    )
    created = await core.create_namespaced_pod(ns, body)
    assert isinstance(created, client.V1Pod)
    assert created.metadata.uid and created.status.phase == "Pending"

    ready = (await watch_pods(core, ns, running_and_ready, label_selector="test=web"))["object"]
    ip = ready.status.pod_ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("127.0.0.0/8") and ip != "127.0.0.1"
    assert [c.type for c in ready.status.conditions if c.status == "True"] == [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
    ]
    status = ready.status.container_statuses[0]
    assert status.state.running.started_at and status.image_id and status.started
    page = await asyncio.to_thread(requests.get, f"http://{ip}:8888/", timeout=5)
    assert page.status_code == 200

    events = await core.list_namespaced_event(
        ns, field_selector="involvedObject.kind=Pod,involvedObject.name=web"
    )
    assert [e.reason for e in events.items] == [
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
    ]
    assert events.items[0].message == f"Successfully assigned {ns}/web to node-double"
    assert events.items[1].message == 'Pulling image "k8s-double/web:1"'
    assert all(e.involved_object.uid == created.metadata.uid for e in events.items)

    pid = int(status.container_id.removeprefix("double://"))
    deleted = await core.delete_namespaced_pod("web", ns, grace_period_seconds=1)
    assert deleted.metadata.deletion_timestamp is not None
    await watch_pods(
        core,
        ns,
        lambda e: e["type"] == "DELETED",
        label_selector="test=web",
        resource_version=deleted.metadata.resource_version,
    )
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert k8s_double.pod("web") is None
    assert "Killing" in [e["reason"] for e in k8s_double.events("web")]
    assert k8s_double.manifests()[-1] == body  # recorded as sent


async def test_errors_are_status_objects(core, k8s_double):
    ns = k8s_double.namespace
    await core.create_namespaced_pod(ns, pod_body("twice", SLEEP))
    with pytest.raises(ApiException) as conflict:
        await core.create_namespaced_pod(ns, pod_body("twice", SLEEP))
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "AlreadyExists"
    await core.delete_namespaced_pod("twice", ns, grace_period_seconds=0)

    for call in (core.read_namespaced_pod, core.delete_namespaced_pod):
        with pytest.raises(ApiException) as missing:
            await call("no-such-pod", ns)
        status = json.loads(missing.value.body)
        assert missing.value.status == 404
        assert (status["kind"], status["reason"]) == ("Status", "NotFound")

    too_long = pod_body("labels", SLEEP, labels={"owner": "x" * 64})
    with pytest.raises(ApiException) as invalid:
        await core.create_namespaced_pod(ns, too_long)
    assert invalid.value.status == 422
    assert "metadata.labels" in json.loads(invalid.value.body)["message"]
    no_name = pod_body("unnamed", SLEEP)
    del no_name["spec"]["containers"][0]["name"]
    with pytest.raises(ApiException) as invalid:
        await core.create_namespaced_pod(ns, no_name)
    assert invalid.value.status == 422

    r = k8s_double.request("GET", "/apis/apps/v1/deployments")
    assert r.status_code == 404 and r.json()["kind"] == "Status"


async def test_watch_ends_after_timeout_seconds(core, k8s_double):
    start = time.monotonic()
    with pytest.raises(AssertionError, match="watch ended"):
        await watch_pods(
            core,
            k8s_double.namespace,
            lambda e: False,
            timeout=1,
            label_selector="test=nothing-here",
        )
    assert 0.9 < time.monotonic() - start < 5


async def test_watch_from_a_compacted_version_is_gone(core, k8s_double):
    ns = k8s_double.namespace
    old = (await core.list_namespaced_pod(ns)).metadata.resource_version
    await core.create_namespaced_pod(ns, pod_body("compacted", SLEEP))
    assert k8s_double.request("POST", "/_double/compact").ok
    with pytest.raises(ApiException) as gone_error:
        await watch_pods(core, ns, lambda e: False, timeout=2, resource_version=old)
    assert gone_error.value.status == 410
    # "0" (any version) still works: the current objects come first, as ADDED
    event = await watch_pods(
        core, ns, lambda e: True, timeout=2, resource_version="0", label_selector="test=compacted"
    )
    assert event["type"] == "ADDED"
    await core.delete_namespaced_pod("compacted", ns, grace_period_seconds=0)


async def test_label_and_field_selectors(core, k8s_double):
    ns = k8s_double.namespace
    for tier in "ab":
        await core.create_namespaced_pod(
            ns, pod_body(f"sel-{tier}", SLEEP, labels={"app": "sel", "tier": tier})
        )

    def names(selector: str) -> list[str]:
        return sorted(p["metadata"]["name"] for p in k8s_double.pods(selector))

    assert names("app=sel") == ["sel-a", "sel-b"]
    assert names("app=sel,tier=a") == ["sel-a"]
    assert names("app==sel,tier!=a") == ["sel-b"]
    assert names("app=sel,tier in (a, b)") == ["sel-a", "sel-b"]
    assert names("app=sel,tier notin (a)") == ["sel-b"]
    assert names("app=sel,!tier") == []
    assert names("app=sel,tier") == ["sel-a", "sel-b"]
    assert [
        p["metadata"]["name"] for p in k8s_double.list("pods", "app=sel", "metadata.name=sel-b")
    ] == ["sel-b"]
    assert "kind" not in k8s_double.pods("app=sel")[0]  # list items carry no kind, like k8s
    assert (
        k8s_double.request(
            "GET", k8s_double.path("pods"), params={"labelSelector": "app=(x"}
        ).status_code
        == 400
    )
    listed = await core.list_namespaced_pod(ns, label_selector="app=sel")
    assert listed.kind == "PodList" and int(listed.metadata.resource_version) > 0
    for tier in "ab":
        await core.delete_namespaced_pod(f"sel-{tier}", ns, grace_period_seconds=0)


def test_exits_follow_the_restart_policy(k8s_double):
    def create(name: str, args: list[str], restart: str = "Never") -> None:
        r = k8s_double.request(
            "POST", k8s_double.path("pods"), json=pod_body(name, args, restart=restart)
        )
        assert r.status_code == 201, r.text

    create("exit-3", ["python", "-c", "import sys; sys.exit(3)"])
    create("exit-0", ["python", "-c", "print('bye')"])
    create("crash-loop", ["python", "-c", "import sys; sys.exit(3)"], restart="OnFailure")
    create("no-binary", ["no-such-command-k8s-double"])
    phase = lambda p: p["status"]["phase"]  # noqa: E731

    failed = k8s_double.wait_for_pod("exit-3", lambda p: phase(p) == "Failed")
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"
    assert k8s_double.wait_for_pod("exit-0", lambda p: phase(p) == "Succeeded")
    assert k8s_double.pod_log("exit-0") == "bye\n"

    looping = k8s_double.wait_for_pod(
        "crash-loop", lambda p: p["status"]["containerStatuses"][0]["restartCount"] >= 1
    )
    assert phase(looping) == "Running"  # what KubeSpawner's poll() sees: still running
    assert looping["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3
    backoff = [e for e in k8s_double.events("crash-loop") if e["reason"] == "BackOff"]
    assert backoff and backoff[0]["type"] == "Warning"

    start_error = k8s_double.wait_for_pod("no-binary", lambda p: phase(p) == "Failed")
    terminated = start_error["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert [e["type"] for e in k8s_double.events("no-binary") if e["reason"] == "Failed"] == [
        "Warning"
    ]

    for name in ("exit-3", "exit-0", "crash-loop", "no-binary"):
        k8s_double.request("DELETE", k8s_double.path("pods", name))
        k8s_double.wait_for_pod(name, gone)


def test_a_pod_past_its_active_deadline_is_killed_and_fails(k8s_double):
    sleeper = "print('up', flush=True); import time; time.sleep(120)"
    body = pod_body("deadline", ["python", "-c", sleeper], activeDeadlineSeconds=2)
    r = k8s_double.request("POST", k8s_double.path("pods"), json=body)
    assert r.status_code == 201, r.text
    k8s_double.wait_for_pod("deadline", lambda p: "up" in k8s_double.pod_log("deadline"))
    assert k8s_double.pod("deadline")["status"]["phase"] == "Running"
    failed = k8s_double.wait_for_pod("deadline", lambda p: p["status"]["phase"] == "Failed")
    assert failed["status"]["reason"] == "DeadlineExceeded"
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137  # SIGKILL
    assert [
        e["type"] for e in k8s_double.events("deadline") if e["reason"] == "DeadlineExceeded"
    ] == ["Warning"]
    k8s_double.request("DELETE", k8s_double.path("pods", "deadline"))
    k8s_double.wait_for_pod("deadline", gone)


def test_delete_kills_after_the_grace_period(k8s_double):
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(120)"
    )
    r = k8s_double.request(
        "POST", k8s_double.path("pods"), json=pod_body("stubborn", ["python", "-c", ignore_term])
    )
    assert r.status_code == 201
    k8s_double.wait_for_pod("stubborn", lambda p: "up" in k8s_double.pod_log("stubborn"))
    start = time.monotonic()
    r = k8s_double.request(
        "DELETE", k8s_double.path("pods", "stubborn"), params={"gracePeriodSeconds": "2"}
    )
    assert r.status_code == 200 and r.json()["metadata"]["deletionGracePeriodSeconds"] == 2
    assert k8s_double.pod("stubborn")["status"]["phase"] == "Running"  # terminating
    k8s_double.wait_for_pod("stubborn", gone)
    assert 1.9 < time.monotonic() - start < 5


async def test_init_container_fills_an_empty_dir_the_server_serves(core, k8s_double):
    ns = k8s_double.namespace
    body = pod_body("site", [*SERVE, "--directory", "$(SITE)", "8888"], probe=PROBE)
    main = body["spec"]["containers"][0]
    main["env"].append({"name": "SITE", "value": "/srv/site"})
    main["volumeMounts"] = [{"name": "site", "mountPath": "/srv/site"}]
    body["spec"]["volumes"] = [{"name": "site", "emptyDir": {}}]
    body["spec"]["initContainers"] = [
        {  # the same volume, mounted elsewhere
            "name": "fetch",
            "image": "python:3.11-slim",
            "workingDir": "/out",
            "command": ["python", "-c", "open('index.html', 'w').write('from init')"],
            "volumeMounts": [{"name": "site", "mountPath": "/out"}],
        }
    ]
    await core.create_namespaced_pod(ns, body)
    ready = (await watch_pods(core, ns, running_and_ready, label_selector="test=site"))["object"]
    init = ready.status.init_container_statuses[0]
    assert (init.state.terminated.exit_code, init.state.terminated.reason) == (0, "Completed")
    page = await asyncio.to_thread(
        requests.get, f"http://{ready.status.pod_ip}:8888/index.html", timeout=5
    )
    assert page.text == "from init"
    assert [e["reason"] for e in k8s_double.events("site")].count("Started") == 2
    await core.delete_namespaced_pod("site", ns, grace_period_seconds=1)


def test_expansion_follows_kubernetes():
    env = {"A": "x", "EMPTY": ""}
    assert expand("$(A)/$$(A)/$(B)/$(EMPTY)/$", env) == "x/$(A)/$(B)//$"


async def test_pvcs_back_mounts_and_pods_wait_for_them(core, k8s_double):
    ns = k8s_double.namespace
    pvc_body = {
        "metadata": {"name": "claim-alice"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    reader = pod_body(
        "pvc-reader",
        [
            "python",
            "-c",
            "import os, sys; print(open(sys.argv[1]).read()); "
            "open(os.path.join(os.environ['HOME'], 'out.txt'), 'w').write(os.getcwd())",
            "/home/jovyan/in.txt",
        ],
    )
    reader["spec"]["containers"][0].update(
        volumeMounts=[{"name": "home", "mountPath": "/home/jovyan", "subPath": "home"}],
        workingDir="/home/jovyan/work",
        env=[POD_IP, {"name": "HOME", "value": "/home/jovyan"}],
    )
    reader["spec"]["volumes"] = [
        {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}
    ]
    await core.create_namespaced_pod(ns, reader)
    k8s_double.wait_for_pod(  # no claim yet: Pending, and the scheduler says why
        "pvc-reader",
        lambda p: "FailedScheduling" in [e["reason"] for e in k8s_double.events("pvc-reader")],
    )
    assert k8s_double.pod("pvc-reader")["status"]["phase"] == "Pending"

    (k8s_double.pvc_dir("claim-alice") / "home").mkdir()
    (k8s_double.pvc_dir("claim-alice") / "home" / "in.txt").write_text("from the claim")
    pvc = await core.create_namespaced_persistent_volume_claim(ns, pvc_body)
    assert isinstance(pvc, client.V1PersistentVolumeClaim) and pvc.status.phase == "Bound"
    k8s_double.wait_for_pod("pvc-reader", lambda p: p["status"]["phase"] == "Succeeded")
    assert k8s_double.pod_log("pvc-reader") == "from the claim\n"
    home = k8s_double.pvc_dir("claim-alice") / "home"
    assert (home / "out.txt").read_text() == str(home / "work")

    assert (await core.read_namespaced_persistent_volume_claim("claim-alice", ns)).spec.volume_name
    await core.delete_namespaced_pod("pvc-reader", ns, grace_period_seconds=0)
    deleted = await core.delete_namespaced_persistent_volume_claim("claim-alice", ns)
    assert deleted.metadata.name == "claim-alice"
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_persistent_volume_claim("claim-alice", ns)
    assert missing.value.status == 404


async def test_services(core, k8s_double):
    ns = k8s_double.namespace
    body = {
        "metadata": {"name": "web-svc", "labels": {"test": "svc"}},
        "spec": {"selector": {"test": "web"}, "ports": [{"port": 8888}]},
    }
    svc = await core.create_namespaced_service(ns, body)
    assert isinstance(svc, client.V1Service) and svc.spec.cluster_ip
    assert svc.spec.ports[0].target_port == 8888
    assert [
        s.metadata.name
        for s in (await core.list_namespaced_service(ns, label_selector="test=svc")).items
    ] == ["web-svc"]
    assert (await core.read_namespaced_service("web-svc", ns)).metadata.uid == svc.metadata.uid
    await core.delete_namespaced_service("web-svc", ns)
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_service("web-svc", ns)
    assert missing.value.status == 404


async def test_kubespawner_reflectors_see_pods_and_events(k8s_double):
    from kubespawner.clients import shared_client
    from kubespawner.spawner import EventReflector, KubeSpawner, PodReflector

    ns = k8s_double.namespace
    await config.load_kube_config(config_file=str(k8s_double.kubeconfig))  # the global default
    pods = PodReflector(namespace=ns, labels={"component": "singleuser-server"}, timeout_seconds=2)
    events = EventReflector(namespace=ns, fields={"involvedObject.kind": "Pod"}, timeout_seconds=2)
    await asyncio.gather(pods.start(), events.start())
    try:
        body = pod_body(
            "jupyter-reflected",
            [*SERVE, "8888"],
            probe=PROBE,
            restart="OnFailure",
            labels={"component": "singleuser-server"},
        )
        await shared_client("CoreV1Api").create_namespaced_pod(ns, body)
        key = f"{ns}/jupyter-reflected"
        deadline = time.monotonic() + 30
        while not KubeSpawner.is_pod_running(None, pods.pods.get(key)):
            assert time.monotonic() < deadline, pods.pods.get(key)
            await asyncio.sleep(0.2)
        mine = [e for e in events.events if e["involvedObject"]["name"] == "jupyter-reflected"]
        messages = [
            "{} [{}] {}".format(e["lastTimestamp"] or e["eventTime"], e["type"], e["message"])
            for e in mine
        ]  # as progress() does
        assert [e["reason"] for e in mine][:1] == ["Scheduled"]
        assert any("[Normal] Started container main" in m for m in messages), messages
        await shared_client("CoreV1Api").delete_namespaced_pod(
            "jupyter-reflected", ns, grace_period_seconds=1
        )
        while key in pods.pods:
            assert time.monotonic() < deadline + 10
            await asyncio.sleep(0.2)
    finally:
        await asyncio.gather(pods.stop(), events.stop())


async def test_plain_kubespawner_starts_polls_and_stops(k8s_double, monkeypatch):
    """KubeSpawner 7.1 itself (not the project's subclass), without a hub around it."""
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    # KUBECONFIG is read when kubernetes_asyncio is imported; load_config() runs once per process
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(k8s_double.kubeconfig))
    load_config.cache_clear()
    spawner = KubeSpawner(
        _mock=True,
        namespace=k8s_double.namespace,
        image="quay.io/jupyter/base-notebook:latest",
        cmd=[sys.executable, "-m", "http.server", "--bind", "$(POD_IP)"],
        args=["8888"],
        environment={"POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}},
        start_timeout=30,
    )
    try:
        url = await spawner.start()
        assert url.startswith("http://127.") and url.endswith(":8888")
        # start() returns once the container *started* (no readiness probe): the server may
        # not listen yet. JupyterHub itself then waits for the URL to answer.
        for _ in range(50):
            with contextlib.suppress(requests.ConnectionError):
                if (await asyncio.to_thread(requests.get, url, timeout=5)).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"nothing answers at {url}")
        assert await spawner.poll() is None
        messages = [e["message"] async for e in spawner.progress()]
        assert any("[Normal] Successfully assigned" in m for m in messages), messages

        manifest = k8s_double.manifests()[-1]
        assert manifest["spec"]["restartPolicy"] == "OnFailure"
        container = manifest["spec"]["containers"][0]
        assert "command" not in container and container["args"][-1] == "8888"

        await spawner.stop()
        assert await spawner.poll() == 1
        assert k8s_double.pod(spawner.pod_name) is None
    finally:
        await KubeSpawner._stop_all_reflectors()
        load_config.cache_clear()

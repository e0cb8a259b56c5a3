"""The ``k8s_double`` fixture: the Kubernetes API test double (:mod:`tests.k8s_double`).

One double per test session, in a subprocess on a free 127.0.0.1 port, with
its own pod address range (a random 127.X.0.0/16) and a temporary root.
Point a hub at it with ``KUBECONFIG=<k8s_double.kubeconfig>`` in the hub's
environment and ``c.KubeSpawner.namespace = k8s_double.namespace`` (outside a
cluster KubeSpawner ignores the kubeconfig's namespace and uses ``default``).
The session shares one double, so give pods names unique to the test.
"""

from __future__ import annotations

import random
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]


@dataclass
class K8sDouble:
    """A running double: where it is, and helpers that read its state over HTTP."""

    url: str
    kubeconfig: Path
    namespace: str
    root: Path
    log: Path  # the double's own log (stderr)
    proc: subprocess.Popen

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def path(self, plural: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{self.namespace}/{plural}" + (f"/{name}" if name else "")

    def list(self, plural: str, label_selector: str = "", field_selector: str = "") -> list[dict]:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        r = self.request("GET", self.path(plural), params=params)
        r.raise_for_status()
        return r.json()["items"]

    def pods(self, label_selector: str = "") -> list[dict]:
        return self.list("pods", label_selector)

    def pod(self, name: str) -> dict | None:
        r = self.request("GET", self.path("pods", name))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def events(self, pod: str | None = None) -> list[dict]:
        """Events about pods (or one pod), oldest first, as KubeSpawner's reflector sees them."""
        fields = "involvedObject.kind=Pod" + (f",involvedObject.name={pod}" if pod else "")
        events = self.list("events", field_selector=fields)
        return sorted(events, key=lambda e: e["lastTimestamp"] or e["eventTime"])

    def manifests(self, plural: str = "pods") -> list[dict]:
        """Every body POSTed to ``plural``, as the client sent it, oldest first."""
        items = self.request("GET", "/_double/manifests").json()["items"]
        return [item["body"] for item in items if item["plural"] == plural]

    def pvc_dir(self, claim: str) -> Path:
        """The host directory backing a PVC (pre-populate it before the pod starts)."""
        path = self.root / "pvcs" / self.namespace / claim
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pod_log(self, name: str, container: str = "") -> str:
        r = self.request("GET", self.path("pods", name) + "/log", params={"container": container})
        r.raise_for_status()
        return r.text

    def wait_for_pod(
        self, name: str, check: Callable[[dict | None], bool], timeout: float = 30
    ) -> dict | None:
        """Poll until ``check(pod or None)`` is true; the pod (None when gone)."""
        deadline = time.monotonic() + timeout
        while True:
            pod = self.pod(name)
            if check(pod):
                return pod
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {name}: {pod and pod['status']}")
            time.sleep(0.1)


def start_double(root: Path, namespace: str = "jhub") -> K8sDouble:
    root.mkdir(parents=True, exist_ok=True)
    log = root / "double.log"
    cidr = f"127.{random.randint(10, 250)}.0.0/16"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.k8s_double",
                "--root",
                str(root),
                "--port",
                "0",
                "--namespace",
                namespace,
                "--pod-cidr",
                cidr,
                "--exit-on-stdin-eof",
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line:
        proc.kill()
        raise RuntimeError(f"the k8s double did not start:\n{log.read_text()}")
    kubeconfig = Path(line)
    url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return K8sDouble(url, kubeconfig, namespace, root, log, proc)


def stop_double(double: K8sDouble) -> None:
    double.proc.terminate()
    try:
        double.proc.wait(15)
    except subprocess.TimeoutExpired:
        double.proc.kill()
        double.proc.wait()
    for pipe in (double.proc.stdin, double.proc.stdout):
        if pipe:
            pipe.close()


@pytest.fixture(scope="session")
def k8s_double(tmp_path_factory: pytest.TempPathFactory):
    double = start_double(tmp_path_factory.mktemp("k8s-double"))
    try:
        yield double
    finally:
        stop_double(double)

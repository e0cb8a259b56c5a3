"""Dashboard environments on Kubernetes: built once by a build pod, mounted read-only.

The same environments as on one machine (:mod:`hub_viz.environments`), on a
shared volume (a ReadWriteMany PVC, ``DashboardKubeSpawner.environments_claim``)
that the hub mounts at ``EnvironmentBuilder.root``:

- a **build pod** (``hub-viz-env-<source key>``, the dashboard's own image, no
  service account token, ``activeDeadlineSeconds`` from ``build_timeout``)
  fetches the dashboard's source like an instance does, finds its requirement
  file and runs :mod:`hub_viz.envbuild`: resolve into a lock, build the lock
  into ``envs/<env key>/`` (wheels only, within ``max_env_bytes``, from the
  operator's indexes), marked complete last, and write the result for this
  source (``sources/<source key>.json``, replaced atomically);
- an **instance pod** never builds: it mounts ``envs/<env key>`` alone
  (``subPath``) read-only at the same path it was built at, and the launcher
  runs the app with that environment's Python. Once the result exists, a
  start reads one small file and makes no other request.

The source key hashes what decides the requirement file and its resolution:
the image, the dashboard, its entry and source (git URL and ref, or the
owner's claim), the version the service signed if any, and the operator's
index settings. Two dashboards with the same lock share one environment (the
build pod of the second resolves, finds the lock built and only points at it).
The functions here are pure; :class:`~hub_viz.kubespawner.DashboardKubeSpawner`
creates the pod and waits for its result.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from .environments import COMPLETE, read_json

ENVS_VOLUME = "hub-viz-envs"
BUILD_CONTAINER = "build"
BUILD_LABEL = "hub-viz/component"
ENV_LABEL = "hub-viz/env"
# what the build pod may take (the resolver and uv's installs), beside activeDeadlineSeconds
BUILD_RESOURCES = {
    "limits": {"cpu": "1", "memory": "1G", "ephemeral-storage": "2G"},
    "requests": {"cpu": "100m", "memory": "256M"},
}
# EnvironmentBuilder settings the build pod gets (never the hub's root or uv path)
BUILD_SETTINGS = (
    "index_url",
    "extra_index_urls",
    "find_links",
    "no_index",
    "allow_requirement_urls",
    "build_timeout",
    "max_env_bytes",
    "max_cache_bytes",
)
_KEY = re.compile(r"[0-9a-f]{40}")
_ENV = re.compile(r"[0-9a-f]{32}")


def source_key(
    *,
    image: str,
    dashboard: str,
    entry: str,
    source: str,
    version: str = "",
    settings: dict[str, Any] | None = None,
) -> str:
    """The key of one dashboard source's environment result (40 hex characters)."""
    h = hashlib.sha256()
    for item in (
        image,
        dashboard,
        entry,
        source,
        version,
        json.dumps(settings or {}, sort_keys=True),
    ):
        h.update(item.encode() + b"\0")
    return h.hexdigest()[:40]


def build_pod_name(key: str) -> str:
    return f"hub-viz-env-{key}"


def sources_path(root: str | Path, key: str) -> Path:
    return Path(root) / "sources" / f"{key}.json"


def read_result(root: str | Path, key: str) -> dict[str, Any]:
    """The build pod's result for a source key: ``{"state": "ready", "env": <key or
    "">}`` (empty env: no requirement file) or ``{"state": "failed", "message"}``;
    ``{}`` while there is none. A ready result whose environment is gone (collected)
    counts as none."""
    if not _KEY.fullmatch(key):
        return {}
    result = read_json(sources_path(root, key))
    if result.get("state") == "ready":
        env = result.get("env")
        if env == "":
            return result
        if not isinstance(env, str) or not _ENV.fullmatch(env):
            return {}
        if not (Path(root) / "envs" / env / COMPLETE).is_file():
            return {}
    return result


def env_python(mount_path: str, env: str) -> str:
    """The environment's Python as the instance (and the build pod) sees it."""
    return f"{mount_path.rstrip('/')}/envs/{env}/bin/python"


def env_mount_parts(*, claim: str, mount_path: str, env: str) -> tuple[dict, dict]:
    """The instance pod's volume and mount: only its environment, read-only, at the
    path it was built at (a virtual environment's scripts name their own path)."""
    volume = {
        "name": ENVS_VOLUME,
        "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
    }
    mount = {
        "name": ENVS_VOLUME,
        "mountPath": f"{mount_path.rstrip('/')}/envs/{env}",
        "subPath": f"envs/{env}",
        "readOnly": True,
    }
    return volume, mount


def build_pod(
    *,
    key: str,
    dashboard: str,
    image: str,
    pull_policy: str,
    claim: str,
    mount_path: str,
    source_volume: dict[str, Any],
    source_mount_path: str,
    fetch_container: dict[str, Any] | None,
    cwd: str,
    entry: str,
    settings: dict[str, Any],
    timeout: float,
    uid: int,
    fs_gid: int | None,
    security_context: dict[str, Any],
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The build pod of one source key: fetch the source (init container, for git),
    then build into the shared volume. It never restarts and is stopped by the
    cluster after ``timeout`` seconds (``activeDeadlineSeconds``)."""
    settings = {k: v for k, v in settings.items() if k in BUILD_SETTINGS}
    # the builder's own limit first, so that its message (not the kill) is recorded
    settings["build_timeout"] = max(10.0, float(timeout) - 15)
    command = [
        "python",
        "-m",
        "hub_viz.envbuild",
        f"--root={mount_path}",
        f"--source-root={source_mount_path}",
        f"--cwd={cwd}",
        f"--entry={entry}",
        f"--dashboard={dashboard}",
        f"--key={key}",
        f"--settings={json.dumps(settings, sort_keys=True)}",
    ]
    container = {
        "name": BUILD_CONTAINER,
        "image": image,
        "imagePullPolicy": pull_policy or "IfNotPresent",
        "command": command,
        "volumeMounts": [
            {"name": ENVS_VOLUME, "mountPath": mount_path},
            {"name": source_volume["name"], "mountPath": source_mount_path, "readOnly": True},
        ],
        "securityContext": {**security_context, "runAsUser": uid},
        "resources": BUILD_RESOURCES,
        "env": [{"name": "HOME", "value": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(1, int(timeout)),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, **({"fsGroup": fs_gid} if fs_gid else {})},
        "containers": [container],
        "volumes": [
            {"name": ENVS_VOLUME, "persistentVolumeClaim": {"claimName": claim}},
            source_volume,
        ],
    }
    if fetch_container is not None:
        spec["initContainers"] = [fetch_container]
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": build_pod_name(key),
            "labels": {BUILD_LABEL: "environment-build", "hub-viz/source-key": key},
            "annotations": {"hub-viz/dashboard": dashboard},
        },
        "spec": spec,
    }

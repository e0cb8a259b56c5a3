"""A dashboard pod's parts, as pure functions of the operator's KubeSpawner settings.

Each function takes ``base`` (the operator's settings, as configured, never a
previous start's) and what this start runs, and returns the KubeSpawner settings
it changes. :meth:`hub_viz.kubespawner.DashboardKubeSpawner.prepare` applies them
in one place and puts back what an earlier start changed, so adding a volume or a
label is a change here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .frameworks import SHARED
from .profiles import Profile, Resources

LABEL_PREFIX = "hub-viz/"
SOURCE_VOLUME = "dashboard-source"
SCRATCH_VOLUME = "viewer-scratch"
HOME = "/home/jovyan"

Parts = dict[str, Any]


def as_list(value: Any) -> list[Any]:
    """KubeSpawner's list-or-dict settings (a dict: its values in key order) as a list."""
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    return list(value or [])


def resource_parts(resources: Resources) -> Parts:
    """Requests and limits: the spec's, within the operator's ceiling."""
    return {
        "cpu_guarantee": resources.cpu_request,
        "cpu_limit": resources.cpu_limit,
        "mem_guarantee": resources.mem_request,
        "mem_limit": resources.mem_limit,
    }


def profile_parts(base: Mapping[str, Any], profile: Profile | None) -> Parts:
    """A profile's image, pull policy, node selector and tolerations over the operator's."""
    if profile is None:
        return {}
    parts: Parts = {}
    if profile.image:
        parts["image"] = profile.image
    if profile.image_pull_policy:
        parts["image_pull_policy"] = profile.image_pull_policy
    if profile.node_selector:
        parts["node_selector"] = {**base["node_selector"], **profile.node_selector}
    if profile.tolerations:
        parts["tolerations"] = [*as_list(base["tolerations"]), *profile.tolerations]
    return parts


def label_parts(
    base: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    dashboard: str,
    owner: str,
    title: str,
    profile: Profile | None,
) -> Parts:
    """Labels to find a dashboard's pods by, annotations with its full names."""
    return {
        "extra_labels": {**base["extra_labels"], **labels},
        "extra_annotations": {
            **base["extra_annotations"],
            LABEL_PREFIX + "dashboard": dashboard,
            LABEL_PREFIX + "owner": owner,
            LABEL_PREFIX + "title": title,
            LABEL_PREFIX + "profile": profile.name if profile else "",
        },
    }


def container_parts(base: Mapping[str, Any], *, probe_path: str, port: int) -> Parts:
    """Ready when the launcher answers; a pod that stops is not restarted in place."""
    return {
        "extra_container_config": {
            **base["extra_container_config"],
            "readinessProbe": {
                "httpGet": {"path": probe_path, "port": port},
                "periodSeconds": 2,
                "failureThreshold": 3,
            },
        },
        "extra_pod_config": {**base["extra_pod_config"], "restartPolicy": "Never"},
    }


@dataclass(frozen=True)
class Source:
    """Where the dashboard's code comes from: the owner's claim, or a git fetch."""

    mount_path: str
    claim: str = ""  # the owner's PVC (path sources)
    git_container: dict[str, Any] | None = None  # the init container that fetches it
    git_max_bytes: int = 0


def source_parts(base: Mapping[str, Any], source: Source) -> tuple[list, list, Parts]:
    """The source volume and mount (read-only), and the git fetch's init container."""
    mount = {"name": SOURCE_VOLUME, "mountPath": source.mount_path, "readOnly": True}
    if source.git_container is None:
        volume = {
            "name": SOURCE_VOLUME,
            "persistentVolumeClaim": {"claimName": source.claim, "readOnly": True},
        }
        return [volume], [mount], {}
    volume = {"name": SOURCE_VOLUME, "emptyDir": {"sizeLimit": str(source.git_max_bytes)}}
    return (
        [volume],
        [mount],
        {"init_containers": [*as_list(base["init_containers"]), source.git_container]},
    )


def storage_choice(viewer_storage: str, *, others_code: bool, warm_pool: bool) -> str:
    """The storage an instance gets: another author's code (a viewer's per-viewer
    instance) never gets the viewer's home, it could read it and plant files there;
    a warm-pool instance has no home."""
    if viewer_storage == "home" and (others_code or warm_pool):
        return "scratch"
    return viewer_storage


def storage_parts(base: Mapping[str, Any], *, mode: str, storage: str) -> tuple[list, list, Parts]:
    """Per-viewer storage: none, a scratch folder at the home, or the viewer's home
    as the operator configured KubeSpawner's storage. Shared instances get none."""
    if mode == SHARED or storage == "none":
        return [], [], {"storage_pvc_ensure": False}
    if storage == "scratch":
        return (
            [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
            [{"name": SCRATCH_VOLUME, "mountPath": HOME}],
            {"storage_pvc_ensure": False},
        )
    return as_list(base["volumes"]), as_list(base["volume_mounts"]), {}


def volume_parts(base: Mapping[str, Any], *, source: Source, mode: str, storage: str) -> Parts:
    """Volumes and mounts: the source's and the viewer's storage's."""
    source_volumes, source_mounts, fetch = source_parts(base, source)
    volumes, mounts, pvc = storage_parts(base, mode=mode, storage=storage)
    if pvc:  # none or scratch: the source first
        volumes, mounts = [*source_volumes, *volumes], [*source_mounts, *mounts]
    else:  # the viewer's home: the operator's volumes first, as configured
        volumes, mounts = [*volumes, *source_volumes], [*mounts, *source_mounts]
    return {"volumes": volumes, "volume_mounts": mounts, **fetch, **pvc}


class Base(Mapping[str, Any]):
    """The operator's settings of a spawner: a setting's value before any start changed it."""

    def __init__(self, spawner: Any, originals: dict[str, Any]) -> None:
        self._spawner, self._originals = spawner, originals

    def __getitem__(self, name: str) -> Any:
        if name in self._originals:
            return self._originals[name]
        return getattr(self._spawner, name)

    def __iter__(self) -> Any:
        return iter(self._originals)

    def __len__(self) -> int:
        return len(self._originals)


def apply_parts(spawner: Any, originals: dict[str, Any], parts: Parts) -> None:
    """Set ``parts`` on ``spawner``; every setting an earlier start changed and this one
    does not goes back to the operator's value (``originals``, kept across starts)."""
    for name in parts:
        originals.setdefault(name, getattr(spawner, name))
    for name, value in {**originals, **parts}.items():
        setattr(spawner, name, value)

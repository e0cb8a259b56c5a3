"""A pod's parts as pure functions of the operator's settings (hub_viz.podparts)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hub_viz.frameworks import PER_VIEWER, SHARED
from hub_viz.podparts import (
    SCRATCH_VOLUME,
    SOURCE_VOLUME,
    Base,
    Source,
    apply_parts,
    profile_parts,
    storage_choice,
    volume_parts,
)
from hub_viz.profiles import Profile

pytestmark = pytest.mark.unit

HOME = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}
OPERATOR = {
    "image": "dash:1",
    "image_pull_policy": "IfNotPresent",
    "node_selector": {"pool": "a"},
    "tolerations": [],
    "volumes": [HOME],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
    "init_containers": [],
    "storage_pvc_ensure": True,
}
GIT = Source(
    mount_path="/srv/dashboard", git_container={"name": "fetch-source"}, git_max_bytes=1000
)
CLAIM = Source(mount_path="/srv/dashboard", claim="claim-bob")


def names(volumes: list[dict]) -> list[str]:
    return [v["name"] for v in volumes]


@pytest.mark.parametrize(
    ("mode", "storage", "expected", "pvc"),
    [
        (SHARED, "home", [SOURCE_VOLUME], False),
        (PER_VIEWER, "none", [SOURCE_VOLUME], False),
        (PER_VIEWER, "scratch", [SOURCE_VOLUME, SCRATCH_VOLUME], False),
        (PER_VIEWER, "home", ["home", SOURCE_VOLUME], None),
    ],
)
def test_volumes_follow_mode_and_storage(
    mode: str, storage: str, expected: list[str], pvc: bool | None
) -> None:
    parts = volume_parts(OPERATOR, source=CLAIM, mode=mode, storage=storage)
    assert names(parts["volumes"]) == expected
    assert names(parts["volume_mounts"]) == expected
    assert parts.get("storage_pvc_ensure") is pvc
    assert "init_containers" not in parts
    source = next(v for v in parts["volumes"] if v["name"] == SOURCE_VOLUME)
    assert source["persistentVolumeClaim"] == {"claimName": "claim-bob", "readOnly": True}


def test_a_git_source_is_fetched_into_an_empty_dir_by_an_init_container() -> None:
    parts = volume_parts(OPERATOR, source=GIT, mode=SHARED, storage="home")
    assert parts["volumes"] == [{"name": SOURCE_VOLUME, "emptyDir": {"sizeLimit": "1000"}}]
    assert parts["init_containers"] == [{"name": "fetch-source"}]
    assert all(m["readOnly"] for m in parts["volume_mounts"])


@pytest.mark.parametrize(
    ("others_code", "warm_pool", "expected"),
    [(False, False, "home"), (True, False, "scratch"), (False, True, "scratch")],
)
def test_only_the_owners_own_code_gets_their_home(
    others_code: bool, warm_pool: bool, expected: str
) -> None:
    assert storage_choice("home", others_code=others_code, warm_pool=warm_pool) == expected
    assert storage_choice("none", others_code=others_code, warm_pool=warm_pool) == "none"


def test_a_profile_adds_to_the_operators_settings() -> None:
    profile = Profile(
        name="gpu",
        display_name="GPU",
        image="dash-gpu:1",
        node_selector={"gpu": "yes"},
        tolerations=({"key": "gpu"},),
    )
    parts = profile_parts(OPERATOR, profile)
    assert parts["node_selector"] == {"pool": "a", "gpu": "yes"}
    assert parts["image"] == "dash-gpu:1" and parts["tolerations"] == [{"key": "gpu"}]
    assert profile_parts(OPERATOR, None) == {}


def test_every_setting_a_start_changed_goes_back_for_the_next_start() -> None:
    spawner = SimpleNamespace(**OPERATOR)
    originals: dict = {}
    gpu = Profile(name="gpu", display_name="GPU", image="dash-gpu:1", node_selector={"gpu": "yes"})
    base = Base(spawner, originals)
    apply_parts(
        spawner,
        originals,
        {
            **profile_parts(base, gpu),
            **volume_parts(base, source=GIT, mode=PER_VIEWER, storage="scratch"),
        },
    )
    assert spawner.image == "dash-gpu:1" and spawner.storage_pvc_ensure is False
    # the next start: no profile, the viewer's home, a path source
    base = Base(spawner, originals)
    assert base["image"] == "dash:1"  # the operator's, not the last start's
    apply_parts(
        spawner, originals, volume_parts(base, source=CLAIM, mode=PER_VIEWER, storage="home")
    )
    assert spawner.image == "dash:1"
    assert spawner.node_selector == {"pool": "a"}
    assert spawner.init_containers == []
    assert spawner.storage_pvc_ensure is True
    assert names(spawner.volumes) == ["home", SOURCE_VOLUME]

"""Environments on Kubernetes (hub_viz.kubeenv, hub_viz.envbuild): the build pod's
manifest, the instance's read-only mount, and the build pod's program run for real
(uv, a local wheel folder) on a folder standing in for the shared volume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.envbuild import main as envbuild
from hub_viz.environments import COMPLETE, build_log
from hub_viz.kubeenv import (
    build_pod,
    build_pod_name,
    env_mount_parts,
    env_python,
    read_result,
    source_key,
)

from ..wheels import version_package

pytestmark = pytest.mark.unit

KEY = "a" * 40
GIT_FETCH = {
    "name": "fetch-source",
    "image": "registry.example.edu/hub-viz/dashboard:1.0",
    "command": ["python", "-m", "hub_viz.gitfetch", "--", "https://git.example.edu/r", "main"],
    "volumeMounts": [{"name": "dashboard-source", "mountPath": "/srv/dashboard"}],
}


def a_build_pod(**overrides) -> dict:
    kwargs = {
        "key": KEY,
        "dashboard": "prof/sales",
        "image": "registry.example.edu/hub-viz/dashboard:1.0",
        "pull_policy": "IfNotPresent",
        "claim": "hub-viz-environments",
        "mount_path": "/opt/hub-viz-envs",
        "source_volume": {
            "name": "dashboard-source",
            "persistentVolumeClaim": {"claimName": "claim-prof", "readOnly": True},
        },
        "source_mount_path": "/srv/dashboard",
        "fetch_container": None,
        "cwd": "/srv/dashboard/sales",
        "entry": "app.py",
        "settings": {
            "index_url": "https://pypi.example.edu/simple",
            "build_timeout": 300,
            "root": "/srv/not-for-pods",
        },
        "timeout": 300,
        "uid": 1000,
        "fs_gid": 100,
        "security_context": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return build_pod(**{**kwargs, **overrides})


@pytest.mark.parametrize("version", ["1.28", kubernetes_validate.latest_version()])
def test_the_build_pod_is_schema_valid_bounded_and_least_privilege(version: str) -> None:
    for pod in (a_build_pod(), a_build_pod(fetch_container=GIT_FETCH)):
        kubernetes_validate.validate(pod, version, strict=True)
        spec = pod["spec"]
        assert pod["metadata"]["name"] == build_pod_name(KEY) and len(build_pod_name(KEY)) < 64
        assert spec["restartPolicy"] == "Never"
        assert spec["activeDeadlineSeconds"] == 300
        assert spec["automountServiceAccountToken"] is False
        (build,) = spec["containers"]
        mounts = {m["name"]: m for m in build["volumeMounts"]}
        assert mounts["hub-viz-envs"] == {"name": "hub-viz-envs", "mountPath": "/opt/hub-viz-envs"}
        assert mounts["dashboard-source"]["readOnly"] is True
        assert build["resources"]["limits"]["ephemeral-storage"]
        settings = json.loads(next(a for a in build["command"] if a.startswith("--settings="))[11:])
        # the operator's index, the builder's own time limit inside the pod's, no hub paths
        assert settings == {"index_url": "https://pypi.example.edu/simple", "build_timeout": 285.0}
    assert a_build_pod(fetch_container=GIT_FETCH)["spec"]["initContainers"] == [GIT_FETCH]


def test_instances_mount_only_their_environment_read_only() -> None:
    volume, mount = env_mount_parts(
        claim="hub-viz-environments", mount_path="/opt/hub-viz-envs/", env="b" * 32
    )
    assert volume["persistentVolumeClaim"] == {
        "claimName": "hub-viz-environments",
        "readOnly": True,
    }
    assert mount == {
        "name": "hub-viz-envs",
        "mountPath": f"/opt/hub-viz-envs/envs/{'b' * 32}",
        "subPath": f"envs/{'b' * 32}",
        "readOnly": True,
    }
    # the same path the build pod built it at: the environment's Python is inside the mount
    assert env_python("/opt/hub-viz-envs/", "b" * 32).startswith(mount["mountPath"] + "/")


def test_the_source_key_changes_with_what_decides_the_environment() -> None:
    base = {
        "image": "dash:1",
        "dashboard": "prof/sales",
        "entry": "app.py",
        "source": "git:https://git.example.edu/r@main",
        "version": "",
        "settings": {"index_url": ""},
    }
    key = source_key(**base)
    assert key == source_key(**base) and len(key) == 40
    for name, other in [
        ("image", "dash:2"),
        ("dashboard", "prof/other"),
        ("entry", "other.py"),
        ("source", "git:https://git.example.edu/r@v2"),
        ("version", "3"),
        ("settings", {"index_url": "https://mirror.example.edu/simple"}),
    ]:
        assert source_key(**{**base, name: other}) != key, name


def test_a_result_counts_only_with_its_environment_complete(tmp_path: Path) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / f"{KEY}.json").write_text(
        json.dumps({"state": "ready", "env": "c" * 32})
    )
    assert read_result(tmp_path, KEY) == {}  # collected or never finished
    (tmp_path / "envs" / ("c" * 32)).mkdir(parents=True)
    (tmp_path / "envs" / ("c" * 32) / COMPLETE).write_text("")
    assert read_result(tmp_path, KEY)["env"] == "c" * 32
    assert read_result(tmp_path, "../" + KEY[3:]) == {}


@pytest.fixture
def volume(tmp_path: Path) -> dict:
    """A folder as the shared volume, a wheel folder as the index, and two sources."""
    version_package(tmp_path / "wheels", "hvtoy", ("1.0", "2.0"))
    for name, text in [("one", "hvtoy==2.0\n"), ("two", "hvtoy>=1.5\n"), ("bad", "hvtoy==9.9\n")]:
        (tmp_path / "src" / name).mkdir(parents=True)
        (tmp_path / "src" / name / "app.py").write_text("import hvtoy\n")
        (tmp_path / "src" / name / "requirements.txt").write_text(text)
    (tmp_path / "src" / "none").mkdir()
    (tmp_path / "src" / "none" / "app.py").write_text("print('plain')\n")
    settings = {"no_index": True, "find_links": [str(tmp_path / "wheels")], "root": "/x"}
    return {"root": tmp_path / "envs", "src": tmp_path / "src", "settings": settings}


def build_in_pod(volume: dict, name: str, key: str) -> int:
    return envbuild(
        [
            f"--root={volume['root']}",
            f"--source-root={volume['src']}",
            f"--cwd={volume['src'] / name}",
            "--entry=app.py",
            f"--dashboard=prof/{name}",
            f"--key={key}",
            f"--settings={json.dumps(volume['settings'])}",
        ]
    )


def test_build_pods_share_a_lock_and_fail_with_the_resolvers_message(volume: dict) -> None:
    root = volume["root"]
    assert build_in_pod(volume, "one", "1" * 40) == 0
    first = read_result(root, "1" * 40)
    assert first["state"] == "ready" and first["built_now"] is True
    python = root / "envs" / first["env"] / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import hvtoy; print(hvtoy.greet())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "hello from hvtoy 2.0"
    # another dashboard whose requirements resolve to the same lock: no second build
    assert build_in_pod(volume, "two", "2" * 40) == 0
    second = read_result(root, "2" * 40)
    assert second["env"] == first["env"] and second["built_now"] is False
    assert [p.name for p in (root / "envs").iterdir() if p.is_dir()] == [first["env"]]
    assert any("same lock, built before" in line for line in build_log(root, "prof", "two")["log"])
    # a broken requirement: the resolver's own words, for the author's log and the hub
    assert build_in_pod(volume, "bad", "3" * 40) == 1
    failed = read_result(root, "3" * 40)
    assert failed["state"] == "failed" and "hvtoy==9.9" in failed["message"]
    assert "No solution found" in failed["message"]
    assert build_log(root, "prof", "bad")["state"] == "failed"
    # no requirement file: the image's environment
    assert build_in_pod(volume, "none", "4" * 40) == 0
    assert read_result(root, "4" * 40) == {"dashboard": "prof/none", "state": "ready", "env": ""}


def test_configure_mounts_environments_only_with_a_claim(tmp_path: Path) -> None:
    c = Config()
    configure(c, spawner="kube", state_dir=str(tmp_path), service=False)
    assert c.EnvironmentBuilder.enabled is False
    c = Config()
    configure(
        c,
        spawner="kube",
        state_dir=str(tmp_path),
        service=False,
        environments={
            "claim": "hub-viz-environments",
            "root": "/srv/hub-viz-envs",
            "index_url": "https://pypi.example.edu/simple",
            "build_timeout": 600,
        },
    )
    assert c.DashboardKubeSpawner.environments_claim == "hub-viz-environments"
    assert "enabled" not in c.EnvironmentBuilder or c.EnvironmentBuilder.enabled
    assert c.EnvironmentBuilder.root == "/srv/hub-viz-envs"
    assert c.Spawner.start_timeout >= 600 + 120  # a first start waits for the build
    with pytest.raises(ValueError, match="Kubernetes only"):
        configure(Config(), state_dir=str(tmp_path), environments={"claim": "x"})


def test_a_build_pod_stopped_at_its_deadline_says_so_to_the_author_alone() -> None:
    from hub_viz.kubespawner import DashboardKubeSpawner

    config = Config()
    config.EnvironmentBuilder.build_timeout = 42

    def failed(result: dict, reason: str | None, others: bool) -> str:  # what the page shows
        spawner = SimpleNamespace(config=config, runs_others_code=lambda: others)
        pod = SimpleNamespace(status=SimpleNamespace(reason=reason))
        return DashboardKubeSpawner._build_failed(spawner, result, pod).jupyterhub_message

    author = failed({}, "DeadlineExceeded", others=False)
    assert "longer than 42 seconds" in author and "could not be built" in author
    viewer = failed({}, "DeadlineExceeded", others=True)
    assert "could not be built" in viewer and "42" not in viewer
    # the builder's own message (written before the deadline) comes first
    resolver = failed({"state": "failed", "message": "No solution found: x==9"}, None, False)
    assert "No solution found: x==9" in resolver and "longer than" not in resolver

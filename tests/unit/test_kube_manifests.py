"""Pod manifests of DashboardKubeSpawner: schema-valid, least privilege, resources within the ceiling.

Every framework x mode x profile x source the spawner can produce is built
offline (hub_viz.k8s_manifest, as ``hub-viz k8s-manifest`` does) and
validated with kubernetes-validate in strict mode against the newest
Kubernetes version it ships.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubespawner.slugs import safe_slug
from traitlets.config import Config

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.config import configure
from hub_viz.frameworks import PER_VIEWER, SHARED
from hub_viz.hubstart import prepare_service
from hub_viz.k8s_manifest import TOKEN_PLACEHOLDER, pod_manifest

pytestmark = pytest.mark.unit

K8S_VERSION = kubernetes_validate.latest_version()
PROFILES = {
    "small": {
        "display_name": "Small",
        "cpu_request": 0.1,
        "cpu_limit": 0.5,
        "mem_request": "256M",
        "mem_limit": "1G",
    },
    "gpu": {
        "display_name": "GPU",
        "cpu_request": 1,
        "cpu_limit": 2,
        "mem_request": "2G",
        "mem_limit": "4G",
        "image": "registry.example.edu/hub-viz/dashboard-gpu:1.0",
        "image_pull_policy": "Always",
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
CEILING = {"cpu": 2, "memory": "4G"}
ENTRIES = {
    "voila": "report.ipynb",
    "dash": "app.py",
    "streamlit": "app.py",
    "panel": "app.py",
    "bokeh": "app.py",
    "notebook": "analysis.ipynb",
}
GIT = {"url": "https://git.example.edu/course/dashboards.git", "ref": "main"}


@pytest.fixture
def hub_config(tmp_path: Path) -> Config:
    c = Config()
    c.KubeSpawner.image = "registry.example.edu/hub-viz/dashboard:1.0"
    # what the chart sets for notebook servers: a home PVC per user
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.volumes = [
        {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
    ]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    configure(
        c, spawner="kube", state_dir=str(tmp_path), profiles=PROFILES, resource_ceiling=CEILING
    )
    prepare_service(c, c.JupyterHub.services)  # the hub starts: the service's keys
    return c


@pytest.fixture
def signing_key(tmp_path: Path, hub_config: Config) -> str:
    return (tmp_path / "hub_viz_signing_key.pem").read_text()


def spec_for(framework: str, mode: str, profile: str, git: bool, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "framework": framework,
        "entry": ENTRIES[framework],
        "mode": mode,
        "title": f"{framework} in class",
        "source_owner": "prof.smith",
        "dashboard": "prof.smith/weather",
        "open_url": "/services/hub-viz/open/prof.smith/weather",
    }
    if profile:
        spec["profile"] = profile
    if git:
        spec["git"] = dict(GIT)
    return spec | extra


def assert_valid(pod: dict[str, Any]) -> None:
    """Strict schema validation (raises kubernetes_validate.ValidationError)."""
    assert K8S_VERSION.startswith(kubernetes_validate.validate(pod, K8S_VERSION, strict=True))


async def build(
    config: Config,
    key: str,
    spec: dict[str, Any],
    owner: str = "prof.smith",
    server: str = "weather",
) -> dict[str, Any]:
    return await pod_manifest(config, owner=owner, server=server, spec=spec, signing_key=key)


CASES = [
    (name, mode, profile, git)
    for name, framework in BUILTIN_FRAMEWORKS.items()
    if name in ENTRIES
    for mode, profile, git in itertools.product(
        framework.modes, ("", "small", "gpu"), (False, True)
    )
]


@pytest.mark.parametrize(("framework", "mode", "profile", "git"), CASES)
async def test_every_manifest_is_schema_valid_and_least_privilege(
    hub_config, signing_key, framework, mode, profile, git
):
    pod = await build(hub_config, signing_key, spec_for(framework, mode, profile, git))
    assert_valid(pod)

    meta, spec = pod["metadata"], pod["spec"]
    assert meta["labels"]["hub-viz/owner"] == "prof.smith"
    assert meta["labels"]["hub-viz/dashboard"] == "weather"
    assert meta["labels"]["hub-viz/mode"] == mode
    assert meta["labels"]["hub-viz/framework"] == framework
    assert meta["annotations"]["hub-viz/dashboard"] == "prof.smith/weather"
    assert meta["annotations"]["hub-viz/profile"] == profile

    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["args"][:2] == ["hub-viz-launch", "--ip=$(HUB_VIZ_POD_IP)"]
    assert f"--entry={ENTRIES[framework]}" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/user/prof.smith/weather/api",
        "port": 8888,
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["HUB_VIZ_POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["JUPYTERHUB_API_TOKEN"]["value"] == TOKEN_PLACEHOLDER
    assert json.loads(env["HUB_VIZ_FRAMEWORK"]["value"])["name"] == framework

    # the source, read-only; from git through an init container, else the owner's storage
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["dashboard-source"] == {
        "name": "dashboard-source",
        "mountPath": "/srv/dashboard",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    if git:
        # at most the size cap on the node's disk; the clone is hub_viz's checked one
        assert volumes["dashboard-source"] == {
            "name": "dashboard-source",
            "emptyDir": {"sizeLimit": "200000000"},
        }
        (init,) = spec["initContainers"]
        assert init["name"] == "fetch-source"
        assert init["command"] == [
            "python",
            "-m",
            "hub_viz.gitfetch",
            "--schemes=https",
            "--max-bytes=200000000",
            "--timeout=120",
            "--",
            GIT["url"],
            GIT["ref"],
            "/srv/dashboard",
        ]
        assert init["securityContext"]["runAsNonRoot"] is True
        assert not any(a.startswith("--git-") for a in container["args"]), (
            "the init container fetches, not the launcher"
        )
    else:
        assert volumes["dashboard-source"]["persistentVolumeClaim"] == {
            "claimName": "claim-" + safe_slug("prof.smith", max_length=48),
            "readOnly": True,
        }
        assert "initContainers" not in spec or not spec["initContainers"]
    # storage: never a PVC of its own for a shared app; scratch space per viewer
    assert "home" not in volumes
    if mode == SHARED:
        assert set(volumes) == {"dashboard-source"}
    else:
        assert volumes["viewer-scratch"] == {"name": "viewer-scratch", "emptyDir": {}}

    resources = container["resources"]
    if profile == "gpu":
        assert container["image"] == PROFILES["gpu"]["image"]
        assert container["imagePullPolicy"] == "Always"
        assert spec["nodeSelector"] == {"pool": "gpu"}
        assert spec["tolerations"] == PROFILES["gpu"]["tolerations"]
        assert resources["limits"] == {"cpu": 2, "memory": 4 * 10**9}
    elif profile == "small":
        assert container["image"] == "registry.example.edu/hub-viz/dashboard:1.0"
        assert resources == {
            "limits": {"cpu": 0.5, "memory": 10**9},
            "requests": {"cpu": 0.1, "memory": 256 * 10**6},
        }
    else:  # no profile: the ceiling is the limit, so nothing runs unbounded
        assert resources["limits"] == {"cpu": 2, "memory": 4 * 10**9}


async def test_strict_validation_catches_a_misspelt_field(hub_config, signing_key):
    pod = await build(hub_config, signing_key, spec_for("dash", SHARED, "", False))
    pod["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        assert_valid(pod)


async def test_owner_storage_claim_is_named_as_the_chart_names_home_volumes(
    hub_config, signing_key
):
    pod = await build(hub_config, signing_key, spec_for("dash", SHARED, "", False))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claim = volumes["dashboard-source"]["persistentVolumeClaim"]["claimName"]
    assert claim == "claim-" + safe_slug("prof.smith", max_length=48)
    # an owner with a plain name keeps it
    plain = spec_for("dash", SHARED, "", False, source_owner="alice", dashboard="alice/weather")
    pod = await build(hub_config, signing_key, plain, owner="alice")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["dashboard-source"]["persistentVolumeClaim"]["claimName"] == "claim-alice"


async def test_per_viewer_home_storage_uses_the_charts_volumes(hub_config, signing_key):
    """The author's own per-viewer instance gets their home, as the chart mounts it."""
    hub_config.DashboardKubeSpawner.viewer_storage = "home"
    spec = spec_for("dash", PER_VIEWER, "", False)
    pod = await build(hub_config, signing_key, spec, server="weather-1a2b3c4d")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert set(volumes) == {"home", "dashboard-source"}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "claim-" + safe_slug(
        "prof.smith", max_length=48
    )
    assert_valid(pod)


@pytest.mark.parametrize("git", [False, True])
async def test_another_authors_code_never_mounts_the_viewers_home(hub_config, signing_key, git):
    """A viewer's per-viewer instance of someone else's code: scratch space, never their PVC."""
    hub_config.DashboardKubeSpawner.viewer_storage = "home"
    spec = spec_for("notebook", PER_VIEWER, "", git)
    pod = await build(hub_config, signing_key, spec, owner="student1", server="weather-1a2b3c4d")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert set(volumes) == {"dashboard-source", "viewer-scratch"}
    assert volumes["viewer-scratch"] == {"name": "viewer-scratch", "emptyDir": {}}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in volumes.values()
        if "persistentVolumeClaim" in v
    }
    assert claims == (set() if git else {"claim-" + safe_slug("prof.smith", max_length=48)})
    assert "student1" not in json.dumps(pod["spec"]["volumes"])
    (container,) = pod["spec"]["containers"]
    assert {m["name"] for m in container["volumeMounts"]} == {"dashboard-source", "viewer-scratch"}
    assert_valid(pod)


async def test_another_authors_code_gets_the_sandbox_environment(hub_config, signing_key):
    """Spawner.environment (often filled per user) reaches only the owner's own code."""
    hub_config.KubeSpawner.environment = {"VIEWER_TOKEN": "from-auth-state"}
    hub_config.DashboardKubeSpawner.sandbox_environment = {"MPLBACKEND": "Agg"}

    def env_of(pod: dict[str, Any]) -> dict[str, Any]:
        return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}

    spec = spec_for("dash", PER_VIEWER, "", False)
    other = env_of(await build(hub_config, signing_key, spec, owner="student1", server="w-1"))
    assert "VIEWER_TOKEN" not in other and other["MPLBACKEND"] == "Agg"
    assert other["JUPYTERHUB_USER"] == "student1"  # the launcher still knows whose server it is
    own = env_of(await build(hub_config, signing_key, spec, server="w-1"))
    assert own["VIEWER_TOKEN"] == "from-auth-state" and "MPLBACKEND" not in own


async def test_warm_pool_instances_get_scratch_storage_not_a_home(hub_config, signing_key):
    """Started before its viewer is known: the pool user's home is nobody's to mount."""
    hub_config.DashboardKubeSpawner.viewer_storage = "home"
    spec = spec_for("voila", PER_VIEWER, "", False, warm_kernels=1)
    pod = await build(
        hub_config, signing_key, spec, owner="hub-viz-pool", server="weather-1a2b3c-9f8e7d"
    )
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert set(volumes) == {"dashboard-source", "viewer-scratch"}
    assert volumes["viewer-scratch"] == {"name": "viewer-scratch", "emptyDir": {}}
    args = pod["spec"]["containers"][0]["args"]
    assert "--warm-kernels=1" in args
    assert "--max-warm-kernels=100" in args  # the pool grows no further than the hub allows
    assert_valid(pod)


async def test_author_limits_within_the_ceiling_reach_the_pod(hub_config, signing_key):
    spec = spec_for("voila", SHARED, "small", False, resources={"cpu": 0.25, "memory": "512M"})
    pod = await build(hub_config, signing_key, spec)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": 0.25, "memory": 512 * 10**6},
        "requests": {"cpu": 0.1, "memory": 256 * 10**6},
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"resources": {"memory": "16G"}},
            "This dashboard asks for 16G of memory; this hub allows at most 4G per dashboard.",
        ),
        (
            {"resources": {"cpu": 3}},
            "This dashboard asks for 3 CPU; this hub allows at most 2 per dashboard.",
        ),
        ({"profile": "huge"}, "Unknown profile 'huge'; known profiles: gpu, small."),
        (
            {"resources": {"memory": "a lot"}},
            "'resources.memory' must be a size such as '512M', '2G' or '1Gi'.",
        ),
    ],
)
async def test_a_bad_profile_or_request_beyond_the_ceiling_is_refused(
    hub_config, signing_key, extra, message
):
    with pytest.raises(Exception) as e:
        await build(hub_config, signing_key, spec_for("dash", SHARED, "", False) | extra)
    assert e.value.jupyterhub_message == f"Cannot start dashboard 'weather': {message}"


def test_operator_profiles_beyond_the_ceiling_fail_when_the_hub_loads_its_config(tmp_path):
    with pytest.raises(ValueError, match="profile 'big' asks for 8 CPU; this hub allows at most 2"):
        configure(
            Config(),
            spawner="kube",
            state_dir=str(tmp_path),
            profiles={"big": {"cpu_limit": 8}},
            resource_ceiling=CEILING,
        )


def test_cli_prints_the_manifest_and_refuses_bad_specs(tmp_path):
    (tmp_path / "jupyterhub_config.py").write_text(
        "from hub_viz.config import configure\n"
        f"configure(c, spawner='kube', state_dir='.', profiles={PROFILES!r}, "
        f"resource_ceiling={CEILING!r})\n"
    )
    cli = [sys.executable, "-m", "hub_viz.cli", "k8s-manifest"]
    spec = json.dumps({"framework": "panel", "entry": "app.py", "profile": "gpu"})
    done = subprocess.run(
        [*cli, "--spec", spec],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pod = yaml.safe_load(done.stdout)
    assert pod["kind"] == "Pod" and pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert_valid(pod)

    bad = json.dumps({"framework": "panel", "entry": "app.py", "resources": {"cpu": 16}})
    done = subprocess.run(
        [*cli, "--spec", bad],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "hub-viz k8s-manifest: Cannot start dashboard 'preview': This dashboard asks for 16 CPU; "
        "this hub allows at most 2 per dashboard."
    )
    assert done.stdout == ""

    done = subprocess.run(
        [*cli, "alice/sales"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert done.returncode == 1
    assert "does not exist: has the service run?" in done.stderr
